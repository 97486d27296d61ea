/*
 * One OCI layer from a root directory: a deterministic tar (libarchive,
 * restricted pax: plain ustar headers, a pax header only for long names, big
 * ids or file capabilities) streamed through gzip or zstd into blobs/sha256,
 * hashing the tar (diff_id) and the compressed stream (the blob's name) in
 * the same pass.
 *
 * Determinism: each directory's entries sorted bytewise, a directory before
 * its contents; numeric uid/gid/mode from the file, no user/group names;
 * mtime = min(mtime, SOURCE_DATE_EPOCH), whole seconds, no atime/ctime; hard
 * links as tar hard links; of the xattrs only security.capability; gzip
 * header with mtime 0 and no name. Symlinks in the root are never followed.
 *
 * Containers leave out the boot files: /boot, /efi, /dev, /proc, /sys and
 * /run are kept as empty directories; /usr/lib/modules, /lib/modules,
 * /usr/lib/kernel and /usr/lib/systemd/boot are left out entirely.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zstd.h>

#include "basic/macro.h"
#include "image/archive_dl.h"
#include "image/oci.h"
#include "image/pgzip.h"
#include "shared/digest.h"

#define OUTBUF_SIZE (256 * 1024)
#define LAYER_TMP ".layer.tmp"

/* Left out with everything below them. */
static const char *const dropped_paths[] = {
    "usr/lib/modules", "lib/modules", "usr/lib/kernel", "usr/lib/systemd/boot",
};
/* Kept as empty directories: mount points and the boot partition. */
static const char *const emptied_paths[] = { "boot", "efi", "dev", "proc", "sys", "run" };

struct inode_seen {
    dev_t dev;
    ino_t ino;
    char *path;
};

struct layer {
    struct lapis_diag *d;
    struct archive *a;
    struct archive_entry *e;
    lapis_hasher *tar_h, *blob_h;
    int outfd;
    bool zstd;
    struct pgzip *gz;
    ZSTD_CCtx *zc;
    unsigned char *outbuf;
    unsigned char *inbuf;
    long long epoch;
    void *inodes;                 /* tsearch tree of struct inode_seen */
    unsigned long long tar_bytes, blob_bytes, file_bytes;
    int err;                      /* first error of a callback */
};

static bool in_list(const char *path, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(path, list[i]) == 0)
            return true;
    return false;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int emit_buf(void *data, const unsigned char *p, size_t n)
{
    struct layer *l = data;
    lapis_hasher_update(l->blob_h, p, n);
    l->blob_bytes += n;
    int r = write_all(l->outfd, p, n);
    return r < 0 ? lapis_err(l->d, r, "cannot write the OCI layer: %s", strerror(-r)) : 0;
}

static int emit(struct layer *l, size_t n)
{
    return emit_buf(l, l->outbuf, n);
}

static int gzip_feed(struct layer *l, const void *buf, size_t n, bool finish)
{
    int r = n ? pgzip_write(l->gz, buf, n) : 0;
    if (r == 0 && finish)
        r = pgzip_finish(l->gz);
    if (r < 0 && !l->d->errmsg)
        return lapis_err(l->d, r, "gzip compression of the OCI layer failed: %s", strerror(-r));
    return r;
}

static int zstd_feed(struct layer *l, const void *buf, size_t n, bool finish)
{
    ZSTD_inBuffer in = { buf, n, 0 };
    for (;;) {
        ZSTD_outBuffer out = { l->outbuf, OUTBUF_SIZE, 0 };
        size_t left = ZSTD_compressStream2(l->zc, &out, &in, finish ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(left))
            return lapis_err(l->d, -EIO, "zstd compression of the OCI layer failed: %s",
                             ZSTD_getErrorName(left));
        int r = emit(l, out.pos);
        if (r < 0)
            return r;
        if (finish ? left == 0 : in.pos == in.size)
            return 0;
    }
}

static int compress_feed(struct layer *l, const void *buf, size_t n, bool finish)
{
    return l->zstd ? zstd_feed(l, buf, n, finish) : gzip_feed(l, buf, n, finish);
}

