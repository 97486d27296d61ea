/*
 * ISO output (issue 12): a UEFI-bootable ISO 9660 image that boots the
 * composed root live.
 *
 *   BASENAME.iso  (xorriso: El Torito EFI boot, and a GPT whose ESP is the same
 *                  image, for USB sticks)
 *     LiveOS/rootfs.img   the root as erofs (lz4hc), read-only
 *     EFI/efiboot.img     FAT ESP image: systemd-boot, a BLS entry, kernel, initrd
 *
 * The initrd is the boot stage's (one dracut run for disk and ISO): when an
 * ISO is asked for, boot.c adds the lapis-live dracut module
 * (data/dracut/90lapis-live) through lapis_image_live_dracut_prepare.
 * lapis.live=LABEL makes it mount the medium by label, loop-mount rootfs.img
 * and put a tmpfs overlay on top as /sysroot; without that argument (a disk
 * boot) it does nothing.
 *
 * erofs rather than squashfs: the Debian 6.1 kernel of the test distribution
 * has both as modules (EROFS_FS=m with EROFS_FS_ZIP, SQUASHFS=m), but
 * mkfs.erofs 1.5 is already the verified reproducible read-only format of the
 * disk stage (-T EPOCH -U UUID --all-root), and erofs reads faster.
 *
 * Nothing is mounted on the host: every filesystem is built into a file.
 * Reproducible: every time stamp is clamped to b->epoch (files of the ESP and
 * the ISO tree get it), every id is derived from the basename and the epoch.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/strv.h"
#include "image/bootdisk.h"
#include "image/image.h"
#include "shared/digest.h"

#define ISO_LABEL_MAX 32

struct iso_ids {
    char erofs_uuid[37];   /* 8-4-4-4-12 */
    char gpt_guid[37];
    char fat_id[9];        /* 8 hex digits */
    char epoch_s[24];      /* SOURCE_DATE_EPOCH=... */
    char stamp[17];        /* YYYYMMDDhhmmsscc (xorriso) */
};

/* Run a tool; a missing one names the Debian package that provides it. */
static int iso_run(struct lapis_image_build *b, char *const argv[], char *const env[],
                   const char *pkg, const char *cwd)
{
    struct lapis_spawn_opts o = { .env = env, .cwd = cwd, .stdin_fd = -1, .stdout_fd = -1 };
    _cleanup_free_ char *out = NULL, *err = NULL;
    /* The tools create files (dracut: the whole initrd tree) with the caller's
     * umask: a 077 umask gave 0600 files in the initrd. Fix it for the child. */
    mode_t old = umask(022);
    int r = lapis_spawn(argv, &o, &out, &err);
    umask(old);
    if (r == -ENOENT)
        return lapis_err(&b->diag, -ENOENT, "%s not found (install the Debian package %s)",
                         argv[0], pkg);
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot run %s: %s", argv[0], strerror(-r));
    if (r > 0) {
        const char *line = lapis_spawn_last_line(err);
        if (!*line)
            line = lapis_spawn_last_line(out);
        return lapis_err(&b->diag, -EIO, "%s failed (exit status %d): %s", argv[0], r,
                         *line ? line : "no message");
    }
    return 0;
}

/* The volume label: NAME-VERSION upper-cased, ISO 9660 d-characters plus '-'
 * and '.', at most 32 characters. udev shows it as /dev/disk/by-label/LABEL. */
static char *iso_label(const char *name, const char *version)
{
    _cleanup_free_ char *s = xasprintf("%s-%s", name, version);
    size_t n = strlen(s) < ISO_LABEL_MAX ? strlen(s) : ISO_LABEL_MAX;
    char *l = xstrndup(s, n);
    for (char *p = l; *p; p++) {
        *p = (char)toupper((unsigned char)*p);
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            *p = '_';
    }
    return l;
}

static void hex_uuid(const char *hex, char out[37])
{
    snprintf(out, 37, "%.8s-%.4s-4%.3s-8%.3s-%.12s", hex, hex + 8, hex + 13, hex + 17, hex + 20);
}

