/*
 * The running host's own disk (docs/sysupdate.md "The agent", host mode):
 * the slots are found through /dev/disk/by-partlabel, their disk through
 * sysfs, and the whole disk is then read with libfdisk exactly as an image
 * file is (su_disk_open: type GUIDs and labels), so writing a slot is the
 * same pwrite at the same offsets on /dev/vda as on disk.raw. The ESP is the
 * vfat mounted at /efi or /boot (from /proc/self/mountinfo) when it is this
 * disk's ESP partition; it is written as files, not with mtools.
 *
 * Every path takes a root prefix ("/" on the host) so the tests can run the
 * agent against sample sysfs, mountinfo and cmdline files. The parsers are
 * pure functions of the files' text (tests/unit/sysupdate_host_test.c).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "lapis/common.h"
#include "sysupdate/sysupdate.h"

/* ---- parsers of the kernel's files ---- */

int su_cmdline_usrhash(const char *cmdline, char ret[SU_HEX])
{
    _cleanup_free_ char *text = xstrdup(cmdline);
    int found = -ENOENT;
    /* The last usrhash= wins, as for any kernel command line option. */
    for (char *save = NULL, *w = strtok_r(text, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save))
        if (strncmp(w, "usrhash=", 8) == 0 && strlen(w + 8) == 64 &&
            strspn(w + 8, "0123456789abcdef") == 64) {
            strcpy(ret, w + 8);
            found = 0;
        }
    return found;
}

/* mountinfo escapes blanks and backslashes in paths as \ooo. */
static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++, o++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
            s[3] <= '7') {
            *o = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else
            *o = *s;
    }
    *o = '\0';
}

/* One mountinfo line: "ID PARENT MAJ:MIN ROOT TARGET OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER". */
static bool mount_line(char *line, char **ret_target, unsigned *ret_major, unsigned *ret_minor,
                       char **ret_fstype)
{
    char *f[6], *save = NULL;
    for (int i = 0; i < 6; i++)
        if (!(f[i] = strtok_r(i ? NULL : line, " ", &save)))
            return false;
    char *w;
    while ((w = strtok_r(NULL, " ", &save)) && strcmp(w, "-") != 0)
        ;
    char *fstype = w ? strtok_r(NULL, " ", &save) : NULL;
    if (!fstype || sscanf(f[2], "%u:%u", ret_major, ret_minor) != 2)
        return false;
    unescape(f[4]);
    *ret_target = f[4];
    *ret_fstype = fstype;
    return true;
}

/* The last mount on target (a later mount covers an earlier one there). */
static bool mount_on(const char *mountinfo, const char *target, struct su_mount *ret)
{
    _cleanup_free_ char *text = xstrdup(mountinfo);
    bool found = false;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *t, *fstype;
        unsigned ma, mi;
        if (!mount_line(l, &t, &ma, &mi, &fstype) || strcmp(t, target) != 0)
            continue;
        *ret = (struct su_mount){ .major = ma, .minor = mi, .autofs = strcmp(fstype, "autofs") == 0,
                                  .vfat = strcmp(fstype, "vfat") == 0 };
        found = true;
    }
    return found;
}

/* The ESP's mount point: /efi, else /boot (the two places the Boot Loader
 * Specification allows), when vfat is mounted there or an automount waits. */
int su_mountinfo_esp(const char *mountinfo, struct su_mount *ret)
{
    static const char *const targets[] = { "/efi", "/boot" };
    for (size_t i = 0; i < ARRAY_SIZE(targets); i++) {
        struct su_mount m;
        if (mount_on(mountinfo, targets[i], &m) && (m.vfat || m.autofs)) {
            m.target = targets[i];
            *ret = m;
            return 0;
        }
    }
    return -ENOENT;
}

static int read_number(const char *dir, const char *name, long long *ret)
{
    _cleanup_free_ char *p = path_join(dir, name), *text = NULL;
    size_t len;
    char *end;
    int r = read_file(p, 64, &text, &len);
    if (r < 0)
        return r;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || (*end && *end != '\n') || v < 0)
        return -EINVAL;
    *ret = v;
    return 0;
}

