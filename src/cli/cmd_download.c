/*
 * download: dnf5's command. The newest available package per name.arch of
 * each spec (with --resolve, what installing it would bring in as well) is
 * fetched into --destdir (default: the current directory) and verified as
 * an install verifies it; --url prints where each one is instead.
 */
#include <string.h>

#include "cli.h"

static bool arch_wanted(const struct cli *c, const char *arch)
{
    if (!c->arches || !c->arches[0])
        return true;
    for (size_t i = 0; c->arches[i]; i++)
        if (strcmp(c->arches[i], arch) == 0)
            return true;
    return false;
}

static void goal_freep(lapis_goal **g)
{
    lapis_goal_free(*g);
}

/* --resolve: what installing p would download (not what is installed already,
 * unless --alldeps, which loads no rpmdb). */
static int add_resolved(struct cli *c, lapis_pkg p, lapis_pkglist *out)
{
    __attribute__((cleanup(goal_freep))) lapis_goal *g = NULL;
    const lapis_trans_item *items;
    size_t n;
    int r;

    if ((r = lapis_goal_new(c->ctx, &g)) < 0 || (r = lapis_goal_install_pkg(g, p)) < 0)
        return r;
    if ((r = lapis_goal_resolve(g)) < 0) {
        for (char *const *pr = lapis_goal_problems(g); pr && *pr; pr++) {
            char *clean = lapis_sanitize(*pr); /* package text */
            fprintf(stderr, "  %s\n", clean);
            free(clean);
        }
        return r;
    }
    items = lapis_goal_items(g, &n);
    for (size_t i = 0; i < n; i++)
        if (items[i].action < LAPIS_ACT_REMOVE && !lapis_pkg_installed(c->ctx, items[i].pkg))
            cli_pkglist_add(out, items[i].pkg);
    return 0;
}

static int add_spec(struct cli *c, const char *spec, lapis_pkglist *out)
{
    lapis_pkglist l = { 0 };
    size_t found = 0;
    int r = lapis_query_latest(c->ctx, spec, &l);

    for (size_t i = 0; r >= 0 && i < l.count; i++) {
        if (!arch_wanted(c, lapis_pkg_arch(c->ctx, l.pkgs[i])))
            continue;
        found++;
        cli_pkglist_add(out, l.pkgs[i]);
        if (c->resolve)
            r = add_resolved(c, l.pkgs[i], out);
    }
    lapis_pkglist_free(&l);
    if (r < 0)
        return cli_fail(c, r);
    /* dnf5's words; with skip_unavailable the spec is dropped, silently as dnf5 does */
    if (!found && !lapis_ctx_skip_unavailable(c->ctx))
        return cli_error(c, LAPIS_E_NOTFOUND,
                         "No package \"%s\" available; You might want to use --skip-unavailable "
                         "option.", spec);
    return 0;
}

static lapis_repo *repo_named(lapis_ctx *ctx, const char *id)
{
    for (size_t i = 0; i < lapis_repo_count(ctx); i++)
        if (strcmp(lapis_repo_id(lapis_repo_at(ctx, i)), id) == 0)
            return lapis_repo_at(ctx, i);
    return NULL;
}

/* The first mirror's URL of a package (what dnf5 --url prints). */
static char *pkg_url(struct cli *c, lapis_pkg p)
{
    lapis_repo *repo = repo_named(c->ctx, lapis_pkg_repoid(c->ctx, p));
    const char *base = repo ? lapis_repo_baseurl(repo) : "";
    size_t n = strcspn(base, "\n");
    char *url = NULL;
    while (n > 0 && base[n - 1] == '/')
        n--;
    if (asprintf(&url, "%.*s/%s", (int)n, base, lapis_pkg_location(c->ctx, p)) < 0)
        return NULL;
    return url;
}

static int print_urls(struct cli *c, const lapis_pkglist *l)
{
    cJSON *a = c->json ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; i < l->count; i++) {
        char *url = pkg_url(c, l->pkgs[i]);
        if (a)
            cJSON_AddItemToArray(a, cJSON_CreateString(url ? url : ""));
        else
            cli_puts(url ? url : "");
        free(url);
    }
    if (a) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "urls", a);
        cli_json_out(c, doc);
    }
    return 0;
}

static int fetch(struct cli *c, const lapis_pkglist *l)
{
    const char *dest = cli_destdir(c) ? cli_destdir(c) : "."; /* dnf5: here by default */
    char **paths = NULL;
    int r;

    if (!c->json && !c->quiet)
        printf("Downloading Packages:\n");
    if ((r = lapis_download_pkgs(c->ctx, l, dest, &paths)) < 0)
        return cli_fail(c, r);
    if (c->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "downloaded", lapis_json_strv(paths));
        cli_json_out(c, doc);
    } else if (!c->quiet) {
        for (size_t i = 0; paths[i]; i++)
            printf("[%zu/%zu] %s\n", i + 1, l->count, lapis_pkg_nevra(c->ctx, l->pkgs[i]));
    }
    lapis_strv_free(paths);
    return 0;
}

int cmd_download(struct cli *c)
{
    lapis_pkglist l = { 0 };
    int r = 0;

    if (c->nargs == 0)
        return cli_error(c, LAPIS_E_USAGE, "download needs at least one package");
    if (c->alldeps && !c->resolve)
        return cli_error(c, LAPIS_E_USAGE, "Option \"--alldeps\" should be used with \"--resolve\"");
    if ((r = cli_load(c, c->resolve && !c->alldeps ? 0 : LAPIS_LOAD_NO_SYSTEM)) < 0)
        return cli_fail(c, r);
    for (int i = 0; r == 0 && i < c->nargs; i++)
        r = add_spec(c, c->args[i], &l);
    if (r == 0)
        r = c->url ? print_urls(c, &l) : fetch(c, &l);
    lapis_pkglist_free(&l);
    return r;
}
