/*
 * Advisories (updateinfo). libsolvext loads each repo's updateinfo.xml as
 * "patch:<id>" solvables whose UPDATE_COLLECTION entries name the fixed
 * packages; this file filters them (dnf's --security/--advisory/--cve/
 * --sec-severity), relates them to the installed system (dnf's
 * available/installed/all) and turns them into upgrade jobs.
 */
#include <errno.h>
#include <fnmatch.h>
#include <string.h>
#include <strings.h>

#include "pkg/goal.h"
#include <solv/evr.h>
#include <solv/knownid.h>
#include <solv/repo.h>


static const struct {
    const char *name;
    unsigned bit;
} adv_types[] = {
    { "security", LAPIS_ADV_SECURITY },
    { "bugfix", LAPIS_ADV_BUGFIX },
    { "enhancement", LAPIS_ADV_ENHANCEMENT },
    { "newpackage", LAPIS_ADV_NEWPACKAGE },
};

/* "None": dnf5's value for an advisory without a severity. */
static const char *const severities[] = { "Critical", "Important", "Moderate", "Low", "None" };

unsigned lapis_advisory_type_from_name(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(adv_types); i++)
        if (name && strcmp(name, adv_types[i].name) == 0)
            return adv_types[i].bit;
    return 0;
}

bool lapis_advisory_severity_valid(const char *severity)
{
    for (size_t i = 0; i < ARRAY_SIZE(severities); i++)
        if (strcasecmp(severity, severities[i]) == 0)
            return true;
    return false;
}

static bool is_advisory(Pool *pool, Solvable *s)
{
    return s->repo && s->repo != pool->installed && lapis_is_advisory(pool, s);
}

static const char *advisory_id(Pool *pool, Solvable *s)
{
    return pool_id2str(pool, s->name) + strlen(LAPIS_ADVISORY_PREFIX);
}

static bool strv_has_ci(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (s && strcasecmp(v[i], s) == 0)
            return true;
    return false;
}

/* Does one of the advisory's references of reftype carry an id in ids? */
static bool has_reference(Pool *pool, Id p, const char *reftype, char *const *ids)
{
    Dataiterator di;
    bool found = false;

    if (!ids || !ids[0])
        return false;
    dataiterator_init(&di, pool, 0, p, UPDATE_REFERENCE, 0, 0);
    while (!found && dataiterator_step(&di)) {
        dataiterator_setpos(&di);
        const char *type = pool_lookup_str(pool, SOLVID_POS, UPDATE_REFERENCE_TYPE);
        const char *id = pool_lookup_str(pool, SOLVID_POS, UPDATE_REFERENCE_ID);
        found = type && id && strcmp(type, reftype) == 0 && strv_contains(ids, id);
    }
    dataiterator_free(&di);
    return found;
}

static bool has_reference_type(Pool *pool, Id p, const char *reftype)
{
    Dataiterator di;
    bool found = false;

    dataiterator_init(&di, pool, 0, p, UPDATE_REFERENCE, 0, 0);
    while (!found && dataiterator_step(&di)) {
        dataiterator_setpos(&di);
        const char *type = pool_lookup_str(pool, SOLVID_POS, UPDATE_REFERENCE_TYPE);
        found = type && strcmp(type, reftype) == 0;
    }
    dataiterator_free(&di);
    return found;
}

static bool filter_match(Pool *pool, Id p, const lapis_advisory_filter *f)
{
    Solvable *s = pool_id2solvable(pool, p);
    bool any_select, selected = false;

    if (lapis_advisory_filter_empty(f))
        return true;
    any_select = f->types || (f->ids && f->ids[0]) || (f->cves && f->cves[0]) ||
                 (f->bzs && f->bzs[0]);
    if (any_select) {
        const char *type = solvable_lookup_str(s, SOLVABLE_PATCHCATEGORY);
        selected = (f->types & lapis_advisory_type_from_name(type)) ||
                   strv_contains(f->ids, advisory_id(pool, s)) ||
                   has_reference(pool, p, "cve", f->cves) ||
                   has_reference(pool, p, "bugzilla", f->bzs);
        if (!selected)
            return false;
    }
    if ((f->with_cve && !has_reference_type(pool, p, "cve")) ||
        (f->with_bz && !has_reference_type(pool, p, "bugzilla")))
        return false;
    if (f->severities && f->severities[0]) {
        const char *sev = solvable_lookup_str(s, UPDATE_SEVERITY);
        return strv_has_ci(f->severities, sev && *sev ? sev : "None");
    }
    return true;
}