/* A partition's sysfs directory (resolved: .../block/vda/vda3): its number,
 * byte range (sysfs counts 512-byte sectors whatever the disk's) and disk. */
int su_sysfs_partition(const char *sysdir, struct su_blockdev *ret)
{
    long long partno, start, size;
    int r = read_number(sysdir, "partition", &partno);
    if (r < 0 || (r = read_number(sysdir, "start", &start)) < 0 ||
        (r = read_number(sysdir, "size", &size)) < 0)
        return r;
    _cleanup_free_ char *parent = xstrdup(sysdir);
    char *slash = strrchr(parent, '/');
    if (!slash || slash == parent)
        return -EINVAL;
    *slash = '\0';
    const char *disk = strrchr(parent, '/') ? strrchr(parent, '/') + 1 : parent;
    *ret = (struct su_blockdev){ xstrdup(disk), (unsigned)partno, start * 512, size * 512 };
    return 0;
}

/* ---- the host's disk ---- */

static int partition_at(struct lapis_diag *d, const char *root, const char *sysrel,
                        struct su_blockdev *ret)
{
    _cleanup_free_ char *p = path_in_root(root, sysrel);
    _cleanup_free_ char *real = realpath(p, NULL);
    int r = real ? su_sysfs_partition(real, ret) : -errno;
    if (r < 0)
        return lapis_err(d, LAPIS_E_CONFIG, "%s is not a partition in sysfs: %s", sysrel, strerror(-r));
    return 0;
}

/* /dev/disk/by-partlabel/LABEL -> its partition in sysfs. */
static int by_label(struct lapis_diag *d, const char *root, const char *label, struct su_blockdev *ret)
{
    _cleanup_free_ char *rel = xasprintf("/dev/disk/by-partlabel/%s", label);
    _cleanup_free_ char *link = path_in_root(root, rel);
    _cleanup_free_ char *dev = realpath(link, NULL);
    if (!dev)
        return lapis_err(d, LAPIS_E_CONFIG, "no partition is labelled %s (%s: %s): this host has no "
                         "A/B slots", label, rel, strerror(errno));
    _cleanup_free_ char *sys = xasprintf("/sys/class/block/%s", strrchr(dev, '/') + 1);
    return partition_at(d, root, sys, ret);
}

/* The kernel's view of a partition is the one the GPT on its disk gives. */
static int same_part(struct lapis_diag *d, const struct su_disk *k, const struct su_blockdev *b,
                     const struct su_range *g, const char *what)
{
    if (b->partno == g->partno + 1 && b->start == g->offset && b->size == g->size)
        return 0;
    return lapis_err(d, LAPIS_E_CONFIG, "%s: the kernel has partition %u at %lld, the GPT of %s has "
                     "%zu at %lld (re-read the partition table or reboot)", what, b->partno, b->start,
                     k->path, g->partno + 1, g->offset);
}

static int slots_by_label(struct lapis_diag *d, const char *root, const char *arch, struct su_disk *ret)
{
    static const char *const labels[] = { "usr-a", "usr-a-verity", "usr-b", "usr-b-verity" };
    struct su_blockdev b[4] = { 0 };
    int r = 0;
    for (size_t i = 0; r >= 0 && i < 4; i++)
        if ((r = by_label(d, root, labels[i], &b[i])) >= 0 && strcmp(b[i].disk, b[0].disk) != 0)
            r = lapis_err(d, LAPIS_E_CONFIG, "%s is on %s, %s on %s: the slots must share one disk",
                          labels[0], b[0].disk, labels[i], b[i].disk);
    _cleanup_free_ char *rel = r >= 0 ? xasprintf("/dev/%s", b[0].disk) : NULL;
    _cleanup_free_ char *dev = rel ? path_in_root(root, rel) : NULL;
    if (r >= 0)
        r = su_disk_open(d, dev, arch, ret);
    for (size_t i = 0; r >= 0 && i < 4; i++) {
        const struct su_range *g = i % 2 ? &ret->verity[i / 2] : &ret->usr[i / 2];
        if ((r = same_part(d, ret, &b[i], g, labels[i])) < 0)
            su_disk_clear(ret);
    }
    for (size_t i = 0; i < 4; i++)
        free(b[i].disk);
    return r;
}

