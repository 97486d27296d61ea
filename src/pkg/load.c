/*
 * The two entry points that set the context up before they work on the
 * cache: lapis_load (rpmdb, repo metadata and command-line packages into
 * the pool) and lapis_clean. Kept out of sack.c so that the sack does not
 * depend on setup, which itself frees the sack.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "pkg/internal.h"

static int load_pool(lapis_ctx *ctx, unsigned flags)
{
    int r;

    lapis_sack_init(ctx);
    if (!(flags & LAPIS_LOAD_NO_SYSTEM) && (r = lapis_sack_load_system(ctx)) < 0)
        return r;
    if (!(flags & LAPIS_LOAD_NO_REPOS) && (r = lapis_metadata_load_all(ctx, flags)) < 0)
        return r;
    for (size_t i = 0; ctx->pending_rpms[i]; i++) {
        Id p;
        if ((r = lapis_sack_add_rpm(ctx, ctx->pending_rpms[i], &p)) < 0)
            return r;
    }
    return 0;
}

/* The pool and what points into it; the repos' counts and cache paths stay. */
static void drop_pool(lapis_ctx *ctx)
{
    lapis_sack_free(ctx);
    ctx->details_loaded = false;
    for (size_t i = 0; i < ctx->nrepos; i++) {
        ctx->repos[i]->solv = NULL; /* freed with the pool */
        ctx->repos[i]->filelists_loaded = ctx->repos[i]->details_loaded = false;
    }
}

/* A failed load leaves no half-filled pool behind: the next lapis_load()
 * starts over (and fails again, or skips what it may skip) instead of
 * taking the partial pool as loaded. */
static void unload(lapis_ctx *ctx)
{
    drop_pool(ctx);
    for (size_t i = 0; i < ctx->nrepos; i++) {
        struct lapis_repo *lr = ctx->repos[i];
        lr->npackages = 0;
        lr->timestamp = 0;
        lr->skipped = false;
        free(lr->solv_dir);
        lr->solv_dir = NULL;
        free(lr->comps_path);
        lr->comps_path = NULL;
    }
}

int lapis_load(lapis_ctx *ctx, unsigned flags)
{
    bool caches_only = (flags & LAPIS_LOAD_CACHES_ONLY) && !ctx->loaded;
    int r;

    if ((r = lapis_ctx_setup(ctx)) < 0)
        return r;
    if (!ctx->loaded) {
        if ((r = load_pool(ctx, flags)) < 0) {
            unload(ctx);
            return r;
        }
    } else if ((flags & LAPIS_LOAD_FILELISTS) && (r = lapis_metadata_load_filelists(ctx)) < 0) {
        return r;
    }
    if (caches_only) { /* counted; the pool may lack repos parsed while downloading */
        lapis_sack_count(ctx);
        drop_pool(ctx);
        return 0;
    }
    lapis_sack_finish(ctx);
    ctx->loaded = true;
    return 0;
}

static int clean_repo_dir(const char *dir, unsigned what, int *count)
{
    int r = 0, k;
    if (what & LAPIS_CLEAN_METADATA) {
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (str_startswith(de->d_name, "repodata")) {
                _cleanup_free_ char *p = path_join(dir, de->d_name);
                if ((k = rm_rf(p, count)) < 0 && !r)
                    r = k;
            }
        }
        if (d)
            closedir(d);
    }
    if (what & LAPIS_CLEAN_PACKAGES) {
        _cleanup_free_ char *p = path_join(dir, "packages");
        if ((k = rm_rf(p, count)) < 0 && !r)
            r = k;
    }
    rmdir(dir); /* only succeeds once it is empty */
    return r;
}

/* Clean every cache directory under cachedir (also those of repos no longer configured). */
int lapis_clean(lapis_ctx *ctx, unsigned what)
{
    DIR *d;
    struct dirent *de;
    int count = 0, r = 0, k;

    if ((r = lapis_ctx_setup(ctx)) < 0)
        return r;
    if (!path_exists(ctx->conf.cachedir))
        return 0;
    /* Alone: a run using the cache would find its files gone under it. */
    if ((r = lapis_lock_cache(ctx, true)) < 0)
        return r;
    d = opendir(ctx->conf.cachedir);
    if (!d)
        return errno == ENOENT ? 0 : lapis_err(ctx, -errno, "cannot open %s: %s",
                                               ctx->conf.cachedir, strerror(errno));
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *p = path_join(ctx->conf.cachedir, de->d_name);
        struct stat st;
        if (lstat(p, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if (strcmp(de->d_name, "keyfacts") == 0) /* sigpolicy.c's: metadata about keys */
            k = what & LAPIS_CLEAN_METADATA ? rm_rf(p, &count) : 0;
        else
            k = clean_repo_dir(p, what, &count);
        if (k < 0 && !r)
            r = lapis_err(ctx, k, "cannot clean %s: %s", p, strerror(-k));
    }
    closedir(d);
    return r < 0 ? r : count;
}
