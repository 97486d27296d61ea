/*
 * build.c's helpers for the end of a build (publish.c): the unchanged-rebuild
 * cache, SHA256SUMS and its signature, and the renames into OUTDIR.
 */
#ifndef LAPIS_IMAGE_BUILD_H
#define LAPIS_IMAGE_BUILD_H

#include "image/image.h"

struct lapis_image_result;

/* Hex sha256 over everything an output depends on (*ret: owned). */
int lapis_image_cache_key(const struct lapis_image_config *c, const struct lapis_image_build *b,
                          size_t nb, long long epoch, unsigned formats, char **ret);
/* Copy CACHEDIR/images/KEY's outputs into stagedir; 0 on a hit, < 0 on a miss. */
int lapis_image_cache_restore(struct lapis_diag *d, const char *cachedir, const char *key,
                              const char *stagedir, char ***ret_outputs);
/* Best effort: a failure to cache is logged, never fails the build. */
void lapis_image_cache_store(struct lapis_diag *d, const char *cachedir, const char *key,
                             const char *stagedir, char *const *outputs);
/* stagedir/SHA256SUMS over every file of the outputs (+ .asc when signing is set);
 * both are added to *outputs. */
int lapis_image_write_sums(struct lapis_diag *d, const struct lapis_image_config *c,
                           const char *stagedir, char ***outputs);
/* Rename the outputs into outdir (replacing same-named ones) and list them in res. */
int lapis_image_publish(struct lapis_diag *d, const char *stagedir, const char *outdir,
                        char *const *outputs, struct lapis_image_result *res);

#endif
