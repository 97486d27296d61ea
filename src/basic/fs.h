/* File-system helpers (fs.c): paths, install roots, atomic writes. */
#ifndef LAPIS_BASIC_FS_H
#define LAPIS_BASIC_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

char *path_join(const char *a, const char *b);
/* Prefix root (may be NULL or "/") to an absolute path. */
char *path_in_root(const char *root, const char *path);
int mkdir_p(const char *path, mode_t mode);
int rm_rf(const char *path, int *ret_count);
bool path_exists(const char *path);
/* Symlinks resolved in the part of an absolute path that exists. */
char *path_resolve(const char *path);
/* Read a whole (small) file; max_size bounds it. */
int read_file(const char *path, size_t max_size, char **ret_buf, size_t *ret_len);
/* Write data atomically: temp file in the same dir, fsync, rename. */
int write_file_atomic(const char *path, const void *data, size_t len);
/* A directory inside root (symlinks resolved within it, never escaping), created
 * with create. Returns an fd or a negative errno. */
int open_dir_in_root(const char *root, const char *dir, bool create);
/* Remove PREFIX<pid>-* directories whose owner is dead and that are older than
 * grace_s seconds; returns how many. */
int sweep_dead_owner_dirs(const char *parent, const char *prefix, long grace_s);
/* Atomically write name in dirfd (temp file, fsync, rename; no symlink followed). */
int write_file_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);

/* What tree_walk() calls for every entry under (and including) its top, never
 * following symlinks. Return 0 to go on, TREE_WALK_SKIP (for a directory on
 * its way in) to leave out what is below it, or a negative errno to stop. */
#define TREE_WALK_SKIP 1
typedef int (*tree_walk_fn)(const char *path, const struct stat *st, void *data);
/* Walk top with fn, parents before their entries, or after them with
 * post_order (to change a directory once its content is done). State goes
 * through data: no globals, as nftw() would need. Returns 0, fn's error, or
 * the walk's own negative errno. */
int tree_walk(const char *top, bool post_order, tree_walk_fn fn, void *data);

#endif
