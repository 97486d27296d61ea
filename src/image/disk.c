/*
 * The disk stage: a GPT disk image built without loop devices, mounts or
 * device-mapper. Each filesystem is made as its own file (mkfs.vfat + mtools,
 * mkfs.ext4 -d, mkfs.erofs), then copied into its partition of a sparse file
 * partitioned by sgdisk. Every identifier (disk GUID, partition GUIDs,
 * filesystem UUIDs, hash seeds, FAT serial) is derived from the config digest
 * and the epoch, and every timestamp is the epoch, so a build is reproducible
 * while two images never share a GUID. raw is converted to qcow2, VHD (whose
 * footer we write ourselves) and vhdx (whose GUIDs we set: vhdx.c) by qemu-img.
 *
 * Partition types follow the Discoverable Partitions Specification, so
 * systemd-gpt-auto-generator finds the root without an fstab. The root grows
 * with the disk: a repart.d drop-in (written into the ext4 image only, not
 * the shared root tree) makes systemd-repart extend the root partition on
 * boot, and GPT attribute 59 (grow-file-system) makes systemd-growfs extend
 * the filesystem.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "image/bootdisk.h"
#include "image/ext4times.h"
#include "image/finalize.h"

#define MiB (1024ULL * 1024ULL)
#define GPT_START MiB               /* first partition; also room for the primary GPT */
#define GPT_END MiB                 /* room for the backup GPT */
#define DEFAULT_ESP (128 * MiB)
#define PLACE_BUF (1 << 20)         /* place()'s copy buffer */

struct part {
    const char *label;
    enum lapis_image_part_type type;
    enum lapis_image_fs fs;
    unsigned long long start, size;  /* bytes */
    bool grow;
    char uuid[37];                   /* partition GUID */
    char fsuuid[37];                 /* filesystem UUID */
    char *image;                     /* workdir file holding the filesystem; NULL: left empty */
    bool keep;                       /* image is the A/B host's usr (the bundle reads it too) */
    const char *disk;                /* ext4: made in place in this disk file instead */
};

struct layout {
    struct part parts[8];
    size_t n;
    unsigned long long disk;
};

static const char *type_guid(enum lapis_image_part_type t, const char *arch)
{
    switch (t) {
    case LAPIS_PART_ESP: return "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
    case LAPIS_PART_VAR: return "4d21b016-b534-45c2-a9fb-5c16e091fd2d";
    case LAPIS_PART_XBOOTLDR: return "bc13c2ff-59e6-4262-a352-b275fd6f7172";
    case LAPIS_PART_ROOT:
        return !strcmp(arch, "aarch64") ? "b921b045-1df0-41c3-af44-4c6f280d3fae"
                                        : "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
    case LAPIS_PART_USR:
        return !strcmp(arch, "aarch64") ? "b0e01050-ee5f-4390-949a-9101b17104e9"
                                        : "8484680c-9521-48c6-9c11-b0720656f69e";
    case LAPIS_PART_USR_VERITY:
        return !strcmp(arch, "aarch64") ? "6e11a4e7-fbca-4ded-b9e9-e1a512bb664e"
                                        : "77ff5f63-e7b6-4633-acf4-1565b864c0e6";
    }
    return NULL;
}

static unsigned long long align_up(unsigned long long v, unsigned long long a)
{
    return (v + a - 1) / a * a;
}

/* ---- sizing the root --------------------------------------------------- */

struct tree_size {
    unsigned long long bytes;
    const char *skip;                /* the A/B host's ROOT/usr: not in the root partition */
};

static int tree_add(const char *path, const struct stat *st, void *data)
{
    struct tree_size *t = data;
    if (t->skip && !strcmp(path, t->skip))
        return TREE_WALK_SKIP;
    t->bytes += 256 + (S_ISREG(st->st_mode) ? align_up((unsigned long long)st->st_size, 4096)
                                             : S_ISDIR(st->st_mode) ? 4096 : 0);
    return 0;
}

/* What an ext4 holding the root needs: content in 4 KiB blocks, inodes,
 * and ~10% for metadata and the journal. */
static unsigned long long root_needed(const char *rootdir, bool ab)
{
    _cleanup_free_ char *usr = ab ? path_join(rootdir, "usr") : NULL;
    struct tree_size t = { .skip = usr };
    (void)tree_walk(rootdir, false, tree_add, &t);
    return align_up(t.bytes + t.bytes / 10 + 64 * MiB, MiB);
}

/* ---- layout -------------------------------------------------------------- */

static void add_part(struct lapis_image_build *b, struct layout *l, const char *label,
                     enum lapis_image_part_type t, enum lapis_image_fs fs, unsigned long long size)
{
    struct part *p = &l->parts[l->n++];
    unsigned char raw[16];
    _cleanup_free_ char *w1 = xasprintf("partition:%s", label), *w2 = xasprintf("fs:%s", label);

    *p = (struct part){ .label = label, .type = t, .fs = fs, .size = size, .grow = size == 0 };
    lapis_image_uuid(b, w1, raw, p->uuid);
    lapis_image_uuid(b, w2, raw, p->fsuuid);
}

