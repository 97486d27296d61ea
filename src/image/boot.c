/*
 * The boot stage: initrd (host dracut against the root), the kernel command
 * line, and the ESP tree in workdir/esp (systemd-boot from the root, plus a
 * UKI or a BLS entry). Nothing here writes into the root, so OCI output of
 * the same build stays free of boot files.
 *
 * dracut is the host's, run with --sysroot: the root's own dracut would need
 * a chroot and cannot run for another architecture; the host's reads every
 * file it packs (binaries, libraries, modules) from the root. Everything that
 * contains a build path goes into the generated dracut.conf, because dracut
 * stores its command line in the initrd (build-parameter.txt) and the staging
 * directory differs between builds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "image/bootdisk.h"

/* The kernel modules of the initrd, exactly (dracut's drivers=, with what
 * they depend on): storage controllers of the clouds and hypervisors images
 * run on (QEMU/KVM virtio and AHCI/PIIX, Hyper-V/Azure, Xen, NVMe on AWS and
 * bare metal, common SAS/RAID HBAs, USB and SD media) and the file systems of
 * our images. dracut's default, every block driver of the kernel (~750
 * modules), took ~10 s of a disk build; mkosi curates a list the same way. */
static const char initrd_drivers[] =
    "virtio_pci virtio_mmio virtio_blk virtio_scsi nvme ahci ata_piix sd_mod sr_mod "
    "hv_vmbus hv_storvsc xen_blkfront mpt3sas megaraid_sas usb_storage uas xhci_pci "
    "mmc_block sdhci_pci sdhci_acpi ext4 erofs vfat nls_cp437 nls_iso8859_1 isofs loop overlay "
    "dm_verity";
static const char initrd_modules[] =
    "base systemd systemd-initrd kernel-modules rootfs-block udev-rules dracut-systemd fs-lib shutdown";

static const char *efi_arch(const char *arch)
{
    if (!strcmp(arch, "x86_64"))
        return "x64";
    if (!strcmp(arch, "aarch64"))
        return "aa64";
    return NULL;
}

