/*
 * OFD fcntl locks, so the kernel drops them when the holder dies: a lock left
 * by a killed run is never stale (the file may stay, the lock does not).
 * Waiting polls until a timeout (OFD locks have no timed wait), names the
 * exclusive holder's pid, and gives up on the interrupt flag. The package
 * manager's root and cache locks (src/pkg/lock.c) are built on these.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "shared/lock.h"

static int try_lock(const struct lapis_lock_req *q)
{
    struct flock fl = { .l_type = q->type, .l_whence = SEEK_SET, .l_start = q->start,
                        .l_len = q->len };
    return fcntl(q->fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

/* The pid of an exclusive holder in our way; 0 if the holders are readers
 * (they do not record themselves) or the lock is free again. */
static long holder_pid(const struct lapis_lock_req *q)
{
    struct flock fl = { .l_type = q->type, .l_whence = SEEK_SET, .l_start = q->start,
                        .l_len = q->len };
    char buf[LAPIS_LOCK_PID_SLOT + 1] = "";
    if (fcntl(q->fd, F_OFD_GETLK, &fl) < 0 || fl.l_type != F_WRLCK)
        return 0;
    ssize_t n = pread(q->fd, buf, LAPIS_LOCK_PID_SLOT, q->pid_at);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static int give_up(struct lapis_diag *ctx, long pid, const char *what, double waited)
{
    if (pid > 0)
        return lapis_err(ctx, LAPIS_E_LOCKED, "another lapis (pid %ld) is using %s; gave up "
                         "after %.1fs (lock_timeout); try again when it has finished",
                         pid, what, waited);
    return lapis_err(ctx, LAPIS_E_LOCKED, "other lapis runs are using %s; gave up after %.1fs "
                     "(lock_timeout); try again when they have finished", what, waited);
}

/* "waiting for process PID to finish with WHAT"; readers record no pid. */
static char *waiting_for(long pid, const char *what)
{
    if (pid > 0)
        return xasprintf("waiting for process %ld to finish with %s", pid, what);
    return xasprintf("waiting for other lapis runs to finish with %s", what);
}

/* Poll for the lock until timeout (OFD locks have no timed wait). */
int lapis_lock_wait(struct lapis_diag *ctx, const struct lapis_lock_req *q, long long timeout)
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
        if (lapis_interrupted(ctx)) {
            _cleanup_free_ char *doing = waiting_for(pid, q->what);
            return lapis_err(ctx, LAPIS_E_INTERRUPTED, "interrupted: nothing was changed (it was "
                             "%s)", doing);
        }
        if (waited >= (double)timeout)
            return give_up(ctx, pid, q->what, waited);
        if (!told) {
            _cleanup_free_ char *doing = waiting_for(pid, q->what);
            lapis_log(ctx, LAPIS_LOG_WARNING, "%s (up to %llds)", doing, timeout);
        }
        told = true;
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL); /* a signal cuts it short: checked above */
    }
    return 0;
}

/* ---- one exclusive lock on a whole file ----------------------------------- */

int lapis_lock_take(struct lapis_diag *ctx, const char *dir, const char *what, long long timeout,
                    int *ret_fd)
{
    _cleanup_free_ char *path = NULL;
    _cleanup_close_ int fd = -1;
    struct stat st;
    int r;

    path = path_join(dir, "lock");
    if ((r = mkdir_p(dir, 0755)) < 0)
        return lapis_err(ctx, r, "cannot create %s: %s", dir, strerror(-r));
    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return lapis_err(ctx, -errno, "cannot open the lock %s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return lapis_err(ctx, LAPIS_E_LOCKED, "%s is not a regular file; remove it", path);

    struct lapis_lock_req q = { .fd = fd, .type = F_WRLCK, .what = what };
    if ((r = lapis_lock_wait(ctx, &q, timeout)) < 0)
        return r;
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len)
        lapis_log(ctx, LAPIS_LOG_DEBUG, "cannot record pid in %s", path);
    *ret_fd = TAKE_FD(fd);
    return 0;
}
