/*
 * Dependency queries over the loaded pool, as dnf5's repoquery makes them:
 * the what<kind> filters (a capability itself or, unless
 * --exactdeps, what a package the spec names provides), --recursive,
 * --providers-of, --leaves and --duplicates.
 */
#include <fnmatch.h>
#include <string.h>

#include "pkg/internal.h"
#include <solv/evr.h>
#include <solv/pool_parserpmrichdep.h>
#include <solv/selection.h>
#include <solv/solvable.h>
#include <solv/util.h>

/* What one spec of a what<kind> filter matches. */
struct what_spec {
    Id dep;           /* the capability; 0 when glob says it */
    const char *glob; /* a glob of a dependency's name, or NULL */
    Map named;        /* the universe's packages spec names (name/NEVRA glob) */
    bool use_named;
};

static bool is_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

static bool dep_name_globbed(Pool *pool, Id r, const char *glob)
{
    while (ISRELDEP(r)) {
        Reldep *rd = GETRELDEP(pool, r);
        if (rd->flags > 7) /* a rich dependency: no single name to match */
            return false;
        r = rd->name;
    }
    return fnmatch(glob, pool_id2str(pool, r), 0) == 0;
}

static bool dep_matches_spec(Pool *pool, Id r, const struct what_spec *w)
{
    return w->dep ? pool_match_dep(pool, r, w->dep) : dep_name_globbed(pool, r, w->glob);
}

/* Is one of the deps provided by a package in provs? */
static bool provided_by(Pool *pool, const Queue *deps, const Map *provs)
{
    for (int k = 0; k < deps->count; k++) {
        Id p, pp;
        FOR_PROVIDES(p, pp, deps->elements[k])
            if (MAPTST(provs, p))
                return true;
    }
    return false;
}

static bool matches_what(Pool *pool, const Queue *deps, const struct what_spec *w)
{
    for (int k = 0; k < deps->count; k++)
        if (dep_matches_spec(pool, deps->elements[k], w))
            return true;
    return w->use_named && provided_by(pool, deps, &w->named);
}

static void what_spec_init(lapis_ctx *ctx, struct what_spec *w, const char *spec, bool exact,
                           const lapis_pkglist *universe)
{
    Pool *pool = ctx->pool;
    char *const globs[] = { (char *)spec, NULL };

    w->glob = is_glob(spec) && !strpbrk(spec, " \t") ? spec : NULL;
    w->dep = w->glob ? 0 : lapis_str2dep(pool, spec);
    w->use_named = !exact;
    map_init(&w->named, pool->nsolvables);
    for (size_t i = 0; w->use_named && i < universe->count; i++)
        if (lapis_pkg_match_any(pool, pool_id2solvable(pool, universe->pkgs[i]), globs))
            MAPSET(&w->named, universe->pkgs[i]);
}

/* Keeps in l, in its order, the packages kept marks. */
static void keep_marked(lapis_pkglist *l, const Map *kept)
{
    size_t w = 0;
    for (size_t i = 0; i < l->count; i++)
        if (MAPTST(kept, l->pkgs[i]))
            l->pkgs[w++] = l->pkgs[i];
    l->count = w;
}

/* --recursive: mark the packages of l whose KIND deps a marked package provides,
 * until a pass marks nothing new. */
static void mark_recursive(Pool *pool, enum lapis_dep_kind kind, const lapis_pkglist *l, Map *kept)
{
    Queue deps;
    bool grew = true;

    queue_init(&deps);
    while (grew) {
        grew = false;
        for (size_t i = 0; i < l->count; i++) {
            if (MAPTST(kept, l->pkgs[i]))
                continue;
            queue_empty(&deps);
            lapis_solvable_deps(pool_id2solvable(pool, l->pkgs[i]), kind, &deps);
            if (provided_by(pool, &deps, kept)) {
                MAPSET(kept, l->pkgs[i]);
                grew = true;
            }
        }
    }
    queue_free(&deps);
}

static void mark_what(lapis_ctx *ctx, enum lapis_dep_kind kind, const char *spec, bool exact,
                      const lapis_pkglist *l, Map *kept)
{
    Pool *pool = ctx->pool;
    struct what_spec w;
    Queue deps;

    what_spec_init(ctx, &w, spec, exact, l);
    queue_init(&deps);
    for (size_t i = 0; i < l->count; i++) {
        queue_empty(&deps);
        lapis_solvable_deps(pool_id2solvable(pool, l->pkgs[i]), kind, &deps);
        if (matches_what(pool, &deps, &w))
            MAPSET(kept, l->pkgs[i]);
    }
    queue_free(&deps);
    map_free(&w.named);
}

