/*
 * build.c's helpers for the end of a build (publish.c): the unchanged-rebuild
 * cache, SHA256SUMS and its signature, and the renames into OUTDIR.
 */
#ifndef LAPIS_IMAGE_BUILD_H
#define LAPIS_IMAGE_BUILD_H

#include "image/image.h"

#include <stdbool.h>

struct lapis_image_result;

/* Finishing outputs while the build goes on: a worker thread hashes each
 * output handed to it (fsyncing it first when asked) and copies it into a
 * temporary dir of CACHEDIR/images (cachedir NULL: no copies). SHA256SUMS and
 * the cache store take what is still valid (the file unchanged since: same
 * inode, size, mtime and ctime) and redo the rest. remove: rm -rf dir in a
 * thread of its own, joined by free. */
struct lapis_image_finisher;
struct lapis_image_finisher *lapis_image_finisher_new(const char *stagedir, const char *cachedir);
void lapis_image_finisher_add(struct lapis_image_finisher *f, const char *name, bool sync);
void lapis_image_finisher_remove(struct lapis_image_finisher *f, const char *dir);
/* Wait for the worker; < 0 (on d) when an fsync it did failed. */
int lapis_image_finisher_stop(struct lapis_diag *d, struct lapis_image_finisher *f);
void lapis_image_finisher_free(struct lapis_image_finisher *f);

/* Hex sha256 over everything an output depends on (*ret: owned). */
int lapis_image_cache_key(const struct lapis_image_config *c, const struct lapis_image_build *b,
                          size_t nb, long long epoch, unsigned formats, char **ret);
/* Copy CACHEDIR/images/KEY's outputs into stagedir; 0 on a hit, < 0 on a miss. */
int lapis_image_cache_restore(struct lapis_diag *d, const char *cachedir, const char *key,
                              const char *stagedir, char ***ret_outputs);
/* Best effort: a failure to cache is logged, never fails the build. */
void lapis_image_cache_store(struct lapis_diag *d, const char *cachedir, const char *key,
                             const char *stagedir, char *const *outputs,
                             struct lapis_image_finisher *fin);
/* stagedir/SHA256SUMS over every file of the outputs (+ .asc when signing is set);
 * both are added to *outputs. */
int lapis_image_write_sums(struct lapis_diag *d, const struct lapis_image_config *c,
                           const char *stagedir, char ***outputs,
                           const struct lapis_image_finisher *fin);
/* Rename the outputs into outdir (replacing same-named ones) and list them in res. */
int lapis_image_publish(struct lapis_diag *d, const char *stagedir, const char *outdir,
                        char *const *outputs, struct lapis_image_result *res);

#endif
