/*
 * Package downloads for a transaction: one curl-multi batch across every
 * repo and mirror (max_parallel_downloads), each package size- and
 * digest-checked against the metadata while it streams, written to a
 * ".part" that later runs resume, and renamed into the cache only when it
 * matches. A package already in the cache is used only after the same
 * checks, so a file damaged on disk is fetched again, never installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pkg/internal.h"
#include "pkg/goal.h"
#include "pkg/pkgfile.h"
#include <solv/repo.h>
#include <solv/knownid.h>

static enum lapis_chk chk_from_solv(Id type)
{
    switch (type) {
    case REPOKEY_TYPE_SHA1: return LAPIS_CHK_SHA1;
    case REPOKEY_TYPE_SHA256: return LAPIS_CHK_SHA256;
    case REPOKEY_TYPE_SHA512: return LAPIS_CHK_SHA512;
    default: return LAPIS_CHK_NONE;
    }
}

/* A cached file counts only if its size and digest still match the metadata. */
static bool cached_file_ok(const char *path, long long size, enum lapis_chk t, const char *hex)
{
    struct stat st;
    char got[129];
    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || (size >= 0 && st.st_size != size))
        return false;
    return t != LAPIS_CHK_NONE && lapis_chk_file(path, t, got, sizeof(got)) == 0 &&
           strcasecmp(got, hex) == 0;
}

void lapis_pkgfiles_free(struct lapis_pkgfile *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++) {
        free(f[i].path);
        free(f[i].href);
        free(f[i].chk_hex);
        if (f[i].memfd >= 0 && f[i].in_memory)
            close(f[i].memfd);
        if (f[i].hdr)
            headerFree(f[i].hdr);
    }
    free(f);
}

static bool needs_file(enum lapis_action a)
{
    return a < LAPIS_ACT_REMOVE;
}

/* Work out where every incoming package comes from and goes to. */
static int plan_files(lapis_goal *g, const char *downloaddir, struct lapis_pkgfile **ret,
                      size_t *ret_n)
{
    lapis_ctx *ctx = g->ctx;
    Pool *pool = ctx->pool;
    struct lapis_pkgfile *f = xcalloc(g->nitems + 1, sizeof(*f));
    size_t n = 0;
    int r;

    for (size_t i = 0; i < g->nitems; i++) {
        if (!needs_file(g->items[i].action))
            continue;
        Id p = g->items[i].pkg;
        Solvable *s = pool_id2solvable(pool, p);
        struct lapis_pkgfile *pf = &f[n++];
        pf->pkg = p;
        pf->memfd = -1;
        const char *local = lapis_sack_cmdline_path(ctx, p);
        if (local) {
            pf->path = xstrdup(local);
            pf->local = true;
            pf->repo = lapis_sack_cmdline_origin(ctx, p); /* cached copy of a repo package */
            continue;
        }
        pf->repo = lapis_sack_repo_of(ctx, s->repo);
        /* Locations live in the lazily loaded details cache (not needed to solve);
         * removals and local files never pay for it. */
        lapis_metadata_load_details(ctx);
        const char *loc = solvable_lookup_location(s, NULL);
        if (!pf->repo || !loc || !lapis_href_is_safe(loc)) {
            lapis_pkgfiles_free(f, n);
            return lapis_err(ctx, LAPIS_E_UNSAFE, "%s: refusing location '%s': it points outside "
                             "the repository", pool_solvable2str(pool, s), loc ? loc : "(none)");
        }
        Id type = 0;
        const char *hex = solvable_lookup_checksum(s, SOLVABLE_CHECKSUM, &type);
        pf->chk = chk_from_solv(type);
        pf->chk_hex = hex ? xstrdup(hex) : NULL;
        if (pf->chk == LAPIS_CHK_NONE || !hex) {
            lapis_pkgfiles_free(f, n);
            return lapis_err(ctx, LAPIS_E_METADATA, "repo %s: no usable checksum for %s in the "
                             "metadata; cannot verify it", pf->repo->id, pool_solvable2str(pool, s));
        }
        unsigned long long sz = solvable_lookup_num(s, SOLVABLE_DOWNLOADSIZE, 0);
        pf->size = sz ? (long long)sz : -1;
        _cleanup_free_ char *rd = downloaddir ? NULL : lapis_cache_repo_dir(ctx, pf->repo);
        _cleanup_free_ char *dir = downloaddir ? xstrdup(downloaddir) : path_join(rd, "packages");
        if ((r = mkdir_p(dir, 0755)) < 0) {
            lapis_pkgfiles_free(f, n);
            return lapis_err(ctx, r, "cannot create %s: %s", dir, strerror(-r));
        }
        const char *base = strrchr(loc, '/');
        pf->path = path_join(dir, base ? base + 1 : loc);
        pf->href = xstrdup(loc); /* loc is a pool scratch buffer */
    }
    *ret = f;
    *ret_n = n;
    return 0;
}

