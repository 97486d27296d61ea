/*
 * The finalize stage's internal helpers (finalize*.c): files written inside
 * the root without following its symlinks out of it, host tools run against
 * the root, and the steps themselves, one function each.
 */
#ifndef LAPIS_IMAGE_FINALIZE_H
#define LAPIS_IMAGE_FINALIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "image/image.h"

/* Write path (absolute, inside the root) atomically with mode and owner;
 * missing parent directories are created inside the root. */
int fin_write(struct lapis_image_build *b, const char *path, const char *data, size_t len,
              mode_t mode, uid_t uid, gid_t gid);
int fin_write_str(struct lapis_image_build *b, const char *path, const char *text);
/* Read a file inside the root (no symlink followed at the last component). */
int fin_read(struct lapis_image_build *b, const char *path, char **ret, size_t *ret_len);
/* lstat inside the root; -ENOENT when absent. */
int fin_stat(struct lapis_image_build *b, const char *path, struct stat *st);
bool fin_exists(struct lapis_image_build *b, const char *path);
/* Replace whatever is at path by a symlink to target. */
int fin_symlink(struct lapis_image_build *b, const char *path, const char *target);
/* Make a directory (and parents) inside the root with mode and owner. */
int fin_mkdir(struct lapis_image_build *b, const char *path, mode_t mode, uid_t uid, gid_t gid);
/* Run a host tool; pkg is the Debian package that ships it (for the error).
 * ok_codes lists extra exit codes taken as success (0-terminated, may be NULL). */
int fin_run(struct lapis_image_build *b, const char *pkg, char *const argv[], const int *ok_codes);
/* Is the root for an arch this host's tools cannot read (ldconfig)? */
bool fin_foreign_arch(const struct lapis_image_build *b);
bool fin_keep(const struct lapis_image_build *b, const char *what);

/* Walk the root without following symlinks; fn gets the parent dirfd, the
 * entry name, its path relative to the root ("usr/bin/su") and its lstat. */
typedef int (*fin_walk_fn)(struct lapis_image_build *b, int dirfd, const char *name,
                           const char *relpath, const struct stat *st, void *data);
int fin_walk(struct lapis_image_build *b, const char *top, fin_walk_fn fn, void *data);

/* The steps (each returns 0 or a negative error with the message on b->diag). */
int fin_debian(struct lapis_image_build *b);     /* finalize-debian.c */
int fin_pam(struct lapis_image_build *b);        /* finalize-pam.c */
int fin_sysusers(struct lapis_image_build *b);   /* finalize-users.c */
int fin_users(struct lapis_image_build *b);
int fin_os(struct lapis_image_build *b);         /* finalize-os.c */
int fin_files(struct lapis_image_build *b);
int fin_sysctl(struct lapis_image_build *b);     /* finalize-harden.c */
int fin_harden(struct lapis_image_build *b);
int fin_setuid(struct lapis_image_build *b);
int fin_selinux(struct lapis_image_build *b);
int fin_cleanup(struct lapis_image_build *b);    /* finalize.c */

#endif
