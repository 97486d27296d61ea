/*
 * Locks, all OFD fcntl locks, so the kernel drops them when the holder dies:
 * a lock left by a killed run is never stale (the file may stay, the lock
 * does not).
 *
 * The root lock, ROOT/var/lib/lapis/lock, exclusive, is held for the life
 * of the context by every run that changes the root.
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
#include <time.h>

#include "internal.h"

#define PID_SLOT 16 /* bytes per pid in the cache lock file: "%15ld\n" */

struct lock_req {
    int fd;
    short type;         /* F_RDLCK or F_WRLCK */
    off_t start, len;   /* byte range; len 0 = the whole file */
    off_t pid_at;       /* where the exclusive holder's pid is written */
    const char *what;   /* for messages: the root, or "the cache DIR" */
};

static int try_lock(const struct lock_req *q)
{
    struct flock fl = { .l_type = q->type, .l_whence = SEEK_SET, .l_start = q->start,
                        .l_len = q->len };
    return fcntl(q->fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

/* The pid of an exclusive holder in our way; 0 if the holders are readers
 * (they do not record themselves) or the lock is free again. */
static long holder_pid(const struct lock_req *q)
{
    struct flock fl = { .l_type = q->type, .l_whence = SEEK_SET, .l_start = q->start,
                        .l_len = q->len };
    char buf[PID_SLOT + 1] = "";
    if (fcntl(q->fd, F_OFD_GETLK, &fl) < 0 || fl.l_type != F_WRLCK)
        return 0;
    ssize_t n = pread(q->fd, buf, PID_SLOT, q->pid_at);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static int give_up(lapis_ctx *ctx, long pid, const char *what, double waited)
{
    if (pid > 0)
        return lapis_err(ctx, LAPIS_E_LOCKED, "another lapis (pid %ld) is using %s; gave up "
                         "after %.1fs (lock_timeout); try again when it has finished",
                         pid, what, waited);
    return lapis_err(ctx, LAPIS_E_LOCKED, "other lapis runs are using %s; gave up after %.1fs "
                     "(lock_timeout); try again when they have finished", what, waited);
}

static void tell_waiting(lapis_ctx *ctx, long pid, const char *what)
{
    if (pid > 0)
        lapis_log(ctx, LAPIS_LOG_WARNING, "waiting for process %ld to finish with %s (up to %llds)",
                  pid, what, ctx->conf.lock_timeout);
    else
        lapis_log(ctx, LAPIS_LOG_WARNING, "waiting for other lapis runs to finish with %s "
                  "(up to %llds)", what, ctx->conf.lock_timeout);
}

/* Poll for the lock until lock_timeout (OFD locks have no timed wait). */
static int lock_wait(lapis_ctx *ctx, const struct lock_req *q)
{
    struct timespec start;
    bool told = false;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &start);
    while ((r = try_lock(q)) < 0) {
        if (r != -EAGAIN && r != -EACCES)
            return lapis_err(ctx, r, "cannot lock %s: %s", q->what, strerror(-r));
        double waited = seconds_since(&start);
        long pid = holder_pid(q);
        if (lapis_interrupted(ctx))
            return lapis_err(ctx, LAPIS_E_INTERRUPTED, "interrupted: nothing was changed (it was "
                             "waiting for process %ld to finish with %s)", pid, q->what);
        if (waited >= (double)ctx->conf.lock_timeout)
            return give_up(ctx, pid, q->what, waited);
        if (!told)
            tell_waiting(ctx, pid, q->what);
        told = true;
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL); /* a signal cuts it short: checked above */
    }
    return 0;
}

/* ---- the root lock -------------------------------------------------------- */

int lapis_ctx_lock(lapis_ctx *ctx)
{
    _cleanup_free_ char *dir = NULL, *path = NULL;
    _cleanup_close_ int fd = -1;
    struct stat st;
    int r;

    if (ctx->lock_fd >= 0)
        return 0;
    if ((r = lapis_ctx_setup(ctx)) < 0)
        return r;
    dir = path_in_root(ctx->installroot, "/var/lib/lapis");
    path = path_join(dir, "lock");
    if ((r = mkdir_p(dir, 0755)) < 0)
        return lapis_err(ctx, r, "cannot create %s: %s", dir, strerror(-r));
    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return lapis_err(ctx, -errno, "cannot open the lock %s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return lapis_err(ctx, LAPIS_E_LOCKED, "%s is not a regular file; remove it", path);

    struct lock_req q = { .fd = fd, .type = F_WRLCK, .what = lapis_ctx_installroot(ctx) };
    if ((r = lock_wait(ctx, &q)) < 0)
        return r;
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len)
        lapis_log(ctx, LAPIS_LOG_DEBUG, "cannot record pid in %s", path);
    ctx->lock_fd = TAKE_FD(fd);
    return 0;
}

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
    struct lock_req q = { .fd = fd, .type = type, .start = slot, .len = 1,
                          .pid_at = (off_t)slot * PID_SLOT, .what = what };
    int r = lock_wait(ctx, &q);
    if (r < 0)
        return r;
    ctx->cache_held[slot] = type;
    if (type == F_WRLCK) {
        char buf[PID_SLOT + 1];
        snprintf(buf, sizeof(buf), "%15ld\n", (long)getpid());
        if (pwrite(fd, buf, PID_SLOT, q.pid_at) != PID_SLOT)
            lapis_log(ctx, LAPIS_LOG_DEBUG, "cannot record pid in the cache lock");
    }
    return 0;
}

int lapis_lock_cache(lapis_ctx *ctx, bool clean)
{
    short want = clean ? F_WRLCK : F_RDLCK;
    int r;

    if ((r = lapis_ctx_setup(ctx)) < 0 || (r = open_cache_lock(ctx)) < 0)
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
