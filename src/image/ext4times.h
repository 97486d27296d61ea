/*
 * The ext4 file system's inode times set to the epoch (ext4times.c), for
 * reproducible disks: mkfs.ext4 -d leaves the build's ctimes and clock in it.
 */
#ifndef LAPIS_IMAGE_EXT4TIMES_H
#define LAPIS_IMAGE_EXT4TIMES_H

struct lapis_diag;

/* The ext4 file system at offset bytes into path: atime, ctime and crtime of
 * every used inode (and mtime of / and lost+found) become epoch. Returns 0,
 * or a negative errno with the message on d. */
int lapis_image_ext4_set_times(struct lapis_diag *d, const char *path, unsigned long long offset,
                               long long epoch);

#endif
