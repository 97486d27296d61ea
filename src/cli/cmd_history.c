/*
 * history list|info|undo|redo|rollback and mark install|remove: reading
 * and acting on ROOT/var/lib/lapis/history.sqlite.
 */
#include <pwd.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char *fmt_time(long long t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!t || !localtime_r(&tt, &tm))
        return "-";
    strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
    return buf;
}

/* One transaction spec: "N", "last", "last-N", or a range "N..M" (either end may be
 * left out). Returns 0 or the exit status of the error it reported. */
static int history_range(struct cli *c, const char *spec, long long *lo, long long *hi)
{
    const char *dots = strstr(spec, "..");
    int r;
    if (!dots) {
        if ((r = lapis_history_resolve_id(c->ctx, spec, lo)) < 0)
            return cli_fail(c, r);
        *hi = *lo;
        return 0;
    }
    char *first = strndup(spec, (size_t)(dots - spec));
    *lo = 1;
    r = first && *first ? lapis_history_resolve_id(c->ctx, first, lo) : 0;
    free(first);
    if (r >= 0)
        r = lapis_history_resolve_id(c->ctx, dots[2] ? dots + 2 : "last", hi);
    if (r < 0)
        return cli_fail(c, r);
    if (*lo > *hi) {
        long long t = *lo;
        *lo = *hi;
        *hi = t;
    }
    return 0;
}

/* Keep the transactions the specs name (history list SPEC...); t is newest first. */
static int history_select(struct cli *c, char **specs, int nspecs, lapis_history_trans *t,
                          size_t *n)
{
    long long (*ranges)[2] = calloc((size_t)nspecs + 1, sizeof(*ranges));
    int r = 0;
    for (int i = 0; i < nspecs && r == 0; i++)
        r = history_range(c, specs[i], &ranges[i][0], &ranges[i][1]);
    for (size_t i = 0; r == 0 && nspecs > 0 && i < *n; i++) {
        bool in = false;
        for (int k = 0; k < nspecs; k++)
            in |= t[i].id >= ranges[k][0] && t[i].id <= ranges[k][1];
        if (!in) {
            lapis_history_trans tmp = t[i];
            memmove(&t[i], &t[i + 1], (*n - i - 1) * sizeof(*t));
            t[--*n] = tmp; /* freed with the rest */
            i--;
        }
    }
    free(ranges);
    return r;
}

static void reverse(lapis_history_trans *t, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        lapis_history_trans tmp = t[i];
        t[i] = t[n - 1 - i];
        t[n - 1 - i] = tmp;
    }
}

static int history_list(struct cli *c)
{
    lapis_history_trans *t;
    size_t n, all;
    int r = lapis_history_list(c->ctx, &t, &n);
    if (r < 0)
        return cli_fail(c, r);
    all = n;
    if ((r = history_select(c, c->args + 1, c->nargs > 1 ? c->nargs - 1 : 0, t, &n)) != 0) {
        lapis_history_trans_free(t, all);
        return r;
    }
    if (c->reverse)
        reverse(t, n);
    if (c->json) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", (double)t[i].id);
            cJSON_AddNumberToObject(o, "begin", (double)t[i].begin);
            cJSON_AddNumberToObject(o, "end", (double)t[i].end);
            cJSON_AddStringToObject(o, "cmdline", t[i].cmdline);
            cJSON_AddStringToObject(o, "result", t[i].result);
            cJSON_AddStringToObject(o, "actions", t[i].actions);
            cJSON_AddNumberToObject(o, "altered", t[i].nitems);
            cJSON_AddItemToArray(a, o);
        }
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "history", a);
        cli_json_out(c, doc);
    } else {
        lapis_table *tb = lapis_table_new(6);
        lapis_table_align_right(tb, 0);
        lapis_table_align_right(tb, 4);
        /* dnf5 cuts the command line to what the terminal leaves it. */
        lapis_table_set_width(tb, c->width);
        lapis_table_cut_column(tb, 1);
        lapis_table_add(tb, (const char *[]){ "ID", "Command line", "Date and time", "Action(s)",
                                              "Altered", "Result" });
        for (size_t i = 0; i < n; i++) {
            char id[24], when[32], alt[16];
            snprintf(id, sizeof(id), "%lld", t[i].id);
            snprintf(alt, sizeof(alt), "%d", t[i].nitems);
            lapis_table_add(tb, (const char *[]){ id, t[i].cmdline,
                                                  fmt_time(t[i].begin, when, sizeof(when)),
                                                  t[i].actions, alt, t[i].result });
        }
        lapis_table_print(tb, stdout);
        lapis_table_free(tb);
    }
    lapis_history_trans_free(t, all);
    return 0;
}

/* dnf5's words for what history stores (transaction_item_action_to_string,
 * transaction_item_reason_to_string, transaction_state_to_string). */