static int download_locked(lapis_goal *g, const char *downloaddir, bool in_memory,
                           struct lapis_pkgfile **ret, size_t *ret_n);

/* ---- file:// packages, used where they are -------------------------------- */

#define IN_MEMORY_MAX (1LL << 30)   /* bytes of a transaction's packages held in memory */

/* The local path of a package in a repo with one file:/// baseurl, else NULL. */
static char *local_repo_path(const struct lapis_repo *repo, const char *href)
{
    const char *base = repo->baseurls && !repo->baseurls[1] ? repo->baseurls[0] : NULL;
    if (!base || strncmp(base, "file:///", 8) || strchr(base, '%') || strchr(href, '%'))
        return NULL;
    return path_join(base + 7, href);
}

static int memfd_fail(lapis_ctx *ctx, struct lapis_pkgfile *pf, const char *what, int err)
{
    return lapis_err(ctx, err < 0 ? err : -EIO, "repo %s: cannot read %s: %s", pf->repo->id, what,
                     strerror(err < 0 ? -err : EIO));
}

/* Copy src into a sealed memfd, checking size and digest on the way: rpm reads
 * these very bytes (/proc/self/fd/N), which nobody can change any more. */
static int copy_checked(lapis_ctx *ctx, struct lapis_pkgfile *pf, int src, int mfd, char *got)
{
    const size_t len = 1 << 17;
    _cleanup_free_ char *buf = xmalloc(len);
    lapis_hasher *h = lapis_hasher_new(pf->chk);
    long long total = 0;
    ssize_t n = 0;
    int r = 0;

    if (!h)
        return LAPIS_OOM(ctx);
    while (r == 0 && (n = read(src, buf, len)) > 0) {
        lapis_hasher_update(h, buf, (size_t)n);
        total += n;
        if (write(mfd, buf, (size_t)n) != n)
            r = -errno;
    }
    if (r == 0 && n < 0)
        r = -errno;
    lapis_hasher_final_hex(h, got, 129);
    lapis_hasher_free(h);
    if (r == 0 && pf->size >= 0 && total != pf->size)
        return 1;
    return r;
}

