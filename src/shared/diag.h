/*
 * Diagnostics for code below the package manager: the last error message,
 * the log callback and the progress callback, in one small object the caller
 * owns. lapis_ctx embeds one as its first member; a tool without lapis_ctx
 * (the on-host updater) uses its own.
 */
#ifndef LAPIS_SHARED_DIAG_H
#define LAPIS_SHARED_DIAG_H

#include <signal.h>
#include <stdbool.h>

#include "lapis/common.h"

struct lapis_diag {
    char *errmsg;                  /* last error (lapis_err), owned */
    lapis_log_fn log_fn;
    void *log_data;
    bool no_debug;                 /* debug messages are not wanted: skip building them */
    lapis_progress_fn progress_fn;
    void *progress_data;
    const volatile sig_atomic_t *interrupt; /* the program's signal flag, or NULL */
};

/* Store a formatted message on d (may be NULL) and return code as a negative value. */
int lapis_diag_err(struct lapis_diag *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void lapis_diag_log(struct lapis_diag *d, enum lapis_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Whether a message at lvl would reach anyone (costly debug text can be skipped). */
static inline bool lapis_diag_wants(const struct lapis_diag *d, enum lapis_log_level lvl)
{
    return d && d->log_fn && !(lvl == LAPIS_LOG_DEBUG && d->no_debug);
}
/* The last error, never NULL. */
const char *lapis_diag_error(const struct lapis_diag *d);
void lapis_diag_clear(struct lapis_diag *d);

static inline void lapis_diag_progress(struct lapis_diag *d, enum lapis_progress_kind k,
                                       const char *name, unsigned long long done,
                                       unsigned long long total)
{
    if (d && d->progress_fn)
        d->progress_fn(k, name, done, total, d->progress_data);
}

/* True once the program's SIGINT/SIGTERM handler has asked us to stop. */
static inline bool lapis_diag_interrupted(const struct lapis_diag *d)
{
    return d && d->interrupt && *d->interrupt;
}

/* lapis_err(x, ...) and friends take a struct lapis_diag * here; a layer above
 * redefines LAPIS_DIAG_OF to also accept its own context (src/pkg/internal.h). */
#ifndef LAPIS_DIAG_OF
#define LAPIS_DIAG_OF(x) (x)
#endif
#define lapis_err(x, ...) lapis_diag_err(LAPIS_DIAG_OF(x), __VA_ARGS__)
#define lapis_log(x, ...) lapis_diag_log(LAPIS_DIAG_OF(x), __VA_ARGS__)
#define lapis_log_wants(x, lvl) lapis_diag_wants(LAPIS_DIAG_OF(x), (lvl))
#define lapis_progress(x, ...) lapis_diag_progress(LAPIS_DIAG_OF(x), __VA_ARGS__)
#define lapis_interrupted(x) lapis_diag_interrupted(LAPIS_DIAG_OF(x))
#define LAPIS_OOM(x) lapis_err((x), -12, "out of memory")

#endif