static const char *dnf5_action(const char *a)
{
    static const struct { const char *ours, *theirs; } names[] = {
        { "install", "Install" }, { "install-dep", "Install" }, { "install-weak", "Install" },
        { "upgrade", "Upgrade" }, { "downgrade", "Downgrade" }, { "reinstall", "Reinstall" },
        { "remove", "Remove" }, { "remove-dep", "Remove" }, { "remove-unused", "Remove" },
        { "upgraded", "Replaced" }, { "downgraded", "Replaced" }, { "obsoleted", "Replaced" },
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i].ours, a) == 0)
            return names[i].theirs;
    return a;
}

static const char *dnf5_reason(const char *r)
{
    static const struct { const char *ours, *theirs; } names[] = {
        { "user", "User" }, { "dependency", "Dependency" },
        { "weak-dependency", "Weak Dependency" }, { "group", "Group" },
        { "unknown", "External User" }, /* installed by rpm, not by lapis */
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i].ours, r) == 0)
            return names[i].theirs;
    return r;
}

/* An interrupted transaction never ended: dnf5 shows such a one as Started. */
static const char *dnf5_status(const char *result)
{
    return strcmp(result, "ok") == 0 ? "Ok" : strcmp(result, "interrupted") == 0 ? "Started"
                                                                                 : "Error";
}

/* dnf5's user column: "UID Display Name <login>" as the passwd database has it. */
static void user_text(long long uid, char *buf, size_t len)
{
    struct passwd *pw = getpwuid((uid_t)uid);
    size_t n = (size_t)snprintf(buf, len, "%lld", uid);
    if (pw && pw->pw_gecos && *pw->pw_gecos && n < len)
        n += (size_t)snprintf(buf + n, len - n, " %.*s", (int)strcspn(pw->pw_gecos, ","),
                              pw->pw_gecos);
    if (pw && pw->pw_name && *pw->pw_name && n < len)
        snprintf(buf + n, len - n, " <%s>", pw->pw_name);
}

static void print_packages_altered(const lapis_history_item *it, size_t nit)
{
    lapis_table *tb = lapis_table_new(4);
    lapis_table_add(tb, (const char *[]){ "  Action", "Package", "Reason", "Repository" });
    for (size_t i = 0; i < nit; i++) {
        char nevra[1024], action[64];
        bool ep = strcmp(it[i].epoch, "0") != 0;
        snprintf(nevra, sizeof(nevra), "%s-%s%s%s-%s.%s", it[i].name, ep ? it[i].epoch : "",
                 ep ? ":" : "", it[i].version, it[i].release, it[i].arch);
        snprintf(action, sizeof(action), "  %s", dnf5_action(it[i].action));
        lapis_table_add(tb, (const char *[]){ action, nevra, dnf5_reason(it[i].reason),
                                              it[i].repo });
    }
    printf("Packages altered:\n");
    lapis_table_print(tb, stdout);
    lapis_table_free(tb);
}

/* dnf5's history info: its key/value lines (the rpmdb versions, which lapis does
 * not record, left out), then the packages. */
static void print_info_text(struct cli *c, const lapis_history_trans *tr,
                            const lapis_history_item *it, size_t nit)
{
    char id[32], b1[32], b2[32], user[512];
    snprintf(id, sizeof(id), "%lld", tr->id);
    user_text(tr->uid, user, sizeof(user));
    cli_kv_width(c, 15, "Transaction ID", id);
    cli_kv_width(c, 15, "Begin time", fmt_time(tr->begin, b1, sizeof(b1)));
    cli_kv_width(c, 15, "End time", tr->end ? fmt_time(tr->end, b2, sizeof(b2)) : "");
    cli_kv_width(c, 15, "User", user);
    cli_kv_width(c, 15, "Status", dnf5_status(tr->result));
    cli_kv_width(c, 15, "Releasever", tr->releasever);
    cli_kv_width(c, 15, "Description", tr->cmdline);
    cli_kv_width(c, 15, "Comment", tr->comment);
    print_packages_altered(it, nit);
}

