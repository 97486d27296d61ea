/*
 * Transaction commands: install, reinstall, remove, upgrade, downgrade,
 * distro-sync, autoremove (and history undo/redo/rollback through
 * cli_run_goal). Each builds a goal; the shared path resolves it, shows it
 * in the layout dnf5 users know, asks, and runs it through liblapis.
 */
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const struct {
    enum lapis_action action;
    const char *title;
    const char *summary;
    const char *sgr; /* the package names' colour, dnf5's action_color() */
} sections[] = {
    { LAPIS_ACT_INSTALL, "Installing:", "Installing", LAPIS_SGR_GREEN },
    { LAPIS_ACT_INSTALL_DEP, "Installing dependencies:", "Installing", LAPIS_SGR_GREEN },
    { LAPIS_ACT_INSTALL_WEAK, "Installing weak dependencies:", "Installing", LAPIS_SGR_GREEN },
    { LAPIS_ACT_UPGRADE, "Upgrading:", "Upgrading", LAPIS_SGR_GREEN },
    { LAPIS_ACT_DOWNGRADE, "Downgrading:", "Downgrading", LAPIS_SGR_MAGENTA },
    { LAPIS_ACT_REINSTALL, "Reinstalling:", "Reinstalling", LAPIS_SGR_GREEN },
    { LAPIS_ACT_REMOVE, "Removing:", "Removing", LAPIS_SGR_RED },
    { LAPIS_ACT_REMOVE_DEP, "Removing dependent packages:", "Removing", LAPIS_SGR_RED },
    { LAPIS_ACT_REMOVE_UNUSED, "Removing unused dependencies:", "Removing", LAPIS_SGR_RED },
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static unsigned long long row_size(lapis_ctx *ctx, lapis_pkg p)
{
    return lapis_pkg_installed(ctx, p) ? lapis_pkg_installsize(ctx, p)
                                       : lapis_pkg_downloadsize(ctx, p);
}

static void add_row(lapis_ctx *ctx, lapis_table *t, const char *indent, lapis_pkg p,
                    const char *sgr)
{
    char name[512], size[32];
    snprintf(name, sizeof(name), "%s%s", indent, lapis_pkg_name(ctx, p));
    lapis_format_size(row_size(ctx, p), size);
    lapis_table_add(t, (const char *[]){ name, lapis_pkg_arch(ctx, p), lapis_pkg_evr(ctx, p),
                                         lapis_pkg_repoid(ctx, p), size });
    lapis_table_color_cell(t, 0, sgr);
}

static void print_summary_line(const char *label, size_t n)
{
    char l[32];
    snprintf(l, sizeof(l), "%s:", label);
    printf(" %-15s %zu package%s\n", l, n, n == 1 ? "" : "s");
}

/* dnf5's last section: what --skip-broken dropped (and its summary line). */
static size_t add_skipped_rows(lapis_ctx *ctx, lapis_table *t, lapis_goal *goal)
{
    size_t ns = 0;
    const lapis_pkg *skipped = goal ? lapis_goal_skipped(goal, &ns) : NULL;
    if (ns)
        lapis_table_add_line(t, "Skipping packages with broken dependencies:");
    for (size_t i = 0; i < ns; i++)
        add_row(ctx, t, " ", skipped[i], NULL);
    return ns;
}

static void print_transaction(lapis_ctx *ctx, lapis_goal *goal, const lapis_trans_item *items,
                              size_t n, bool color, size_t width)
{
    lapis_table *t = lapis_table_new(5);
    unsigned long long dl = 0, fetch = 0, inst = 0, freed = 0;
    size_t count[NSECTIONS] = { 0 };

    lapis_table_align_right(t, 4);
    lapis_table_set_color(t, color);
    /* A terminal too narrow loses the ends of versions and repository ids:
     * dnf5's SCOLS_FL_TRUNC columns, with its width hints (0.2 and 0.1). */
    lapis_table_set_width(t, width);
    lapis_table_cut_column_share(t, 2, 0.2);
    lapis_table_cut_column_share(t, 3, 0.1);
    lapis_table_add(t, (const char *[]){ "Package", "Arch", "Version", "Repository", "Size" });
    for (size_t col = 0; col < 5; col++)
        lapis_table_color_cell(t, col, LAPIS_SGR_BOLD);
    for (size_t s = 0; s < NSECTIONS; s++) {
        for (size_t i = 0; i < n; i++) {
            if (items[i].action != sections[s].action)
                continue;
            if (count[s]++ == 0)
                lapis_table_add_line(t, sections[s].title);
            add_row(ctx, t, " ", items[i].pkg, sections[s].sgr);
            if (items[i].replaces && items[i].action != LAPIS_ACT_REINSTALL)
                add_row(ctx, t, "   replacing ", items[i].replaces, LAPIS_SGR_DIM);
            if (!lapis_pkg_installed(ctx, items[i].pkg)) {
                dl += lapis_pkg_downloadsize(ctx, items[i].pkg);
                if (strcmp(lapis_pkg_repoid(ctx, items[i].pkg), "@commandline") != 0)
                    fetch += lapis_pkg_downloadsize(ctx, items[i].pkg);
                inst += lapis_pkg_installsize(ctx, items[i].pkg);
            } else {
                freed += lapis_pkg_installsize(ctx, items[i].pkg);
            }
            if (items[i].replaces)
                freed += lapis_pkg_installsize(ctx, items[i].replaces);
        }
    }
    size_t skipping = add_skipped_rows(ctx, t, goal);
    lapis_table_print(t, stdout);
    lapis_table_free(t);

    printf("\nTransaction Summary:\n");
    size_t installing = count[0] + count[1] + count[2];
    size_t removing = count[6] + count[7] + count[8];
    if (installing)
        print_summary_line("Installing", installing);
    for (size_t s = 3; s < 6; s++)
        if (count[s])
            print_summary_line(sections[s].summary, count[s]);
    if (removing)
        print_summary_line("Removing", removing);
    if (skipping)
        print_summary_line("Skipping", skipping);
    char size[32], size2[32], size3[32];
    putchar('\n');
    if (dl) /* dnf5 leaves this line out when nothing comes in (a pure remove) */
        printf("Total size of inbound packages is %s. Need to download %s.\n",
               lapis_format_size(dl, size), lapis_format_size(fetch, size2));
    /* dnf5's line on the disk space the transaction takes or gives back */
    if (inst >= freed)
        printf("After this operation, %s extra will be used", lapis_format_size(inst - freed, size));
    else
        printf("After this operation, %s will be freed", lapis_format_size(freed - inst, size));
    printf(" (install %s, remove %s).\n", lapis_format_size(inst, size2),
           lapis_format_size(freed, size3));
}

static cJSON *json_transaction(lapis_ctx *ctx, const lapis_trans_item *items, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = lapis_json_pkg(ctx, items[i].pkg);
        cJSON_AddStringToObject(o, "action", lapis_action_name(items[i].action));
        cJSON_AddNumberToObject(o, "size", (double)row_size(ctx, items[i].pkg));
        if (items[i].replaces)
            cJSON_AddItemToObject(o, "replaces", lapis_json_pkg(ctx, items[i].replaces));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* ---- interaction ------------------------------------------------------- */

/* Print a (possibly multi-line) question with control characters neutralised per line. */
static void print_question(const char *q, const char *end)
{
    while (*q) {
        size_t n = strcspn(q, "\n");
        char *line = strndup(q, n);
        char *clean = line ? lapis_sanitize(line) : NULL;
        fprintf(stderr, "%s%s", clean ? clean : "", q[n] ? "\n" : end);
        free(clean);
        free(line);
        q += n + (q[n] ? 1 : 0);
    }
}

/* The question, answered on stdin as dnf5 reads it: a terminal or a pipe
 * (`yes | lapis install …`); no answer (end of input) is no. */
static bool ask(const char *question)
{
    char line[64];
    print_question(question, " [y/N]: ");
    fflush(stderr);
    if (!fgets(line, sizeof(line), stdin)) {
        fputc('\n', stderr); /* what follows starts a line of its own */
        return false;
    }
    if (!isatty(STDIN_FILENO)) /* a terminal would have echoed the answer's newline */
        fputc('\n', stderr);
    return line[0] == 'y' || line[0] == 'Y';
}

static bool confirm_answer(struct cli *c, const char *question)
{
    if (c->assumeno)
        return false;
    if (c->assumeyes) {
        if (!c->quiet)
            print_question(question, "\n");
        return true;
    }
    return ask(question);
}

static bool confirm_cb(const char *question, void *ud)
{
    bool yes = confirm_answer(ud, question);
    if (yes)
        cli_heap_release(); /* downloads and rpm follow: their memory goes back as freed */
    return yes;
}

struct progress {
    bool tty;
    double start;
    bool line_open;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Human progress: a redrawn line on a TTY; per-package lines otherwise. */
static void progress_show(enum lapis_progress_kind k, const char *name, unsigned long long done,
                          unsigned long long total, void *ud)
{
    struct progress *p = ud;
    char a[32], b[32], rate[32];

    switch (k) {
    case LAPIS_PROGRESS_DOWNLOAD: {
        if (!p->tty)
            return;
        if (p->start == 0)
            p->start = now_s();
        double el = now_s() - p->start, bps = el > 0.05 ? (double)done / el : 0;
        long eta = bps > 0 && total > done ? (long)((double)(total - done) / bps) : 0;
        lapis_format_size((unsigned long long)bps, rate);
        printf("\r Downloading packages  %9s / %-9s %9s/s  ETA %ld:%02ld \033[K",
               lapis_format_size(done, a), lapis_format_size(total, b), rate, eta / 60, eta % 60);
        p->line_open = true;
        break;
    }
    case LAPIS_PROGRESS_INSTALL:
    case LAPIS_PROGRESS_REMOVE: {
        const char *verb = k == LAPIS_PROGRESS_INSTALL ? "Installing" : "Removing";
        if (p->tty)
            printf("\r[%3llu/%3llu] %-10s %s\033[K", done, total, verb, name ? name : "");
        else
            printf("[%3llu/%3llu] %-10s %s\n", done, total, verb, name ? name : "");
        p->line_open = p->tty;
        break;
    }
    case LAPIS_PROGRESS_SCRIPT_ERROR:
        if (p->line_open)
            printf("\n");
        p->line_open = false;
        fprintf(stderr, "lapis: warning: a scriptlet failed: %s (the package is installed; "
                "rpm's message above has the exit status)\n", name ? name : "?");
        break;
    case LAPIS_PROGRESS_VERIFY:
        if (p->tty && total) {
            printf("\r Verifying packages  [%llu/%llu]\033[K", done, total);
            p->line_open = true;
        }
        break;
    case LAPIS_PROGRESS_DONE:
        break;
    case LAPIS_PROGRESS_METADATA:
    case LAPIS_PROGRESS_METADATA_DONE:
        return; /* loaded before the transaction runs; mdprogress.c draws it */
    }
    if (p->line_open && k != LAPIS_PROGRESS_DOWNLOAD && done == total) {
        printf("\n");
        p->line_open = false;
    } else if (k == LAPIS_PROGRESS_DOWNLOAD && done >= total && p->line_open) {
        printf("\n");
        p->line_open = false;
    }
    fflush(stdout);
}

/* The name comes from the package header: sanitized like all package text. */
static void progress_cb(enum lapis_progress_kind k, const char *name, unsigned long long done,
                        unsigned long long total, void *ud)
{
    char *clean = name ? lapis_sanitize(name) : NULL;
    progress_show(k, clean, done, total, ud);
    free(clean);
}

/* ---- the shared path ---------------------------------------------------- */

static bool is_rpm_path(const char *s)
{
    size_t n = strlen(s);
    return n > 4 && strcmp(s + n - 4, ".rpm") == 0;
}

/* Entries may span lines ("Problem: ...\n  - ..."): each line is sanitized on its own. */
static void print_lines(char *const *v)
{
    for (size_t i = 0; v && v[i]; i++)
        print_question(v[i], "\n");
}

static const struct {
    unsigned hint;
    const char *text;
} hint_texts[] = {
    { LAPIS_HINT_SKIP_UNAVAILABLE, "--skip-unavailable to skip unavailable packages" },
    { LAPIS_HINT_NO_BEST, "--no-best to not limit the transaction to the best candidates" },
    { LAPIS_HINT_ALLOWERASING, "--allowerasing to allow erasing of installed packages to "
                               "resolve problems" },
    { LAPIS_HINT_SKIP_BROKEN, "--skip-broken to skip uninstallable packages" },
};

/* dnf5's report of a failed resolve, on stderr. */
static void print_resolve_failure(lapis_goal *goal)
{
    unsigned hints = lapis_goal_hints(goal);
    fprintf(stderr, "Failed to resolve the transaction:\n");
    print_lines(lapis_goal_log(goal));
    print_lines(lapis_goal_problems(goal));
    if (hints & ~LAPIS_HINT_FILEDEP) /* file lists load on demand here: no hint for them */
        fprintf(stderr, "You can try to add to command line:\n");
    for (size_t i = 0; i < sizeof(hint_texts) / sizeof(hint_texts[0]); i++)
        if (hints & hint_texts[i].hint)
            fprintf(stderr, "  %s\n", hint_texts[i].text);
}

static int json_result(struct cli *c, lapis_goal *goal, const lapis_trans_item *items, size_t n,
                       const char *result)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "transaction", json_transaction(c->ctx, items, n));
    cJSON_AddStringToObject(doc, "result", result);
    size_t ns = 0;
    const lapis_pkg *skipped = goal ? lapis_goal_skipped(goal, &ns) : NULL;
    if (ns) {
        cJSON *a = cJSON_AddArrayToObject(doc, "skipped");
        for (size_t i = 0; i < ns; i++)
            cJSON_AddItemToArray(a, lapis_json_pkg(c->ctx, skipped[i]));
    }
    if (goal && lapis_goal_history_id(goal))
        cJSON_AddNumberToObject(doc, "history_id", (double)lapis_goal_history_id(goal));
    char *const *dl = goal ? lapis_goal_downloaded(goal) : NULL;
    if (dl && c->downloadonly) {
        cJSON *a = cJSON_AddArrayToObject(doc, "downloaded");
        for (size_t i = 0; dl[i]; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(dl[i]));
    }
    cli_json_out(c, doc);
    return 0;
}

static void goal_freep(lapis_goal **g)
{
    lapis_goal_free(*g);
}

/* The steps of cli_run_goal return 0 to go on, else the exit status. */

/* Lock (unless only looking), add local .rpm files, load the repos. */
static int goal_prepare(struct cli *c, unsigned load_flags)
{
    int r;

    if (c->downloaddir && !c->downloadonly)
        return cli_error(c, LAPIS_E_USAGE, "--downloaddir needs --downloadonly");
    if (c->offline && (c->downloadonly || c->downloaddir))
        return cli_error(c, LAPIS_E_USAGE, "--offline stores its packages itself: drop "
                         "--downloadonly/--downloaddir");
    if (!c->assumeno && !c->downloadonly && (r = lapis_ctx_lock(c->ctx)) < 0)
        return cli_fail(c, r);
    for (int i = 0; i < c->nargs; i++) {
        struct stat st;
        if (is_rpm_path(c->args[i]) && stat(c->args[i], &st) == 0 &&
            (r = lapis_ctx_add_rpm_file(c->ctx, c->args[i], NULL)) < 0)
            return cli_fail(c, r);
        if (lapis_spec_needs_filelists(c->args[i]))
            load_flags |= LAPIS_LOAD_FILELISTS;
    }
    if ((r = cli_load(c, load_flags)) < 0)
        return cli_fail(c, r);
    return 0;
}

static int goal_resolve(struct cli *c, int (*build)(struct cli *, lapis_goal *), lapis_goal **ret)
{
    int r;

    if ((r = lapis_goal_new(c->ctx, ret)) < 0)
        return cli_fail(c, r);
    lapis_goal_set_flags(*ret, (c->allowerasing ? LAPIS_GOAL_ALLOWERASING : 0) |
                               (c->skip_broken ? LAPIS_GOAL_SKIP_BROKEN : 0) |
                               (c->allow_downgrade ? LAPIS_GOAL_ALLOW_DOWNGRADE : 0) |
                               LAPIS_GOAL_LOG_UNAVAILABLE);
    if ((r = build(c, *ret)) < 0)
        return cli_fail(c, r);
    if ((r = lapis_goal_resolve(*ret)) >= 0) {
        if (!c->quiet)
            print_lines(lapis_goal_log(*ret)); /* dnf5's notes: skipped, already installed */
        return 0;
    }
    if ((r != -LAPIS_E_SOLVE && r != -LAPIS_E_NOTFOUND) ||
        (!lapis_goal_log(*ret)[0] && !lapis_goal_problems(*ret)[0]))
        return cli_fail(c, r);
    print_resolve_failure(*ret);
    return cli_fail_printed(c, r);
}

/* Show the transaction and ask (--assumeno: exit status 1). */
static int goal_confirm(struct cli *c, lapis_goal *goal, const lapis_trans_item *items, size_t n)
{
    if (!c->json && !c->quiet)
        print_transaction(c->ctx, goal, items, n, c->color, c->width);
    if (c->assumeno) {
        if (c->json)
            json_result(c, goal, items, n, "aborted");
        else /* dnf5 says the same for --assumeno as for answering no, on stderr */
            fprintf(stderr, "Operation aborted by the user.\n");
        return 1;
    }
    if (c->assumeyes)
        return 0;
    if (ask(c->downloadonly ? "Is this ok (download only)" : "Is this ok"))
        return 0;
    if (cli_interrupted()) /* Ctrl-C at the prompt */
        return cli_interrupt_note(c, "interrupted: nothing was changed");
    fprintf(stderr, "Operation aborted by the user.\n"); /* dnf5's words; exit status 1 */
    return 1;
}

static int goal_execute(struct cli *c, lapis_goal *goal)
{
    struct progress prog = { .tty = isatty(STDOUT_FILENO) && !c->json && !c->quiet };
    lapis_run_opts o = {
        .flags = (c->downloadonly ? LAPIS_RUN_DOWNLOADONLY : 0) |
                 (c->nodocs ? LAPIS_RUN_NODOCS : 0) | (c->noscripts ? LAPIS_RUN_NOSCRIPTS : 0),
        .downloaddir = cli_destdir(c),
        .cmdline = c->cmdline,
        .comment = c->comment,
        /* Scriptlet output must not corrupt the JSON document on stdout. */
        .script_fd = c->json ? STDERR_FILENO : -1,
    };
    int r;

    lapis_ctx_set_confirm(c->ctx, confirm_cb, c);
    if (!c->json && !c->quiet)
        lapis_ctx_set_progress(c->ctx, progress_cb, &prog);
    r = lapis_goal_run(goal, &o);
    /* prog lives on this stack frame */
    lapis_ctx_set_progress(c->ctx, cli_mdprogress_cb, c->mdprogress);
    if (prog.line_open)
        printf("\n");
    /* dnf5's heading for why nothing was installed; the detail follows on its own line. */
    if (r == -LAPIS_E_SIGNATURE && !c->json)
        fprintf(stderr, "Transaction failed: Signature verification failed.\n");
    return r < 0 ? cli_fail(c, r) : 0;
}

static const struct {
    const char *title;
    enum lapis_action first, last; /* a range of enum lapis_action */
} done_lists[] = {
    { "Upgraded:", LAPIS_ACT_UPGRADE, LAPIS_ACT_UPGRADE },
    { "Downgraded:", LAPIS_ACT_DOWNGRADE, LAPIS_ACT_DOWNGRADE },
    { "Reinstalled:", LAPIS_ACT_REINSTALL, LAPIS_ACT_REINSTALL },
    { "Installed:", LAPIS_ACT_INSTALL, LAPIS_ACT_INSTALL_WEAK },
    { "Removed:", LAPIS_ACT_REMOVE, LAPIS_ACT_REMOVE_UNUSED },
};

static bool in_list(size_t l, enum lapis_action a)
{
    return a >= done_lists[l].first && a <= done_lists[l].last;
}

/* What the transaction did, by action (dnf's lists after "Running transaction"). */
static void print_done_lists(struct cli *c, const lapis_trans_item *items, size_t n)
{
    for (size_t l = 0; l < sizeof(done_lists) / sizeof(done_lists[0]); l++) {
        bool any = false;
        for (size_t i = 0; i < n; i++) {
            if (!in_list(l, items[i].action))
                continue;
            if (!any)
                printf("%s\n", done_lists[l].title);
            any = true;
            char *clean = lapis_sanitize(lapis_pkg_nevra(c->ctx, items[i].pkg));
            printf("  %s\n", clean);
            free(clean);
        }
    }
}

static void goal_report(struct cli *c, lapis_goal *goal, const lapis_trans_item *items, size_t n)
{
    if (!c->json && !c->quiet && !c->downloadonly)
        print_done_lists(c, items, n);
    if (c->json)
        json_result(c, goal, items, n, c->downloadonly ? "downloaded" : "ok");
    else if (!c->quiet)
        printf(c->downloadonly ? "The downloaded packages were saved in the cache (or "
                                 "--downloaddir).\nComplete!\n" : "Complete!\n");
}

int cli_with_progress(struct cli *c, int (*run)(void *arg), void *arg)
{
    struct progress prog = { .tty = isatty(STDOUT_FILENO) && !c->json && !c->quiet };
    lapis_ctx_set_confirm(c->ctx, confirm_cb, c);
    if (!c->json && !c->quiet)
        lapis_ctx_set_progress(c->ctx, progress_cb, &prog);
    int r = run(arg);
    /* prog lives on this stack frame */
    lapis_ctx_set_progress(c->ctx, cli_mdprogress_cb, c->mdprogress);
    if (prog.line_open)
        printf("\n");
    return r;
}

struct store_args {
    lapis_goal *goal;
    const lapis_run_opts *opts;
};

static int run_store(void *arg)
{
    struct store_args *a = arg;
    return lapis_offline_store(a->goal, a->opts);
}

/* dnf5 warns when a new offline transaction replaces a stored one. */
static void note_replaced_offline(struct cli *c)
{
    lapis_offline_info info = { 0 };
    if (c->quiet || lapis_offline_status(c->ctx, &info) <= 0)
        return;
    char *clean = lapis_sanitize(info.cmdline);
    fprintf(stderr, "lapis: warning: this replaces the offline transaction stored by: %s\n",
            clean);
    free(clean);
    lapis_offline_info_free(&info);
}

/* --offline: download, verify and store; nothing is installed now (dnf5's words). */
static int goal_store_offline(struct cli *c, lapis_goal *goal, const lapis_trans_item *items,
                              size_t n)
{
    lapis_run_opts o = { .cmdline = c->cmdline, .script_fd = -1 };
    int r;

    note_replaced_offline(c);
    r = cli_with_progress(c, run_store, &(struct store_args){ goal, &o });
    if (r < 0)
        return cli_fail(c, r);
    if (c->json)
        return json_result(c, NULL, items, n, "stored-offline");
    if (!c->quiet)
        printf("Transaction stored to be performed offline. Run `lapis offline reboot` to reboot "
               "and run the transaction. To cancel the transaction and delete the downloaded "
               "files, use `lapis offline clean`.\n");
    return 0;
}

/* Lock (unless only looking), load, let build() add jobs, then resolve/show/ask/run. */
int cli_run_goal(struct cli *c, unsigned load_flags, int (*build)(struct cli *, lapis_goal *))
{
    __attribute__((cleanup(goal_freep))) lapis_goal *goal = NULL;
    const lapis_trans_item *items;
    size_t n;
    int r;

    /* The question cannot be shown next to the document: one error, before anything. */
    if (c->json && !c->assumeyes && !c->assumeno)
        return cli_error(c, LAPIS_E_USAGE, "--json cannot ask for confirmation: add -y to "
                         "proceed, or --assumeno to only show the transaction");
    if ((r = goal_prepare(c, load_flags)) != 0 || (r = goal_resolve(c, build, &goal)) != 0)
        return r;
    items = lapis_goal_items(goal, &n);
    /* Nothing to install may still record a group as installed. */
    if (n == 0 && !c->assumeno && !c->downloadonly &&
        (r = lapis_goal_run(goal, &(lapis_run_opts){ .script_fd = -1 })) < 0)
        return cli_fail(c, r);
    if (n == 0) {
        size_t ns = 0;
        (void)lapis_goal_skipped(goal, &ns);
        if (c->json)
            json_result(c, goal, items, n, "nothing-to-do");
        else if (!c->quiet && ns) /* what was dropped is still worth saying */
            print_transaction(c->ctx, goal, items, n, c->color, c->width);
        if (!c->json && !c->quiet)
            printf("Nothing to do.\n");
        return 0;
    }
    if ((r = goal_confirm(c, goal, items, n)) != 0)
        return r;
    if (c->offline)
        return goal_store_offline(c, goal, items, n);
    if ((r = goal_execute(c, goal)) != 0)
        return r;
    goal_report(c, goal, items, n);
    /* A signal during the rpm transaction waited for it to end (see lapis_goal_run). */
    if (cli_interrupted() && !c->downloadonly)
        return cli_interrupt_note(c, "interrupted: the transaction had already started and "
                                  "was completed; nothing is left half-done");
    return 0;
}

/* ---- the commands ------------------------------------------------------- */

/* Reports the usage error itself; true when the command has no package arguments. */
static bool missing_args(struct cli *c, const char *cmd)
{
    if (c->nargs > 0)
        return false;
    cli_error(c, LAPIS_E_USAGE, "%s needs at least one package", cmd);
    return true;
}

#define FOREACH_ARG(fn)                                      \
    for (int i = 0; i < c->nargs; i++) {                     \
        int r_ = fn(goal, c->args[i]);                       \
        if (r_ < 0)                                          \
            return r_;                                       \
    }                                                        \
    return 0

/* "@group" in a package list is the group (dnf's spec). */
#define FOREACH_ARG_OR_GROUP(fn, op)                                                  \
    for (int i = 0; i < c->nargs; i++) {                                              \
        int r_ = c->args[i][0] == '@' ? cli_goal_group_spec(c, goal, c->args[i], op)  \
                                      : fn(goal, c->args[i]);                         \
        if (r_ < 0)                                                                   \
            return r_;                                                                \
    }                                                                                 \
    return 0

static int build_install(struct cli *c, lapis_goal *goal) { FOREACH_ARG_OR_GROUP(lapis_goal_install, 'i'); }
static int build_reinstall(struct cli *c, lapis_goal *goal) { FOREACH_ARG(lapis_goal_reinstall); }
static int build_remove(struct cli *c, lapis_goal *goal) { FOREACH_ARG_OR_GROUP(lapis_goal_remove, 'r'); }
static int build_downgrade(struct cli *c, lapis_goal *goal) { FOREACH_ARG(lapis_goal_downgrade); }

/* dnf's note when advisory filters leave nothing to do. */
static void note_unfiltered_upgrades(struct cli *c)
{
    lapis_pkglist l = { 0 };
    if (c->quiet || lapis_query_list(c->ctx, LAPIS_LIST_UPGRADES, c->args, &l) < 0)
        return;
    fprintf(stderr, "No packages need an upgrade for the given advisories%s", l.count ? "" : ".\n");
    if (l.count)
        fprintf(stderr, ", but %zu upgrade%s available without the filters.\n", l.count,
                l.count == 1 ? " is" : "s are");
    lapis_pkglist_free(&l);
}

int cli_build_advisory_upgrade(struct cli *c, lapis_goal *goal, bool minimal)
{
    lapis_advisory_filter f = cli_advisory_filter(c);
    int r = lapis_goal_upgrade_advisories(goal, &f, minimal, c->args);
    if (r == 0)
        note_unfiltered_upgrades(c);
    return r < 0 ? r : 0;
}

static int build_upgrade(struct cli *c, lapis_goal *goal)
{
    if (cli_has_advisory_filter(c))
        return cli_build_advisory_upgrade(c, goal, false);
    if (c->nargs == 0)
        return lapis_goal_upgrade(goal, NULL);
    FOREACH_ARG_OR_GROUP(lapis_goal_upgrade, 'u');
}

static int build_distro_sync(struct cli *c, lapis_goal *goal)
{
    if (c->nargs == 0)
        return lapis_goal_distro_sync(goal, NULL);
    FOREACH_ARG(lapis_goal_distro_sync);
}

static int build_autoremove(struct cli *c, lapis_goal *goal)
{
    int r = lapis_goal_autoremove(goal);
    if (r < 0)
        return r;
    FOREACH_ARG(lapis_goal_remove);
}

int cmd_install(struct cli *c)
{
    if (missing_args(c, "install"))
        return EXIT_USAGE;
    return cli_run_goal(c, 0, build_install);
}

int cmd_reinstall(struct cli *c)
{
    if (missing_args(c, "reinstall"))
        return EXIT_USAGE;
    return cli_run_goal(c, 0, build_reinstall);
}

int cmd_remove(struct cli *c)
{
    if (missing_args(c, "remove"))
        return EXIT_USAGE;
    return cli_run_goal(c, 0, build_remove);
}

int cmd_downgrade(struct cli *c)
{
    if (missing_args(c, "downgrade"))
        return EXIT_USAGE;
    return cli_run_goal(c, 0, build_downgrade);
}

int cmd_upgrade(struct cli *c)
{
    return cli_run_goal(c, 0, build_upgrade);
}

int cmd_distro_sync(struct cli *c)
{
    return cli_run_goal(c, 0, build_distro_sync);
}

int cmd_autoremove(struct cli *c)
{
    return cli_run_goal(c, 0, build_autoremove);
}