static int write_text_len(struct lapis_image_build *b, const char *path, const void *data, size_t len)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len)
        return lapis_err(&b->diag, -EIO, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

static int write_text(struct lapis_image_build *b, const char *path, const char *text)
{
    return write_text_len(b, path, text, strlen(text));
}

/* dracut-install lists a binary's libraries with ldd (DRACUT_LDD), which runs
 * the binary's loader: for another architecture's root the host's ldd says
 * "not a dynamic executable" and the initrd silently gets no libraries. This
 * ldd reads the ELF files instead (readelf works on any architecture): the
 * DT_NEEDED closure, searched as ld.so does (RUNPATH else RPATH, the root's
 * ld.so.conf.d, the system dirs), printed as ldd prints it. dracut-install
 * passes no arguments but the file, hence the environment. */
static const char foreign_ldd[] =
    "#!/bin/sh\n"
    "# Written by lapis (src/image/boot.c): ldd for a root of another architecture.\n"
    "root=$LAPIS_LDD_ROOT\n"
    "f=${1#\"$root\"}\n"
    "[ -f \"$root$f\" ] || { echo \"ldd: $1: not regular file\"; exit 1; }\n"
    "dyn() { readelf -dW \"$root$1\" 2>/dev/null; }\n"
    "tag() { printf '%s\\n' \"$1\" | sed -n \"s/.*($2).*\\[\\(.*\\)\\]\\$/\\1/p\"; }\n"
    "dyn \"$f\" | grep -q '(NEEDED)' || { echo '\tnot a dynamic executable'; exit 1; }\n"
    "interp=$(readelf -lW \"$root$f\" | sed -n 's/.*program interpreter: \\(.*\\)]$/\\1/p')\n"
    "[ -z \"$interp\" ] || echo \"\t$interp (0x0)\"\n"
    "conf=$(cat \"$root\"/etc/ld.so.conf.d/*.conf 2>/dev/null | sed -n 's,^\\(/[^ #]*\\).*,\\1,p')\n"
    "seen=' '\n"
    "set -- \"$f\"\n"
    "while [ $# -gt 0 ]; do\n"
    "    d=$(dyn \"$1\"); origin=${1%/*}; shift\n"
    "    path=$(tag \"$d\" RUNPATH); [ -n \"$path\" ] || path=$(tag \"$d\" RPATH)\n"
    "    path=$(printf '%s' \"$path\" | sed \"s,[$]{*ORIGIN}*,$origin,g\" | tr : ' ')\n"
    "    for lib in $(tag \"$d\" NEEDED); do\n"
    "        case $seen in *\" $lib \"*) continue ;; esac\n"
    "        seen=\"$seen$lib \"; hit=\n"
    "        for dir in $path $conf $LAPIS_LDD_DIRS; do\n"
    "            if [ -e \"$root$dir/$lib\" ]; then hit=$dir/$lib; break; fi\n"
    "        done\n"
    "        if [ -n \"$hit\" ]; then echo \"\t$lib => $hit (0x0)\"; set -- \"$@\" \"$hit\"\n"
    "        else echo \"\t$lib => not found\"; fi\n"
    "    done\n"
    "done\n";

static bool foreign_arch(const struct lapis_image_build *b)
{
    struct utsname u;
    return uname(&u) == 0 && strcmp(u.machine, b->arch) != 0;
}

/* For a foreign root: the ldd above, and the library dirs dracut would
 * otherwise read from the root's ld.so.cache (ldconfig cannot make one for
 * another architecture, so finalize has not). */
static int foreign_ldd_setup(struct lapis_image_build *b, char ***env)
{
    _cleanup_free_ char *ldd = path_join(b->workdir, "ldd");
    _cleanup_close_ int fd = open(ldd, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);

    if (fd < 0 || write(fd, foreign_ldd, sizeof(foreign_ldd) - 1) != (ssize_t)sizeof(foreign_ldd) - 1)
        return lapis_err(&b->diag, -EIO, "cannot write %s: %s", ldd, strerror(errno));
    strv_push(env, xasprintf("DRACUT_LDD=%s", ldd));
    strv_push(env, xasprintf("LAPIS_LDD_ROOT=%s", b->rootdir));
    strv_push(env, xasprintf("LAPIS_LDD_DIRS=/usr/lib/%s-linux-gnu /usr/lib /lib/%s-linux-gnu /lib",
                             b->arch, b->arch));
    strv_push(env, xasprintf("DRACUT_ARCH=%s", b->arch));
    return 0;
}

static int dracut_conf(struct lapis_image_build *b, const char *conf)
{
    _cleanup_free_ char *libdirs = foreign_arch(b) ?
        xasprintf("libdirs=\"/lib /usr/lib /usr/lib/%s-linux-gnu\"\n", b->arch) : xstrdup("");
    _cleanup_free_ char *text = xasprintf(
        "dracutsysrootdir=\"%s\"\n"
        "drivers_dir=\"%s/usr/lib/modules/%s\"\n"
        "hostonly=\"no\"\nreproducible=\"yes\"\n"
        /* dracut's zstd is level 15: ~30 s of CPU for a 120 MB initrd; level 3
         * takes ~1 s for a 15% larger initrd (same kernel decompressor). */
        "compress=\"zstd -3 -q -T0\"\n"
        "dracutmodules=\" %s%s \"\ndrivers=\" %s%s \"\n"
        /* Debian's dracut finds these through systemd's pkg-config file, absent here. */
        "systemdutildir=/usr/lib/systemd\nsystemdsystemunitdir=/usr/lib/systemd/system\n"
        "systemdsystemconfdir=/etc/systemd/system\nudevdir=/usr/lib/udev\n"
        "udevrulesdir=/usr/lib/udev/rules.d\n%s",
        b->rootdir, b->rootdir, b->kver, initrd_modules,
        /* The A/B host's initrd opens /usr verified: usrhash= -> systemd-veritysetup. */
        b->conf->ab ? " dm systemd-veritysetup" : "", initrd_drivers, b->conf->ab ? " dm_mod" : "",
        libdirs);
    return write_text(b, conf, text);
}

/* The finalize stage runs depmod; when it has not (modules.dep missing),
 * run it here and give what it wrote the epoch as mtime. */
static int run_depmod(struct lapis_image_build *b, char *const argv[])
{
    _cleanup_free_ char *dir = xasprintf("usr/lib/modules/%s", b->kver);
    _cleanup_free_ char *dep = xasprintf("%s/modules.dep", dir);
    _cleanup_close_ int has = lapis_image_open_in_root(b, dep);
    _cleanup_close_ int dfd = -1;
    struct timespec ts[2] = { { b->epoch, 0 }, { b->epoch, 0 } };
    DIR *d;
    struct dirent *e;
    int r;

    if (has >= 0)
        return 0;
    if ((r = lapis_image_tool(b, "kmod", argv, NULL, NULL)) < 0)
        return r;
    dfd = lapis_image_open_in_root(b, dir);
    if (dfd < 0 || !(d = fdopendir(dup(dfd))))
        return lapis_err(&b->diag, -EIO, "cannot open /%s in the root", dir);
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "modules.", 8))
            utimensat(dfd, e->d_name, ts, AT_SYMLINK_NOFOLLOW);
    closedir(d);
    futimens(dfd, ts);
    return 0;
}

