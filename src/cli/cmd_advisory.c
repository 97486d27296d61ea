/*
 * Advisory commands: updateinfo (advisory), upgrade-minimal,
 * needs-restarting and automatic. The library does the work; this file
 * chooses what to show and how, in the layout dnf users know.
 */
#include <fnmatch.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define DEFAULT_AUTOMATIC_CONF "/etc/lapis/automatic.conf"

/* ---- updateinfo ---------------------------------------------------------- */

enum ui_mode { UI_SUMMARY, UI_LIST, UI_INFO };

static const char *scope_name(enum lapis_advisory_scope s)
{
    return s == LAPIS_ADV_INSTALLED ? "installed" : s == LAPIS_ADV_ALL ? "all" : "available";
}

static bool is_type(const lapis_advisory *a, const char *type)
{
    return a->type && strcmp(a->type, type) == 0;
}

static const char *const severity_order[] = { "Critical", "Important", "Moderate", "Low" };
static const struct { const char *type, *label; } kinds[] = {
    { "security", "Security" }, { "bugfix", "Bugfix" },
    { "enhancement", "Enhancement" }, { "newpackage", "New Package" },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))
#define NSEVERITIES (sizeof(severity_order) / sizeof(severity_order[0]))

/* Counts behind both the text and the JSON summary, taken in one pass. */
struct summary {
    size_t kind[NKINDS], other;
    size_t severity[NSEVERITIES]; /* security advisories only */
};

static struct summary count_advisories(const lapis_advisory *advs, size_t n)
{
    struct summary sum = { 0 };
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < NKINDS && !is_type(&advs[i], kinds[k].type))
            k++;
        if (k == NKINDS) {
            sum.other++;
            continue;
        }
        sum.kind[k]++;
        for (size_t v = 0; k == 0 && advs[i].severity && v < NSEVERITIES; v++)
            sum.severity[v] += strcasecmp(advs[i].severity, severity_order[v]) == 0;
    }
    return sum;
}

static void print_summary(const lapis_advisory *advs, size_t n, enum lapis_advisory_scope scope)
{
    struct summary sum = count_advisories(advs, n);
    if (n == 0)
        return;
    printf("Updates Information Summary: %s\n", scope_name(scope));
    for (size_t k = 0; k < NKINDS; k++) {
        if (!sum.kind[k])
            continue;
        printf("    %zu %s notice(s)\n", sum.kind[k], kinds[k].label);
        if (k != 0)
            continue;
        size_t known = 0;
        for (size_t v = 0; v < NSEVERITIES; v++) {
            if (sum.severity[v])
                printf("        %zu %s Security notice(s)\n", sum.severity[v], severity_order[v]);
            known += sum.severity[v];
        }
        if (sum.kind[0] > known)
            printf("        %zu Unknown Security notice(s)\n", sum.kind[0] - known);
    }
    if (sum.other)
        printf("    %zu other notice(s)\n", sum.other);
}

static cJSON *json_summary(const lapis_advisory *advs, size_t n, enum lapis_advisory_scope scope)
{
    struct summary sum = count_advisories(advs, n);
    cJSON *doc = cJSON_CreateObject();
    cJSON *js = cJSON_AddObjectToObject(doc, "summary");
    cJSON_AddStringToObject(doc, "scope", scope_name(scope));
    for (size_t k = 0; k < NKINDS; k++)
        cJSON_AddNumberToObject(js, kinds[k].type, (double)sum.kind[k]);
    cJSON *sev = cJSON_AddObjectToObject(js, "severity");
    for (size_t v = 0; v < NSEVERITIES; v++)
        cJSON_AddNumberToObject(sev, severity_order[v], (double)sum.severity[v]);
    return doc;
}

static void type_label(const lapis_advisory *a, char *buf, size_t len)
{
    if (is_type(a, "security"))
        snprintf(buf, len, "%s/Sec.", a->severity && *a->severity ? a->severity : "Unknown");
    else
        snprintf(buf, len, "%s", a->type ? a->type : "unknown");
}