/* Slot a's PARTUUIDs are the first and last 128 bits of its verity root
 * hash, as systemd-repart makes them: usrhash= on the UKI's command line then
 * finds both partitions (systemd-veritysetup-generator), in either slot. */
static void slot_uuid(const struct lapis_image_build *b, struct part *p)
{
    const char *h = b->usrhash;
    if (!h[0] || (strcmp(p->label, "usr-a") && strcmp(p->label, "usr-a-verity")))
        return;
    if (p->type == LAPIS_PART_USR_VERITY)
        h += 32;
    snprintf(p->uuid, sizeof(p->uuid), "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

static int config_layout(struct lapis_image_build *b, struct layout *l)
{
    const struct lapis_image_config *c = b->conf;
    if (c->npartitions == 0) {
        add_part(b, l, "esp", LAPIS_PART_ESP, LAPIS_FS_VFAT, DEFAULT_ESP);
        add_part(b, l, "root", LAPIS_PART_ROOT, LAPIS_FS_EXT4, 0);
        return 0;
    }
    if (c->npartitions > ARRAY_SIZE(l->parts))
        return lapis_err(&b->diag, -EINVAL, "storage.partitions: %zu partitions, at most %zu "
                         "are supported", c->npartitions, ARRAY_SIZE(l->parts));
    for (size_t i = 0; i < c->npartitions; i++) {
        const struct lapis_image_partition *p = &c->partitions[i];
        if (p->size && p->size % MiB)
            return lapis_err(&b->diag, -EINVAL, "storage.partitions: %s: size %llu is not a "
                             "multiple of 1 MiB (round it, e.g. %lluM)", p->id, p->size,
                             align_up(p->size, MiB) / MiB);
        if (p->type == LAPIS_PART_ESP && p->size && p->size < 33 * MiB)
            return lapis_err(&b->diag, -EINVAL, "storage.partitions: %s: an ESP of %llu MiB is "
                             "too small for FAT32 (use at least 33M)", p->id, p->size / MiB);
        add_part(b, l, p->id, p->type, p->fs, p->size);
        slot_uuid(b, &l->parts[l->n - 1]);
    }
    return 0;
}

static int check_layout(struct lapis_image_build *b, struct layout *l)
{
    size_t grow = 0, roots = 0, esps = 0;
    for (size_t i = 0; i < l->n; i++) {
        grow += l->parts[i].grow;
        roots += l->parts[i].type == LAPIS_PART_ROOT;
        esps += l->parts[i].type == LAPIS_PART_ESP;
    }
    if (roots != 1 || esps != 1)
        return lapis_err(&b->diag, -EINVAL, "storage.partitions: a bootable disk needs exactly "
                         "one esp and one root partition (found %zu and %zu)", esps, roots);
    if (grow > 1)
        return lapis_err(&b->diag, -EINVAL, "storage.partitions: only one partition may have "
                         "no size (grow to fill the disk); give the others a size");
    return 0;
}

/* Sizes: a growing partition gets what the disk leaves, or its content plus
 * headroom when the disk has no size. */
static int size_layout(struct lapis_image_build *b, struct layout *l, unsigned long long need)
{
    unsigned long long fixed = GPT_START + GPT_END, off = GPT_START;
    struct part *g = NULL;

    for (size_t i = 0; i < l->n; i++) {
        struct part *p = &l->parts[i];
        if (p->grow)
            g = p;
        if (p->type == LAPIS_PART_ROOT && !p->grow && p->fs == LAPIS_FS_EXT4 && p->size < need)
            return lapis_err(&b->diag, -ENOSPC, "storage.partitions: %s: %llu MiB is too small "
                             "for the root (it needs at least %llu MiB)", p->label, p->size / MiB,
                             need / MiB);
        fixed += p->size;
    }
    if (g) {
        unsigned long long min = g->type == LAPIS_PART_ROOT ? need : 64 * MiB;
        unsigned long long want = g->type == LAPIS_PART_ROOT ? need + need / 5 + 128 * MiB : min;
        if (b->conf->disk_size && b->conf->disk_size < fixed + min)
            return lapis_err(&b->diag, -ENOSPC, "storage.diskSize: %llu MiB is too small (the "
                             "partitions need at least %llu MiB)", b->conf->disk_size / MiB,
                             align_up(fixed + min, MiB) / MiB);
        g->size = b->conf->disk_size ? (b->conf->disk_size - fixed) / MiB * MiB : align_up(want, MiB);
        fixed += g->size;
    }
    if (b->conf->disk_size && b->conf->disk_size < fixed)
        return lapis_err(&b->diag, -ENOSPC, "storage.diskSize: %llu MiB is too small (the "
                         "partitions need at least %llu MiB)", b->conf->disk_size / MiB,
                         align_up(fixed, MiB) / MiB);
    l->disk = b->conf->disk_size ? align_up(b->conf->disk_size, MiB) : fixed;
    for (size_t i = 0; i < l->n; i++) {
        l->parts[i].start = off;
        off += l->parts[i].size;
    }
    return 0;
}

/* ---- filesystems ---------------------------------------------------------- */

static int make_sparse(struct lapis_image_build *b, const char *path, unsigned long long size)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
        return lapis_err(&b->diag, -errno, "cannot create %s: %s", path, strerror(errno));
    return 0;
}

static char *epoch_env(struct lapis_image_build *b, const char *key)
{
    return xasprintf("%s=%lld", key, b->epoch);
}

/* Copy the ESP tree in sorted order, one mtools call per entry, so the FAT's
 * directory order never depends on the order readdir happens to return. */
static int esp_copy(struct lapis_image_build *b, const char *img, const char *src, const char *dst)
{
    struct dirent **ents = NULL;
    int n = scandir(src, &ents, NULL, alphasort), r = 0;
    char *env[] = { epoch_env(b, "SOURCE_DATE_EPOCH"), "MTOOLS_SKIP_CHECK=1", NULL };

    if (n < 0)
        r = lapis_err(&b->diag, -errno, "cannot read %s: %s", src, strerror(errno));
    for (int i = 0; i < n; i++) {
        _cleanup_free_ char *s = path_join(src, ents[i]->d_name);
        _cleanup_free_ char *d = xasprintf("%s/%s", dst, ents[i]->d_name);
        struct stat st;
        if (r == 0 && strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, "..") &&
            lstat(s, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                char *mmd[] = { "mmd", "-i", (char *)img, d, NULL };
                r = lapis_image_tool(b, "mtools", mmd, env, NULL);
                if (r == 0)
                    r = esp_copy(b, img, s, d);
            } else if (S_ISREG(st.st_mode)) {
                char *mcopy[] = { "mcopy", "-p", "-m", "-i", (char *)img, s, d, NULL };
                r = lapis_image_tool(b, "mtools", mcopy, env, NULL);
            }
        }
        free(ents[i]);
    }
    free(ents);
    free(env[0]);
    return r;
}