static la_ssize_t tar_write_cb(struct archive *a, void *ud, const void *buf, size_t n)
{
    struct layer *l = ud;
    lapis_hasher_update(l->tar_h, buf, n);
    l->tar_bytes += n;
    l->err = compress_feed(l, buf, n, false);
    return l->err < 0 ? -1 : (la_ssize_t)n;
}

static int tar_err(struct layer *l, const char *path)
{
    if (l->err < 0)
        return l->err;
    return lapis_err(l->d, -EIO, "cannot add %s to the OCI layer: %s", path,
                     sym_archive_error_string(l->a) ? sym_archive_error_string(l->a) : "libarchive failed");
}

static int inode_cmp(const void *x, const void *y)
{
    const struct inode_seen *a = x, *b = y;
    if (a->dev != b->dev)
        return a->dev < b->dev ? -1 : 1;
    return a->ino < b->ino ? -1 : a->ino > b->ino;
}

/* The path of the first entry for this inode, or NULL (and it is recorded). */
static const char *hardlink_target(struct layer *l, const struct stat *st, const char *path)
{
    struct inode_seen key = { st->st_dev, st->st_ino, NULL };
    struct inode_seen **found = tfind(&key, &l->inodes, inode_cmp);
    if (found)
        return (*found)->path;
    struct inode_seen *n = malloc(sizeof(*n));
    if (n && (n->path = strdup(path))) {
        *n = (struct inode_seen){ st->st_dev, st->st_ino, n->path };
        if (tsearch(n, &l->inodes, inode_cmp))
            return NULL;
        free(n->path);
    }
    free(n);
    return NULL; /* out of memory: the file is stored again, still correct */
}

static void entry_init(struct layer *l, const char *path, const struct stat *st)
{
    struct archive_entry *e = l->e;
    sym_archive_entry_clear(e);
    sym_archive_entry_copy_pathname(e, path);
    sym_archive_entry_set_mode(e, st->st_mode);
    sym_archive_entry_set_uid(e, st->st_uid);
    sym_archive_entry_set_gid(e, st->st_gid);
    sym_archive_entry_set_mtime(e, st->st_mtime < l->epoch ? st->st_mtime : l->epoch, 0);
    sym_archive_entry_set_size(e, 0);
}

static int write_header(struct layer *l, const char *path)
{
    int r = sym_archive_write_header(l->a, l->e);
    return r < ARCHIVE_WARN ? tar_err(l, path) : 0;
}

static int copy_data(struct layer *l, int fd, const char *path, unsigned long long size)
{
    unsigned long long done = 0;
    for (;;) {
        ssize_t n = read(fd, l->inbuf, OUTBUF_SIZE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return lapis_err(l->d, -errno, "cannot read %s: %s", path, strerror(errno));
        if (n == 0)
            break;
        if (done + (unsigned long long)n > size)
            break;
        if (sym_archive_write_data(l->a, l->inbuf, (size_t)n) != n)
            return tar_err(l, path);
        done += (unsigned long long)n;
    }
    if (done != size)
        return lapis_err(l->d, -EIO, "%s changed while the OCI layer was written; build again", path);
    l->file_bytes += size;
    return 0;
}

static int add_regular(struct layer *l, int dfd, const char *name, const char *path,
                       const struct stat *st)
{
    if (st->st_nlink > 1) {
        const char *target = hardlink_target(l, st, path);
        if (target) {
            sym_archive_entry_copy_hardlink(l->e, target);
            return write_header(l, path);
        }
    }
    _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return lapis_err(l->d, -errno, "cannot open %s: %s", path, strerror(errno));
    struct stat fst;
    if (fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode) || fst.st_ino != st->st_ino)
        return lapis_err(l->d, -EIO, "%s changed while the OCI layer was written; build again", path);
    sym_archive_entry_set_size(l->e, fst.st_size);
    /* File capabilities are part of what a binary does (ping); other xattrs
     * (SELinux labels of the build host, user.*) are not the image's. */
    char cap[256];
    ssize_t caplen = fgetxattr(fd, "security.capability", cap, sizeof(cap));
    if (caplen > 0)
        sym_archive_entry_xattr_add_entry(l->e, "security.capability", cap, (size_t)caplen);
    int r = write_header(l, path);
    return r < 0 ? r : copy_data(l, fd, path, (unsigned long long)fst.st_size);
}