static int make_initrd(struct lapis_image_build *b)
{
    _cleanup_free_ char *conf = path_join(b->workdir, "dracut.conf");
    _cleanup_free_ char *confdir = path_join(b->workdir, "dracut.conf.d");
    _cleanup_strv_ char **env = NULL, **cross = NULL;
    char *depmod[] = { "depmod", "-b", b->rootdir, b->kver, NULL };
    char *dracut[] = { "dracut", "--quiet", "--conf", "dracut.conf", "--confdir", "dracut.conf.d",
                       "--kver", b->kver, "--force", "initrd", NULL };
    _cleanup_free_ char *base = NULL;
    bool live = b->conf->formats & LAPIS_IMAGE_ISO;
    int r;

    if ((r = run_depmod(b, depmod)) < 0 || (foreign_arch(b) && (r = foreign_ldd_setup(b, &cross)) < 0))
        return r;
    if (mkdir_p(confdir, 0755) < 0 || (r = dracut_conf(b, conf)) < 0)
        return r < 0 ? r : lapis_err(&b->diag, -EIO, "cannot create %s", confdir);
    /* The ISO boots this initrd too (one dracut run): with the lapis-live
     * module, which does nothing without lapis.live= on the command line. */
    if (live && (r = lapis_image_live_dracut_prepare(b, confdir, &base)) < 0)
        return r;
    strv_push(&env, xasprintf("SOURCE_DATE_EPOCH=%lld", b->epoch));
    strv_push(&env, xasprintf("dracutbasedir=%s", base ? base : "/usr/lib/dracut"));
    strv_push(&env, xstrdup("TMPDIR=/var/tmp"));
    for (char **c = cross; c && *c; c++)
        strv_push(&env, xstrdup(*c));
    r = lapis_image_tool(b, "dracut-core", dracut, env, b->workdir);
    if (live)
        lapis_image_live_dracut_done(b);
    if (r < 0)
        return r;
    free(b->initrd);
    b->initrd = path_join(b->workdir, "initrd");
    return 0;
}

/* etc/kernel/cmdline (finalize writes "rw" + the config's), else the same here. */
static char *base_cmdline(struct lapis_image_build *b);

/* The A/B host: /usr is the verity device of usrhash=, whose data and hash
 * partitions systemd-veritysetup-generator finds by PARTUUID (the hash's
 * first and last 128 bits); systemd-fstab-generator mounts it in the initrd.
 * mount.usr* are spelled out: systemd 252 would otherwise take /usr's type
 * and options from the root's. */