static int make_vfat(struct lapis_image_build *b, struct part *p)
{
    _cleanup_free_ char *esp = path_join(b->workdir, "esp");
    char serial[9];
    char *mkfs[] = { "mkfs.vfat", "-F", "32", "--invariant", "-n", "ESP", "-i", serial, p->image, NULL };
    char *mlabel[] = { "mlabel", "-N", serial, "-i", p->image, "::ESP", NULL };
    char *env[] = { "MTOOLS_SKIP_CHECK=1", epoch_env(b, "SOURCE_DATE_EPOCH"), NULL };
    int r;

    snprintf(serial, sizeof(serial), "%.8s", p->fsuuid);
    if ((r = make_sparse(b, p->image, p->size)) < 0 ||
        (r = lapis_image_tool(b, "dosfstools", mkfs, NULL, NULL)) < 0 ||
        (r = lapis_image_tool(b, "mtools", mlabel, env, NULL)) < 0) {
        free(env[1]);
        return r;
    }
    free(env[1]);
    if (p->type != LAPIS_PART_ESP || !path_exists(esp))
        return 0;
    return esp_copy(b, p->image, esp, "::");
}

/* Files only the disk's root gets (not the shared root tree, so OCI output
 * stays free of them): systemd-repart grows the root partition into the
 * space a resized disk has; then the filesystem is grown. systemd 252 grows
 * a GPT flag-59 root in the initrd (systemd-growfs), which runs before the
 * main system's repart, so a unit ordered after repart grows it again. */
static const struct { const char *path, *text; } grow_files[] = {
    { "usr/lib/repart.d/50-lapis-root.conf", "[Partition]\nType=root\n" },
    { "usr/lib/systemd/system/lapis-growfs-root.service",
      "[Unit]\nDescription=Grow the root file system to its partition\n"
      "Documentation=man:systemd-growfs(8)\nDefaultDependencies=no\n"
      "After=systemd-repart.service\nBefore=sysinit.target shutdown.target\n"
      "Conflicts=shutdown.target\nConditionPathExists=!/etc/initrd-release\n\n"
      "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
      "ExecStart=/usr/lib/systemd/systemd-growfs /\nTimeoutSec=0\n" },
};
static const char grow_link[] = "usr/lib/systemd/system/sysinit.target.wants/lapis-growfs-root.service";

/* The A/B host's root keeps only an empty /usr: there the same files go
 * into the /usr tree (the erofs) before it is made. */
int lapis_image_grow_files(struct lapis_image_build *b)
{
    int r = 0;
    for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(grow_files); i++)
        r = fin_write_str(b, grow_files[i].path, grow_files[i].text);
    if (r >= 0)
        r = fin_symlink(b, grow_link, "../lapis-growfs-root.service");
    return r;
}

static void debugfs_times(FILE *f, const char *path)
{
    for (const char *const *fld = (const char *const[]){ "atime", "ctime", "crtime", "mtime", NULL }; *fld; fld++)
        fprintf(f, "sif \"/%s\" %s @EPOCH@\nsif \"/%s\" %s_extra 0\n", path, *fld, path, *fld);
}