static void print_list(const lapis_advisory *advs, size_t n, enum lapis_advisory_scope scope)
{
    lapis_table *t = lapis_table_new(scope == LAPIS_ADV_ALL ? 4 : 3);
    for (size_t i = 0; i < n; i++) {
        char label[64];
        type_label(&advs[i], label, sizeof(label));
        for (size_t j = 0; j < advs[i].npkgs; j++) {
            const lapis_advisory_pkg *p = &advs[i].pkgs[j];
            if (!lapis_advisory_state_in_scope(p->state, scope))
                continue;
            char nevra[512];
            snprintf(nevra, sizeof(nevra), "%s-%s.%s", p->name, p->evr, p->arch);
            const char *mark = p->state == LAPIS_ADVPKG_INSTALLED ? "i" : "";
            if (scope == LAPIS_ADV_ALL)
                lapis_table_add(t, (const char *[]){ mark, advs[i].id, label, nevra });
            else
                lapis_table_add(t, (const char *[]){ advs[i].id, label, nevra });
        }
    }
    lapis_table_print(t, stdout);
    lapis_table_free(t);
}

static void info_field(const char *label, const char *value)
{
    char *clean = lapis_sanitize(value ? value : "");
    printf("%11s: %s\n", label, clean);
    free(clean);
}

static void print_info(const lapis_advisory *advs, size_t n)
{
    static const char rule[] = "===============================================================================";
    for (size_t i = 0; i < n; i++) {
        const lapis_advisory *a = &advs[i];
        char issued[32];
        lapis_format_utc(a->issued, issued);
        char *title = lapis_sanitize(a->title ? a->title : a->id);
        printf("%s%s\n  %s\n%s\n", i ? "\n" : "", rule, title, rule);
        free(title);
        info_field("Update ID", a->id);
        info_field("Type", a->type);
        info_field("Updated", issued);
        for (int kind = 0; kind < 2; kind++) {
            bool first = true;
            for (size_t r = 0; r < a->nrefs; r++) {
                const lapis_advisory_ref *ref = &a->refs[r];
                if (!ref->type || strcmp(ref->type, kind ? "bugzilla" : "cve") != 0)
                    continue;
                char text[512];
                if (kind && ref->title)
                    snprintf(text, sizeof(text), "%s - %s", ref->id ? ref->id : "", ref->title);
                else
                    snprintf(text, sizeof(text), "%s", ref->id ? ref->id : "");
                info_field(first ? (kind ? "Bugs" : "CVEs") : "", text);
                first = false;
            }
        }
        /* The description may span lines: each one through the sanitizer. */
        char *desc = lapis_sanitize_text(a->description ? a->description : "");
        for (char *line = strtok(desc, "\n"), *lab = "Description"; line;
             line = strtok(NULL, "\n"), lab = "")
            info_field(lab, line);
        free(desc);
        if (a->severity)
            info_field("Severity", a->severity);
        if (a->reboot_suggested)
            info_field("Reboot", "suggested");
        for (size_t j = 0; j < a->npkgs; j++) {
            char nevra[512];
            snprintf(nevra, sizeof(nevra), "%s-%s.%s%s", a->pkgs[j].name, a->pkgs[j].evr,
                     a->pkgs[j].arch,
                     a->pkgs[j].state == LAPIS_ADVPKG_INSTALLED ? " (installed)" : "");
            info_field(j ? "" : "Packages", nevra);
        }
        info_field("Repository", a->repo);
    }
}

/* ---- advisory: dnf5's layouts ------------------------------------------------- */

/* dnf5's key/value table: "Key : value", children indented two spaces, the
 * keys padded to the widest; a value wraps on a terminal under itself. */
struct kv_row {
    int depth;
    const char *key;
    char *value;
};

struct kv {
    struct kv_row *rows;
    size_t n;
};

static void kv_add(struct kv *t, int depth, const char *key, const char *value)
{
    t->rows = realloc(t->rows, (t->n + 1) * sizeof(*t->rows));
    t->rows[t->n++] = (struct kv_row){ depth, key, strdup(value ? value : "") };
}