static char *kernel_cmdline(struct lapis_image_build *b)
{
    char *s = base_cmdline(b), *t;
    if (!b->usrhash[0])
        return s;
    t = xasprintf("%s usrhash=%s mount.usr=/dev/mapper/usr mount.usrfstype=erofs mount.usrflags=ro",
                  s, b->usrhash);
    free(s);
    return t;
}

static char *base_cmdline(struct lapis_image_build *b)
{
    _cleanup_close_ int fd = lapis_image_open_in_root(b, "etc/kernel/cmdline");
    char buf[4096] = "";
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    char *s;

    if (n > 0)
        buf[n] = 0;
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    if (*strstrip(buf))
        return xstrdup(strstrip(buf));        /* finalize already added the config's */
    s = xstrdup("rw");
    for (char **a = b->conf->kernel_cmdline; a && *a; a++) {
        char *t = xasprintf("%s %s", s, *a);
        free(s);
        s = t;
    }
    return s;
}

static int copy_from_root(struct lapis_image_build *b, const char *src, const char *dst)
{
    _cleanup_close_ int fd = lapis_image_open_in_root(b, src);
    if (fd < 0)
        return lapis_err(&b->diag, fd, "/%s is missing in the root: %s", src, strerror(-fd));
    return lapis_image_copy_fd(b, fd, dst, 0644);
}

static int copy_file(struct lapis_image_build *b, const char *src, const char *dst)
{
    _cleanup_close_ int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lapis_err(&b->diag, -errno, "cannot read %s: %s", src, strerror(errno));
    return lapis_image_copy_fd(b, fd, dst, 0644);
}

/* The kernel image in the root: usr/lib/modules/KVER/vmlinuz, else boot/vmlinuz-KVER. */
static char *kernel_path(struct lapis_image_build *b)
{
    char *p = xasprintf("usr/lib/modules/%s/vmlinuz", b->kver);
    int fd = lapis_image_open_in_root(b, p);
    if (fd >= 0) {
        close(fd);
        return p;
    }
    free(p);
    return xasprintf("boot/vmlinuz-%s", b->kver);
}

static int esp_dirs(struct lapis_image_build *b, const char *esp)
{
    static const char *const dirs[] = { "EFI/BOOT", "EFI/systemd", "EFI/Linux", "loader/entries" };
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        _cleanup_free_ char *d = path_join(esp, dirs[i]);
        if (mkdir_p(d, 0755) < 0)
            return lapis_err(&b->diag, -errno, "cannot create %s: %s", d, strerror(errno));
    }
    return 0;
}

static int install_sdboot(struct lapis_image_build *b, const char *esp, const char *ea)
{
    _cleanup_free_ char *src = xasprintf("usr/lib/systemd/boot/efi/systemd-boot%s.efi", ea);
    _cleanup_free_ char *upper = xstrdup(ea);
    _cleanup_free_ char *boot = NULL, *sd = NULL, *conf = NULL;
    int r;

    for (char *p = upper; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    boot = xasprintf("%s/EFI/BOOT/BOOT%s.EFI", esp, upper);
    sd = xasprintf("%s/EFI/systemd/systemd-boot%s.efi", esp, ea);
    conf = path_join(esp, "loader/loader.conf");
    if ((r = copy_from_root(b, src, boot)) < 0) {
        lapis_diag_clear(&b->diag);
        return lapis_err(&b->diag, r, "/%s is missing in the root (add systemd-boot-efi to "
                         "packages.install)", src);
    }
    if ((r = copy_from_root(b, src, sd)) < 0)
        return r;
    return write_text(b, conf, "timeout 0\neditor no\nauto-entries no\nauto-firmware no\n");
}

static unsigned long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (unsigned long long)st.st_size : 0;
}

static unsigned long long align_up(unsigned long long v, unsigned long long a)
{
    return (v + a - 1) / a * a;
}