static int grow_cmds(struct lapis_image_build *b, FILE *f)
{
    fprintf(f, "mkdir /usr/lib/repart.d\nmkdir /usr/lib/systemd/system/sysinit.target.wants\n");
    for (size_t i = 0; i < ARRAY_SIZE(grow_files); i++) {
        _cleanup_free_ char *tmp = xasprintf("%s/grow-%zu", b->workdir, i);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        size_t len = strlen(grow_files[i].text);
        if (fd < 0 || write(fd, grow_files[i].text, len) != (ssize_t)len)
            return lapis_err(&b->diag, -EIO, "cannot write %s: %s", tmp, strerror(errno));
        fprintf(f, "write %s \"/%s\"\nsif \"/%s\" mode 0100644\n", tmp, grow_files[i].path,
                grow_files[i].path);
        debugfs_times(f, grow_files[i].path);
    }
    fprintf(f, "symlink \"/%s\" ../lapis-growfs-root.service\n", grow_link);
    debugfs_times(f, grow_link);
    debugfs_times(f, "usr/lib/repart.d");
    debugfs_times(f, "usr/lib/systemd/system/sysinit.target.wants");
    debugfs_times(f, "usr/lib/systemd/system");
    debugfs_times(f, "usr/lib");
    return 0;
}

/* Write the debugfs script with "@" and the epoch's digits in place of
 * @EPOCH@: debugfs reads bare digits as YYYYMMDD[HHMM[SS]] (1767225600
 * became 1903), "@N" as seconds. */
static int write_cmds(struct lapis_image_build *b, const char *path, const char *text)
{
    _cleanup_free_ char *ep = xasprintf("@%lld", b->epoch);
    _cleanup_fclose_ FILE *out = fopen(path, "we");
    if (!out)
        return lapis_err(&b->diag, -errno, "cannot write %s: %s", path, strerror(errno));
    for (const char *s = text, *m; *s; s = m + 7) {
        if (!(m = strstr(s, "@EPOCH@"))) {
            fputs(s, out);
            break;
        }
        fprintf(out, "%.*s%s", (int)(m - s), s, ep);
    }
    if (fclose(TAKE_PTR(out)) != 0)
        return lapis_err(&b->diag, -EIO, "cannot write %s", path);
    return 0;
}

/* mkfs.ext4 -d copies each source inode's atime and ctime and stamps crtime
 * with the clock: ext4times.c sets them to the epoch, after debugfs has
 * added the grow files (it stamps those with E2FSPROGS_FAKE_TIME). */
static int ext4_fix_times(struct lapis_image_build *b, const char *file, unsigned long long offset,
                          bool grow)
{
    _cleanup_free_ char *cmds = path_join(b->workdir, "debugfs.cmds");
    _cleanup_free_ char *target = offset ? xasprintf("%s?offset=%llu", file, offset) : xstrdup(file);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    char *debugfs[] = { "debugfs", "-w", "-f", cmds, target, NULL };
    char *env[] = { epoch_env(b, "E2FSPROGS_FAKE_TIME"), NULL };
    int r = 0;

    if (grow) {
        FILE *f = open_memstream(&text, &len);
        r = grow_cmds(b, f);
        fclose(f);
        if (r == 0)
            r = write_cmds(b, cmds, text);
        if (r == 0)
            r = lapis_image_tool(b, "e2fsprogs", debugfs, env, NULL);
    }
    free(env[0]);
    if (r < 0)
        return r;
    return lapis_image_ext4_set_times(&b->diag, file, offset, b->epoch);
}

/* The A/B host's root partition has /usr as an empty mount point (the
 * erofs of slot a is its content): the tree moves aside for mkfs.ext4 -d. */
static int usr_aside(struct lapis_image_build *b, bool away)
{
    _cleanup_free_ char *usr = path_join(b->rootdir, "usr"), *moved = path_join(b->workdir, "usr-tree");
    struct timespec ts[2] = { { b->epoch, 0 }, { b->epoch, 0 } };

    if (away) {
        if (rename(usr, moved) < 0 || mkdir(usr, 0755) < 0 || utimensat(AT_FDCWD, usr, ts, 0) < 0)
            return lapis_err(&b->diag, -errno, "cannot set %s aside: %s", usr, strerror(errno));
        return 0;
    }
    if (rmdir(usr) < 0 || rename(moved, usr) < 0)
        return lapis_err(&b->diag, -errno, "cannot put %s back: %s", usr, strerror(errno));
    return 0;
}

