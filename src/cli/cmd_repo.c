/*
 * Repository commands: repolist, repo list|info (dnf5), makecache, clean.
 */
#include <fnmatch.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* Which repos: dnf's words (repolist all|enabled|disabled) or dnf5's options
 * (--all, --enabled, --disabled); the remaining arguments are id or name globs. */
enum repo_which { REPO_ENABLED, REPO_DISABLED, REPO_ALL };

static int repo_which(struct cli *c, char ***specs, int *nspecs, enum repo_which *ret)
{
    static const char *const words[] = { "enabled", "disabled", "all" };
    *ret = c->all ? REPO_ALL : c->repo_disabled ? REPO_DISABLED : REPO_ENABLED;
    if ((int)c->all + (int)c->repo_disabled + (int)c->repo_enabled > 1)
        return cli_error(c, LAPIS_E_USAGE, "--all, --enabled and --disabled exclude each other");
    for (int w = 0; *nspecs > 0 && w < 3; w++)
        if (strcmp((*specs)[0], words[w]) == 0) {
            *ret = (enum repo_which)w;
            (*specs)++;
            (*nspecs)--;
            break;
        }
    return 0;
}

static bool repo_selected(lapis_repo *r, enum repo_which which, char **specs, int nspecs)
{
    bool en = lapis_repo_enabled(r);
    if ((which == REPO_ENABLED && !en) || (which == REPO_DISABLED && en))
        return false;
    for (int i = 0; i < nspecs; i++)
        if (fnmatch(specs[i], lapis_repo_id(r), FNM_CASEFOLD) == 0 ||
            fnmatch(specs[i], lapis_repo_name(r), FNM_CASEFOLD) == 0)
            return true;
    return nspecs == 0;
}

static cJSON *json_strings(const char *text)
{
    cJSON *ua = cJSON_CreateArray();
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        char *u = strndup(p, n);
        cJSON_AddItemToArray(ua, cJSON_CreateString(u));
        free(u);
        p += n + (p[n] ? 1 : 0);
    }
    return ua;
}

static cJSON *json_repo(lapis_repo *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", lapis_repo_id(r));
    cJSON_AddStringToObject(o, "name", lapis_repo_name(r));
    cJSON_AddBoolToObject(o, "enabled", lapis_repo_enabled(r));
    cJSON_AddNumberToObject(o, "priority", lapis_repo_priority(r));
    cJSON_AddItemToObject(o, "baseurl", json_strings(lapis_repo_baseurl(r)));
    return o;
}

static void print_repo_list(struct cli *c, lapis_repo **repos, size_t n, bool with_status)
{
    lapis_table *t = lapis_table_new(with_status ? 3 : 2);
    /* dnf5's table fits the terminal: the name is cut (libsmartcols' TRUNC, share 0.5) */
    lapis_table_set_width(t, c->width);
    lapis_table_cut_column_share(t, 1, 0.5);
    lapis_table_add(t, (const char *[]){ "repo id", "repo name", "status" });
    for (size_t i = 0; i < n; i++)
        lapis_table_add(t, (const char *[]){ lapis_repo_id(repos[i]), lapis_repo_name(repos[i]),
                                             lapis_repo_enabled(repos[i]) ? "enabled"
                                                                          : "disabled" });
    if (n > 0)
        lapis_table_print(t, stdout);
    else if (!c->quiet)
        fprintf(stderr, "No repositories available\n");
    lapis_table_free(t);
}

/* ---- repo info (dnf5's key : value layout) ------------------------------- */

static void kv_lines(const struct cli *c, const char *key, const char *text)
{
    bool first = true;
    for (const char *p = text; *p; first = false) {
        size_t n = strcspn(p, "\n");
        char *u = strndup(p, n);
        cli_kv(c, first ? key : "", u);
        free(u);
        p += n + (p[n] ? 1 : 0);
    }
}

static const char *format_time(long long t, char buf[64])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !localtime_r(&tt, &tm) || !strftime(buf, 64, "%Y-%m-%d %H:%M:%S", &tm))
        return "unknown";
    return buf;
}