static void kv_add_count(struct kv *t, int depth, const char *key, size_t n)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%zu", n);
    kv_add(t, depth, key, buf);
}

/* A value of several lines: the key on the first, none on the rest. */
static void kv_add_lines(struct kv *t, const char *key, const char *text)
{
    char *copy = strdup(text ? text : ""), *save = NULL;
    bool first = true;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        kv_add(t, 0, first ? key : "", line);
        first = false;
    }
    if (first)
        kv_add(t, 0, key, "");
    free(copy);
}

static void kv_print(struct cli *c, struct kv *t)
{
    int w = 0;
    for (size_t i = 0; i < t->n; i++) {
        int kw = 2 * t->rows[i].depth + (int)strlen(t->rows[i].key);
        w = kw > w ? kw : w;
    }
    for (size_t i = 0; i < t->n; i++) {
        char prefix[160], indent[160];
        snprintf(prefix, sizeof(prefix), "%*s%-*s : ", 2 * t->rows[i].depth, "",
                 w - 2 * t->rows[i].depth, t->rows[i].key);
        snprintf(indent, sizeof(indent), "%*s : ", w, "");
        lapis_term_print_wrapped(stdout, prefix, indent, t->rows[i].value, c->width);
        free(t->rows[i].value);
    }
    free(t->rows);
    *t = (struct kv){ 0 };
}

static const char *scope_title(enum lapis_advisory_scope s)
{
    return s == LAPIS_ADV_INSTALLED ? "Installed" : s == LAPIS_ADV_ALL ? "All" : "Available";
}

/* dnf5's summary: security by severity, then the other types. */
static void print_summary5(struct cli *c, const lapis_advisory *advs, size_t n,
                           enum lapis_advisory_scope scope)
{
    struct summary sum = count_advisories(advs, n);
    struct kv t = { 0 };
    size_t known = 0;

    printf("%s advisory information summary:\n", scope_title(scope));
    kv_add_count(&t, 0, "Security", sum.kind[0]);
    for (size_t v = 0; v < NSEVERITIES; v++) {
        kv_add_count(&t, 1, severity_order[v], sum.severity[v]);
        known += sum.severity[v];
    }
    kv_add_count(&t, 1, "Other", sum.kind[0] - known);
    kv_add_count(&t, 0, "Bugfix", sum.kind[1]);
    kv_add_count(&t, 0, "Enhancement", sum.kind[2]);
    kv_add_count(&t, 0, "Other", sum.kind[3] + sum.other);
    kv_print(c, &t);
}

static void format_issued(long long t, char buf[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm) || !strftime(buf, 32, "%F %T", &tm))
        snprintf(buf, 32, "%lld", t);
}

static void list5_row(struct cli *c, lapis_table *t, const char *first, const lapis_advisory *a,
                      const lapis_advisory_pkg *p)
{
    char nevra[512], issued[32];
    snprintf(nevra, sizeof(nevra), "%s-%s.%s", p->name, p->evr, p->arch);
    format_issued(a->issued, issued);
    lapis_table_add(t, (const char *[]){ first, a->type ? a->type : "",
                                         a->severity ? a->severity : "", nevra, issued });
    /* dnf5 shows the installed packages of --all/--installed in green. */
    if (c->color && p->state == LAPIS_ADVPKG_INSTALLED)
        lapis_table_color_cell(t, 3, LAPIS_SGR_GREEN);
}

/* One row per advisory and package (dnf5 sorts by the first column); with
 * --with-cve or --with-bz, one per reference of that type, named by its id. */
static void print_list5(struct cli *c, const lapis_advisory *advs, size_t n,
                        enum lapis_advisory_scope scope)
{
    const char *ref_type = c->with_cve ? "cve" : c->with_bz ? "bugzilla" : NULL;
    lapis_table *t = lapis_table_new(5);

