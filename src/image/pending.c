/*
 * Placeholders for the composer stages still being written: each fails with
 * a clear message, so a build that needs one stops instead of producing an
 * image without it. A stage's placeholder is deleted when the stage lands;
 * none may remain for a stage that is called done.
 */
#include <errno.h>
#include <stdlib.h>

#include "image/image.h"

static int pending(struct lapis_image_build *b, const char *what)
{
    return lapis_err(&b->diag, -ENOTSUP, "%s is not implemented yet", what);
}

int lapis_image_finalize(struct lapis_image_build *b) { return pending(b, "finalizing the root"); }
int lapis_image_boot_prepare(struct lapis_image_build *b) { return pending(b, "the boot files"); }
int lapis_image_write_disk(struct lapis_image_build *b) { return pending(b, "disk output"); }
int lapis_image_write_iso(struct lapis_image_build *b) { return pending(b, "ISO output"); }
int lapis_image_write_oci(struct lapis_image_build *b) { return pending(b, "OCI output"); }
int lapis_image_write_sbom(struct lapis_image_build *b) { return pending(b, "the SBOM"); }

/* config.c and lock.c (image-config): until they land, a build stops at the config. */
int lapis_image_config_load(struct lapis_diag *d, const char *path,
                            struct lapis_image_config **ret)
{
    *ret = NULL;
    return lapis_err(d, -ENOTSUP, "%s: reading image configs is not implemented yet", path);
}
void lapis_image_config_free(struct lapis_image_config *c) { (void)c; }
int lapis_image_format_from_name(const char *name) { (void)name; return -1; }
const char *lapis_image_format_name(unsigned bit) { (void)bit; return "?"; }
int lapis_image_lock_read(struct lapis_diag *d, const char *path, struct lapis_image_lock **ret)
{
    *ret = NULL;
    return lapis_err(d, -ENOTSUP, "%s: reading lock files is not implemented yet", path);
}
int lapis_image_lock_write(struct lapis_diag *d, const char *path, const struct lapis_image_lock *l)
{
    (void)l;
    return lapis_err(d, -ENOTSUP, "%s: writing lock files is not implemented yet", path);
}
void lapis_image_lock_free(struct lapis_image_lock *l) { (void)l; }
void lapis_image_pkg_clear(struct lapis_image_pkg *p)
{
    free(p->name); free(p->version); free(p->release); free(p->arch); free(p->repo);
    free(p->sha256); free(p->license); free(p->vendor); free(p->sourcerpm); free(p->url);
}