static void print_repo_info(const struct cli *c, lapis_repo *r)
{
    lapis_repo_settings s;
    char num[64], tbuf[64];
    lapis_repo_get_settings(r, &s);
    cli_kv(c, "Repo ID", lapis_repo_id(r));
    cli_kv(c, "Name", lapis_repo_name(r));
    cli_kv(c, "Status", lapis_repo_enabled(r) ? "enabled" : "disabled");
    snprintf(num, sizeof(num), "%d", lapis_repo_priority(r));
    cli_kv(c, "Priority", num);
    snprintf(num, sizeof(num), "%d", s.cost);
    cli_kv(c, "Cost", num);
    cli_kv(c, "Type", "available");
    cli_kv_list(c, "Exclude packages", s.excludepkgs);
    cli_kv_list(c, "Include packages", s.includepkgs);
    char expire[200];
    if (s.metadata_expire < 0)
        snprintf(num, sizeof(num), "Never");
    else if (s.metadata_expire == 0)
        snprintf(num, sizeof(num), "Instant");
    else
        snprintf(num, sizeof(num), "%lld seconds", s.metadata_expire);
    snprintf(expire, sizeof(expire), "%s (last: %s)", num, format_time(lapis_repo_timestamp(r), tbuf));
    cli_kv(c, "Metadata expire", expire);
    cli_kv(c, "Skip if unavailable", s.skip_if_unavailable ? "true" : "false");
    if (s.config_file)
        cli_kv(c, "Config file", s.config_file);
    cli_kv(c, "URLs", "");
    kv_lines(c, "  Base URL", lapis_repo_baseurl(r));
    cli_kv(c, "OpenPGP", "");
    cli_kv_list(c, "  Keys", s.gpgkeys);
    cli_kv(c, "  Verify repodata", s.repo_gpgcheck ? "true" : "false");
    cli_kv(c, "  Verify packages", s.gpgcheck ? "true" : "false");
    if (!lapis_repo_enabled(r))
        return;
    cli_kv(c, "Repodata info", "");
    snprintf(num, sizeof(num), "%d", lapis_repo_npackages(r));
    cli_kv(c, "  Available packages", num);
    cli_kv(c, "  Total packages", num);
    cli_kv(c, "  Updated", format_time(lapis_repo_timestamp(r), tbuf));
}

static cJSON *json_repo_info(lapis_repo *r)
{
    lapis_repo_settings s;
    cJSON *o = json_repo(r);
    lapis_repo_get_settings(r, &s);
    cJSON_AddNumberToObject(o, "cost", s.cost);
    cJSON_AddNumberToObject(o, "metadata_expire", (double)s.metadata_expire);
    cJSON_AddBoolToObject(o, "skip_if_unavailable", s.skip_if_unavailable);
    cJSON_AddStringToObject(o, "repo_file_path", s.config_file ? s.config_file : "");
    cJSON_AddItemToObject(o, "gpg_key", lapis_json_strv(s.gpgkeys));
    cJSON_AddBoolToObject(o, "repo_gpgcheck", s.repo_gpgcheck);
    cJSON_AddBoolToObject(o, "pkg_gpgcheck", s.gpgcheck);
    if (lapis_repo_enabled(r)) {
        cJSON_AddNumberToObject(o, "pkgs", lapis_repo_npackages(r));
        cJSON_AddNumberToObject(o, "timestamp", (double)lapis_repo_timestamp(r));
    }
    return o;
}

static int cmp_repo_id(const void *a, const void *b)
{
    return strcmp(lapis_repo_id(*(lapis_repo *const *)a), lapis_repo_id(*(lapis_repo *const *)b));
}

static bool repo_spec_matches(lapis_ctx *ctx, const char *spec)
{
    for (size_t i = 0; i < lapis_repo_count(ctx); i++)
        if (repo_selected(lapis_repo_at(ctx, i), REPO_ALL, (char *[]){ (char *)spec }, 1))
            return true;
    return false;
}

/* The selected repos; info loads the enabled ones' metadata (package counts). */
static int repo_show(struct cli *c, bool info, char **specs, int nspecs)
{
    enum repo_which which;
    lapis_repo **sel = calloc(lapis_repo_count(c->ctx) + 1, sizeof(*sel));
    size_t n = 0;
    int r;

    if ((r = repo_which(c, &specs, &nspecs, &which)) != 0) {
        free(sel);
        return r;
    }
    for (int i = 0; i < nspecs; i++)
        if (!repo_spec_matches(c->ctx, specs[i])) {
            free(sel);
            return cli_error(c, LAPIS_E_NOTFOUND, "no repository matches '%s' (repo list --all "
                             "shows them all)", specs[i]);
        }
    for (size_t i = 0; i < lapis_repo_count(c->ctx); i++)
        if (repo_selected(lapis_repo_at(c->ctx, i), which, specs, nspecs))
            sel[n++] = lapis_repo_at(c->ctx, i);
    qsort(sel, n, sizeof(*sel), cmp_repo_id); /* dnf5 sorts by id */
    bool any_enabled = false;
    for (size_t i = 0; i < n; i++)
        any_enabled |= lapis_repo_enabled(sel[i]);
    if (info && any_enabled && (r = cli_load(c, LAPIS_LOAD_NO_SYSTEM)) < 0) {
        free(sel);
        return cli_fail(c, r);
    }
    if (c->json) {
        cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "repos");
        for (size_t i = 0; i < n; i++)
            cJSON_AddItemToArray(arr, info ? json_repo_info(sel[i]) : json_repo(sel[i]));
        cli_json_out(c, doc);
    } else if (info) {
        for (size_t i = 0; i < n; i++) {
            if (i)
                putchar('\n');
            print_repo_info(c, sel[i]);
        }
    } else {
        print_repo_list(c, sel, n, which == REPO_ALL);
    }
    free(sel);
    return 0;
}