    lapis_table_align_right(t, 3);
    lapis_table_align_right(t, 4);
    /* dnf5's table fits the terminal: Type and Severity are cut (TRUNC, share 0.5) */
    lapis_table_set_width(t, c->width);
    lapis_table_cut_column_share(t, 1, 0.5);
    lapis_table_cut_column_share(t, 2, 0.5);
    lapis_table_set_color(t, c->color);
    lapis_table_add(t, (const char *[]){ c->with_cve ? "CVE" : c->with_bz ? "Bugzilla" : "Name",
                                         "Type", "Severity", "Package", "Issued" });
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < advs[i].npkgs; j++) {
            if (!lapis_advisory_state_in_scope(advs[i].pkgs[j].state, scope))
                continue;
            if (!ref_type) {
                list5_row(c, t, advs[i].id, &advs[i], &advs[i].pkgs[j]);
                continue;
            }
            for (size_t r = 0; r < advs[i].nrefs; r++)
                if (advs[i].refs[r].type && strcmp(advs[i].refs[r].type, ref_type) == 0)
                    list5_row(c, t, advs[i].refs[r].id ? advs[i].refs[r].id : "", &advs[i],
                              &advs[i].pkgs[j]);
        }
    lapis_table_sort(t, 0, 1);
    if (lapis_table_rows(t) > 1)
        lapis_table_print(t, stdout);
    lapis_table_free(t);
}

static void info5_refs(struct kv *t, const lapis_advisory *a)
{
    for (size_t r = 0; r < a->nrefs; r++) {
        const lapis_advisory_ref *ref = &a->refs[r];
        kv_add(t, 0, "Reference", "");
        kv_add(t, 1, "Title", ref->title);
        kv_add(t, 1, "Id", ref->id);
        kv_add(t, 1, "Type", ref->type);
        kv_add(t, 1, "Url", ref->href);
    }
}

static void info5_packages(struct kv *t, const lapis_advisory *a)
{
    if (a->npkgs == 0)
        return;
    kv_add(t, 0, "Collection", "");
    for (size_t j = 0; j < a->npkgs; j++) {
        char nevra[512];
        snprintf(nevra, sizeof(nevra), "%s-%s.%s", a->pkgs[j].name, a->pkgs[j].evr,
                 a->pkgs[j].arch);
        kv_add(t, 1, j ? "" : "Packages", nevra);
    }
}

static void print_info5(struct cli *c, const lapis_advisory *advs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const lapis_advisory *a = &advs[i];
        struct kv t = { 0 };
        char issued[32];

        format_issued(a->issued, issued);
        kv_add(&t, 0, "Name", a->id);
        kv_add(&t, 0, "Title", a->title);
        kv_add(&t, 0, "Severity", a->severity);
        kv_add(&t, 0, "Type", a->type);
        kv_add(&t, 0, "Status", a->status);
        kv_add(&t, 0, "Vendor", a->vendor);
        kv_add(&t, 0, "Issued", issued);
        kv_add_lines(&t, "Description", a->description);
        kv_add(&t, 0, "Message", a->message);
        kv_add(&t, 0, "Rights", a->rights);
        info5_refs(&t, a);
        info5_packages(&t, a);
        kv_print(c, &t);
        printf("\n");
    }
}

static bool names_pkg(const lapis_advisory *a, char *const *globs)
{
    for (size_t j = 0; j < a->npkgs; j++)
        for (size_t g = 0; globs[g]; g++)
            if (fnmatch(globs[g], a->pkgs[j].name, FNM_CASEFOLD) == 0)
                return true;
    return false;
}

/* dnf5's --contains-pkgs: the advisories naming one of these packages go
 * first (the rest stay in the array, to be freed with it); returns how many. */
static size_t keep_containing(lapis_advisory *advs, size_t n, char *const *globs)
{
    size_t kept = 0;
    for (size_t i = 0; globs && i < n; i++)
        if (names_pkg(&advs[i], globs)) {
            lapis_advisory t = advs[kept];
            advs[kept++] = advs[i];
            advs[i] = t;
        }
    return globs ? kept : n;
}