/* ---- the packages an advisory names -------------------------------------- */

struct adv_pkg {
    Id name, evr, arch;
    const char *filename;
    bool reboot;
};

/* Calls fn for each package in the advisory's collection; stops on a true return. */
static bool foreach_adv_pkg(Pool *pool, Id p, bool (*fn)(Pool *, const struct adv_pkg *, void *),
                            void *data)
{
    Dataiterator di;
    bool stop = false;

    dataiterator_init(&di, pool, 0, p, UPDATE_COLLECTION, 0, 0);
    while (!stop && dataiterator_step(&di)) {
        dataiterator_setpos(&di);
        struct adv_pkg ap = {
            .name = pool_lookup_id(pool, SOLVID_POS, UPDATE_COLLECTION_NAME),
            .evr = pool_lookup_id(pool, SOLVID_POS, UPDATE_COLLECTION_EVR),
            .arch = pool_lookup_id(pool, SOLVID_POS, UPDATE_COLLECTION_ARCH),
            .filename = pool_lookup_str(pool, SOLVID_POS, UPDATE_COLLECTION_FILENAME),
            /* libsolv stores <reboot_suggested> of a package as update:reboot on
             * its entry (UPDATE_COLLECTION_FLAGS bit 1 in other formats). */
            .reboot = pool_lookup_void(pool, SOLVID_POS, UPDATE_REBOOT) ||
                      (pool_lookup_num(pool, SOLVID_POS, UPDATE_COLLECTION_FLAGS, 0) & 1),
        };
        if (ap.name && ap.evr && ap.arch && ap.arch != ARCH_SRC && ap.arch != ARCH_NOSRC)
            stop = fn(pool, &ap, data);
    }
    dataiterator_free(&di);
    return stop;
}

/* The newest installed evr of name.arch, or 0. */
static Id newest_installed_evr(Pool *pool, Id name, Id arch)
{
    Id p, pp, best = 0;
    if (!pool->installed)
        return 0;
    FOR_PROVIDES(p, pp, name) {
        Solvable *s = pool_id2solvable(pool, p);
        if (s->repo == pool->installed && s->name == name && s->arch == arch &&
            (!best || pool_evrcmp(pool, s->evr, best, EVRCMP_COMPARE) > 0))
            best = s->evr;
    }
    return best;
}

static enum lapis_advisory_pkg_state adv_pkg_state(Pool *pool, const struct adv_pkg *ap)
{
    Id inst = newest_installed_evr(pool, ap->name, ap->arch);
    if (!inst)
        return LAPIS_ADVPKG_NOT_INSTALLED;
    return pool_evrcmp(pool, inst, ap->evr, EVRCMP_COMPARE) < 0 ? LAPIS_ADVPKG_AVAILABLE
                                                                : LAPIS_ADVPKG_INSTALLED;
}

struct scope_check {
    enum lapis_advisory_scope scope;
};

bool lapis_advisory_state_in_scope(enum lapis_advisory_pkg_state state,
                                   enum lapis_advisory_scope scope)
{
    switch (scope) {
    case LAPIS_ADV_AVAILABLE: return state == LAPIS_ADVPKG_AVAILABLE;
    case LAPIS_ADV_INSTALLED: return state == LAPIS_ADVPKG_INSTALLED;
    case LAPIS_ADV_ALL: return state != LAPIS_ADVPKG_NOT_INSTALLED;
    }
    return false;
}

static bool pkg_in_scope(Pool *pool, const struct adv_pkg *ap, void *data)
{
    struct scope_check *sc = data;
    return lapis_advisory_state_in_scope(adv_pkg_state(pool, ap), sc->scope);
}

struct spec_check {
    char *const *specs;
};

static bool pkg_matches_spec(Pool *pool, const struct adv_pkg *ap, void *data)
{
    struct spec_check *sc = data;
    for (size_t i = 0; sc->specs[i]; i++)
        if (fnmatch(sc->specs[i], pool_id2str(pool, ap->name), 0) == 0)
            return true;
    return false;
}