int lapis_query_filter_what(lapis_ctx *ctx, enum lapis_dep_kind kind, char *const *specs,
                            unsigned flags, lapis_pkglist *l)
{
    Map kept;
    int r;

    if ((r = lapis_query_require_loaded(ctx)) < 0)
        return r;
    map_init(&kept, ctx->pool->nsolvables);
    for (size_t i = 0; specs && specs[i]; i++)
        mark_what(ctx, kind, specs[i], flags & LAPIS_WHAT_EXACT, l, &kept);
    if (flags & LAPIS_WHAT_RECURSIVE)
        mark_recursive(ctx->pool, kind, l, &kept);
    keep_marked(l, &kept);
    map_free(&kept);
    return 0;
}

int lapis_query_whatrequires(lapis_ctx *ctx, const char *spec, lapis_pkglist *ret)
{
    char *const specs[] = { (char *)spec, NULL };
    int r;

    if ((r = lapis_query_require_loaded(ctx)) < 0)
        return r;
    if ((r = lapis_query_all_versions(ctx, NULL, true, true, ret)) < 0)
        return r;
    return lapis_query_filter_what(ctx, LAPIS_DEP_REQUIRES, specs, 0, ret);
}

/* Marks the packages of universe providing one of deps; true when it marked one. */
static bool mark_providers(Pool *pool, const Queue *deps, const Map *in_universe, Map *kept)
{
    bool any = false;
    for (int k = 0; k < deps->count; k++) {
        Id p, pp;
        FOR_PROVIDES(p, pp, deps->elements[k])
            if (MAPTST(in_universe, p) && !MAPTST(kept, p)) {
                MAPSET(kept, p);
                any = true;
            }
    }
    return any;
}

/* The KIND deps of the packages in q, in deps. */
static void deps_of_all(Pool *pool, enum lapis_dep_kind kind, const Queue *q, Queue *deps)
{
    queue_empty(deps);
    for (int i = 0; i < q->count; i++)
        lapis_solvable_deps(pool_id2solvable(pool, q->elements[i]), kind, deps);
}

int lapis_query_filter_providers_of(lapis_ctx *ctx, enum lapis_dep_kind kind, unsigned flags,
                                    const lapis_pkglist *of, lapis_pkglist *universe)
{
    Pool *pool = ctx->pool;
    Map in, kept;
    Queue from, deps;
    int r;

    if ((r = lapis_query_require_loaded(ctx)) < 0)
        return r;
    map_init(&in, pool->nsolvables);
    map_init(&kept, pool->nsolvables);
    queue_init(&from);
    queue_init(&deps);
    for (size_t i = 0; i < universe->count; i++)
        MAPSET(&in, universe->pkgs[i]);
    for (size_t i = 0; i < of->count; i++)
        queue_push(&from, of->pkgs[i]);
    for (bool more = true; more; more = flags & LAPIS_WHAT_RECURSIVE) {
        Map before;
        map_init_clone(&before, &kept);
        deps_of_all(pool, kind, &from, &deps);
        if (!mark_providers(pool, &deps, &in, &kept)) {
            map_free(&before);
            break;
        }
        /* The next round follows only what this round added. */
        queue_empty(&from);
        for (size_t i = 0; i < universe->count; i++)
            if (MAPTST(&kept, universe->pkgs[i]) && !MAPTST(&before, universe->pkgs[i]))
                queue_push(&from, universe->pkgs[i]);
        map_free(&before);
    }
    keep_marked(universe, &kept);
    map_free(&in);
    map_free(&kept);
    queue_free(&from);
    queue_free(&deps);
    return 0;
}

/* ---- leaves ---------------------------------------------------------------- */

/* Tarjan's strongly connected components over the installed packages, an edge
 * from each package to the installed providers of its requires. */
struct leaves {
    Pool *pool;
    Repo *installed;
    Id *index, *low, *comp; /* by solvable id; index 0: not visited yet */
    Queue stack;
    Map on_stack;
    Id next_index, ncomps;
};

static void leaves_edges(struct leaves *t, Id p, Queue *out)
{
    Pool *pool = t->pool; /* FOR_PROVIDES needs it by this name */
    Queue deps;
    queue_init(&deps);
    lapis_solvable_deps(pool_id2solvable(pool, p), LAPIS_DEP_REQUIRES, &deps);
    for (int k = 0; k < deps.count; k++) {
        Id q, qq;
        FOR_PROVIDES(q, qq, deps.elements[k])
            if (q != p && pool_id2solvable(pool, q)->repo == t->installed)
                queue_pushunique(out, q);
    }
    queue_free(&deps);
}

static void leaves_visit(struct leaves *t, Id p)
{
    Queue edges;
    t->index[p] = t->low[p] = ++t->next_index;
    queue_push(&t->stack, p);
    MAPSET(&t->on_stack, p);
    queue_init(&edges);
    leaves_edges(t, p, &edges);
    for (int k = 0; k < edges.count; k++) {
        Id q = edges.elements[k];
        if (!t->index[q]) {
            leaves_visit(t, q);
            t->low[p] = t->low[q] < t->low[p] ? t->low[q] : t->low[p];
        } else if (MAPTST(&t->on_stack, q) && t->index[q] < t->low[p]) {
            t->low[p] = t->index[q];
        }
    }
    queue_free(&edges);
    if (t->low[p] != t->index[p])
        return;
    Id q, comp = ++t->ncomps;
    do {
        q = queue_pop(&t->stack);
        MAPCLR(&t->on_stack, q);
        t->comp[q] = comp;
    } while (q != p);
}