/* os-release for the UKI's .osrel: the root's, as the boot menu shows it. */
static int root_osrel(struct lapis_image_build *b, const char *dst)
{
    int r = copy_from_root(b, "etc/os-release", dst);
    if (r < 0) {
        lapis_diag_clear(&b->diag);
        r = copy_from_root(b, "usr/lib/os-release", dst);
    }
    return r;
}

/* objcopy stamps the PE header with the current time (it ignores
 * SOURCE_DATE_EPOCH): set TimeDateStamp to the epoch and recompute the PE
 * checksum over the result. */
static int pe_fix(struct lapis_image_build *b, const char *path)
{
    _cleanup_free_ unsigned char *buf = NULL;
    size_t len = 0;
    uint32_t pe, sum = 0;
    int r = read_file(path, 1ULL << 31, (char **)&buf, &len);

    if (r < 0)
        return lapis_err(&b->diag, r, "cannot read %s: %s", path, strerror(-r));
    pe = len > 0x40 ? (uint32_t)buf[0x3c] | (uint32_t)buf[0x3d] << 8 | (uint32_t)buf[0x3e] << 16 : 0;
    if (pe == 0 || pe + 0x5c > len || memcmp(buf + pe, "PE\0\0", 4))
        return lapis_err(&b->diag, -EINVAL, "objcopy wrote no PE image to %s", path);
    for (int i = 0; i < 4; i++) {
        buf[pe + 8 + i] = (unsigned char)((unsigned long long)b->epoch >> (8 * i));
        buf[pe + 0x58 + i] = 0;
    }
    for (size_t i = 0; i < len; i += 2) {
        sum += buf[i] | (i + 1 < len ? (uint32_t)buf[i + 1] << 8 : 0);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16) + (uint32_t)len;
    for (int i = 0; i < 4; i++)
        buf[pe + 0x58 + i] = (unsigned char)(sum >> (8 * i));
    return write_text_len(b, path, buf, len);
}

/* objcopy only edits PE images of the architecture binutils was built for
 * (for a foreign stub it reports "--change-section-vma .osrel=... never
 * used"): another arch's UKI needs the cross binutils. */
static const char *uki_objcopy(const struct lapis_image_build *b, const char **pkg)
{
    if (!foreign_arch(b)) {
        *pkg = "binutils";
        return "objcopy";
    }
    if (!strcmp(b->arch, "aarch64")) {
        *pkg = "binutils-aarch64-linux-gnu";
        return "aarch64-linux-gnu-objcopy";
    }
    *pkg = "binutils-x86-64-linux-gnu";
    return "x86_64-linux-gnu-objcopy";
}

/* The section VMAs follow systemd's documented layout (systemd-stub(7)):
 * .osrel 0x20000, .cmdline 0x30000, .linux 0x2000000, .initrd after the
 * kernel, aligned to 1 MiB so a large kernel never overlaps it. */
