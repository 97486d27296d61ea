/*
 * repoclosure (dnf5's plugin command): which available packages have
 * requirements no available package provides. Follows dnf5: excluded
 * packages neither count nor are checked, rich dependencies are skipped,
 * with best=1 only the newest version per name.arch satisfies a
 * requirement, and --newest checks (and uses) only each repo's newest.
 */
#include <fnmatch.h>
#include <string.h>

#include "pkg/internal.h"
#include <solv/pool.h>
#include <solv/repo.h>
#include <solv/evr.h>

/* Is there a newer usable package of the same name and arch (in the same repo, with per_repo)? */
static bool superseded(lapis_ctx *ctx, Id p, bool per_repo)
{
    Pool *pool = ctx->pool;
    Solvable *s = pool_id2solvable(pool, p);
    Id q, qq;
    FOR_PROVIDES(q, qq, s->name) {
        Solvable *o = pool_id2solvable(pool, q);
        if (q != p && o->name == s->name && o->arch == s->arch && lapis_pkg_is_available(ctx, q, o) &&
            (!per_repo || o->repo == s->repo) && pool_evrcmp(pool, o->evr, s->evr, EVRCMP_COMPARE) > 0)
            return true;
    }
    return false;
}

static bool in_check_set(lapis_ctx *ctx, Solvable *s, const lapis_closure_opts *o)
{
    Pool *pool = ctx->pool;
    bool repo_ok = !o->check_repos || !o->check_repos[0], arch_ok = !o->arches || !o->arches[0];
    for (size_t i = 0; !repo_ok && o->check_repos[i]; i++)
        repo_ok = fnmatch(o->check_repos[i], s->repo->name, 0) == 0;
    for (size_t i = 0; !arch_ok && o->arches[i]; i++)
        arch_ok = strcmp(o->arches[i], pool_id2str(pool, s->arch)) == 0;
    return repo_ok && arch_ok && (!o->specs || !o->specs[0] || lapis_pkg_match_any(pool, s, o->specs));
}

/* A rich dependency ("(a or b)"): dnf5's repoclosure skips them. */
static bool is_rich(Pool *pool, Id dep)
{
    if (!ISRELDEP(dep))
        return false;
    int f = GETRELDEP(pool, dep)->flags;
    return f == REL_AND || f == REL_OR || f == REL_WITH || f == REL_WITHOUT || f == REL_COND ||
           f == REL_UNLESS || f == REL_ELSE;
}

static bool satisfied(lapis_ctx *ctx, Id dep, const Map *avail)
{
    Pool *pool = ctx->pool;
    Id p, pp;
    FOR_PROVIDES(p, pp, dep)
        if (MAPTST(avail, p))
            return true;
    return false;
}

static char **unresolved_of(lapis_ctx *ctx, Solvable *s, const Map *avail)
{
    Pool *pool = ctx->pool;
    char **out = NULL;
    Queue reqs;
    queue_init(&reqs);
    solvable_lookup_deparray(s, SOLVABLE_REQUIRES, &reqs, 0);
    for (int i = 0; i < reqs.count; i++) {
        Id dep = reqs.elements[i];
        if (dep == SOLVABLE_PREREQMARKER || is_rich(pool, dep))
            continue;
        const char *text = pool_dep2str(pool, dep);
        if (!satisfied(ctx, dep, avail) && !strv_contains(out, text))
            strv_push(&out, xstrdup(text));
    }
    queue_free(&reqs);
    return out;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_item(const void *a, const void *b, void *dp)
{
    lapis_ctx *ctx = dp;
    const lapis_closure_item *x = a, *y = b;
    int r = strcmp(lapis_pkg_name(ctx, x->pkg), lapis_pkg_name(ctx, y->pkg));
    if (r)
        return r;
    Pool *pool = ctx->pool;
    r = pool_evrcmp(pool, pool_id2solvable(pool, x->pkg)->evr, pool_id2solvable(pool, y->pkg)->evr,
                    EVRCMP_COMPARE);
    return r ? r : strcmp(lapis_pkg_arch(ctx, x->pkg), lapis_pkg_arch(ctx, y->pkg));
}

int lapis_repoclosure(lapis_ctx *ctx, const lapis_closure_opts *o, lapis_closure_item **ret,
                      size_t *ret_n)
{
    Pool *pool = ctx->pool;
    lapis_closure_item *items = NULL;
    size_t n = 0;
    Map avail;
    Id p;

    if (!ctx->loaded)
        return lapis_err(ctx, LAPIS_E_USAGE, "internal: repoclosure before lapis_load()");
    map_init(&avail, pool->nsolvables);
    FOR_POOL_SOLVABLES(p) {
        Solvable *s = pool_id2solvable(pool, p);
        if (lapis_pkg_is_available(ctx, p, s) && !(o->newest && superseded(ctx, p, true)) &&
            !(ctx->conf.best && superseded(ctx, p, false)))
            MAPSET(&avail, p);
    }
    FOR_POOL_SOLVABLES(p) {
        Solvable *s = pool_id2solvable(pool, p);
        if (!lapis_pkg_is_available(ctx, p, s) || (o->newest && superseded(ctx, p, true)) ||
            !in_check_set(ctx, s, o))
            continue;
        char **un = unresolved_of(ctx, s, &avail);
        if (!un)
            continue;
        qsort(un, strv_length(un), sizeof(char *), cmp_strp);
        items = xrealloc(items, (n + 1) * sizeof(*items));
        items[n++] = (lapis_closure_item){ .pkg = p, .unresolved = un };
    }
    map_free(&avail);
    if (n)
        solv_sort(items, n, sizeof(*items), cmp_item, ctx);
    *ret = items;
    *ret_n = n;
    return 0;
}

void lapis_closure_free(lapis_closure_item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++)
        lapis_strv_free(items[i].unresolved);
    free(items);
}
