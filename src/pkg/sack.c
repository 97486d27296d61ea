/*
 * The package sack: one libsolv pool holding the installed system (read
 * from the installroot's rpmdb through libsolvext) and every loaded repo,
 * with excludes applied through the pool's "considered" map.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <string.h>
#include <sys/stat.h>

#include "pkg/internal.h"
#include <solv/bitmap.h>
#include <solv/poolarch.h>
#include <solv/repo_rpmdb.h>
#include <solv/repo_solv.h>
#include <solv/solvable.h>
#include <solv/util.h>


int lapis_sack_init(lapis_ctx *ctx)
{
    if (ctx->pool)
        return 0;
    ctx->pool = pool_create();
    pool_setdisttype(ctx->pool, DISTTYPE_RPM);
    pool_setarch(ctx->pool, ctx->arch);
    pool_set_flag(ctx->pool, POOL_FLAG_IMPLICITOBSOLETEUSESCOLORS, 1);
    if (ctx->installroot)
        pool_set_rootdir(ctx->pool, ctx->installroot);
    return 0;
}

int lapis_sack_load_system(lapis_ctx *ctx)
{
    Repo *sys = repo_create(ctx->pool, "@System");
    _cleanup_free_ char *rel = NULL, *dir = NULL;
    bool link;
    int r;

    if ((r = lapis_rpmdb_locate(ctx, &rel, &link)) < 0)
        return r;
    dir = path_in_root(lapis_ctx_installroot(ctx), rel);
    pool_set_installed(ctx->pool, sys);
    /* No rpmdb (a fresh root, a Debian host) is an empty system, as for dnf. */
    if (!lapis_rpmdb_present(dir))
        return 0;
    /* libsolv reads only ROOT/var/lib/rpm. */
    if (link)
        return lapis_err(ctx, LAPIS_E_REPO, "the rpm database %s has no link at var/lib/rpm "
                         "in the root, where lapis reads it; create it: ln -s "
                         "../../usr/lib/sysimage/rpm %s/var/lib/rpm", dir,
                         lapis_ctx_installroot(ctx));
    if (repo_add_rpmdb_reffp(sys, NULL, REPO_USE_ROOTDIR | REPO_REUSE_REPODATA) != 0)
        return lapis_err(ctx, LAPIS_E_REPO, "cannot read the rpm database in %s: %s; check it "
                         "with rpm --root %s --dbpath /%s -qa", dir,
                         lapis_sack_errstr(ctx->pool, "librpm could not open it"),
                         lapis_ctx_installroot(ctx), rel);
    return 0;
}

struct lapis_repo *lapis_sack_repo_of(lapis_ctx *ctx, Repo *repo)
{
    return repo && repo != ctx->pool->installed ? repo->appdata : NULL;
}

/* exclude= (global and per repo) hides packages; includepkgs= hides all others. */
static void apply_excludes(lapis_ctx *ctx)
{
    Pool *pool = ctx->pool;
    char **main_inc = ctx->conf.includepkgs && ctx->conf.includepkgs[0] ? ctx->conf.includepkgs : NULL;
    bool any = false;
    Id p;
    Solvable *s;

    for (size_t i = 0; i < ctx->nrepos && !any; i++)
        any = lapis_repo_filtered(ctx, ctx->repos[i]);
    if (!any)
        return;
    FOR_POOL_SOLVABLES(p) {
        s = pool_id2solvable(pool, p);
        struct lapis_repo *lr = lapis_sack_repo_of(ctx, s->repo);
        if (!lr)
            continue;
        char **inc = lr->includepkgs ? lr->includepkgs : main_inc;
        /* Per-repo exclude starts as a copy of the global one, so one check covers both. */
        if (lapis_pkg_match_any(pool, s, lr->opts.exclude) ||
            lapis_pkg_match_any(pool, s, ctx->extra_excludes) ||
            (inc && !lapis_pkg_match_any(pool, s, inc)))
            MAPCLR(lapis_sack_considered(ctx), p);
    }
}