static bool spec_match(Pool *pool, Id p, char *const *specs)
{
    struct spec_check sc = { specs };
    if (!specs || !specs[0])
        return true;
    for (size_t i = 0; specs[i]; i++)
        if (fnmatch(specs[i], advisory_id(pool, pool_id2solvable(pool, p)), 0) == 0)
            return true;
    return foreach_adv_pkg(pool, p, pkg_matches_spec, &sc);
}

/* ---- snapshots for callers ------------------------------------------------ */

static char *dupstr(const char *s) { return s ? xstrdup(s) : NULL; }

static bool collect_pkg(Pool *pool, const struct adv_pkg *ap, void *data)
{
    lapis_advisory *a = data;
    a->pkgs = xrealloc(a->pkgs, (a->npkgs + 1) * sizeof(*a->pkgs));
    a->pkgs[a->npkgs++] = (lapis_advisory_pkg){
        .name = xstrdup(pool_id2str(pool, ap->name)),
        .evr = xstrdup(pool_id2str(pool, ap->evr)),
        .arch = xstrdup(pool_id2str(pool, ap->arch)),
        .filename = dupstr(ap->filename),
        .reboot_suggested = ap->reboot,
        .state = adv_pkg_state(pool, ap),
    };
    return false;
}

static void collect_refs(Pool *pool, Id p, lapis_advisory *a)
{
    Dataiterator di;
    dataiterator_init(&di, pool, 0, p, UPDATE_REFERENCE, 0, 0);
    while (dataiterator_step(&di)) {
        dataiterator_setpos(&di);
        a->refs = xrealloc(a->refs, (a->nrefs + 1) * sizeof(*a->refs));
        a->refs[a->nrefs++] = (lapis_advisory_ref){
            .type = dupstr(pool_lookup_str(pool, SOLVID_POS, UPDATE_REFERENCE_TYPE)),
            .id = dupstr(pool_lookup_str(pool, SOLVID_POS, UPDATE_REFERENCE_ID)),
            .href = dupstr(pool_lookup_str(pool, SOLVID_POS, UPDATE_REFERENCE_HREF)),
            .title = dupstr(pool_lookup_str(pool, SOLVID_POS, UPDATE_REFERENCE_TITLE)),
        };
    }
    dataiterator_free(&di);
}

static void snapshot(Pool *pool, Id p, lapis_advisory *a)
{
    Solvable *s = pool_id2solvable(pool, p);
    *a = (lapis_advisory){
        .id = xstrdup(advisory_id(pool, s)),
        .type = dupstr(solvable_lookup_str(s, SOLVABLE_PATCHCATEGORY)),
        .severity = dupstr(solvable_lookup_str(s, UPDATE_SEVERITY)),
        .title = dupstr(solvable_lookup_str(s, SOLVABLE_SUMMARY)),
        .description = dupstr(solvable_lookup_str(s, SOLVABLE_DESCRIPTION)),
        .status = dupstr(solvable_lookup_str(s, UPDATE_STATUS)),
        .vendor = dupstr(solvable_lookup_str(s, SOLVABLE_VENDOR)),
        .rights = dupstr(solvable_lookup_str(s, UPDATE_RIGHTS)),
        .message = dupstr(solvable_lookup_str(s, UPDATE_MESSAGE)),
        .repo = xstrdup(s->repo->name ? s->repo->name : ""),
        .issued = (long long)solvable_lookup_num(s, SOLVABLE_BUILDTIME, 0),
        .reboot_suggested = solvable_lookup_void(s, UPDATE_REBOOT),
    };
    collect_refs(pool, p, a);
    foreach_adv_pkg(pool, p, collect_pkg, a);
}

static int cmp_advisory_ids(const void *pa, const void *pb, void *dp)
{
    Pool *pool = dp;
    Id a = *(const Id *)pa, b = *(const Id *)pb;
    int r = strcmp(advisory_id(pool, pool_id2solvable(pool, a)),
                   advisory_id(pool, pool_id2solvable(pool, b)));
    /* Same id in several repos: the best-priority repo first. */
    if (r == 0) {
        int prio_a = pool_id2solvable(pool, a)->repo->priority;
        int prio_b = pool_id2solvable(pool, b)->repo->priority;
        r = (prio_a < prio_b) - (prio_a > prio_b); /* no subtraction: any int is allowed */
    }
    return r ? r : a - b;
}