int cmd_repolist(struct cli *c)
{
    return repo_show(c, false, c->args, c->nargs);
}

int cmd_repoinfo(struct cli *c)
{
    return repo_show(c, true, c->args, c->nargs);
}

/* dnf5: repo list|info [--all|--enabled|--disabled] [REPO...] */
int cmd_repo(struct cli *c)
{
    const char *sub = c->nargs > 0 ? c->args[0] : "list";
    bool info = strcmp(sub, "info") == 0;
    if (!info && strcmp(sub, "list") != 0)
        return cli_error(c, LAPIS_E_USAGE, "repo takes list or info, not '%s'", sub);
    return repo_show(c, info, c->args + (c->nargs > 0), c->nargs - (c->nargs > 0));
}

int cmd_makecache(struct cli *c)
{
    if (c->nargs > 0) /* dnf5: an unknown positional argument is a usage error */
        return cli_error(c, LAPIS_E_USAGE, "makecache takes no arguments, not '%s'", c->args[0]);
    int r = cli_load(c, LAPIS_LOAD_NO_SYSTEM | LAPIS_LOAD_PIN_KEYS | LAPIS_LOAD_CACHES_ONLY);
    cJSON *arr = c->json ? cJSON_CreateArray() : NULL;

    if (r < 0) {
        cJSON_Delete(arr);
        return cli_fail(c, r);
    }
    for (size_t i = 0; i < lapis_repo_count(c->ctx); i++) {
        lapis_repo *repo = lapis_repo_at(c->ctx, i);
        if (!lapis_repo_enabled(repo))
            continue;
        if (arr) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", lapis_repo_id(repo));
            cJSON_AddBoolToObject(o, "skipped", lapis_repo_skipped(repo));
            cJSON_AddNumberToObject(o, "packages", lapis_repo_npackages(repo));
            cJSON_AddNumberToObject(o, "timestamp", (double)lapis_repo_timestamp(repo));
            cJSON_AddItemToArray(arr, o);
        } else if (!c->quiet && !lapis_repo_skipped(repo)) {
            char *name = lapis_sanitize(lapis_repo_name(repo));
            printf("%-30s %6d packages\n", name, lapis_repo_npackages(repo));
            free(name);
        }
    }
    if (arr) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "repos", arr);
        cli_json_out(c, doc);
    } else if (!c->quiet) {
        printf("Metadata cache created.\n");
    }
    return 0;
}

int cmd_clean(struct cli *c)
{
    const char *what = c->nargs > 0 ? c->args[0] : NULL;
    unsigned flags;
    int n;

    /* dnf5 has no default: a bare "clean" is a usage error, not "all". */
    if (!what)
        return cli_error(c, LAPIS_E_USAGE, "clean needs an argument: all, metadata or packages");
    if (strcmp(what, "all") == 0)
        flags = LAPIS_CLEAN_ALL;
    else if (strcmp(what, "metadata") == 0 || strcmp(what, "dbcache") == 0 ||
             strcmp(what, "expire-cache") == 0)
        flags = LAPIS_CLEAN_METADATA;
    else if (strcmp(what, "packages") == 0)
        flags = LAPIS_CLEAN_PACKAGES;
    else {
        return cli_error(c, LAPIS_E_USAGE, "clean takes all, metadata or packages, not '%s'", what);
    }
    n = lapis_clean(c->ctx, flags);
    if (n < 0)
        return cli_fail(c, n);
    if (c->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddNumberToObject(doc, "removed", n);
        cli_json_out(c, doc);
    } else if (!c->quiet) {
        printf("%d file%s removed\n", n, n == 1 ? "" : "s");
    }
    return 0;
}