static int iso_ids_make(struct lapis_image_build *b, struct iso_ids *ids)
{
    _cleanup_free_ char *seed = xasprintf("lapis-iso\n%s\n%lld", b->basename, b->epoch);
    char hex[65], hex2[65];
    int r = lapis_chk_buf(seed, strlen(seed), LAPIS_CHK_SHA256, hex, sizeof hex);
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot derive the ISO's ids");
    hex_uuid(hex, ids->erofs_uuid);
    r = lapis_chk_buf(hex, 64, LAPIS_CHK_SHA256, hex2, sizeof hex2);
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot derive the ISO's ids");
    hex_uuid(hex2, ids->gpt_guid);
    snprintf(ids->fat_id, sizeof ids->fat_id, "%.8s", hex + 32);
    snprintf(ids->epoch_s, sizeof ids->epoch_s, "SOURCE_DATE_EPOCH=%lld", b->epoch);
    time_t t = (time_t)b->epoch;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ids->stamp, sizeof ids->stamp, "%Y%m%d%H%M%S00", &tm);
    return 0;
}

/* ---- small file helpers ---------------------------------------------------- */

static int copy_file(const char *src, const char *dst, mode_t mode)
{
    _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return -errno;
    _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (out < 0)
        return -errno;
    char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0)
                return -errno;
            off += w;
        }
    }
    return fchmod(out, mode) < 0 ? -errno : 0;   /* the umask must not matter */
}

static int write_text(const char *path, const char *text)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len)
        return errno ? -errno : -EIO;
    return fchmod(fd, 0644) < 0 ? -errno : 0;
}

static int mkdirs(const char *base, const char *const *dirs)
{
    for (size_t i = 0; dirs[i]; i++) {
        _cleanup_free_ char *p = path_join(base, dirs[i]);
        int r = mkdir_p(p, 0755);
        if (r < 0)
            return r;
        if (chmod(p, 0755) < 0)
            return -errno;
    }
    return 0;
}

/* ---- the live initrd ---------------------------------------------------------- */

/* Where the lapis-live dracut module is: $LAPIS_DRACUT_MODULES, the installed
 * data dir, or the source tree (tests run from the build tree). */
static const char *live_module_dir(void)
{
    static const char *const dirs[] = {
        LAPIS_DRACUT_INSTALLED,
#ifdef LAPIS_DRACUT_SOURCE
        LAPIS_DRACUT_SOURCE,
#endif
    };
    const char *e = getenv("LAPIS_DRACUT_MODULES");
    if (e && *e)
        return e;
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        _cleanup_free_ char *p = path_join(dirs[i], "90lapis-live/module-setup.sh");
        if (path_exists(p))
            return dirs[i];
    }
    return NULL;
}

/* dracut --sysroot resolves every module file inside the root, so the module
 * dir it reads must be there: ROOT/.lapis-dracut holds links to the root's own
 * dracut (what dracut uses by default with --sysroot) plus our module, and is
 * removed again before the root is imaged. dracut-functions.sh is a real copy
 * with the epoch as mtime: --reproducible clamps the initrd's files to it.
 * dracut-util too: 99base installs it from here, and through a link dracut
 * put an empty /.lapis-dracut into the initrd. */
static int live_dracut_base(struct lapis_image_build *b, const char *base)
{
    _cleanup_free_ char *rootdracut = path_join(b->rootdir, "usr/lib/dracut");
    _cleanup_free_ char *mods = path_join(base, "modules.d");
    const char *moddir = live_module_dir();
    if (!moddir)
        return lapis_err(&b->diag, -ENOENT, "the lapis-live dracut module is missing "
                         "(reinstall lapis, or set LAPIS_DRACUT_MODULES)");
    DIR *d = opendir(rootdracut);
    if (!d)
        return lapis_err(&b->diag, -ENOENT, "the image has no dracut (%s): add dracut to "
                         "packages.install for ISO output", rootdracut);
    int r = mkdir_p(mods, 0755);
    for (struct dirent *e; r >= 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "modules.d"))
            continue;
        _cleanup_free_ char *dst = path_join(base, e->d_name);
        _cleanup_free_ char *src = path_join(rootdracut, e->d_name);
        _cleanup_free_ char *rel = xasprintf("../usr/lib/dracut/%s", e->d_name);
        r = !strcmp(e->d_name, "dracut-functions.sh") ? copy_file(src, dst, 0644)
            : !strcmp(e->d_name, "dracut-util") ? copy_file(src, dst, 0755)
            : symlink(rel, dst) < 0 ? -errno : 0;
    }
    closedir(d);
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot prepare dracut in %s: %s", base, strerror(-r));
    return 0;
}

