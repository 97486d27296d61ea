/*
 * Helpers shared by the boot and disk stages (boot.c, disk.c, iso.c): running
 * the image tools with one-line errors, files read from the root without
 * leaving it, and identifiers derived from the config so that two builds of
 * one config give the same bytes while two configs give different disks.
 */
#ifndef LAPIS_IMAGE_BOOTDISK_H
#define LAPIS_IMAGE_BOOTDISK_H

#include <stddef.h>
#include <sys/types.h>

#include "image/image.h"

/* Run argv through lapis_spawn with env additions (may be NULL) in cwd (may be
 * NULL). A missing tool names the Debian package pkg; a failure quotes the
 * tool's last stderr line. Returns 0 or a negative error set on b->diag. */
int lapis_image_tool(struct lapis_image_build *b, const char *pkg, char *const argv[],
                     char *const env[], const char *cwd);
/* The same, stdout captured into *ret_out (caller frees). */
int lapis_image_tool_out(struct lapis_image_build *b, const char *pkg, char *const argv[],
                         char **ret_out);

/* Open path inside b->rootdir read-only, symlinks resolved within the root. */
int lapis_image_open_in_root(struct lapis_image_build *b, const char *path);
/* Copy the file fd (from its start) to dst, created with mode. */
int lapis_image_copy_fd(struct lapis_image_build *b, int fd, const char *dst, mode_t mode);
/* Set every mtime/atime under dir (not following symlinks) to b->epoch. */
int lapis_image_clamp_tree(struct lapis_image_build *b, const char *dir);

/* A UUID (RFC 4122 v4 layout) from sha256(config digest, epoch, arch, what):
 * 16 raw bytes and the text form (37 bytes with NUL). */
void lapis_image_uuid(const struct lapis_image_build *b, const char *what,
                      unsigned char raw[16], char text[37]);

/* ISO output boots the boot stage's initrd (iso.c): before its dracut run,
 * put the lapis-live module into a dracut base dir inside the root and a
 * drop-in into confdir; *ret_basedir is dracut's base dir then (caller
 * frees). _done removes that dir from the root again. */
int lapis_image_live_dracut_prepare(struct lapis_image_build *b, const char *confdir,
                                    char **ret_basedir);
void lapis_image_live_dracut_done(struct lapis_image_build *b);

/* Write the root-grow files (repart.d drop-in, growfs unit) into the root
 * tree: the A/B host's root partition has no /usr of its own (disk.c). */
int lapis_image_grow_files(struct lapis_image_build *b);

/* Make the fixed VHD footer at the end of fd deterministic (disk.c). */
int lapis_image_vhd_footer(struct lapis_image_build *b, int fd);
/* Make qemu-img's vhdx in fd deterministic: derived GUIDs, fixed sequence
 * numbers, checksums recomputed, the empty log zeroed (vhdx.c). */
int lapis_image_vhdx_fix(struct lapis_image_build *b, int fd);

#endif
