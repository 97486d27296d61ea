/*
 * Package accessors and read-only queries over the loaded pool: list,
 * search (the dependency queries are in querydeps.c). "available" follows dnf: the newest
 * package per name.arch among the highest-priority repos offering that
 * name, leaving out exact versions already installed.
 */
#include <ctype.h>
#include <limits.h>
#include <fnmatch.h>
#include <string.h>

#include "pkg/internal.h"
#include <solv/evr.h>
#include <solv/pool_parserpmrichdep.h>
#include <solv/selection.h>
#include <solv/solvable.h>
#include <solv/chksum.h>
#include <solv/util.h>


static inline Solvable *S(lapis_ctx *ctx, lapis_pkg p) { return pool_id2solvable(ctx->pool, p); }

/* ---- accessors ----------------------------------------------------------- */

const char *lapis_pkg_name(lapis_ctx *ctx, lapis_pkg p) { return pool_id2str(ctx->pool, S(ctx, p)->name); }
const char *lapis_pkg_arch(lapis_ctx *ctx, lapis_pkg p) { return pool_id2str(ctx->pool, S(ctx, p)->arch); }
const char *lapis_pkg_evr(lapis_ctx *ctx, lapis_pkg p) { return pool_id2str(ctx->pool, S(ctx, p)->evr); }
const char *lapis_pkg_nevra(lapis_ctx *ctx, lapis_pkg p) { return pool_solvable2str(ctx->pool, S(ctx, p)); }

static const char *evr_part(lapis_ctx *ctx, lapis_pkg p, int which)
{
    const char *evr = lapis_pkg_evr(ctx, p);
    const char *colon = strchr(evr, ':');
    const char *v = colon ? colon + 1 : evr;
    const char *dash = strrchr(v, '-');
    const char *start = which == 0 ? v : dash ? dash + 1 : "";
    size_t len = which == 0 ? (dash ? (size_t)(dash - v) : strlen(v)) : strlen(start);
    char *out = pool_alloctmpspace(ctx->pool, (int)len + 1);
    memcpy(out, start, len);
    out[len] = '\0';
    return out;
}

unsigned lapis_pkg_epoch(lapis_ctx *ctx, lapis_pkg p)
{
    const char *evr = lapis_pkg_evr(ctx, p);
    const char *colon = strchr(evr, ':');
    return colon ? (unsigned)strtoul(evr, NULL, 10) : 0;
}

const char *lapis_pkg_version(lapis_ctx *ctx, lapis_pkg p) { return evr_part(ctx, p, 0); }
const char *lapis_pkg_release(lapis_ctx *ctx, lapis_pkg p) { return evr_part(ctx, p, 1); }

bool lapis_pkg_installed(lapis_ctx *ctx, lapis_pkg p)
{
    return ctx->pool->installed && S(ctx, p)->repo == ctx->pool->installed;
}

const char *lapis_pkg_repoid(lapis_ctx *ctx, lapis_pkg p)
{
    Repo *repo = S(ctx, p)->repo;
    struct lapis_repo *lr = lapis_sack_repo_of(ctx, repo);
    return lr ? lr->id : repo == ctx->pool->installed ? "@System" : repo->name;
}

static const char *str_or_empty(const char *s) { return s ? s : ""; }

/* Display-only attributes live in the lazily loaded details cache. */
static Solvable *SD(lapis_ctx *ctx, lapis_pkg p)
{
    lapis_metadata_load_details(ctx);
    return S(ctx, p);
}