static int make_uki(struct lapis_image_build *b, const char *esp, const char *ea,
                    const char *kernel, const char *cmdline)
{
    _cleanup_free_ char *stub = xasprintf("usr/lib/systemd/boot/efi/linux%s.efi.stub", ea);
    _cleanup_free_ char *stubf = path_join(b->workdir, "stub.efi");
    _cleanup_free_ char *osrel = path_join(b->workdir, "os-release");
    _cleanup_free_ char *cmdf = path_join(b->workdir, "cmdline");
    /* The A/B host's entries count their boots (systemd-boot: +3 tries, then
     * systemd-bless-boot drops the counter): docs/sysupdate.md. */
    _cleanup_free_ char *out = b->conf->ab
        ? xasprintf("%s/EFI/Linux/lapis_%s+3.efi", esp, b->conf->version)
        : xasprintf("%s/EFI/Linux/%s-%s.efi", esp, b->conf->name, b->conf->version);
    _cleanup_free_ char *a1 = NULL, *a2 = NULL, *a3 = NULL, *a4 = NULL, *vinit = NULL;
    const char *pkg, *objcopy = uki_objcopy(b, &pkg);
    int r;

    if ((r = copy_from_root(b, stub, stubf)) < 0 || (r = root_osrel(b, osrel)) < 0 ||
        (r = write_text(b, cmdf, cmdline)) < 0)
        return r;
    a1 = xasprintf(".osrel=%s", osrel);
    a2 = xasprintf(".cmdline=%s", cmdf);
    a3 = xasprintf(".linux=%s", kernel);
    a4 = xasprintf(".initrd=%s", b->initrd);
    vinit = xasprintf(".initrd=0x%llx", 0x2000000ULL + align_up(file_size(kernel), 1 << 20));
    char *argv[] = { (char *)objcopy,
                     "--add-section", a1, "--change-section-vma", ".osrel=0x20000",
                     "--add-section", a2, "--change-section-vma", ".cmdline=0x30000",
                     "--add-section", a3, "--change-section-vma", ".linux=0x2000000",
                     "--add-section", a4, "--change-section-vma", vinit,
                     stubf, out, NULL };
    if ((r = lapis_image_tool(b, pkg, argv, NULL, NULL)) < 0 || (r = pe_fix(b, out)) < 0)
        return r;
    free(b->uki);
    b->uki = xstrdup(out);
    return 0;
}

static int make_bls(struct lapis_image_build *b, const char *esp, const char *kernel,
                    const char *cmdline)
{
    const char *id = b->conf->name, *ver = b->conf->version;
    _cleanup_free_ char *dir = xasprintf("%s/%s-%s", esp, id, ver);
    _cleanup_free_ char *lin = path_join(dir, "linux"), *ird = path_join(dir, "initrd");
    _cleanup_free_ char *entry = xasprintf("%s/loader/entries/%s-%s.conf", esp, id, ver);
    _cleanup_free_ char *text = xasprintf("title %s %s\nversion %s\nlinux /%s-%s/linux\n"
                                          "initrd /%s-%s/initrd\noptions %s\n",
                                          id, ver, b->kver, id, ver, id, ver, cmdline);
    int r;

    if (mkdir_p(dir, 0755) < 0)
        return lapis_err(&b->diag, -errno, "cannot create %s: %s", dir, strerror(errno));
    if ((r = copy_file(b, kernel, lin)) < 0 || (r = copy_file(b, b->initrd, ird)) < 0)
        return r;
    return write_text(b, entry, text);
}

static int boot_prepare(struct lapis_image_build *b)
{
    const char *ea = efi_arch(b->arch);
    _cleanup_free_ char *esp = path_join(b->workdir, "esp");
    _cleanup_free_ char *kin = NULL, *kernel = path_join(b->workdir, "vmlinuz");
    _cleanup_free_ char *cmdline = NULL;
    int r;

    if (!ea)
        return lapis_err(&b->diag, -ENOTSUP, "no UEFI boot for architecture %s (x86_64 and "
                         "aarch64 can boot)", b->arch);
    if (!b->kver)
        return lapis_err(&b->diag, -ENOENT, "no kernel in the image: add the kernel package "
                         "(linux-image-amd64 / kernel) to packages.install, or drop the disk and iso formats");
    kin = kernel_path(b);
    if ((r = make_initrd(b)) < 0 || (r = copy_from_root(b, kin, kernel)) < 0 ||
        (r = esp_dirs(b, esp)) < 0 || (r = install_sdboot(b, esp, ea)) < 0)
        return r;
    cmdline = kernel_cmdline(b);
    r = b->conf->uki ? make_uki(b, esp, ea, kernel, cmdline) : make_bls(b, esp, kernel, cmdline);
    if (r < 0)
        return r;
    return lapis_image_clamp_tree(b, esp);
}

/* The umask must not reach the initrd's or the ESP's modes (reproducibility). */
int lapis_image_boot_prepare(struct lapis_image_build *b)
{
    mode_t old = umask(022);
    int r = boot_prepare(b);
    umask(old);
    return r;
}