static int make_ext4(struct lapis_image_build *b, struct part *p, bool with_root)
{
    /* In place at its offset in the disk (as a script does): no second copy of
     * the root's blocks to write and flush. */
    _cleanup_free_ char *opts = p->disk ? xasprintf("hash_seed=%s,root_owner=0:0,offset=%llu",
                                                    p->fsuuid, p->start)
                                        : xasprintf("hash_seed=%s,root_owner=0:0", p->fsuuid);
    _cleanup_free_ char *kib = xasprintf("%lluk", p->size / 1024);
    _cleanup_free_ char *label = xstrndup(p->label, 16);
    char *env[] = { epoch_env(b, "E2FSPROGS_FAKE_TIME"), "MKE2FS_CONFIG=/etc/mke2fs.conf", NULL };
    char *argv[16] = { "mkfs.ext4", "-q", "-F", "-t", "ext4", "-E", opts, "-U", p->fsuuid, "-L", label };
    size_t n = 11;
    int r;

    if (with_root) {
        argv[n++] = "-d";
        argv[n++] = b->rootdir;
    }
    argv[n++] = p->disk ? (char *)p->disk : p->image;
    argv[n++] = kib;
    r = p->disk ? 0 : make_sparse(b, p->image, p->size);
    if (r == 0)
        r = lapis_image_tool(b, "e2fsprogs", argv, env, NULL);
    free(env[0]);
    if (r < 0 && strstr(b->diag.errmsg ? b->diag.errmsg : "", "Could not allocate"))
        return lapis_err(&b->diag, -ENOSPC, "partition %s (%llu MiB) is too small for the root: "
                         "give it more space", p->label, p->size / MiB);
    if (r < 0)
        return r;
    return ext4_fix_times(b, p->disk ? p->disk : p->image, p->disk ? p->start : 0,
                          with_root && p->grow && !b->conf->ab);
}

static int make_erofs(struct lapis_image_build *b, struct part *p)
{
    _cleanup_free_ char *t = xasprintf("-T%lld", b->epoch), *u = xasprintf("-U%s", p->fsuuid);
    char *argv[] = { "mkfs.erofs", "--quiet", t, u, "--all-root", "-zlz4hc", p->image, b->rootdir, NULL };
    struct stat st;
    int r = lapis_image_tool(b, "erofs-utils", argv, NULL, NULL);
    if (r < 0)
        return r;
    if (stat(p->image, &st) < 0)
        return lapis_err(&b->diag, -errno, "mkfs.erofs wrote no %s", p->image);
    if ((unsigned long long)st.st_size > p->size)
        return lapis_err(&b->diag, -ENOSPC, "partition %s (%llu MiB) is too small for the erofs "
                         "root (it needs %llu MiB)", p->label, p->size / MiB,
                         align_up((unsigned long long)st.st_size, MiB) / MiB);
    return 0;
}

/* Slot a gets the usr stage's erofs and verity tree; slot b stays empty
 * (zeros) until the agent writes a version into it. */
static int make_slot(struct lapis_image_build *b, struct part *p)
{
    bool a = !strcmp(p->label, "usr-a") || !strcmp(p->label, "usr-a-verity");
    const char *img = p->type == LAPIS_PART_USR ? b->usr_image : b->usr_verity;
    struct stat st;

    if (!a)
        return 0;
    if (!img || stat(img, &st) < 0)
        return lapis_err(&b->diag, -ENOENT, "partition %s: the usr stage made no image", p->label);
    if ((unsigned long long)st.st_size > p->size)
        return lapis_err(&b->diag, -ENOSPC, "partition %s (%llu MiB) is too small for %s (it needs "
                         "%llu MiB; give it more, with headroom for later versions)", p->label,
                         p->size / MiB, p->type == LAPIS_PART_USR ? "/usr" : "its verity tree",
                         align_up((unsigned long long)st.st_size, MiB) / MiB);
    p->image = xstrdup(img);
    p->keep = true;
    return 0;
}

static int make_fs(struct lapis_image_build *b, struct part *p)
{
    if (p->type == LAPIS_PART_USR || p->type == LAPIS_PART_USR_VERITY)
        return make_slot(b, p);
    p->image = xasprintf("%s/part-%s.img", b->workdir, p->label);
    if (p->fs == LAPIS_FS_VFAT)
        return make_vfat(b, p);
    if (p->fs == LAPIS_FS_EROFS)
        return p->type == LAPIS_PART_ROOT ? make_erofs(b, p)
               : lapis_err(&b->diag, -EINVAL, "partition %s: erofs is only for the root", p->label);
    if (p->type == LAPIS_PART_ROOT && b->conf->ab) {
        int r = usr_aside(b, true), k;
        if (r < 0)
            return r;
        r = make_ext4(b, p, true);
        k = usr_aside(b, false);
        return r < 0 ? r : k;
    }
    if (p->type == LAPIS_PART_ROOT)
        return make_ext4(b, p, true);
    return make_ext4(b, p, false);
}

/* ---- the disk --------------------------------------------------------------- */

/* sgdisk in a thread (it syncs and sleeps a second after writing): it writes
 * only the GPT's first and last MiB, which no file system touches. */
static void sgdisk_start(struct lapis_image_build *b, struct layout *l, const char *disk,
                         struct lapis_image_bg *job)
{
    unsigned char raw[16];
    char diskguid[37];
    char **args = NULL;

