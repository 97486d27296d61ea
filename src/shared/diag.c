/*
 * Error and log plumbing. The library never prints: an error is a negative
 * code returned up the stack plus one message kept on the caller's
 * diagnostics; warnings and notes go to the log callback the program installed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "shared/diag.h"

int lapis_diag_err(struct lapis_diag *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (ctx) {
        free(ctx->errmsg);
        ctx->errmsg = msg;
    } else {
        free(msg);
    }
    return code < 0 ? code : -code;
}

void lapis_diag_log(struct lapis_diag *ctx, enum lapis_log_level lvl, const char *fmt, ...)
{
    va_list ap;
    _cleanup_free_ char *msg = NULL;

    if (!lapis_diag_wants(ctx, lvl))
        return;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (msg)
        ctx->log_fn(lvl, msg, ctx->log_data);
}

const char *lapis_diag_error(const struct lapis_diag *ctx)
{
    return ctx && ctx->errmsg ? ctx->errmsg : "unknown error";
}

void lapis_diag_clear(struct lapis_diag *d)
{
    free(d->errmsg);
    d->errmsg = NULL;
}