int cmd_updateinfo(struct cli *c)
{
    enum ui_mode mode = c->q_info ? UI_INFO : c->q_files ? UI_LIST : UI_SUMMARY;
    enum lapis_advisory_scope scope = c->all ? LAPIS_ADV_ALL
                                      : c->q_installed ? LAPIS_ADV_INSTALLED : LAPIS_ADV_AVAILABLE;
    char **specs = c->args;
    /* "advisory" is dnf5's command and prints dnf5's tables; "updateinfo" keeps dnf 4's. */
    bool dnf5 = strcmp(c->cmd_name, "advisory") == 0;
    lapis_advisory *advs = NULL;
    size_t n = 0;
    int r;

    if (c->nargs > 0) {
        static const char *const modes[] = { "summary", "list", "info" };
        for (int m = 0; m < 3; m++)
            if (strcmp(c->args[0], modes[m]) == 0) {
                mode = (enum ui_mode)m;
                specs++;
            }
    }
    if (c->summary)
        mode = UI_SUMMARY;
    if ((r = cli_load(c, 0)) < 0)
        return cli_fail(c, r);
    lapis_advisory_filter f = cli_advisory_filter(c);
    if ((r = lapis_advisory_query(c->ctx, &f, scope, specs, &advs, &n)) < 0)
        return cli_fail(c, r);
    size_t total = n;
    n = keep_containing(advs, n, c->contains_pkgs);
    if (c->json) {
        cJSON *doc;
        if (mode == UI_SUMMARY) {
            doc = json_summary(advs, n, scope);
        } else {
            doc = cJSON_CreateObject();
            cJSON_AddStringToObject(doc, "scope", scope_name(scope));
            cJSON *a = cJSON_AddArrayToObject(doc, "advisories");
            for (size_t i = 0; i < n; i++)
                cJSON_AddItemToArray(a, lapis_json_advisory(&advs[i]));
        }
        cli_json_out(c, doc);
    } else if (dnf5 && mode == UI_SUMMARY) {
        print_summary5(c, advs, n, scope);
    } else if (dnf5 && mode == UI_LIST) {
        print_list5(c, advs, n, scope);
    } else if (dnf5) {
        print_info5(c, advs, n);
    } else if (mode == UI_SUMMARY) {
        print_summary(advs, n, scope);
    } else if (mode == UI_LIST) {
        print_list(advs, n, scope);
    } else {
        print_info(advs, n);
    }
    lapis_advisories_free(advs, total);
    return 0;
}

/* ---- upgrade-minimal ------------------------------------------------------ */

static int build_upgrade_minimal(struct cli *c, lapis_goal *goal)
{
    return cli_build_advisory_upgrade(c, goal, true);
}

int cmd_upgrade_minimal(struct cli *c)
{
    return cli_run_goal(c, 0, build_upgrade_minimal);
}

/* ---- needs-restarting ------------------------------------------------------ */

static int reboot_hint(struct cli *c)
{
    char **pkgs = NULL;
    long long btime = 0;
    int r = lapis_reboot_needed(c->ctx, &pkgs, &btime);
    if (r < 0)
        return cli_fail(c, r);
    bool needed = pkgs[0] != NULL;
    if (c->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddBoolToObject(doc, "reboot_required", needed);
        cJSON_AddItemToObject(doc, "packages", lapis_json_strv(pkgs));
        cJSON_AddNumberToObject(doc, "boot_time", (double)btime);
        cli_json_out(c, doc);
    } else if (needed) {
        printf("Core libraries or services have been updated since boot-up:\n");
        for (size_t i = 0; pkgs[i]; i++) {
            char *clean = lapis_sanitize(pkgs[i]);
            printf("  * %s\n", clean);
            free(clean);
        }
        printf("\nReboot is required to fully utilize these updates.\n");
    } else {
        printf("No core libraries or services have been updated since boot-up.\n"
               "Reboot should not be necessary.\n");
    }
    lapis_strv_free(pkgs);
    return needed ? 1 : 0;
}