    lapis_image_uuid(b, "disk", raw, diskguid);
    strv_push(&args, xstrdup("sgdisk"));
    strv_push(&args, xstrdup("--clear"));
    strv_push(&args, xasprintf("--disk-guid=%s", diskguid));
    for (size_t i = 0; i < l->n; i++) {
        struct part *p = &l->parts[i];
        unsigned long long first = p->start / 512, last = (p->start + p->size) / 512 - 1;
        strv_push(&args, xasprintf("--new=%zu:%llu:%llu", i + 1, first, last));
        strv_push(&args, xasprintf("--typecode=%zu:%s", i + 1, type_guid(p->type, b->arch)));
        strv_push(&args, xasprintf("--partition-guid=%zu:%s", i + 1, p->uuid));
        strv_push(&args, xasprintf("--change-name=%zu:%s", i + 1, p->label));
        if (p->type == LAPIS_PART_ROOT && p->fs == LAPIS_FS_EXT4)   /* grow-file-system */
            strv_push(&args, xasprintf("--attributes=%zu:set:59", i + 1));
        if ((p->type == LAPIS_PART_ROOT && p->fs == LAPIS_FS_EROFS) ||    /* read-only */
            p->type == LAPIS_PART_USR || p->type == LAPIS_PART_USR_VERITY)
            strv_push(&args, xasprintf("--attributes=%zu:set:60", i + 1));
    }
    strv_push(&args, xstrdup(disk));
    lapis_image_tool_start(job, "gdisk", args);
}

/* Copy src into dst at off, skipping holes so the disk stays sparse. */
static int place(struct lapis_image_build *b, const char *src, int dst, unsigned long long off)
{
    _cleanup_close_ int fd = open(src, O_RDONLY | O_CLOEXEC);
    _cleanup_free_ char *buf = xmalloc(PLACE_BUF);
    off_t pos = 0, end;

    if (fd < 0)
        return lapis_err(&b->diag, -errno, "cannot read %s: %s", src, strerror(errno));
    end = lseek(fd, 0, SEEK_END);
    while (pos < end) {
        off_t data = lseek(fd, pos, SEEK_DATA), hole;
        if (data < 0)
            break;                            /* only a hole is left */
        hole = lseek(fd, data, SEEK_HOLE);
        for (pos = data; pos < hole;) {
            size_t want = hole - pos < PLACE_BUF ? (size_t)(hole - pos) : PLACE_BUF;
            ssize_t n = pread(fd, buf, want, pos);
            if (n <= 0 || pwrite(dst, buf, (size_t)n, (off_t)off + pos) != n)
                return lapis_err(&b->diag, -EIO, "cannot copy %s into the disk: %s", src, strerror(errno));
            pos += n;
        }
    }
    return 0;
}

/* The ESP's (esp) or the other partitions' file systems, into the disk.
 * Each lands in its own range of the disk, so the order leaves no trace. The
 * ESP's image stays for the qcow2 (qcow2_add_esp). */
static int write_parts(struct lapis_image_build *b, struct layout *l, const char *disk, int fd, bool esp)
{
    int r;
    for (size_t i = 0; i < l->n; i++) {
        struct part *p = &l->parts[i];
        if ((p->type == LAPIS_PART_ESP) != esp)
            continue;
        p->disk = p->fs == LAPIS_FS_EXT4 ? disk : NULL;
        if ((r = make_fs(b, p)) < 0 ||
            (!p->disk && p->image && (r = place(b, p->image, fd, p->start)) < 0))
            return r;
        if (p->image && !p->keep && !esp)
            unlink(p->image);
    }
    return 0;
}

static int qemu_img(struct lapis_image_build *b, const char *raw, const char *fmt,
                    const char *opts, const char *out);

/* output.qcow2Compression: both qemu-img runs of a qcow2 ask for -c alike. */
static bool qcow2_compressed(const struct lapis_image_build *b)
{
    return strcmp(b->conf->qcow2_compression, "none") != 0;
}

/* The partition table is written while the file systems are made. The
 * partitions other than the ESP first: they need nothing of the boot stage,
 * which may still be running (wait_boot waits for it). A qcow2 (qcow2 not
 * NULL) is converted from the disk while the ESP is still a hole, beside
 * dracut; qcow2_add_esp adds the ESP later. */
