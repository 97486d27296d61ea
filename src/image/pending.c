/*
 * Placeholders for the composer stages still being written: each fails with
 * a clear message, so a build that needs one stops instead of producing an
 * image without it. A stage's placeholder is deleted when the stage lands;
 * none may remain for a stage that is called done.
 */
#include <errno.h>

#include "image/image.h"

static int pending(struct lapis_image_build *b, const char *what)
{
    return lapis_err(&b->diag, -ENOTSUP, "%s is not implemented yet", what);
}

int lapis_image_write_iso(struct lapis_image_build *b) { return pending(b, "ISO output"); }