const char *lapis_pkg_summary(lapis_ctx *ctx, lapis_pkg p)
{ return str_or_empty(solvable_lookup_str(SD(ctx, p), SOLVABLE_SUMMARY)); }
const char *lapis_pkg_description(lapis_ctx *ctx, lapis_pkg p)
{ return str_or_empty(solvable_lookup_str(SD(ctx, p), SOLVABLE_DESCRIPTION)); }
const char *lapis_pkg_url(lapis_ctx *ctx, lapis_pkg p)
{ return str_or_empty(solvable_lookup_str(SD(ctx, p), SOLVABLE_URL)); }
const char *lapis_pkg_license(lapis_ctx *ctx, lapis_pkg p)
{ return str_or_empty(solvable_lookup_str(SD(ctx, p), SOLVABLE_LICENSE)); }
const char *lapis_pkg_sourcerpm(lapis_ctx *ctx, lapis_pkg p)
{ return str_or_empty(solvable_lookup_sourcepkg(SD(ctx, p))); }
const char *lapis_pkg_location(lapis_ctx *ctx, lapis_pkg p)
{ return str_or_empty(solvable_lookup_location(SD(ctx, p), NULL)); }
unsigned long long lapis_pkg_downloadsize(lapis_ctx *ctx, lapis_pkg p)
{ return solvable_lookup_num(S(ctx, p), SOLVABLE_DOWNLOADSIZE, 0); }
unsigned long long lapis_pkg_installsize(lapis_ctx *ctx, lapis_pkg p)
{ return solvable_lookup_num(S(ctx, p), SOLVABLE_INSTALLSIZE, 0); }
unsigned long long lapis_pkg_buildtime(lapis_ctx *ctx, lapis_pkg p)
{ return solvable_lookup_num(SD(ctx, p), SOLVABLE_BUILDTIME, 0); }
const char *lapis_pkg_vendor(lapis_ctx *ctx, lapis_pkg p)
{ return str_or_empty(solvable_lookup_str(SD(ctx, p), SOLVABLE_VENDOR)); }
const char *lapis_pkg_packager(lapis_ctx *ctx, lapis_pkg p)
{ return str_or_empty(solvable_lookup_str(SD(ctx, p), SOLVABLE_PACKAGER)); }
const char *lapis_pkg_group(lapis_ctx *ctx, lapis_pkg p)
{ return str_or_empty(solvable_lookup_str(SD(ctx, p), SOLVABLE_GROUP)); }
unsigned long long lapis_pkg_installtime(lapis_ctx *ctx, lapis_pkg p)
{ return lapis_pkg_installed(ctx, p) ? solvable_lookup_num(S(ctx, p), SOLVABLE_INSTALLTIME, 0) : 0; }

const char *lapis_pkg_checksum(lapis_ctx *ctx, lapis_pkg p, const char **ret_type)
{
    Id type = 0;
    const char *hex = solvable_lookup_checksum(SD(ctx, p), SOLVABLE_CHECKSUM, &type);
    if (ret_type)
        *ret_type = hex && type ? solv_chksum_type2str(type) : "";
    return str_or_empty(hex);
}

/* libsolv's key for a kind, and the part of it the kind is (libsolv's marker:
 * 1 after the marker, -1 before it, 0 all; the requires' marker parts the
 * pre-requires from the others). */
static Id dep_key(enum lapis_dep_kind k, Id *marker)
{
    static const Id keys[] = {
        [LAPIS_DEP_REQUIRES] = SOLVABLE_REQUIRES,     [LAPIS_DEP_PROVIDES] = SOLVABLE_PROVIDES,
        [LAPIS_DEP_CONFLICTS] = SOLVABLE_CONFLICTS,   [LAPIS_DEP_OBSOLETES] = SOLVABLE_OBSOLETES,
        [LAPIS_DEP_RECOMMENDS] = SOLVABLE_RECOMMENDS, [LAPIS_DEP_SUGGESTS] = SOLVABLE_SUGGESTS,
        [LAPIS_DEP_SUPPLEMENTS] = SOLVABLE_SUPPLEMENTS, [LAPIS_DEP_ENHANCES] = SOLVABLE_ENHANCES,
        [LAPIS_DEP_REQUIRES_PRE] = SOLVABLE_REQUIRES, [LAPIS_DEP_REGULAR_REQUIRES] = SOLVABLE_REQUIRES,
        [LAPIS_DEP_PREREQ_IGNOREINST] = SOLVABLE_PREREQ_IGNOREINST,
    };
    /* Provides stop at libsolv's file marker: what pool_addfileprovides() added
     * after it are files, which dnf lists as files, not as provides. */
    *marker = k == LAPIS_DEP_REQUIRES_PRE ? 1
            : k == LAPIS_DEP_REGULAR_REQUIRES || k == LAPIS_DEP_PROVIDES ? -1 : 0;
    return keys[k];
}