static int link_modules(struct lapis_image_build *b, const char *base)
{
    _cleanup_free_ char *src = path_join(b->rootdir, "usr/lib/dracut/modules.d");
    _cleanup_free_ char *mods = path_join(base, "modules.d");
    DIR *d = opendir(src);
    if (!d)
        return lapis_err(&b->diag, -ENOENT, "the image's dracut has no modules.d (%s)", src);
    int r = 0;
    for (struct dirent *e; r >= 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        _cleanup_free_ char *dst = path_join(mods, e->d_name);
        _cleanup_free_ char *rel = xasprintf("../../usr/lib/dracut/modules.d/%s", e->d_name);
        r = symlink(rel, dst) < 0 ? -errno : 0;
    }
    closedir(d);
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot link dracut modules: %s", strerror(-r));
    return 0;
}

static int copy_live_module(struct lapis_image_build *b, const char *base)
{
    static const char *const files[] = { "module-setup.sh", "parse-lapis-live.sh",
                                         "mount-lapis-live.sh" };
    _cleanup_free_ char *dst = path_join(base, "modules.d/90lapis-live");
    const char *moddir = live_module_dir();
    int r = moddir ? mkdir_p(dst, 0755) : -ENOENT;
    for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *s = xasprintf("%s/90lapis-live/%s", moddir, files[i]);
        _cleanup_free_ char *t = path_join(dst, files[i]);
        r = copy_file(s, t, 0755);
    }
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot copy the lapis-live dracut module: %s",
                         strerror(-r));
    return lapis_image_clamp_tree(b, base);
}

/* The boot stage's dracut run reads this drop-in (its --confdir) and the base
 * dir below: the one initrd then serves the disk and the ISO. */
static int live_dracut_conf(struct lapis_image_build *b, const char *confdir)
{
    _cleanup_free_ char *conf = path_join(confdir, "90-lapis-live.conf");
    int r = write_text(conf, "add_dracutmodules+=\" lapis-live \"\n");
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot write %s: %s", conf, strerror(-r));
    return 0;
}

int lapis_image_live_dracut_prepare(struct lapis_image_build *b, const char *confdir,
                                    char **ret_basedir)
{
    _cleanup_free_ char *base = path_join(b->rootdir, ".lapis-dracut");
    rm_rf(base, NULL);
    int r = live_dracut_base(b, base);
    if (r >= 0)
        r = link_modules(b, base);
    if (r >= 0)
        r = copy_live_module(b, base);
    if (r >= 0)
        r = live_dracut_conf(b, confdir);
    if (r < 0) {
        rm_rf(base, NULL);
        return r;
    }
    *ret_basedir = TAKE_PTR(base);
    return 0;
}

/* The root is imaged next: leave nothing of ours in it. */
void lapis_image_live_dracut_done(struct lapis_image_build *b)
{
    _cleanup_free_ char *base = path_join(b->rootdir, ".lapis-dracut");
    rm_rf(base, NULL);
}

/* ---- the ESP -------------------------------------------------------------- */

static const char *efi_arch(const char *arch)
{
    if (!strcmp(arch, "x86_64"))
        return "x64";
    if (!strcmp(arch, "aarch64"))
        return "aa64";
    return NULL;
}

static char *kernel_cmdline(struct lapis_image_build *b, const char *label)
{
    _cleanup_free_ char *head = xasprintf("lapis.live=%s rd.systemd.gpt_auto=0", label);
    return lapis_image_kernel_args(b->conf, b->arch, head);
}