static int add_symlink(struct layer *l, int dfd, const char *name, const char *path)
{
    char target[PATH_MAX];
    ssize_t n = readlinkat(dfd, name, target, sizeof(target) - 1);
    if (n < 0)
        return lapis_err(l->d, -errno, "cannot read the symlink %s: %s", path, strerror(errno));
    target[n] = '\0';
    sym_archive_entry_copy_symlink(l->e, target);
    return write_header(l, path);
}

static int walk_dir(struct layer *l, int dfd, const char *rel);

static int add_entry(struct layer *l, int dfd, const char *name, const char *path)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return lapis_err(l->d, -errno, "cannot stat %s: %s", path, strerror(errno));
    if (S_ISSOCK(st.st_mode))
        return 0; /* a socket is a running program's, not a file to ship */
    entry_init(l, path, &st);
    if (S_ISREG(st.st_mode))
        return add_regular(l, dfd, name, path, &st);
    if (S_ISLNK(st.st_mode))
        return add_symlink(l, dfd, name, path);
    if (!S_ISDIR(st.st_mode)) {
        sym_archive_entry_set_rdev(l->e, st.st_rdev);
        return write_header(l, path);
    }
    int r = write_header(l, path);
    if (r < 0 || in_list(path, emptied_paths, ARRAY_SIZE(emptied_paths)))
        return r;
    _cleanup_close_ int cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cfd < 0)
        return lapis_err(l->d, -errno, "cannot open the directory %s: %s", path, strerror(errno));
    return walk_dir(l, cfd, path);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The names in a directory, sorted bytewise. */
static int list_dir(struct layer *l, int dfd, const char *rel, char ***ret, size_t *ret_n)
{
    int fd = dup(dfd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        return lapis_err(l->d, -errno, "cannot read the directory /%s: %s", rel, strerror(errno));
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = realloc(names, cap * sizeof(*names));
            if (!nn)
                goto oom;
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name)))
            goto oom;
        n++;
    }
    closedir(dir);
    if (n)
        qsort(names, n, sizeof(*names), name_cmp);
    *ret = names;
    *ret_n = n;
    return 0;
oom:
    closedir(dir);
    free_names(names, n);
    return LAPIS_OOM(l->d);
}

static int walk_dir(struct layer *l, int dfd, const char *rel)
{
    if (lapis_interrupted(l->d))
        return lapis_err(l->d, -LAPIS_E_INTERRUPTED, "interrupted");
    char **names = NULL;
    size_t n = 0;
    int r = list_dir(l, dfd, rel, &names, &n);
    for (size_t i = 0; r >= 0 && i < n; i++) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s%s%s", rel, *rel ? "/" : "", names[i]) < 0) {
            r = LAPIS_OOM(l->d);
            break;
        }
        if (!in_list(path, dropped_paths, ARRAY_SIZE(dropped_paths)))
            r = add_entry(l, dfd, names[i], path);
    }
    free_names(names, n);
    return r;
}

static int compressor_init(struct layer *l, const char *compression)
{
    if (!compression || strcmp(compression, "gzip") == 0) {
        /* On every core, 1 MiB chunks (pgzip.h), level 4: half the CPU time of
         * gzip's default 6 for a 3% larger layer (40 MB of binaries). */
        l->gz = pgzip_new(4, 0, emit_buf, l);
        return l->gz ? 0 : LAPIS_OOM(l->d);
    }
    if (strcmp(compression, "zstd") != 0)
        return lapis_err(l->d, -LAPIS_E_CONFIG, "unknown layer compression '%s' (use gzip or zstd)",
                         compression);
    l->zstd = true;
    l->zc = ZSTD_createCCtx();
    if (!l->zc)
        return LAPIS_OOM(l->d);
    ZSTD_CCtx_setParameter(l->zc, ZSTD_c_compressionLevel, 3);
    ZSTD_CCtx_setParameter(l->zc, ZSTD_c_checksumFlag, 1);
    return 0;
}

