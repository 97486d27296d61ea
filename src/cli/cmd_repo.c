/*
 * Repository commands: repolist, makecache, clean.
 */
#include <string.h>

#include "cli.h"

int cmd_repolist(struct cli *c)
{
    const char *which = c->nargs > 0 ? c->args[0] : "enabled";
    bool want_all = strcmp(which, "all") == 0, want_disabled = strcmp(which, "disabled") == 0;
    lapis_table *t;
    cJSON *arr = NULL;

    if (!want_all && !want_disabled && strcmp(which, "enabled") != 0) {
        return cli_error(c, LAPIS_E_USAGE, "repolist takes all, enabled or disabled, not '%s'", which);
    }
    t = lapis_table_new(want_all ? 3 : 2);
    if (c->json)
        arr = cJSON_CreateArray();
    else
        lapis_table_add(t, (const char *[]){ "repo id", "repo name", "status" });
    for (size_t i = 0; i < lapis_repo_count(c->ctx); i++) {
        lapis_repo *r = lapis_repo_at(c->ctx, i);
        bool en = lapis_repo_enabled(r);
        if ((want_disabled && en) || (!want_all && !want_disabled && !en))
            continue;
        if (arr) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", lapis_repo_id(r));
            cJSON_AddStringToObject(o, "name", lapis_repo_name(r));
            cJSON_AddBoolToObject(o, "enabled", en);
            cJSON_AddNumberToObject(o, "priority", lapis_repo_priority(r));
            const char *b = lapis_repo_baseurl(r);
            cJSON *ua = cJSON_AddArrayToObject(o, "baseurl");
            for (const char *p = b; *p;) {
                size_t n = strcspn(p, "\n");
                char *u = strndup(p, n);
                cJSON_AddItemToArray(ua, cJSON_CreateString(u));
                free(u);
                p += n + (p[n] ? 1 : 0);
            }
            cJSON_AddItemToArray(arr, o);
        } else {
            lapis_table_add(t, (const char *[]){ lapis_repo_id(r), lapis_repo_name(r),
                                                 en ? "enabled" : "disabled" });
        }
    }
    if (arr) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "repos", arr);
        cli_json_out(c, doc);
    } else if (lapis_table_rows(t) > 1) {
        lapis_table_print(t, stdout);
    } else if (!c->quiet) {
        fprintf(stderr, "No repositories available\n");
    }
    lapis_table_free(t);
    return 0;
}

int cmd_makecache(struct cli *c)
{
    int r = cli_load(c, LAPIS_LOAD_NO_SYSTEM | LAPIS_LOAD_PIN_KEYS);
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
    const char *what = c->nargs > 0 ? c->args[0] : "all";
    unsigned flags;
    int n;

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