/* Refuse packages recorded as unsafe: hidden, so no later step (query,
 * download) ever sees them. */
static void hide_unsafe_locations(lapis_ctx *ctx, struct lapis_repo *lr)
{
    Pool *pool = ctx->pool;
    Id key = pool_str2id(pool, UNSAFE_KEY, 0);
    Queue q;

    if (!key)
        return;
    queue_init(&q);
    repo_lookup_idarray(lr->solv, SOLVID_META, key, &q);
    if (q.count)
        lapis_metadata_load_details(ctx); /* the warning names the location */
    for (int i = 0; i < q.count; i++) {
        Id p = lr->solv->start + q.elements[i] - 1;
        if (p >= lr->solv->end)
            continue;
        MAPCLR(lapis_sack_considered(ctx), p);
        if (i < 3)
            lapis_log(ctx, LAPIS_LOG_WARNING, "repo %s: ignoring %s: its location '%s' points "
                      "outside the repository", lr->id, pool_solvable2str(pool, pool->solvables + p),
                      solvable_lookup_location(pool->solvables + p, NULL));
    }
    if (q.count > 3)
        lapis_log(ctx, LAPIS_LOG_WARNING, "repo %s: %d packages ignored for unsafe locations",
                  lr->id, q.count);
    queue_free(&q);
}

/* Packages a repo offers: not advisories, not hidden by excludes or unsafe locations. */
static void count_packages(lapis_ctx *ctx, struct lapis_repo *lr)
{
    Pool *pool = ctx->pool;
    Solvable *s;
    Id p;
    lr->npackages = 0;
    FOR_REPO_SOLVABLES(lr->solv, p, s) {
        if (pool->considered && !MAPTST(pool->considered, p))
            continue;
        if (!lapis_is_advisory(pool, s))
            lr->npackages++;
    }
}

/* The pool's "considered" map (packages the solver may use), made on first need. */
Map *lapis_sack_considered(lapis_ctx *ctx)
{
    Pool *pool = ctx->pool;
    if (!pool->considered) {
        pool->considered = xcalloc(1, sizeof(Map));
        map_init(pool->considered, pool->nsolvables);
        map_setall(pool->considered);
    }
    return pool->considered;
}

static void drop_considered(Pool *pool)
{
    if (!pool->considered)
        return;
    map_free(pool->considered);
    free(pool->considered);
    pool->considered = NULL;
}

/* pool_free() does not release the considered map: we own it. */
void lapis_sack_free(lapis_ctx *ctx)
{
    for (size_t i = 0; i < ctx->ncmdline_pkgs; i++) {
        free(ctx->cmdline_pkgs[i].path);
        free(ctx->cmdline_pkgs[i].from_repo);
    }
    free(ctx->cmdline_pkgs);
    ctx->cmdline_pkgs = NULL;
    ctx->ncmdline_pkgs = 0;
    ctx->cmdline_repo = NULL;
    free(ctx->reasons);
    ctx->reasons = NULL;
    ctx->reasons_loaded = false;
    /* Freed here, not in history.c: the pool's teardown must not depend on the history. */
    for (size_t i = 0; i < ctx->nfrom_repos; i++)
        free(ctx->from_repos[i]);
    free(ctx->from_repos);
    ctx->from_repos = NULL;
    ctx->nfrom_repos = 0;
    ctx->from_repos_loaded = false;
    if (!ctx->pool)
        return;
    drop_considered(ctx->pool);
    pool_free(ctx->pool);
    ctx->pool = NULL;
}

/* pool_createwhatprovides() frees the pool's string hash (libsolv's own
 * comment there: "XXX: should not be here!"), so the first pool_str2id() after
 * it, in every selection, hashes all strings again: ~19M instructions and 2 MB
 * of fresh pages for 63k packages. It adds no strings, so the old hash stays
 * valid and is kept across the call. (The relation hash is not public.) */