void lapis_solvable_deps(Solvable *s, enum lapis_dep_kind kind, Queue *q)
{
    static const enum lapis_dep_kind depends[] = {
        LAPIS_DEP_REQUIRES, LAPIS_DEP_RECOMMENDS, LAPIS_DEP_SUGGESTS, LAPIS_DEP_SUPPLEMENTS,
        LAPIS_DEP_ENHANCES,
    };
    Queue part;
    Id marker = 0;

    if (kind == LAPIS_DEP_DEPENDS) {
        for (size_t i = 0; i < ARRAY_SIZE(depends); i++)
            lapis_solvable_deps(s, depends[i], q);
        return;
    }
    Id key = dep_key(kind, &marker); /* sets marker: not in the call's own arguments */
    queue_init(&part);
    solvable_lookup_deparray(s, key, &part, marker);
    for (int i = 0; i < part.count; i++)
        if (part.elements[i] != SOLVABLE_PREREQMARKER && part.elements[i] != SOLVABLE_FILEMARKER)
            queue_push(q, part.elements[i]);
    queue_free(&part);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and drop duplicates (primary and filelists both list some files). */
static char **strv_sort_uniq(char **v)
{
    size_t n = strv_length(v), w = 0;
    qsort(v, n, sizeof(char *), cmp_strp);
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && strcmp(v[w - 1], v[i]) == 0) {
            free(v[i]);
            continue;
        }
        v[w++] = v[i];
    }
    v[w] = NULL;
    return v;
}

char **lapis_pkg_deps(lapis_ctx *ctx, lapis_pkg p, enum lapis_dep_kind kind)
{
    Queue q;
    char **v = xcalloc(1, sizeof(char *));

    queue_init(&q);
    lapis_solvable_deps(S(ctx, p), kind, &q);
    for (int i = 0; i < q.count; i++)
        strv_push(&v, xstrdup(pool_dep2str(ctx->pool, q.elements[i])));
    queue_free(&q);
    return strv_sort_uniq(v);
}

char **lapis_pkg_files(lapis_ctx *ctx, lapis_pkg p)
{
    Dataiterator di;
    char **v = xcalloc(1, sizeof(char *));

    dataiterator_init(&di, ctx->pool, NULL, p, SOLVABLE_FILELIST, NULL,
                      SEARCH_FILES | SEARCH_COMPLETE_FILELIST);
    while (dataiterator_step(&di))
        strv_push(&v, xstrdup(di.kv.str));
    dataiterator_free(&di);
    return strv_sort_uniq(v);
}

void lapis_pkglist_free(lapis_pkglist *l)
{
    free(l->pkgs);
    l->pkgs = NULL;
    l->count = 0;
}

void lapis_pkglist_from_queue(lapis_pkglist *ret, const Queue *q)
{
    ret->count = (size_t)q->count;
    ret->pkgs = xcalloc(ret->count + 1, sizeof(lapis_pkg));
    if (ret->count)
        memcpy(ret->pkgs, q->elements, ret->count * sizeof(lapis_pkg));
}

/* ---- matching ------------------------------------------------------------ */

/* No globs: everything. */
static bool matches_any(lapis_ctx *ctx, Solvable *s, char *const *globs)
{
    return !globs || !globs[0] || lapis_pkg_match_any(ctx->pool, s, globs);
}

