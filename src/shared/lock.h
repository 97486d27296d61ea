/* OFD locks (lock.c): waiting for one with a timeout, and one writer per directory. */
#ifndef LAPIS_SHARED_LOCK_H
#define LAPIS_SHARED_LOCK_H

#include <sys/types.h>

#include "shared/diag.h"

#define LAPIS_LOCK_PID_SLOT 16 /* bytes per pid record in a lock file: "%15ld\n" */

struct lapis_lock_req {
    int fd;
    short type;         /* F_RDLCK or F_WRLCK */
    off_t start, len;   /* byte range; len 0 = the whole file */
    off_t pid_at;       /* where the exclusive holder's pid is written */
    const char *what;   /* for messages: the root, or "the cache DIR" */
};

/* Wait up to timeout seconds for the lock q describes (-LAPIS_E_LOCKED naming
 * the holder, -LAPIS_E_INTERRUPTED on the interrupt flag). */
int lapis_lock_wait(struct lapis_diag *ctx, const struct lapis_lock_req *q, long long timeout);

/* Lock dir/lock (dir is created) exclusively, waiting up to timeout seconds for
 * another holder, and record our pid in it; what names the locked thing in
 * messages. *ret_fd holds the lock. */
int lapis_lock_take(struct lapis_diag *ctx, const char *dir, const char *what, long long timeout,
                    int *ret_fd);

#endif