int cmd_needs_restarting(struct cli *c)
{
    lapis_stale_process *procs = NULL;
    size_t n = 0;
    int r;

    if (c->nargs > 0)
        return cli_error(c, LAPIS_E_USAGE, "needs-restarting takes no arguments (-r: reboot hint)");
    if ((r = cli_load(c, 0)) < 0)
        return cli_fail(c, r);
    if (c->reboothint)
        return reboot_hint(c);
    if ((r = lapis_stale_processes(c->ctx, &procs, &n)) < 0)
        return cli_fail(c, r);
    if (c->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON *a = cJSON_AddArrayToObject(doc, "processes");
        for (size_t i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "pid", procs[i].pid);
            cJSON_AddStringToObject(o, "cmdline", procs[i].cmdline);
            cJSON_AddItemToObject(o, "files", lapis_json_strv(procs[i].files));
            cJSON_AddItemToArray(a, o);
        }
        cli_json_out(c, doc);
    } else {
        for (size_t i = 0; i < n; i++) {
            char *clean = lapis_sanitize(procs[i].cmdline);
            printf("%d : %s\n", procs[i].pid, clean);
            free(clean);
        }
    }
    lapis_stale_processes_free(procs, n);
    return 0;
}

/* ---- automatic ------------------------------------------------------------- */

int cmd_automatic(struct cli *c)
{
    lapis_automatic_conf conf;
    lapis_automatic_report rep = { 0 };
    const char *path = c->config_arg ? c->config_arg : DEFAULT_AUTOMATIC_CONF;
    int r, e, rc = 1;

    if (c->nargs > 0)
        return cli_error(c, LAPIS_E_USAGE, "automatic takes no arguments; its settings are in "
                         "%s (-c FILE)", path);
    lapis_automatic_conf_defaults(&conf);
    if ((r = lapis_automatic_conf_read(c->ctx, path, c->config_arg != NULL, &conf)) < 0) {
        rc = cli_fail(c, r);
        goto out;
    }
    /* [base] overrides lapis.conf's [main], as dnf-automatic's does dnf.conf's. */
    for (size_t i = 0; conf.base_opts[i]; i++)
        if ((r = lapis_ctx_setopt(c->ctx, conf.base_opts[i])) < 0) {
            rc = cli_error(c, LAPIS_E_CONFIG, "%s: [base] %s: %s", path, conf.base_opts[i],
                           lapis_ctx_error(c->ctx));
            goto out;
        }
    if ((r = lapis_ctx_setup(c->ctx)) < 0) {
        rc = cli_fail(c, r);
        goto out;
    }
    if (c->timer)
        lapis_automatic_random_sleep(c->ctx, conf.random_sleep);
    if (cli_interrupted()) { /* e.g. the timer's unit stopped during random_sleep */
        rc = cli_interrupt_note(c, "interrupted: nothing was changed (no run was started)");
        goto out;
    }
    r = lapis_automatic_run(c->ctx, &conf, &rep);
    /* Emit the report whatever happened: a failed run is news too. */
    e = lapis_automatic_emit(c->ctx, &conf, &rep, c->json || c->quiet ? NULL : stdout);
    if (c->json)
        cli_json_out(c, lapis_automatic_report_json(&conf, &rep));
    rc = r < 0 || e < 0 ? 1 : 0;
    if (r == -LAPIS_E_INTERRUPTED) {
        rc = cli_interrupt_note(c, rep.error ? rep.error : "interrupted");
    } else if (r < 0 || e < 0) {
        char *clean = lapis_sanitize(r < 0 ? (rep.error ? rep.error : "automatic run failed")
                                           : lapis_ctx_error(c->ctx));
        fprintf(stderr, "lapis: error: %s\n", clean);
        free(clean);
    }
out:
    lapis_automatic_report_clear(&rep);
    lapis_automatic_conf_clear(&conf);
    return rc;
}