bool lapis_pkg_is_available(lapis_ctx *ctx, Id p, Solvable *s)
{
    Pool *pool = ctx->pool;
    if (!s->repo || s->repo == pool->installed || !pool_installable(pool, s))
        return false;
    if (pool->considered && !MAPTST(pool->considered, p))
        return false;
    return !lapis_is_advisory(pool, s);
}

/* Is a package with s's name and arch (and, with same_evr, its evr) installed? */
static bool installed_like(lapis_ctx *ctx, Solvable *s, bool same_evr)
{
    Pool *pool = ctx->pool;
    Id p, pp;
    if (!pool->installed)
        return false;
    FOR_PROVIDES(p, pp, s->name) {
        Solvable *i = pool_id2solvable(pool, p);
        if (i->repo == pool->installed && i->name == s->name && i->arch == s->arch &&
            (!same_evr || i->evr == s->evr))
            return true;
    }
    return false;
}

static int cmp_name_arch_prio_evr(const void *pa, const void *pb, void *dp)
{
    Pool *pool = dp;
    Solvable *a = pool_id2solvable(pool, *(const Id *)pa), *b = pool_id2solvable(pool, *(const Id *)pb);
    int r = lapis_cmp_name_arch(pool, a, b);
    if (r)
        return r;
    if (a->repo->priority != b->repo->priority)
        return a->repo->priority > b->repo->priority ? -1 : 1;
    r = pool_evrcmp(pool, b->evr, a->evr, EVRCMP_COMPARE);
    if (r)
        return r;
    return a->repo->subpriority > b->repo->subpriority ? -1 : a->repo->subpriority < b->repo->subpriority;
}

/* Newest per name.arch of the candidates in all (sorted in place), among
 * repos of the best priority for that name. */
static void newest_of(lapis_ctx *ctx, Queue *all, Queue *out);

static void newest_available(lapis_ctx *ctx, char *const *globs, Queue *out)
{
    Pool *pool = ctx->pool;
    Queue all;
    Id p;

    queue_init(&all);
    FOR_POOL_SOLVABLES(p) {
        Solvable *s = pool_id2solvable(pool, p);
        if (lapis_pkg_is_available(ctx, p, s) && matches_any(ctx, s, globs))
            queue_push(&all, p);
    }
    newest_of(ctx, &all, out);
    queue_free(&all);
}

static void newest_of(lapis_ctx *ctx, Queue *all, Queue *out)
{
    Pool *pool = ctx->pool;
    solv_sort(all->elements, (size_t)all->count, sizeof(Id), cmp_name_arch_prio_evr, pool);
    for (int start = 0, end; start < all->count; start = end) {
        Id name = pool_id2solvable(pool, all->elements[start])->name;
        int best_prio = INT_MIN;
        for (end = start; end < all->count; end++) {
            Solvable *s = pool_id2solvable(pool, all->elements[end]);
            if (s->name != name)
                break;
            if (s->repo->priority > best_prio)
                best_prio = s->repo->priority;
        }
        /* Within a name group, per arch the first entry of the best priority is the newest. */
        for (int i = start; i < end; i++) {
            Solvable *s = pool_id2solvable(pool, all->elements[i]);
            Solvable *prev = i > start ? pool_id2solvable(pool, all->elements[i - 1]) : NULL;
            if (s->repo->priority < best_prio)
                continue;
            if (prev && prev->arch == s->arch && prev->repo->priority >= best_prio)
                continue;
            queue_push(out, all->elements[i]);
        }
    }
}

static void installed_matching(lapis_ctx *ctx, char *const *globs, Queue *out)
{
    Pool *pool = ctx->pool;
    Solvable *s;
    Id p;
    if (!pool->installed)
        return;
    FOR_REPO_SOLVABLES(pool->installed, p, s)
        if (matches_any(ctx, s, globs))
            queue_push(out, p);
}

static bool arch_compatible(Solvable *a, Solvable *b)
{
    return a->arch == b->arch || a->arch == ARCH_NOARCH || b->arch == ARCH_NOARCH;
}