static int esp_mount(struct lapis_diag *d, const char *root, struct su_mount *ret)
{
    _cleanup_free_ char *p = path_in_root(root, "/proc/self/mountinfo"), *text = NULL;
    size_t len;
    int r = read_file(p, 4 << 20, &text, &len);
    if (r < 0)
        return lapis_err(d, r, "cannot read %s: %s", p, strerror(-r));
    if (su_mountinfo_esp(text, ret) < 0)
        return lapis_err(d, LAPIS_E_CONFIG, "the ESP is not mounted: no vfat on /efi or /boot "
                         "(mount it there, or give --image DISK)");
    return 0;
}

/* The ESP mounted at /efi or /boot; an automount is triggered by looking in it. */
static int find_esp(struct lapis_diag *d, const char *root, struct su_disk *k)
{
    struct su_mount m;
    int r = esp_mount(d, root, &m);
    if (r >= 0 && m.autofs) {
        _cleanup_free_ char *dir = path_in_root(root, m.target);
        DIR *x = opendir(dir);
        if (x)
            closedir(x);
        r = esp_mount(d, root, &m);
        if (r >= 0 && !m.vfat)
            r = lapis_err(d, LAPIS_E_CONFIG, "%s is an automount that mounted no vfat", m.target);
    }
    if (r < 0)
        return r;
    _cleanup_free_ char *sys = xasprintf("/sys/dev/block/%u:%u", m.major, m.minor);
    struct su_blockdev b;
    if ((r = partition_at(d, root, sys, &b)) < 0)
        return r;
    const char *disk = strrchr(k->path, '/') + 1;
    if (strcmp(b.disk, disk) != 0 || b.partno != k->esp.partno + 1)
        r = lapis_err(d, LAPIS_E_CONFIG, "the vfat on %s is partition %u of %s, not the ESP of %s "
                      "(partition %zu)", m.target, b.partno, b.disk, disk, k->esp.partno + 1);
    free(b.disk);
    if (r >= 0)
        k->esp_dir = path_in_root(root, m.target);
    return r;
}

int su_host_disk_open(struct lapis_diag *d, const char *root, const char *arch, struct su_disk *ret)
{
    struct su_disk k;
    int r = slots_by_label(d, root, arch, &k);
    if (r < 0)
        return r;
    if ((r = find_esp(d, root, &k)) < 0) {
        su_disk_clear(&k);
        return r;
    }
    *ret = k;
    return 0;
}

/* The slot whose usr partition has the PARTUUID usrhash= points at (its
 * first 128 bits, as the disk's verity partitions are named), or -1. */
int su_disk_slot_of_hash(const struct su_disk *k, const char *roothash)
{
    for (int s = 0; s < 2; s++) {
        char hex[33] = "";
        size_t n = 0;
        for (const char *u = k->usr[s].uuid; *u && n < 32; u++)
            if (*u != '-')
                hex[n++] = (char)(*u >= 'A' && *u <= 'F' ? *u - 'A' + 'a' : *u);
        hex[n] = '\0';
        if (n == 32 && strncmp(hex, roothash, 32) == 0)
            return s;
    }
    return -1;
}

/* IMAGE_VERSION= of an os-release text (the composer writes it), or NULL. */
char *su_os_release_version(const char *text)
{
    _cleanup_free_ char *copy = xstrdup(text);
    for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (strncmp(l, "IMAGE_VERSION=", 14) != 0)
            continue;
        char *v = l + 14;
        size_t n = strlen(v);
        if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0])
            v[n - 1] = '\0', v++;
        return su_version_valid(v) ? xstrdup(v) : NULL;
    }
    return NULL;
}
