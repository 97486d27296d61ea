/*
 * The ext4 root's inode times, set to the epoch with libext2fs.
 *
 * mkfs.ext4 -d copies each source inode's atime and ctime (which no syscall
 * can set) and stamps crtime with the clock, so a raw disk made twice would
 * differ. One pass over the inode table sets atime, ctime and crtime (and
 * their _extra nanosecond/epoch words) of every used inode to the epoch, and
 * mtime too for / and lost+found, which mkfs made itself. debugfs did the
 * same with six `sif` commands per path: each a path lookup, about 2 s for
 * this project's minimal server on the core dracut needs meanwhile.
 * Only inode table blocks are written: the superblock stays as mkfs left it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <ext2fs/ext2fs.h>

#include "image/ext4times.h"
#include "shared/diag.h"

#define FIELD_END(f) (offsetof(struct ext2_inode_large, f) + sizeof(((struct ext2_inode_large *)0)->f))

/* Whether the inode's extra space holds the field ending at end. */
static bool ext4times_fits(const ext2_filsys fs, const struct ext2_inode_large *in, size_t end)
{
    return EXT2_INODE_SIZE(fs->super) > EXT2_GOOD_OLD_INODE_SIZE &&
           EXT2_GOOD_OLD_INODE_SIZE + (size_t)in->i_extra_isize >= end;
}

static void ext4times_stamp(const ext2_filsys fs, struct ext2_inode_large *in, uint32_t t, bool mtime)
{
    in->i_atime = in->i_ctime = t;
    if (mtime)
        in->i_mtime = t;
    if (ext4times_fits(fs, in, FIELD_END(i_ctime_extra)))
        in->i_ctime_extra = 0;
    if (mtime && ext4times_fits(fs, in, FIELD_END(i_mtime_extra)))
        in->i_mtime_extra = 0;
    if (ext4times_fits(fs, in, FIELD_END(i_atime_extra)))
        in->i_atime_extra = 0;
    if (ext4times_fits(fs, in, FIELD_END(i_crtime_extra))) {
        in->i_crtime = t;
        in->i_crtime_extra = 0;
    }
}

/* Root, lost+found and every used inode past the reserved ones. */
static errcode_t ext4times_scan(ext2_filsys fs, uint32_t t, ext2_ino_t lost)
{
    struct ext2_inode_large in;
    ext2_inode_scan scan;
    ext2_ino_t ino;
    errcode_t e = ext2fs_open_inode_scan(fs, 0, &scan);

    while (!e && !(e = ext2fs_get_next_inode_full(scan, &ino, (struct ext2_inode *)&in, sizeof(in))) && ino) {
        if (!in.i_links_count || (ino != EXT2_ROOT_INO && ino < EXT2_FIRST_INODE(fs->super)))
            continue;
        ext4times_stamp(fs, &in, t, ino == EXT2_ROOT_INO || ino == lost);
        e = ext2fs_write_inode_full(fs, ino, (struct ext2_inode *)&in, sizeof(in));
    }
    if (scan)
        ext2fs_close_inode_scan(scan);
    return e;
}

static errcode_t ext4times_run(ext2_filsys fs, uint32_t t)
{
    static const char lf[] = "lost+found";
    ext2_ino_t lost = 0;
    errcode_t e = ext2fs_lookup(fs, EXT2_ROOT_INO, lf, sizeof(lf) - 1, NULL, &lost);

    if (e && e != EXT2_ET_FILE_NOT_FOUND)
        return e;
    return ext4times_scan(fs, t, lost);
}

int lapis_image_ext4_set_times(struct lapis_diag *d, const char *path, unsigned long long offset,
                               long long epoch)
{
    char opts[32];
    ext2_filsys fs = NULL;
    errcode_t e, c;

    if (epoch < 0 || epoch > UINT32_MAX)
        return lapis_err(d, -ERANGE, "SOURCE_DATE_EPOCH %lld does not fit ext4's 32-bit times", epoch);
    snprintf(opts, sizeof(opts), "offset=%llu", offset);
    e = ext2fs_open2(path, opts, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
    if (!e) {
        fs->now = (time_t)epoch;    /* anything libext2fs stamps itself */
        e = ext4times_run(fs, (uint32_t)epoch);
        c = ext2fs_close_free(&fs);
        e = e ? e : c;
    }
    if (e)
        return lapis_err(d, -EIO, "cannot set the file times in the ext4 file system in %s: %s", path,
                         error_message(e));
    return 0;
}