static void upgrades(lapis_ctx *ctx, char *const *globs, Queue *out)
{
    Pool *pool = ctx->pool;
    Queue cand;
    queue_init(&cand);
    newest_available(ctx, globs, &cand);
    for (int i = 0; i < cand.count; i++) {
        Solvable *c = pool_id2solvable(pool, cand.elements[i]);
        Solvable *s;
        Id p;
        bool newer = false, older_or_same = false;
        if (!pool->installed)
            break;
        FOR_REPO_SOLVABLES(pool->installed, p, s) {
            if (s->name != c->name || !arch_compatible(s, c))
                continue;
            if (pool_evrcmp(pool, c->evr, s->evr, EVRCMP_COMPARE) > 0)
                newer = true;
            else
                older_or_same = true;
        }
        /* installonly packages (kernel) keep several versions: any newer one counts. */
        if (newer && !older_or_same)
            queue_push(out, cand.elements[i]);
        else if (newer && older_or_same) {
            bool newest_installed_older = true;
            FOR_REPO_SOLVABLES(pool->installed, p, s)
                if (s->name == c->name && arch_compatible(s, c) &&
                    pool_evrcmp(pool, c->evr, s->evr, EVRCMP_COMPARE) <= 0)
                    newest_installed_older = false;
            if (newest_installed_older)
                queue_push(out, cand.elements[i]);
        }
    }
    queue_free(&cand);
}

/* Queries need the pool; asking before lapis_load() is a caller's bug, not a crash. */
int lapis_query_require_loaded(lapis_ctx *ctx)
{
    if (!ctx->loaded)
        return lapis_err(ctx, LAPIS_E_USAGE, "internal: package query before lapis_load()");
    return 0;
}

int lapis_query_list(lapis_ctx *ctx, enum lapis_list_what what, char *const *globs,
                     lapis_pkglist *ret)
{
    Queue q, avail;
    int r;

    if ((r = lapis_query_require_loaded(ctx)) < 0)
        return r;
    queue_init(&q);
    queue_init(&avail);

    switch (what) {
    case LAPIS_LIST_INSTALLED:
        installed_matching(ctx, globs, &q);
        break;
    case LAPIS_LIST_ALL:
        installed_matching(ctx, globs, &q);
        /* fall through */
    case LAPIS_LIST_AVAILABLE:
        newest_available(ctx, globs, &avail);
        for (int i = 0; i < avail.count; i++)
            if (!installed_like(ctx, pool_id2solvable(ctx->pool, avail.elements[i]), true))
                queue_push(&q, avail.elements[i]);
        break;
    case LAPIS_LIST_UPGRADES:
        upgrades(ctx, globs, &q);
        break;
    }
    lapis_pkglist_from_queue(ret, &q);
    queue_free(&q);
    queue_free(&avail);
    return 0;
}

int lapis_query_all_versions(lapis_ctx *ctx, char *const *globs, bool installed, bool available,
                             lapis_pkglist *ret)
{
    Pool *pool = ctx->pool;
    Queue q;
    Id p;
    int r;

    if ((r = lapis_query_require_loaded(ctx)) < 0)
        return r;
    queue_init(&q);
    if (installed)
        installed_matching(ctx, globs, &q);
    if (available) {
        FOR_POOL_SOLVABLES(p) {
            Solvable *s = pool_id2solvable(pool, p);
            if (lapis_pkg_is_available(ctx, p, s) && matches_any(ctx, s, globs))
                queue_push(&q, p);
        }
    }
    lapis_pkglist_from_queue(ret, &q);
    queue_free(&q);
    return 0;
}

static bool is_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* A glob term matches the whole field, any other term a part of it; both ignore case. */
static bool field_matches(const char *field, const char *term)
{
    if (!field)
        return false;
    if (is_glob(term))
        return fnmatch(term, field, FNM_CASEFOLD) == 0;
    return strcasestr(field, term) != NULL;
}