static int esp_boot_files(struct lapis_image_build *b, const char *esp, const char *initrd)
{
    const char *ea = efi_arch(b->arch);
    if (!ea)
        return lapis_err(&b->diag, -EINVAL, "no UEFI boot loader name for %s", b->arch);
    _cleanup_free_ char *boot = xasprintf("%s/usr/lib/systemd/boot/efi/systemd-boot%s.efi",
                                          b->rootdir, ea);
    _cleanup_free_ char *boot_dst = xasprintf("%s/EFI/BOOT/BOOT%s.EFI", esp,
                                              !strcmp(ea, "x64") ? "X64" : "AA64");
    _cleanup_free_ char *kernel = xasprintf("%s/usr/lib/modules/%s/vmlinuz", b->rootdir, b->kver);
    _cleanup_free_ char *kdst = path_join(esp, "lapis/vmlinuz");
    _cleanup_free_ char *idst = path_join(esp, "lapis/initrd.img");
    if (!path_exists(boot))
        return lapis_err(&b->diag, -ENOENT, "the image has no systemd-boot (%s): add "
                         "systemd-boot-efi to packages.install for ISO output", boot);
    if (!path_exists(kernel))
        return lapis_err(&b->diag, -ENOENT, "the kernel %s has no vmlinuz (%s)", b->kver, kernel);
    int r = copy_file(boot, boot_dst, 0644);
    if (r >= 0)
        r = copy_file(kernel, kdst, 0644);
    if (r >= 0)
        r = copy_file(initrd, idst, 0644);
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot fill the ISO's ESP: %s", strerror(-r));
    return 0;
}

static int esp_entries(struct lapis_image_build *b, const char *esp, const char *label)
{
    _cleanup_free_ char *cmdline = kernel_cmdline(b, label);
    _cleanup_free_ char *loader = xasprintf("timeout 0\ndefault %s.conf\n", b->basename);
    _cleanup_free_ char *entry = xasprintf("title %s %s (live)\nversion %s\n"
                                           "linux /lapis/vmlinuz\ninitrd /lapis/initrd.img\n"
                                           "options %s\n",
                                           b->conf->name, b->conf->version, b->kver, cmdline);
    _cleanup_free_ char *lpath = path_join(esp, "loader/loader.conf");
    _cleanup_free_ char *epath = xasprintf("%s/loader/entries/%s.conf", esp, b->basename);
    int r = write_text(lpath, loader);
    if (r >= 0)
        r = write_text(epath, entry);
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot write the ISO's boot entry: %s", strerror(-r));
    return 0;
}

static int add_size(const char *path, const struct stat *st, void *data)
{
    unsigned long long *bytes = data;
    (void)path;
    *bytes += (S_ISREG(st->st_mode) ? (unsigned long long)st->st_size : 0) + 4096;
    return 0;
}

/* The FAT image: content + 1/16 + 4 MiB for FAT tables and clusters, whole MiB. */
static unsigned long long esp_size_kib(const char *esp)
{
    unsigned long long bytes = 0;
    (void)tree_walk(esp, false, add_size, &bytes);
    unsigned long long b = bytes + bytes / 16 + (4ULL << 20);
    return (b + (1ULL << 20) - 1) / (1ULL << 20) * 1024;
}

static int esp_image(struct lapis_image_build *b, const char *esp, const struct iso_ids *ids,
                     const char *img)
{
    char kib[32];
    snprintf(kib, sizeof kib, "%llu", esp_size_kib(esp));
    unlink(img);
    char *mkfs[] = { "mkfs.vfat", "--invariant", "-i", (char *)ids->fat_id, "-n", "LAPIS-ESP",
                     "-C", (char *)img, kib, NULL };
    char *env[] = { (char *)ids->epoch_s, "MTOOLS_SKIP_CHECK=1", NULL };
    int r = iso_run(b, mkfs, env, "dosfstools", NULL);
    static const char *const top[] = { "EFI", "loader", "lapis" };
    for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(top); i++) {
        _cleanup_free_ char *src = path_join(esp, top[i]);
        char *mcopy[] = { "mcopy", "-i", (char *)img, "-s", "-p", "-m", "-Q", src, "::/", NULL };
        r = iso_run(b, mcopy, env, "mtools", NULL);
    }
    if (r >= 0 && chmod(img, 0644) < 0)
        r = lapis_err(&b->diag, -errno, "cannot chmod %s: %s", img, strerror(errno));
    return r;
}