static int write_raw(struct lapis_image_build *b, struct layout *l, const char *disk,
                     int (*wait_boot)(void *), void *data, const char *qcow2)
{
    _cleanup_close_ int fd = -1;
    struct lapis_image_bg gpt = { 0 };
    int r, g;

    if ((r = make_sparse(b, disk, l->disk)) < 0)
        return r;
    fd = open(disk, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return lapis_err(&b->diag, -errno, "cannot open %s: %s", disk, strerror(errno));
    sgdisk_start(b, l, disk, &gpt);
    r = write_parts(b, l, disk, fd, false);
    g = lapis_image_tool_wait(r < 0 ? NULL : b, &gpt);   /* the first error counts */
    if (r < 0 || (r = g) < 0)
        return r;
    if (qcow2 && (r = qemu_img(b, disk, "qcow2", NULL, qcow2)) < 0)
        return r;
    if ((wait_boot && (r = wait_boot(data)) < 0) || (r = write_parts(b, l, disk, fd, true)) < 0)
        return r;
    if (!(b->conf->formats & LAPIS_IMAGE_RAW) && fsync(fd) < 0)   /* a kept raw: the finisher's */
        return lapis_err(&b->diag, -errno, "cannot write %s: %s", disk, strerror(errno));
    return 0;
}

/* ---- formats ------------------------------------------------------------- */

static int qemu_img(struct lapis_image_build *b, const char *raw, const char *fmt,
                    const char *opts, const char *out)
{
    char *argv[12] = { "qemu-img", "convert", "-f", "raw", "-O", (char *)fmt };
    const char *z = b->conf->qcow2_compression;
    size_t n = 6;
    /* zstd clusters by default (QEMU >= 5.1 reads them): zlib's took ~7x the
     * CPU for a 2% larger image. "none" is the fastest to write (qemu-img
     * compresses on one core) and to boot from, at ~3x the size here. */
    if (!strcmp(fmt, "qcow2") && qcow2_compressed(b)) {
        argv[n++] = "-c";
        opts = !strcmp(z, "zlib") ? "compression_type=zlib" : "compression_type=zstd";
    }
    if (opts) {
        argv[n++] = "-o";
        argv[n++] = (char *)opts;
    }
    argv[n++] = (char *)raw;
    argv[n++] = (char *)out;
    return lapis_image_tool(b, "qemu-utils", argv, NULL, NULL);
}

/* A path as one value of QEMU's key=value,... option syntax. */
static char *qemu_opt_path(const char *path)
{
    char *out = xmalloc(2 * strlen(path) + 1), *o = out;
    for (const char *c = path; *c; c++)
        if ((*o++ = *c) == ',')
            *o++ = ',';
    *o = 0;
    return out;
}

/* The ESP into the qcow2 converted without it: the disk's bytes are zeros
 * before and after it, which --target-is-zero skips, so only the ESP's
 * clusters are written (compressed like the rest), after the others. */
static int qcow2_add_esp(struct lapis_image_build *b, const struct part *esp, unsigned long long disk,
                         const char *out)
{
    struct stat st;
    if (!esp->image || stat(esp->image, &st) < 0 || esp->start + (unsigned long long)st.st_size > disk)
        return lapis_err(&b->diag, -EIO, "the ESP image is missing or too large for the disk");
    _cleanup_free_ char *path = qemu_opt_path(esp->image);
    _cleanup_free_ char *before = xasprintf("driver=null-co,read-zeroes=on,size=%llu", esp->start);
    _cleanup_free_ char *image = xasprintf("driver=raw,file.driver=file,file.filename=%s", path);
    _cleanup_free_ char *after = xasprintf("driver=null-co,read-zeroes=on,size=%llu",
                                           disk - esp->start - (unsigned long long)st.st_size);
    char *argv[] = { "qemu-img", "convert", "-n", "--target-is-zero", "-O", "qcow2", "--image-opts",
                     before, image, after, (char *)out, NULL, NULL };
    if (qcow2_compressed(b)) {    /* the target's header names the codec */
        memmove(argv + 3, argv + 2, (ARRAY_SIZE(argv) - 4) * sizeof(*argv));
        argv[2] = "-c";
    }
    return lapis_image_tool(b, "qemu-utils", argv, NULL, NULL);
}

static const struct part *layout_esp(const struct layout *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->parts[i].type == LAPIS_PART_ESP)
            return &l->parts[i];
    return NULL;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

/* The fixed VHD's 512-byte footer, made deterministic: qemu-img stamps the
 * current time and a random UUID. Timestamp = epoch in seconds since
 * 2000-01-01 00:00 UTC; UUID from the config digest; checksum = ones'
 * complement of the byte sum with the checksum field zero. */
int lapis_image_vhd_footer(struct lapis_image_build *b, int fd)
{
    unsigned char f[512], raw[16];
    char text[37];
    uint32_t sum = 0;
    off_t end = lseek(fd, 0, SEEK_END);
    long long ts = b->epoch - 946684800LL;

    if (end < 512 || pread(fd, f, 512, end - 512) != 512 || memcmp(f, "conectix", 8))
        return lapis_err(&b->diag, -EIO, "qemu-img wrote no VHD footer");
    put32(f + 24, (uint32_t)(ts < 0 ? 0 : ts));
    lapis_image_uuid(b, "vhd", raw, text);
    memcpy(f + 68, raw, 16);
    memset(f + 64, 0, 4);
    for (int i = 0; i < 512; i++)
        sum += f[i];
    put32(f + 64, ~sum);
    if (pwrite(fd, f, 512, end - 512) != 512)
        return lapis_err(&b->diag, -errno, "cannot write the VHD footer: %s", strerror(errno));
    return 0;
}

static int write_vhd(struct lapis_image_build *b, const char *raw, const char *out)
{
    _cleanup_close_ int fd = -1;
    int r = qemu_img(b, raw, "vpc", "subformat=fixed,force_size=on", out);
    if (r < 0)
        return r;
    fd = open(out, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return lapis_err(&b->diag, -errno, "cannot open %s: %s", out, strerror(errno));
    return lapis_image_vhd_footer(b, fd);
}

static int write_vhdx(struct lapis_image_build *b, const char *raw, const char *out)
{
    _cleanup_close_ int fd = -1;
    int r = qemu_img(b, raw, "vhdx", NULL, out);
    if (r < 0)
        return r;
    fd = open(out, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return lapis_err(&b->diag, -errno, "cannot open %s: %s", out, strerror(errno));
    return lapis_image_vhdx_fix(b, fd);
}

static char *format_name(struct lapis_image_build *b, unsigned fmt)
{
    return xasprintf("%s.%s", b->basename, fmt == LAPIS_IMAGE_QCOW2 ? "qcow2" : fmt == LAPIS_IMAGE_VHD ? "vhd"
                                                                                                    : "vhdx");
}

/* qcow2: begun by write_raw (qcow2_begun), finished here with the ESP. */
static int write_format(struct lapis_image_build *b, const char *raw, unsigned fmt, const struct layout *l,
                        bool qcow2_begun)
{
    _cleanup_free_ char *name = format_name(b, fmt);
    _cleanup_free_ char *out = path_join(b->stagedir, name);
    const struct part *esp = layout_esp(l);
    int r = fmt == LAPIS_IMAGE_VHD ? write_vhd(b, raw, out)
            : fmt == LAPIS_IMAGE_VHDX ? write_vhdx(b, raw, out)
            : !qcow2_begun ? qemu_img(b, raw, "qcow2", NULL, out)
            : esp ? qcow2_add_esp(b, esp, l->disk, out) : 0;
    if (r == 0)
        lapis_image_add_output(b, name);
    return r;
}

/* The raw is final: it is hashed, synced and cached while the others are made. */
static int write_outputs(struct lapis_image_build *b, const struct layout *l, const char *raw,
                         const char *name, bool qcow2_begun)
{
    static const unsigned conv[] = { LAPIS_IMAGE_QCOW2, LAPIS_IMAGE_VHD, LAPIS_IMAGE_VHDX };
    int r = 0;

    lapis_image_root_unused(b);
    bool keep = b->conf->formats & LAPIS_IMAGE_RAW;
    _cleanup_free_ char *dst = keep ? path_join(b->stagedir, name) : NULL;
    if (keep && rename(raw, dst) < 0)
        return lapis_err(&b->diag, -errno, "cannot move the disk to %s: %s", dst, strerror(errno));
    if (keep)
        lapis_image_output_ready(b, name, true);
    for (size_t i = 0; r == 0 && i < ARRAY_SIZE(conv); i++)
        if (b->conf->formats & conv[i])
            r = write_format(b, keep ? dst : raw, conv[i], l, qcow2_begun);
    if (r < 0 || !keep)
        return r < 0 ? r : (unlink(raw), 0);
    lapis_image_add_output(b, name);
    return 0;
}

static int write_disk(struct lapis_image_build *b, int (*wait_boot)(void *), void *data)
{
    struct layout l = { 0 };
    _cleanup_free_ char *raw = path_join(b->workdir, "disk.raw");
    _cleanup_free_ char *name = xasprintf("%s.raw", b->basename);
    int r;

    if (!(b->conf->formats & LAPIS_IMAGE_DISK_FORMATS))
        return 0;
    if ((r = config_layout(b, &l)) < 0 || (r = check_layout(b, &l)) < 0 ||
        (r = size_layout(b, &l, root_needed(b->rootdir, b->conf->ab))) < 0)
        return r;
    bool qcow2 = b->conf->formats & LAPIS_IMAGE_QCOW2;
    _cleanup_free_ char *qname = qcow2 ? format_name(b, LAPIS_IMAGE_QCOW2) : NULL;
    _cleanup_free_ char *qout = qcow2 ? path_join(b->stagedir, qname) : NULL;
    r = write_raw(b, &l, raw, wait_boot, data, qout);
    if (r == 0)
        r = write_outputs(b, &l, raw, name, qcow2);
    for (size_t i = 0; i < l.n; i++) {
        if (l.parts[i].type == LAPIS_PART_ESP && l.parts[i].image)
            unlink(l.parts[i].image);
        free(l.parts[i].image);
    }
    return r;
}

int lapis_image_write_disk_overlapped(struct lapis_image_build *b, int (*wait_boot)(void *),
                                      void *data)
{
    mode_t old = umask(022);
    int r = write_disk(b, wait_boot, data);
    umask(old);
    return r;
}

int lapis_image_write_disk(struct lapis_image_build *b)
{
    return lapis_image_write_disk_overlapped(b, NULL, NULL);
}