static int load_in_memory(lapis_ctx *ctx, struct lapis_pkgfile *pf, const char *path)
{
    Pool *pool = ctx->pool;
    const char *what = pool_solvable2str(pool, pool_id2solvable(pool, pf->pkg));
    _cleanup_close_ int src = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    char got[129];
    struct stat st;
    int mfd, r;

    if (src < 0 || fstat(src, &st) < 0 || !S_ISREG(st.st_mode))
        return memfd_fail(ctx, pf, path, src < 0 ? -errno : -EINVAL);
    if ((mfd = memfd_create("lapis-pkg", MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0)
        return memfd_fail(ctx, pf, path, -errno);
    if ((r = copy_checked(ctx, pf, src, mfd, got)) < 0 ||
        (r == 0 && fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
                                           F_SEAL_SEAL) < 0 && (r = -errno) < 0)) {
        close(mfd);
        return memfd_fail(ctx, pf, path, r);
    }
    if (r == 1 || strcasecmp(got, pf->chk_hex) != 0) {
        close(mfd);
        if (r == 1)
            return lapis_err(ctx, LAPIS_E_CHECKSUM, "repo %s: %s: size does not match the "
                             "metadata's %lld (truncated or stale repo) [%s]", pf->repo->id, what,
                             pf->size, path);
        return lapis_err(ctx, LAPIS_E_CHECKSUM, "repo %s: %s: %s checksum mismatch (expected %s, "
                         "got %s): corrupt or tampered file [%s]", pf->repo->id, what,
                         lapis_chk_name(pf->chk), pf->chk_hex, got, path);
    }
    free(pf->path);
    pf->path = xasprintf("/proc/self/fd/%d", mfd);
    pf->memfd = mfd;
    pf->in_memory = true;
    return 0;
}

/* Packages of a file:// repo are not copied into the cache (nor unlinked from
 * it afterwards): each is read once into memory, checked there and installed
 * from there. Up to IN_MEMORY_MAX in all; the rest, and those the cache has
 * already (--downloadonly before: used and dropped), go the usual way. */
static int use_in_place(lapis_ctx *ctx, struct lapis_pkgfile *f, size_t n)
{
    long long held = 0;
    struct stat st;
    int r;
    if (access("/proc/self/fd", X_OK) < 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        struct lapis_pkgfile *pf = &f[i];
        _cleanup_free_ char *src = pf->local || !pf->href ? NULL : local_repo_path(pf->repo, pf->href);
        if (!src || pf->size < 0 || held + pf->size > IN_MEMORY_MAX || lstat(pf->path, &st) == 0)
            continue;
        if ((r = load_in_memory(ctx, pf, src)) < 0)
            return r;
        held += pf->size;
    }
    return 0;
}

static bool needs_repo_file(lapis_goal *g)
{
    for (size_t i = 0; i < g->nitems; i++)
        if (needs_file(g->items[i].action) && !lapis_sack_cmdline_path(g->ctx, g->items[i].pkg))
            return true;
    return false;
}

/* Downloads into the cache hold its packages lock alone, from the "is it
 * cached already" check to the rename: two runs sharing a cachedir would
 * otherwise append to, or unlink, each other's .part files. Details (the
 * locations) are read first, under the metadata lock, to keep the lock order. */
int lapis_download_packages(lapis_goal *g, const char *downloaddir, bool in_memory,
                            struct lapis_pkgfile **ret, size_t *ret_n)
{
    short prev;
    int r;

    in_memory &= !downloaddir;
    if (!needs_repo_file(g))
        return download_locked(g, downloaddir, false, ret, ret_n); /* removals, local files */
    lapis_metadata_load_details(g->ctx);
    if (downloaddir)
        return download_locked(g, downloaddir, false, ret, ret_n);
    if ((r = lapis_lock_cache_area(g->ctx, LAPIS_CACHE_PACKAGES, F_WRLCK, &prev)) < 0)
        return r;
    r = download_locked(g, downloaddir, in_memory, ret, ret_n);
    lapis_lock_cache_area_restore(g->ctx, LAPIS_CACHE_PACKAGES, prev);
    return r;
}

static int download_locked(lapis_goal *g, const char *downloaddir, bool in_memory,
                           struct lapis_pkgfile **ret, size_t *ret_n)
{
    lapis_ctx *ctx = g->ctx;
    Pool *pool = ctx->pool;
    struct lapis_pkgfile *f = NULL;
    struct lapis_fetch_job *jobs;
    char **whats = NULL;
    size_t n = 0, njobs = 0;
    long long total = 0;
    int r;

    if ((r = plan_files(g, downloaddir, &f, &n)) < 0)
        return r;
    if (in_memory && (r = use_in_place(ctx, f, n)) < 0) {
        lapis_pkgfiles_free(f, n);
        return r;
    }
    jobs = xcalloc(n + 1, sizeof(*jobs));
    whats = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        struct lapis_pkgfile *pf = &f[i];
        if (pf->local || pf->in_memory || cached_file_ok(pf->path, pf->size, pf->chk, pf->chk_hex))
            continue;
        if (ctx->conf.cacheonly == 2) {
            r = lapis_err(ctx, LAPIS_E_CACHE, "Cache-only enabled but no cache for package %s; "
                          "run without -C (or with --setopt=cacheonly=metadata) to download it",
                          pool_solvable2str(pool, pool_id2solvable(pool, pf->pkg)));
            break;
        }
        whats[njobs] = xasprintf("repo %s: %s", pf->repo->id,
                                 pool_solvable2str(pool, pool_id2solvable(pool, pf->pkg)));
        jobs[njobs] = (struct lapis_fetch_job){
            .mirrors = pf->repo->baseurls, .href = pf->href, .dest = pf->path,
            .expected_size = pf->size, .chk_type = pf->chk, .chk_hex = pf->chk_hex,
            .what = whats[njobs], .sslverify = pf->repo->opts.sslverify,
            .limits = &pf->repo->opts.net,
            .sslcacert = pf->repo->opts.sslcacert, .resume = true,
        };
        njobs++;
        pf->downloaded = true;
        total += pf->size > 0 ? pf->size : 0;
    }
    if (r == 0 && njobs > 0) {
        struct lapis_fetch_opts o;
        lapis_fetch_opts_from(ctx, &o);
        o.fsync = false; /* a cached package is re-checked before every use */
        o.progress_total = total;
        r = lapis_fetch_run(&ctx->diag, jobs, njobs, &o);
    }
    for (size_t i = 0; i < njobs; i++)
        lapis_fetch_job_clear(&jobs[i]);
    free(jobs);
    lapis_strv_free(whats);
    if (r < 0) {
        lapis_pkgfiles_free(f, n);
        return r;
    }
    *ret = f;
    *ret_n = n;
    return 0;
}
