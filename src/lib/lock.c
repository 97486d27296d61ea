/*
 * One lock per installroot: ROOT/var/lib/lapis/lock, held with an OFD
 * fcntl lock for the life of the context. The kernel drops it when the
 * holder dies, so a lock left by a killed run is never stale: the file may
 * stay, the lock does not. The holder's pid is written into the file only
 * to tell a waiting user who they are waiting for.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

static int try_lock(int fd)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    return fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

static long read_holder_pid(int fd)
{
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

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

    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    bool told = false;
    while ((r = try_lock(fd)) < 0) {
        if (r != -EAGAIN && r != -EACCES)
            return lapis_err(ctx, r, "cannot lock %s: %s", path, strerror(-r));
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited = (double)(now.tv_sec - start.tv_sec) +
                        (double)(now.tv_nsec - start.tv_nsec) / 1e9;
        long pid = read_holder_pid(fd);
        if (lapis_interrupted(ctx))
            return lapis_err(ctx, LAPIS_E_INTERRUPTED, "interrupted: nothing was changed (it was "
                             "waiting for process %ld to finish with %s)", pid,
                             lapis_ctx_installroot(ctx));
        if (waited >= (double)ctx->conf.lock_timeout)
            return lapis_err(ctx, LAPIS_E_LOCKED, "another lapis (pid %ld) is using %s; gave up "
                             "after %.1fs (lock_timeout); try again when it has finished",
                             pid, lapis_ctx_installroot(ctx), waited);
        if (!told) {
            lapis_log(ctx, LAPIS_LOG_WARNING, "waiting for process %ld to finish with %s "
                      "(up to %llds)", pid, lapis_ctx_installroot(ctx), ctx->conf.lock_timeout);
            told = true;
        }
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL); /* a signal cuts it short: checked above */
    }
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len)
        lapis_log(ctx, LAPIS_LOG_DEBUG, "cannot record pid in %s", path);
    ctx->lock_fd = TAKE_FD(fd);
    return 0;
}