/* One field of p; the string lives only until the next lookup (libsolv's buffers). */
static const char *search_field(lapis_ctx *ctx, lapis_pkg p, size_t f)
{
    switch (f) {
    case 0: return lapis_pkg_name(ctx, p);
    case 1: return lapis_pkg_summary(ctx, p);
    case 2: return lapis_pkg_description(ctx, p);
    default: return lapis_pkg_url(ctx, p);
    }
}

/* dnf5's weights: each field's bit, and the bit above it for an exact match. */
static unsigned term_fields(lapis_ctx *ctx, lapis_pkg p, const char *term, bool all, bool exact)
{
    static const unsigned bits[] = { LAPIS_SEARCH_NAME, LAPIS_SEARCH_SUMMARY,
                                     LAPIS_SEARCH_DESCRIPTION, LAPIS_SEARCH_URL };
    unsigned m = 0;

    for (size_t f = 0; f < (all ? ARRAY_SIZE(bits) : 2); f++) {
        const char *field = search_field(ctx, p, f);
        if (!field_matches(field, term))
            continue;
        m |= bits[f];
        if (exact && strcasecmp(field, term) == 0)
            m |= bits[f] << 1;
    }
    return m;
}

unsigned lapis_search_fields(lapis_ctx *ctx, lapis_pkg p, char *const *terms, bool all)
{
    /* Like dnf5: exact matches count for a single plain term only; without
     * --all every term must match, with --all any term may. */
    bool exact = terms[0] && !terms[1] && !is_glob(terms[0]);
    unsigned m = 0;

    for (size_t t = 0; terms[t]; t++) {
        unsigned tm = term_fields(ctx, p, terms[t], all, exact);
        if (!tm && !all)
            return 0;
        m |= tm;
    }
    return m;
}

int lapis_query_search(lapis_ctx *ctx, char *const *terms, bool all, lapis_pkglist *ret)
{
    Queue cand, q;
    int r;

    if ((r = lapis_query_require_loaded(ctx)) < 0)
        return r;
    queue_init(&cand);
    queue_init(&q);

    installed_matching(ctx, NULL, &cand);
    newest_available(ctx, NULL, &cand);
    for (int i = 0; i < cand.count; i++) {
        lapis_pkg p = cand.elements[i];
        /* Like dnf, one line per name.arch: the installed package wins. */
        if (lapis_search_fields(ctx, p, terms, all) &&
            !(!lapis_pkg_installed(ctx, p) && installed_like(ctx, S(ctx, p), false)))
            queue_push(&q, p);
    }
    lapis_pkglist_from_queue(ret, &q);
    queue_free(&cand);
    queue_free(&q);
    return 0;
}

bool lapis_spec_needs_filelists(const char *spec)
{
    return spec && (spec[0] == '/' || (spec[0] == '*' && strchr(spec, '/')));
}

/* "name", "name OP evr" or a rich dependency "(a or b)" -> libsolv dependency id. */
Id lapis_str2dep(Pool *pool, const char *spec)
{
    static const struct { const char *op; int flags; } ops[] = {
        { "<=", REL_LT | REL_EQ }, { ">=", REL_GT | REL_EQ }, { "==", REL_EQ },
        { "=", REL_EQ }, { "<", REL_LT }, { ">", REL_GT },
    };
    _cleanup_free_ char *s = xstrdup(spec);
    char *name, *op, *evr, *save = NULL;

    if (spec[0] == '(')
        return pool_parserpmrichdep(pool, spec);
    name = strtok_r(s, " \t", &save);
    op = strtok_r(NULL, " \t", &save);
    evr = strtok_r(NULL, " \t", &save);
    if (!name)
        return 0;
    if (!op || !evr)
        return pool_str2id(pool, name, 1);
    for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
        if (strcmp(op, ops[i].op) == 0)
            return pool_rel2id(pool, pool_str2id(pool, name, 1), pool_str2id(pool, evr, 1),
                               ops[i].flags, 1);
    return 0;
}