static int build_esp(struct lapis_image_build *b, const char *isodir, const char *label,
                     const struct iso_ids *ids)
{
    static const char *const dirs[] = { "EFI/BOOT", "loader/entries", "lapis", NULL };
    _cleanup_free_ char *esp = path_join(b->workdir, "iso-esp");
    _cleanup_free_ char *img = path_join(isodir, "EFI/efiboot.img");
    rm_rf(esp, NULL);
    int r = mkdirs(esp, dirs);
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot create %s: %s", esp, strerror(-r));
    if ((r = esp_boot_files(b, esp, b->initrd)) < 0 ||
        (r = esp_entries(b, esp, label)) < 0)
        return r;
    if ((r = lapis_image_clamp_tree(b, esp)) < 0)
        return r;
    return esp_image(b, esp, ids, img);
}

/* ---- the root image and the ISO ---------------------------------------------- */

static int root_image(struct lapis_image_build *b, const char *isodir, const struct iso_ids *ids)
{
    _cleanup_free_ char *img = path_join(isodir, "LiveOS/rootfs.img");
    char t[24];
    snprintf(t, sizeof t, "%lld", b->epoch);
    unlink(img);
    char *argv[] = { "mkfs.erofs", "--quiet", "-zlz4hc", "-T", t, "-U", (char *)ids->erofs_uuid,
                     "--all-root", img, b->rootdir, NULL };
    /* With SOURCE_DATE_EPOCH, mkfs.erofs 1.5 clamps mtimes to it (package
     * files keep theirs, files made during the build get the epoch); without
     * it, -T would depend on whether the caller's environment has one. */
    char *env[] = { (char *)ids->epoch_s, NULL };
    int r = iso_run(b, argv, env, "erofs-utils", NULL);
    if (r >= 0 && chmod(img, 0644) < 0)
        r = lapis_err(&b->diag, -errno, "cannot chmod %s: %s", img, strerror(errno));
    return r;
}

static int run_xorriso(struct lapis_image_build *b, const char *isodir, const char *label,
                       const struct iso_ids *ids, const char *out)
{
    _cleanup_free_ char *mdate = xasprintf("--modification-date=%s", ids->stamp);
    char *argv[] = { "xorriso", "-no_rc", "-as", "mkisofs", "-quiet", "-o", (char *)out,
        "-V", (char *)label, "-iso-level", "3", "-r", "-J", "-joliet-long",
        mdate, "--set_all_file_dates", (char *)ids->stamp,
        "--gpt_disk_guid", (char *)ids->gpt_guid,
        /* El Torito EFI boot for CDs; the same image as the GPT's ESP for USB sticks
         * (-isohybrid-gpt-basdat would need a syslinux MBR). */
        "-e", "EFI/efiboot.img", "-no-emul-boot", "-efi-boot-part", "--efi-boot-image",
        (char *)isodir, NULL };
    char *env[] = { (char *)ids->epoch_s, NULL };
    unlink(out);
    return iso_run(b, argv, env, "xorriso", NULL);
}

int lapis_image_write_iso(struct lapis_image_build *b)
{
    static const char *const dirs[] = { "LiveOS", "EFI", NULL };
    struct iso_ids ids;
    if (!b->kver || !b->initrd)
        return lapis_err(&b->diag, -LAPIS_E_CONFIG, "ISO output needs a kernel: add one "
                         "(e.g. linux-image-amd64) to packages.install");
    if (!efi_arch(b->arch))
        return lapis_err(&b->diag, -LAPIS_E_CONFIG, "ISO output is not supported for %s "
                         "(x86_64 and aarch64 are)", b->arch);
    _cleanup_free_ char *label = iso_label(b->conf->name, b->conf->version);
    _cleanup_free_ char *isodir = path_join(b->workdir, "iso");
    _cleanup_free_ char *name = xasprintf("%s.iso", b->basename);
    _cleanup_free_ char *out = path_join(b->stagedir, name);
    rm_rf(isodir, NULL);
    int r = iso_ids_make(b, &ids);
    if (r >= 0 && (r = mkdirs(isodir, dirs)) < 0)
        return lapis_err(&b->diag, r, "cannot create %s: %s", isodir, strerror(-r));
    if (r >= 0)
        r = build_esp(b, isodir, label, &ids);
    if (r >= 0)
        r = root_image(b, isodir, &ids);
    if (r >= 0)
        r = lapis_image_clamp_tree(b, isodir);
    if (r >= 0)
        r = run_xorriso(b, isodir, label, &ids, out);
    if (r < 0)
        return r;
    lapis_image_add_output(b, name);
    return 0;
}