static void create_whatprovides(Pool *pool)
{
    Hashtable tbl = pool->ss.stringhashtbl;
    Hashval mask = pool->ss.stringhashmask;

    pool->ss.stringhashtbl = NULL;
    pool->ss.stringhashmask = 0;
    pool_createwhatprovides(pool);
    /* Should a libsolv ever make a new hash in there, that is the one to keep. */
    if (pool->ss.stringhashtbl) {
        solv_free(tbl);
    } else {
        pool->ss.stringhashtbl = tbl;
        pool->ss.stringhashmask = mask;
    }
}

/* What the solver may use (excludes, then unsafe locations hidden), and what
 * each loaded repo offers. */
void lapis_sack_count(lapis_ctx *ctx)
{
    drop_considered(ctx->pool); /* rebuilt from scratch */
    apply_excludes(ctx);
    for (size_t i = 0; i < ctx->nrepos; i++) {
        if (!ctx->repos[i]->solv)
            continue;
        hide_unsafe_locations(ctx, ctx->repos[i]);
        count_packages(ctx, ctx->repos[i]); /* after hiding: counts what is offered */
    }
}

void lapis_sack_finish(lapis_ctx *ctx)
{
    lapis_sack_count(ctx);
    pool_addfileprovides(ctx->pool);
    create_whatprovides(ctx->pool);
}

/* The package with exactly this name, arch and evr: the installed one, or the
 * offered one (not excluded) from the highest-priority repo. */
Id lapis_sack_find_exact(Pool *pool, Id name, Id arch, Id evr, bool installed)
{
    Id p, pp, best = 0;
    FOR_PROVIDES(p, pp, name) {
        Solvable *s = pool_id2solvable(pool, p);
        if (s->name != name || s->arch != arch || s->evr != evr)
            continue;
        if ((s->repo == pool->installed) != installed)
            continue;
        if (!installed && pool->considered && !MAPTST(pool->considered, p))
            continue;
        if (!best || s->repo->priority > pool_id2solvable(pool, best)->repo->priority)
            best = p;
    }
    return best;
}

/* Add one local .rpm to the "@commandline" repo (header read by libsolvext). */
int lapis_sack_add_rpm(lapis_ctx *ctx, const char *path, Id *ret)
{
    Pool *pool = ctx->pool;
    _cleanup_free_ char *abs = NULL;
    Id p;

    if (!(abs = realpath(path, NULL)))
        return lapis_err(ctx, -errno, "cannot open %s: %s", path, strerror(errno));
    if (!ctx->cmdline_repo)
        ctx->cmdline_repo = repo_create(pool, "@commandline");
    p = repo_add_rpm(ctx->cmdline_repo, abs, REPO_NO_INTERNALIZE | RPM_ADD_WITH_HDRID);
    if (!p)
        return lapis_err(ctx, LAPIS_E_NOTFOUND, "%s is not a readable rpm package: %s", path,
                         lapis_sack_errstr(pool, "not an rpm header"));
    repo_internalize(ctx->cmdline_repo);
    /* repo_add_rpm appends one solvable, so the index is always the next slot. */
    size_t idx = (size_t)(p - ctx->cmdline_repo->start);
    ctx->cmdline_pkgs = xrealloc(ctx->cmdline_pkgs, (idx + 1) * sizeof(*ctx->cmdline_pkgs));
    ctx->cmdline_pkgs[idx] = (struct lapis_cmdline_pkg){ TAKE_PTR(abs), NULL, NULL };
    ctx->ncmdline_pkgs = idx + 1;
    *ret = p;
    return 0;
}

static struct lapis_cmdline_pkg *cmdline_pkg(lapis_ctx *ctx, Id p)
{
    Repo *r = ctx->cmdline_repo;
    if (!r || p < r->start || (size_t)(p - r->start) >= ctx->ncmdline_pkgs)
        return NULL;
    return &ctx->cmdline_pkgs[p - r->start];
}