static void keep_real_pkgs(lapis_ctx *ctx, Queue *in, Queue *out)
{
    for (int i = 0; i < in->count; i++) {
        Id p = in->elements[i];
        Solvable *s = pool_id2solvable(ctx->pool, p);
        if (lapis_pkg_installed(ctx, p) || lapis_pkg_is_available(ctx, p, s))
            queue_push(out, p);
    }
}

static void providers_of(lapis_ctx *ctx, const char *spec, Queue *out)
{
    Pool *pool = ctx->pool;
    Queue sel, res;
    int flags = SELECTION_PROVIDES | SELECTION_GLOB | SELECTION_REL;

    if (lapis_spec_needs_filelists(spec))
        flags = SELECTION_FILELIST | SELECTION_GLOB;
    queue_init(&sel);
    queue_init(&res);
    selection_make(pool, &sel, spec, flags);
    if (sel.count == 0) {
        /* Rich or unusual deps selection_make does not take: evaluate the dep itself. */
        Id dep = lapis_str2dep(pool, spec);
        Id p, pp;
        if (dep)
            FOR_PROVIDES(p, pp, dep)
                queue_push(&res, p);
    } else {
        selection_solvables(pool, &sel, &res);
    }
    keep_real_pkgs(ctx, &res, out);
    queue_free(&sel);
    queue_free(&res);
}

int lapis_query_whatprovides(lapis_ctx *ctx, const char *spec, lapis_pkglist *ret)
{
    Queue q;
    int r;

    if ((r = lapis_query_require_loaded(ctx)) < 0)
        return r;
    queue_init(&q);
    providers_of(ctx, spec, &q);
    lapis_pkglist_from_queue(ret, &q);
    queue_free(&q);
    return 0;
}

static int cmp_pkg_display(const void *pa, const void *pb, void *dp)
{
    Pool *pool = dp;
    Solvable *a = pool_id2solvable(pool, *(const Id *)pa), *b = pool_id2solvable(pool, *(const Id *)pb);
    int r;
    if (a->name != b->name && (r = strcmp(pool_id2str(pool, a->name), pool_id2str(pool, b->name))))
        return r;
    if (a->arch != b->arch && (r = strcmp(pool_id2str(pool, a->arch), pool_id2str(pool, b->arch))))
        return r;
    if ((r = pool_evrcmp(pool, a->evr, b->evr, EVRCMP_COMPARE)))
        return r;
    bool ia = a->repo == pool->installed, ib = b->repo == pool->installed;
    if (ia != ib)
        return ia ? -1 : 1;
    return strcmp(a->repo->name, b->repo->name);
}

void lapis_pkglist_sort(lapis_ctx *ctx, lapis_pkglist *list)
{
    solv_sort(list->pkgs, list->count, sizeof(lapis_pkg), cmp_pkg_display, ctx->pool);
}

/* dnf5 download's choice: the spec as a name/NEVRA glob, else as a
 * capability or file; the newest available per name.arch either way. */
int lapis_query_latest(lapis_ctx *ctx, const char *spec, lapis_pkglist *ret)
{
    char *const globs[] = { (char *)spec, NULL };
    Queue q, prov, avail;
    int r;

    if ((r = lapis_query_require_loaded(ctx)) < 0)
        return r;
    queue_init(&q);
    queue_init(&prov);
    queue_init(&avail);
    newest_available(ctx, globs, &q);
    if (q.count == 0) {
        providers_of(ctx, spec, &prov);
        for (int i = 0; i < prov.count; i++)
            if (!lapis_pkg_installed(ctx, prov.elements[i]))
                queue_push(&avail, prov.elements[i]);
        newest_of(ctx, &avail, &q);
    }
    lapis_pkglist_from_queue(ret, &q);
    queue_free(&q);
    queue_free(&prov);
    queue_free(&avail);
    return 0;
}
