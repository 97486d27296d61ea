/*
 * repoclosure (dnf5's plugin command): list the available packages whose
 * requirements no available package provides, in dnf5's layout; exit 1
 * when there are any.
 */
#include "cli.h"

static int check_specs(struct cli *c)
{
    for (int i = 0; i < c->nargs; i++) {
        char *globs[] = { c->args[i], NULL };
        lapis_pkglist l = { 0 };
        int r = lapis_query_all_versions(c->ctx, globs, false, true, &l);
        size_t found = l.count;
        lapis_pkglist_free(&l);
        if (r < 0)
            return cli_fail(c, r);
        if (!found)
            return cli_error(c, LAPIS_E_NOTFOUND, "No match for argument \"%s\"; failed to "
                             "resolve package specifications", c->args[i]);
    }
    return 0;
}

static cJSON *json_items(struct cli *c, const lapis_closure_item *it, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = lapis_json_pkg(c->ctx, it[i].pkg);
        cJSON_AddItemToObject(o, "unresolved", lapis_json_strv(it[i].unresolved));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static void print_items(struct cli *c, const lapis_closure_item *it, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *nevra = lapis_sanitize(lapis_pkg_nevra(c->ctx, it[i].pkg));
        char *repo = lapis_sanitize(lapis_pkg_repoid(c->ctx, it[i].pkg));
        size_t k = 0;
        while (it[i].unresolved[k])
            k++;
        printf("package: %s from %s\n  unresolved deps (%zu):\n", nevra, repo, k);
        for (k = 0; it[i].unresolved[k]; k++) {
            char *dep = lapis_sanitize(it[i].unresolved[k]);
            printf("    %s\n", dep);
            free(dep);
        }
        free(nevra);
        free(repo);
    }
}

int cmd_repoclosure(struct cli *c)
{
    lapis_closure_opts o = { .check_repos = c->check_repos, .arches = c->arches,
                             .specs = c->nargs ? c->args : NULL, .newest = c->newest };
    lapis_closure_item *it = NULL;
    size_t n = 0, ndeps = 0;
    int r;

    if ((r = cli_load(c, LAPIS_LOAD_NO_SYSTEM | LAPIS_LOAD_FILELISTS)) < 0)
        return cli_fail(c, r);
    if ((r = check_specs(c)) != 0)
        return r;
    if ((r = lapis_repoclosure(c->ctx, &o, &it, &n)) < 0)
        return cli_fail(c, r);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; it[i].unresolved[k]; k++)
            ndeps++;
    if (c->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "unresolved", json_items(c, it, n));
        cli_json_out(c, doc);
    } else {
        print_items(c, it, n);
    }
    lapis_closure_free(it, n);
    if (n && !c->json)
        fprintf(stderr, "lapis: error: Repoclosure ended with unresolved dependencies (%zu) "
                "across %zu packages.\n", ndeps, n);
    return n ? 1 : 0;
}