/* A component is a leaf when no package outside it requires one inside it. */
static void leaves_collect(struct leaves *t, Queue *out)
{
    Id *required = solv_calloc((size_t)t->ncomps + 1, sizeof(Id));
    Queue edges;
    Solvable *s;
    Id p;

    queue_init(&edges);
    FOR_REPO_SOLVABLES(t->installed, p, s) {
        queue_empty(&edges);
        leaves_edges(t, p, &edges);
        for (int k = 0; k < edges.count; k++)
            if (t->comp[edges.elements[k]] != t->comp[p])
                required[t->comp[edges.elements[k]]] = 1;
    }
    FOR_REPO_SOLVABLES(t->installed, p, s)
        if (!required[t->comp[p]])
            queue_push(out, p);
    queue_free(&edges);
    solv_free(required);
}

int lapis_query_leaves(lapis_ctx *ctx, lapis_pkglist *ret)
{
    Pool *pool = ctx->pool;
    struct leaves t = { .pool = pool, .installed = pool->installed };
    Queue out;
    Solvable *s;
    Id p;
    int r;

    if ((r = lapis_query_require_loaded(ctx)) < 0)
        return r;
    queue_init(&out);
    if (t.installed) {
        t.index = solv_calloc((size_t)pool->nsolvables, sizeof(Id));
        t.low = solv_calloc((size_t)pool->nsolvables, sizeof(Id));
        t.comp = solv_calloc((size_t)pool->nsolvables, sizeof(Id));
        queue_init(&t.stack);
        map_init(&t.on_stack, pool->nsolvables);
        FOR_REPO_SOLVABLES(t.installed, p, s)
            if (!t.index[p])
                leaves_visit(&t, p);
        leaves_collect(&t, &out);
        solv_free(t.index);
        solv_free(t.low);
        solv_free(t.comp);
        queue_free(&t.stack);
        map_free(&t.on_stack);
    }
    lapis_pkglist_from_queue(ret, &out);
    queue_free(&out);
    return 0;
}

/* ---- duplicates and the latest versions --------------------------------------- */

int lapis_query_duplicates(lapis_ctx *ctx, lapis_pkglist *ret)
{
    Pool *pool = ctx->pool;
    Queue out;
    Solvable *s;
    Id p;
    int r;

    if ((r = lapis_query_require_loaded(ctx)) < 0)
        return r;
    queue_init(&out);
    if (pool->installed) {
        FOR_REPO_SOLVABLES(pool->installed, p, s) {
            Id q, qq;
            if (lapis_pkg_installonly(ctx, p))
                continue;
            FOR_PROVIDES(q, qq, s->name) {
                Solvable *o = pool_id2solvable(pool, q);
                if (q != p && o->repo == pool->installed && o->name == s->name &&
                    o->arch == s->arch) {
                    queue_push(&out, p);
                    break;
                }
            }
        }
    }
    lapis_pkglist_from_queue(ret, &out);
    queue_free(&out);
    return 0;
}

/* By name, arch, then the newest first. */
static int cmp_name_arch_newest(const void *pa, const void *pb, void *dp)
{
    Pool *pool = dp;
    Solvable *a = pool_id2solvable(pool, *(const Id *)pa), *b = pool_id2solvable(pool, *(const Id *)pb);
    int r = lapis_cmp_name_arch(pool, a, b);
    return r ? r : pool_evrcmp(pool, b->evr, a->evr, EVRCMP_COMPARE);
}

void lapis_pkglist_latest(lapis_ctx *ctx, lapis_pkglist *l, int n)
{
    Pool *pool = ctx->pool;
    Map kept;
    Id *sorted = solv_memdup(l->pkgs, l->count * sizeof(Id) + 1);

    map_init(&kept, pool->nsolvables);
    solv_sort(sorted, l->count, sizeof(Id), cmp_name_arch_newest, pool);
    /* rank: how many newer versions of its name.arch come before it */
    for (size_t i = 0, rank = 0; i < l->count; i++) {
        Solvable *s = pool_id2solvable(pool, sorted[i]);
        Solvable *prev = i ? pool_id2solvable(pool, sorted[i - 1]) : NULL;
        if (!prev || prev->name != s->name || prev->arch != s->arch)
            rank = 0;
        else if (prev->evr != s->evr && pool_evrcmp(pool, prev->evr, s->evr, EVRCMP_COMPARE))
            rank++;
        if (n > 0 ? rank < (size_t)n : rank >= (size_t)-(long)n)
            MAPSET(&kept, sorted[i]);
    }
    keep_marked(l, &kept);
    solv_free(sorted);
    map_free(&kept);
}
