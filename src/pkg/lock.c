/*
 * The package manager's locks, all OFD fcntl locks (waiting and the pid
 * records are in src/shared/lock.c), so the kernel drops them when the
 * holder dies: a lock left by a killed run is never stale (the file may stay,
 * the lock does not).
 *
 * The root lock, ROOT/var/lib/lapis/lock, exclusive, is held for the life
 * of the context by every run that changes the root (lapis_ctx_lock in
 * context.c, through lapis_lock_take).
 *
 * The cache lock, CACHEDIR/lock, is one byte range per purpose (several roots
 * may share a cachedir, so the lock belongs to the cachedir):
 *   byte 0  the cache itself: shared by every run that uses it, for the life
 *           of the context; exclusive for 'clean', which removes it.
 *   byte 1  the metadata: shared while a run reads repodata/, exclusive while
 *           one refreshes it or fetches into it.
 *   byte 2  the packages: exclusive while a run downloads packages.
 *
 * Order, so that no two runs wait for each other: root, then byte 0, then
 * byte 1 or 2; a run holding byte 1 or 2 waits for no other lock. A shared
 * lock is never upgraded in place (two readers upgrading would wait for each
 * other until lock_timeout): it is dropped, then the exclusive one awaited.
 * (lapis_goal_run takes the root lock late when its caller has not; that
 * cannot deadlock either: byte 0 is only ever awaited exclusively by
 * 'clean', which holds no other lock.)
 *
 * An exclusive holder writes its pid into the file (the root lock at the
 * start, the cache lock in a slot per byte) only to tell a waiting user who
 * they are waiting for.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "pkg/internal.h"

/* ---- the cache lock ------------------------------------------------------- */

/* Open CACHEDIR/lock once. 0 with cache_lock_fd < 0 means "no lock possible
 * here" (a cache this user may only read, a read-only file system): such a
 * run cannot change the cache, and what it reads it reports failing itself. */
static int open_cache_lock(lapis_ctx *ctx)
{
    const char *dir = ctx->conf.cachedir;
    _cleanup_free_ char *path = path_join(dir, "lock");
    struct stat st;
    int r;

    if (ctx->cache_lock_fd >= 0 || ctx->cache_lock_tried)
        return 0;
    ctx->cache_lock_tried = true;
    if ((r = mkdir_p(dir, 0755)) < 0 && r != -EACCES && r != -EROFS && r != -EPERM)
        return lapis_err(ctx, r, "cannot create the cache directory %s: %s", dir, strerror(-r));
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        ctx->cache_lock_ro = true;
    }
    if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM || errno == ENOENT)) {
        lapis_log(ctx, LAPIS_LOG_DEBUG, "cannot open the cache lock %s: %s; going on without it",
                  path, strerror(errno));
        return 0;
    }
    if (fd < 0)
        return lapis_err(ctx, -errno, "cannot open the cache lock %s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lapis_err(ctx, LAPIS_E_LOCKED, "%s is not a regular file; remove it", path);
    }
    ctx->cache_lock_fd = fd;
    return 0;
}

/* Set byte `slot` of the cache lock to type; the caller has checked it differs. */
static int cache_lock_slot(lapis_ctx *ctx, int slot, short type)
{
    int fd = ctx->cache_lock_fd;
    if (fd < 0)
        return 0;
    if (type == F_UNLCK || (type == F_RDLCK && ctx->cache_held[slot] == F_WRLCK)) {
        /* Releasing or downgrading never waits. */
        struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = slot, .l_len = 1 };
        fcntl(fd, F_OFD_SETLK, &fl);
        ctx->cache_held[slot] = type;
        return 0;
    }
    if (type == F_WRLCK && ctx->cache_held[slot] == F_RDLCK)
        cache_lock_slot(ctx, slot, F_UNLCK); /* no upgrade in place; see the top of the file */
    if (type == F_WRLCK && ctx->cache_lock_ro)
        return 0; /* a cache we may not write: the write itself will say so */
    _cleanup_free_ char *what = xasprintf("the cache %s", ctx->conf.cachedir);
    struct lapis_lock_req q = { .fd = fd, .type = type, .start = slot, .len = 1,
                          .pid_at = (off_t)slot * LAPIS_LOCK_PID_SLOT, .what = what };
    int r = lapis_lock_wait(&ctx->diag, &q, ctx->conf.lock_timeout);
    if (r < 0)
        return r;
    ctx->cache_held[slot] = type;
    if (type == F_WRLCK) {
        char buf[LAPIS_LOCK_PID_SLOT + 1];
        snprintf(buf, sizeof(buf), "%15ld\n", (long)getpid());
        if (pwrite(fd, buf, LAPIS_LOCK_PID_SLOT, q.pid_at) != LAPIS_LOCK_PID_SLOT)
            lapis_log(ctx, LAPIS_LOG_DEBUG, "cannot record pid in the cache lock");
    }
    return 0;
}

int lapis_lock_cache(lapis_ctx *ctx, bool clean)
{
    short want = clean ? F_WRLCK : F_RDLCK;
    int r;

    /* Its callers (metadata, download, clean) run after setup, which found
     * the cachedir; not calling setup here keeps this file below context.c. */
    if (!ctx->setup_done)
        return lapis_err(ctx, LAPIS_E_USAGE, "the cache lock needs lapis_ctx_setup() first");
    if ((r = open_cache_lock(ctx)) < 0)
        return r;
    if (ctx->cache_held[0] == want || ctx->cache_held[0] == F_WRLCK)
        return 0;
    return cache_lock_slot(ctx, 0, want);
}

int lapis_lock_cache_area(lapis_ctx *ctx, enum lapis_cache_area area, short type,
                          short *ret_prev)
{
    short prev = ctx->cache_held[area];
    int r;

    if ((r = lapis_lock_cache(ctx, false)) < 0)
        return r;
    if (prev != type && prev != F_WRLCK && (r = cache_lock_slot(ctx, area, type)) < 0)
        return r;
    *ret_prev = prev;
    return 0;
}

void lapis_lock_cache_area_restore(lapis_ctx *ctx, enum lapis_cache_area area, short prev)
{
    if (ctx->cache_held[area] != prev && prev != F_WRLCK)
        cache_lock_slot(ctx, area, prev);
}