/* Matching advisory solvables, sorted by id, one per id. */
static void matching_advisories(lapis_ctx *ctx, const lapis_advisory_filter *f, Queue *out)
{
    Pool *pool = ctx->pool;
    Solvable *s;
    Id p;
    int n = 0;

    FOR_POOL_SOLVABLES(p) {
        s = pool_id2solvable(pool, p);
        if (is_advisory(pool, s) && filter_match(pool, p, f))
            queue_push(out, p);
    }
    solv_sort(out->elements, out->count, sizeof(Id), cmp_advisory_ids, pool);
    for (int i = 0; i < out->count; i++) {
        Id id = pool_id2solvable(pool, out->elements[i])->name;
        if (n && pool_id2solvable(pool, out->elements[n - 1])->name == id)
            continue;
        out->elements[n++] = out->elements[i];
    }
    queue_truncate(out, n);
}

int lapis_advisory_query(lapis_ctx *ctx, const lapis_advisory_filter *filter,
                         enum lapis_advisory_scope scope, char *const *specs,
                         lapis_advisory **ret, size_t *ret_n)
{
    Pool *pool = ctx->pool;
    struct scope_check sc = { scope };
    lapis_advisory *list = NULL;
    size_t n = 0;
    Queue q;

    *ret = NULL;
    *ret_n = 0;
    if (!ctx->loaded)
        return lapis_err(ctx, -EINVAL, "lapis_load() must run before advisory queries");
    lapis_metadata_load_details(ctx); /* titles and descriptions */
    queue_init(&q);
    matching_advisories(ctx, filter, &q);
    for (int i = 0; i < q.count; i++) {
        Id p = q.elements[i];
        if (!spec_match(pool, p, specs) || !foreach_adv_pkg(pool, p, pkg_in_scope, &sc))
            continue;
        list = xrealloc(list, (n + 1) * sizeof(*list));
        snapshot(pool, p, &list[n++]);
    }
    queue_free(&q);
    *ret = list;
    *ret_n = n;
    return 0;
}

void lapis_advisories_free(lapis_advisory *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].id); free(a[i].type); free(a[i].severity); free(a[i].title);
        free(a[i].description); free(a[i].status); free(a[i].repo);
        free(a[i].vendor); free(a[i].rights); free(a[i].message);
        for (size_t j = 0; j < a[i].nrefs; j++) {
            free(a[i].refs[j].type); free(a[i].refs[j].id);
            free(a[i].refs[j].href); free(a[i].refs[j].title);
        }
        free(a[i].refs);
        for (size_t j = 0; j < a[i].npkgs; j++) {
            free(a[i].pkgs[j].name); free(a[i].pkgs[j].evr);
            free(a[i].pkgs[j].arch); free(a[i].pkgs[j].filename);
        }
        free(a[i].pkgs);
    }
    free(a);
}

/* ---- upgrades named by advisories ---------------------------------------- */

struct cand_state {
    lapis_ctx *ctx;
    bool minimal;
    Queue *out;
};

/* For an advisory package newer than what is installed: the available
 * packages of its name.arch at its version (minimal) or newer. */
static bool add_candidates(Pool *pool, const struct adv_pkg *ap, void *data)
{
    struct cand_state *cs = data;
    Id inst = newest_installed_evr(pool, ap->name, ap->arch);
    Id p, pp;

    /* Not installed, or the fix is already in: nothing to upgrade for this one. */
    if (!inst || pool_evrcmp(pool, ap->evr, inst, EVRCMP_COMPARE) <= 0)
        return false;
    FOR_PROVIDES(p, pp, ap->name) {
        Solvable *s = pool_id2solvable(pool, p);
        if (s->name != ap->name || s->arch != ap->arch || !s->repo ||
            s->repo == pool->installed || !pool_installable(pool, s) ||
            (pool->considered && !MAPTST(pool->considered, p)))
            continue;
        int c = pool_evrcmp(pool, s->evr, ap->evr, EVRCMP_COMPARE);
        if ((cs->minimal ? c != 0 : c < 0) ||
            pool_evrcmp(pool, s->evr, inst, EVRCMP_COMPARE) <= 0)
            continue;
        queue_pushunique(cs->out, p);
    }
    return false;
}

static int cmp_name_arch(const void *pa, const void *pb, void *dp)
{
    Pool *pool = dp;
    Solvable *a = pool_id2solvable(pool, *(const Id *)pa), *b = pool_id2solvable(pool, *(const Id *)pb);
    int r = lapis_cmp_name_arch(pool, a, b);
    return r ? r : pool_evrcmp(pool, a->evr, b->evr, EVRCMP_COMPARE);
}