const char *lapis_sack_cmdline_path(lapis_ctx *ctx, Id p)
{
    struct lapis_cmdline_pkg *c = cmdline_pkg(ctx, p);
    return c ? c->path : NULL;
}

struct lapis_repo *lapis_sack_cmdline_origin(lapis_ctx *ctx, Id p)
{
    struct lapis_cmdline_pkg *c = cmdline_pkg(ctx, p);
    return c ? c->origin : NULL;
}

const char *lapis_sack_cmdline_from_repo(lapis_ctx *ctx, Id p)
{
    struct lapis_cmdline_pkg *c = cmdline_pkg(ctx, p);
    return c ? c->from_repo : NULL;
}

void lapis_sack_set_from_repo(lapis_ctx *ctx, Id p, const char *repoid)
{
    struct lapis_cmdline_pkg *c = cmdline_pkg(ctx, p);
    if (!c)
        return;
    free(c->from_repo);
    c->from_repo = xstrdup(repoid);
}

int lapis_sack_add_cached_rpm(lapis_ctx *ctx, const char *path, struct lapis_repo *origin, Id *ret)
{
    int p = 0;
    int r = lapis_ctx_add_rpm_file(ctx, path, &p);
    if (r < 0)
        return r;
    if (p) /* 0 before lapis_load(): the file is only queued */
        cmdline_pkg(ctx, p)->origin = origin;
    *ret = p;
    return 0;
}

int lapis_ctx_add_rpm_file(lapis_ctx *ctx, const char *path, int *ret_pkg)
{
    Id p = 0;
    int r;

    if (ret_pkg)
        *ret_pkg = 0;
    if (!ctx->loaded)
        return strv_push(&ctx->pending_rpms, xstrdup(path));
    if ((r = lapis_sack_add_rpm(ctx, path, &p)) < 0)
        return r;
    /* The considered map and the provides index must cover the new solvable. */
    if (ctx->pool->considered) {
        Map *m = ctx->pool->considered;
        map_grow(m, ctx->pool->nsolvables);
        MAPSET(m, p);
    }
    pool_addfileprovides(ctx->pool);
    create_whatprovides(ctx->pool);
    if (ret_pkg)
        *ret_pkg = p;
    return 0;
}

/* ---- matching ------------------------------------------------------------ */

/* dnf's package specs: name, name.arch, name-[e:]v, name-[e:]v-r, and those with .arch. */
bool lapis_pkg_glob_match(Pool *pool, Solvable *s, const char *glob)
{
    const char *name = pool_id2str(pool, s->name);
    if (fnmatch(glob, name, 0) == 0)
        return true;
    if (!strpbrk(glob, ".-"))
        return false;
    const char *arch = pool_id2str(pool, s->arch);
    const char *evr = pool_id2str(pool, s->evr);
    const char *noepoch = strchr(evr, ':') ? strchr(evr, ':') + 1 : evr;
    _cleanup_free_ char *ver = xstrdup(noepoch);
    char *dash = strrchr(ver, '-');
    if (dash)
        *dash = '\0';
    const char *forms[][3] = {
        { name, ".", arch }, { name, "-", evr }, { name, "-", noepoch }, { name, "-", ver },
    };
    for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
        _cleanup_free_ char *f = xasprintf("%s%s%s", forms[i][0], forms[i][1], forms[i][2]);
        _cleanup_free_ char *fa = xasprintf("%s.%s", f, arch);
        if (fnmatch(glob, f, 0) == 0 || (i > 0 && fnmatch(glob, fa, 0) == 0))
            return true;
    }
    return false;
}

bool lapis_pkg_match_any(Pool *pool, Solvable *s, char *const *globs)
{
    for (size_t i = 0; globs && globs[i]; i++)
        if (lapis_pkg_glob_match(pool, s, globs[i]))
            return true;
    return false;
}