static int history_info_id(struct cli *c, long long id)
{
    lapis_history_trans *t;
    lapis_history_item *it;
    size_t n, nit;
    int r;

    if ((r = lapis_history_list(c->ctx, &t, &n)) < 0)
        return cli_fail(c, r);
    lapis_history_trans *tr = NULL;
    for (size_t i = 0; i < n; i++)
        if (t[i].id == id)
            tr = &t[i];
    if (!tr) { /* a gap in a range */
        lapis_history_trans_free(t, n);
        return 0;
    }
    if ((r = lapis_history_items(c->ctx, id, &it, &nit)) < 0) {
        lapis_history_trans_free(t, n);
        return cli_fail(c, r);
    }
    if (c->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddNumberToObject(doc, "id", (double)id);
        cJSON_AddNumberToObject(doc, "begin", (double)tr->begin);
        cJSON_AddNumberToObject(doc, "end", (double)tr->end);
        cJSON_AddStringToObject(doc, "cmdline", tr->cmdline);
        cJSON_AddStringToObject(doc, "result", tr->result);
        cJSON_AddNumberToObject(doc, "user_id", (double)tr->uid);
        cJSON_AddStringToObject(doc, "releasever", tr->releasever);
        cJSON_AddStringToObject(doc, "comment", tr->comment);
        cJSON *a = cJSON_AddArrayToObject(doc, "packages");
        for (size_t i = 0; i < nit; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "action", it[i].action);
            cJSON_AddStringToObject(o, "reason", it[i].reason);
            cJSON_AddStringToObject(o, "name", it[i].name);
            cJSON_AddStringToObject(o, "epoch", it[i].epoch);
            cJSON_AddStringToObject(o, "version", it[i].version);
            cJSON_AddStringToObject(o, "release", it[i].release);
            cJSON_AddStringToObject(o, "arch", it[i].arch);
            cJSON_AddStringToObject(o, "repo", it[i].repo);
            cJSON_AddItemToArray(a, o);
        }
        cli_json_out(c, doc);
    } else {
        print_info_text(c, tr, it, nit);
    }
    lapis_history_items_free(it, nit);
    lapis_history_trans_free(t, n);
    return 0;
}

/* history info SPEC: each transaction of a range, oldest first. */
static int history_info(struct cli *c, const char *which)
{
    long long lo, hi;
    int r = history_range(c, which, &lo, &hi);
    if (r != 0)
        return r;
    if (lo != hi && c->json)
        return cli_error(c, LAPIS_E_USAGE, "history info --json takes one transaction, not a "
                         "range");
    for (long long id = lo; id <= hi && r == 0; id++)
        r = history_info_id(c, id);
    return r;
}

static int build_undo(struct cli *c, lapis_goal *goal)
{
    return lapis_goal_history_undo(goal, c->history_id);
}

static int build_redo(struct cli *c, lapis_goal *goal)
{
    return lapis_goal_history_redo(goal, c->history_id);
}

static int build_rollback(struct cli *c, lapis_goal *goal)
{
    return lapis_goal_history_rollback(goal, c->history_id);
}

int cmd_history(struct cli *c)
{
    const char *sub = c->nargs > 0 ? c->args[0] : "list";
    static const struct {
        const char *name;
        int (*build)(struct cli *, lapis_goal *);
    } acts[] = { { "undo", build_undo }, { "redo", build_redo }, { "rollback", build_rollback } };

    if (strcmp(sub, "list") == 0)
        return history_list(c);
    if (strcmp(sub, "info") == 0)
        return history_info(c, c->nargs > 1 ? c->args[1] : "last");
    for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
        if (strcmp(sub, acts[i].name) != 0)
            continue;
        if (c->nargs != 2)
            return cli_error(c, LAPIS_E_USAGE, "history %s needs one transaction id (or 'last')",
                             sub);
        int r = lapis_history_resolve_id(c->ctx, c->args[1], &c->history_id);
        if (r < 0)
            return cli_fail(c, r);
        /* The transaction's own arguments are not package specs. */
        c->nargs = 0;
        return cli_run_goal(c, 0, acts[i].build);
    }
    return cli_error(c, LAPIS_E_USAGE, "unknown history command '%s' (list, info, undo, redo, "
                     "rollback)", sub);
}

int cmd_mark(struct cli *c)
{
    enum lapis_reason why;
    int r, total = 0;

    if (c->nargs < 2)
        return cli_error(c, LAPIS_E_USAGE, "usage: mark user|dependency|weak PACKAGE... "
                         "(dnf 4: install|remove)");
    if (strcmp(c->args[0], "install") == 0 || strcmp(c->args[0], "user") == 0)
        why = LAPIS_REASON_USER;
    else if (strcmp(c->args[0], "remove") == 0 || strcmp(c->args[0], "dependency") == 0)
        why = LAPIS_REASON_DEP;
    else if (strcmp(c->args[0], "weak") == 0)
        why = LAPIS_REASON_WEAK;
    else
        return cli_error(c, LAPIS_E_USAGE, "mark: unknown mark '%s' (user, dependency or weak; "
                         "dnf 4's install or remove)", c->args[0]);
    if ((r = lapis_ctx_lock(c->ctx)) < 0 || (r = cli_load(c, LAPIS_LOAD_NO_REPOS)) < 0)
        return cli_fail(c, r);
    for (int i = 1; i < c->nargs; i++) {
        if ((r = lapis_mark(c->ctx, c->args[i], why)) < 0)
            return cli_fail(c, r);
        total += r;
    }
    if (c->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "reason", lapis_reason_name(why));
        cJSON_AddNumberToObject(doc, "marked", total);
        cli_json_out(c, doc);
    } else if (!c->quiet) {
        printf("%d package%s marked as %s.\n", total, total == 1 ? "" : "s",
               why == LAPIS_REASON_USER ? "user-installed"
               : why == LAPIS_REASON_WEAK ? "weak dependencies" : "dependencies");
    }
    return 0;
}