static int archive_init(struct layer *l)
{
    int r = lapis_archive_load(l->d);
    if (r < 0)
        return r;
    l->a = sym_archive_write_new();
    l->e = sym_archive_entry_new();
    if (!l->a || !l->e)
        return LAPIS_OOM(l->d);
    if (sym_archive_write_set_format_pax_restricted(l->a) != ARCHIVE_OK ||
        sym_archive_write_set_bytes_in_last_block(l->a, 1) != ARCHIVE_OK ||
        sym_archive_write_open(l->a, l, NULL, tar_write_cb, NULL) != ARCHIVE_OK)
        return tar_err(l, "the layer");
    return 0;
}

static void inode_free(void *p)
{
    struct inode_seen *n = p;
    free(n->path);
    free(n);
}

static void layer_done(struct layer *l)
{
    if (l->a)
        sym_archive_write_free(l->a);
    if (l->e)
        sym_archive_entry_free(l->e);
    ZSTD_freeCCtx(l->zc);
    pgzip_free(l->gz);
    tdestroy(l->inodes, inode_free);
    lapis_hasher_free(l->tar_h);
    lapis_hasher_free(l->blob_h);
    free(l->outbuf);
    free(l->inbuf);
    if (l->outfd >= 0)
        close(l->outfd);
}

static int layer_finish(struct layer *l, int blobsfd, struct oci_layer_result *ret)
{
    if (sym_archive_write_close(l->a) != ARCHIVE_OK)
        return tar_err(l, "the end of the layer");
    int r = compress_feed(l, NULL, 0, true);
    if (r < 0)
        return r;
    if (fsync(l->outfd) < 0)
        return lapis_err(l->d, -errno, "cannot write the OCI layer: %s", strerror(errno));
    char hex[65];
    lapis_hasher_final_hex(l->tar_h, hex, sizeof(hex));
    snprintf(ret->diff_id, sizeof(ret->diff_id), "sha256:%s", hex);
    lapis_hasher_final_hex(l->blob_h, hex, sizeof(hex));
    snprintf(ret->blob.digest, sizeof(ret->blob.digest), "sha256:%s", hex);
    ret->blob.size = l->blob_bytes;
    ret->tar_bytes = l->tar_bytes;
    ret->file_bytes = l->file_bytes;
    if (renameat(blobsfd, LAYER_TMP, blobsfd, hex) < 0)
        return lapis_err(l->d, -errno, "cannot store the OCI layer: %s", strerror(errno));
    return 0;
}

int oci_layer_write(struct lapis_diag *d, const char *rootdir, int blobsfd, const char *compression,
                    long long epoch, struct oci_layer_result *ret)
{
    struct layer l = { .d = d, .outfd = -1, .epoch = epoch };
    int r = compressor_init(&l, compression);
    if (r < 0) {
        layer_done(&l);
        return r;
    }
    l.tar_h = lapis_hasher_new(LAPIS_CHK_SHA256);
    l.blob_h = lapis_hasher_new(LAPIS_CHK_SHA256);
    l.outbuf = malloc(OUTBUF_SIZE);
    l.inbuf = malloc(OUTBUF_SIZE);
    if (!l.tar_h || !l.blob_h || !l.outbuf || !l.inbuf)
        r = LAPIS_OOM(d);
    _cleanup_close_ int rootfd = -1;
    if (r >= 0 && (rootfd = open(rootdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        r = lapis_err(d, -errno, "cannot open the image root %s: %s", rootdir, strerror(errno));
    if (r >= 0) {
        unlinkat(blobsfd, LAYER_TMP, 0);
        l.outfd = openat(blobsfd, LAYER_TMP, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (l.outfd < 0 || fchmod(l.outfd, 0644) < 0)
            r = lapis_err(d, -errno, "cannot create the OCI layer: %s", strerror(errno));
    }
    /* libarchive writes a non-ASCII name as a pax UTF-8 path converted from
     * the locale's charset: a fixed locale keeps the bytes the caller's. */
    locale_t utf8 = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
    locale_t old = utf8 ? uselocale(utf8) : (locale_t)0;
    if (r >= 0)
        r = archive_init(&l);
    if (r >= 0)
        r = walk_dir(&l, rootfd, "");
    if (r >= 0)
        r = layer_finish(&l, blobsfd, ret);
    if (r < 0)
        unlinkat(blobsfd, LAYER_TMP, 0);
    layer_done(&l);
    if (utf8) {
        uselocale(old);
        freelocale(utf8);
    }
    return r;
}