/* Upgrade candidates of every matching advisory, sorted by name, arch, evr. */
static void advisory_candidates(lapis_ctx *ctx, const lapis_advisory_filter *f, bool minimal,
                                char *const *globs, Queue *out)
{
    Pool *pool = ctx->pool;
    struct cand_state cs = { ctx, minimal, out };
    Queue advs;
    int n = 0;

    queue_init(&advs);
    matching_advisories(ctx, f, &advs);
    for (int i = 0; i < advs.count; i++)
        foreach_adv_pkg(pool, advs.elements[i], add_candidates, &cs);
    queue_free(&advs);
    for (int i = 0; i < out->count; i++)
        if (!globs || !globs[0] ||
            lapis_pkg_match_any(pool, pool_id2solvable(pool, out->elements[i]), globs))
            out->elements[n++] = out->elements[i];
    queue_truncate(out, n);
    solv_sort(out->elements, out->count, sizeof(Id), cmp_name_arch, pool);
}

int lapis_query_advisory_upgrades(lapis_ctx *ctx, const lapis_advisory_filter *filter,
                                  char *const *globs, lapis_pkglist *ret)
{
    Pool *pool = ctx->pool;
    Queue q;

    memset(ret, 0, sizeof(*ret));
    queue_init(&q);
    advisory_candidates(ctx, filter, false, globs, &q);
    ret->pkgs = xcalloc((size_t)q.count + 1, sizeof(lapis_pkg));
    for (int i = 0; i < q.count; i++) {
        Solvable *s = pool_id2solvable(pool, q.elements[i]);
        Solvable *next = i + 1 < q.count ? pool_id2solvable(pool, q.elements[i + 1]) : NULL;
        /* Sorted by evr within name.arch: the last one is the newest. */
        if (!next || next->name != s->name || next->arch != s->arch)
            ret->pkgs[ret->count++] = q.elements[i];
    }
    queue_free(&q);
    return 0;
}

int lapis_goal_upgrade_advisories(lapis_goal *g, const lapis_advisory_filter *filter,
                                  bool minimal, char *const *specs)
{
    Pool *pool = g->ctx->pool;
    Id how = SOLVER_UPDATE | SOLVER_SOLVABLE_ONE_OF | SOLVER_TARGETED |
             (g->ctx->conf.best ? SOLVER_FORCEBEST : 0) |
             (g->flags & LAPIS_GOAL_SKIP_BROKEN ? SOLVER_WEAK : 0);
    int groups = 0;
    Queue q, one;

    for (size_t i = 0; specs && specs[i]; i++) {
        lapis_pkglist l;
        char *one_spec[] = { specs[i], NULL };
        int r = lapis_query_all_versions(g->ctx, one_spec, true, false, &l);
        size_t n = l.count;
        lapis_pkglist_free(&l);
        if (r < 0)
            return r;
        if (n == 0)
            return lapis_err(g->ctx, LAPIS_E_NOTFOUND, "'%s' is not installed; use 'lapis "
                             "install' to install it", specs[i]);
    }
    queue_init(&q);
    queue_init(&one);
    advisory_candidates(g->ctx, filter, minimal, specs, &q);
    /* One targeted job per name.arch, so each package moves to its own best candidate. */
    for (int i = 0; i < q.count; i++) {
        Solvable *s = pool_id2solvable(pool, q.elements[i]);
        Solvable *next = i + 1 < q.count ? pool_id2solvable(pool, q.elements[i + 1]) : NULL;
        queue_push(&one, q.elements[i]);
        if (next && next->name == s->name && next->arch == s->arch)
            continue;
        queue_push2(&g->job, how, pool_queuetowhatprovides(pool, &one));
        queue_empty(&one);
        groups++;
    }
    queue_free(&one);
    queue_free(&q);
    return groups;
}

bool lapis_pkg_fixes(lapis_ctx *ctx, lapis_pkg p, const char *name, const char *arch,
                     const char *evr)
{
    Pool *pool = ctx->pool;
    Solvable *s = pool_id2solvable(pool, p);
    return strcmp(pool_id2str(pool, s->name), name) == 0 &&
           strcmp(pool_id2str(pool, s->arch), arch) == 0 &&
           pool_evrcmp_str(pool, pool_id2str(pool, s->evr), evr, EVRCMP_COMPARE) >= 0;
}
