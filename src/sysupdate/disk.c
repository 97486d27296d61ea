/*
 * The disk's slots (docs/sysupdate.md "Disk layout"): the GPT read with
 * libfdisk, partitions found by DPS type GUID and label, returned as byte
 * ranges of the disk so one code path writes an image file (offline) or a
 * whole disk. The shared ESP of an image file is written with mtools at its
 * offset ("IMAGE@@OFFSET"), which needs no mount and no loop device; on the
 * host (host.c found it) it is the mounted vfat, written as files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libfdisk/libfdisk.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/strv.h"
#include "lapis/common.h"
#include "sysupdate/sysupdate.h"

#define ESP_TYPE "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"

struct arch_types { const char *arch, *usr, *verity; };
static const struct arch_types TYPES[] = {
    { "x86_64", "8484680c-9521-48c6-9c11-b0720656f69e", "77ff5f63-e7b6-4633-acf4-1565b864c0e6" },
    { "aarch64", "b0e01050-ee5f-4390-949a-9101b17104e9", "6e11a4e7-fbca-4ded-b9e9-e1a512bb664e" },
};

static const struct arch_types *types_of(const char *arch)
{
    for (size_t i = 0; i < ARRAY_SIZE(TYPES); i++)
        if (strcmp(TYPES[i].arch, arch) == 0)
            return &TYPES[i];
    return NULL;
}

/* Where a partition of this type and label goes in k, or NULL. */
static struct su_range *slot_of(struct su_disk *k, const struct arch_types *t, const char *type,
                                const char *name)
{
    static const char *const labels[2][2] = { { "usr-a", "usr-a-verity" }, { "usr-b", "usr-b-verity" } };
    if (strcasecmp(type, ESP_TYPE) == 0)
        return &k->esp;
    for (int s = 0; s < 2; s++) {
        if (strcasecmp(type, t->usr) == 0 && strcmp(name, labels[s][0]) == 0)
            return &k->usr[s];
        if (strcasecmp(type, t->verity) == 0 && strcmp(name, labels[s][1]) == 0)
            return &k->verity[s];
    }
    return NULL;
}

static int read_gpt(struct lapis_diag *d, struct fdisk_context *c, const struct arch_types *t,
                    struct su_disk *k)
{
    struct fdisk_table *tb = NULL;
    if (!fdisk_is_labeltype(c, FDISK_DISKLABEL_GPT) || fdisk_get_partitions(c, &tb) < 0)
        return lapis_err(d, LAPIS_E_CONFIG, "%s has no GPT partition table", k->path);
    struct fdisk_iter *it = fdisk_new_iter(FDISK_ITER_FORWARD);
    struct fdisk_partition *pa;
    unsigned long ss = fdisk_get_sector_size(c);
    int r = 0;
    while (r == 0 && fdisk_table_next_partition(tb, it, &pa) == 0) {
        struct fdisk_parttype *pt = fdisk_partition_get_type(pa);
        const char *type = pt ? fdisk_parttype_get_string(pt) : NULL;
        const char *name = fdisk_partition_get_name(pa);
        struct su_range *slot = type && name ? slot_of(k, t, type, name) : NULL;
        if (slot && slot->size)
            r = lapis_err(d, LAPIS_E_CONFIG, "%s: two partitions named %s", k->path, name);
        else if (slot) {
            *slot = (struct su_range){ (long long)(fdisk_partition_get_start(pa) * ss),
                                       (long long)(fdisk_partition_get_size(pa) * ss),
                                       fdisk_partition_get_partno(pa), "" };
            const char *uuid = fdisk_partition_get_uuid(pa);
            snprintf(slot->uuid, sizeof(slot->uuid), "%s", uuid ? uuid : "");
        }
    }
    fdisk_free_iter(it);
    fdisk_unref_table(tb);
    return r;
}

int su_disk_open(struct lapis_diag *d, const char *path, const char *arch, struct su_disk *ret)
{
    const struct arch_types *t = types_of(arch);
    if (!t)
        return lapis_err(d, LAPIS_E_CONFIG, "no A/B layout is defined for the arch %s", arch);
    struct su_disk k = { .path = xstrdup(path) };
    struct fdisk_context *c = fdisk_new_context();
    int r = fdisk_assign_device(c, path, 1);
    if (r < 0)
        r = lapis_err(d, r, "cannot read the partition table of %s: %s", path, strerror(-r));
    else
        r = read_gpt(d, c, t, &k);
    fdisk_unref_context(c);
    if (r >= 0 && (!k.esp.size || !k.usr[0].size || !k.usr[1].size || !k.verity[0].size ||
                   !k.verity[1].size))
        r = lapis_err(d, LAPIS_E_CONFIG, "%s is not an A/B disk: it needs an ESP and the "
                      "partitions usr-a, usr-a-verity, usr-b, usr-b-verity of the %s DPS types",
                      path, arch);
    if (r < 0) {
        su_disk_clear(&k);
        return r;
    }
    *ret = k;
    return 0;
}

static int set_uuid(struct fdisk_context *c, size_t partno, const char *hex32)
{
    char uuid[37];
    snprintf(uuid, sizeof(uuid), "%.8s-%.4s-%.4s-%.4s-%.12s", hex32, hex32 + 8, hex32 + 12,
             hex32 + 16, hex32 + 20);
    struct fdisk_partition *pa = fdisk_new_partition();
    int r = pa ? fdisk_partition_set_uuid(pa, uuid) : -ENOMEM;
    if (r >= 0)
        r = fdisk_set_partition(c, partno, pa);
    fdisk_unref_partition(pa);
    return r;
}

int su_disk_set_uuids(struct lapis_diag *d, const struct su_disk *k, int slot, const char *roothash)
{
    struct fdisk_context *c = fdisk_new_context();
    int r = fdisk_assign_device(c, k->path, 0);
    if (r >= 0 && (r = set_uuid(c, k->usr[slot].partno, roothash)) >= 0 &&
        (r = set_uuid(c, k->verity[slot].partno, roothash + 32)) >= 0)
        r = fdisk_write_disklabel(c);
    if (r >= 0)
        r = fdisk_deassign_device(c, 0); /* fsyncs */
    fdisk_unref_context(c);
    if (r < 0)
        return lapis_err(d, r, "cannot write the partition UUIDs of slot %c on %s: %s", 'a' + slot,
                         k->path, strerror(-r));
    return 0;
}

void su_disk_clear(struct su_disk *k)
{
    free(k->path);
    free(k->esp_dir);
    *k = (struct su_disk){ 0 };
}

/* ---- the ESP, through mtools ---- */

static int mtool(struct lapis_diag *d, char **argv, char **ret_out)
{
    char *env[] = { "MTOOLS_SKIP_CHECK=1", NULL };
    struct lapis_spawn_opts o = { .env = env, .stdin_fd = -1, .stdout_fd = -1 };
    _cleanup_free_ char *err = NULL;
    int r = lapis_spawn(argv, &o, ret_out, &err);
    if (r == -ENOENT)
        return lapis_err(d, LAPIS_E_CONFIG, "%s is not installed (Debian package mtools)", argv[0]);
    if (r != 0)
        return lapis_err(d, LAPIS_E_CONFIG, "%s on the ESP failed: %s", argv[0],
                         r < 0 ? strerror(-r) : lapis_spawn_last_line(err));
    return 0;
}

static char *esp_image(const struct su_disk *k)
{
    return xasprintf("%s@@%lld", k->path, k->esp.offset);
}

/* The mounted ESP's /EFI/Linux (host mode). */
static char *esp_linux(const struct su_disk *k)
{
    return path_join(k->esp_dir, "EFI/Linux");
}

static int esp_dir_list(struct lapis_diag *d, const struct su_disk *k, char ***ret)
{
    _cleanup_free_ char *dir = esp_linux(k);
    DIR *x = opendir(dir);
    if (!x && errno != ENOENT)
        return lapis_err(d, -errno, "cannot read %s: %s", dir, strerror(errno));
    char **names = NULL;
    for (struct dirent *e; x && (e = readdir(x));)
        if (e->d_name[0] != '.')
            strv_push(&names, xstrdup(e->d_name));
    if (x)
        closedir(x);
    *ret = names;
    return 0;
}

int su_esp_list(struct lapis_diag *d, const struct su_disk *k, char ***ret)
{
    if (k->esp_dir)
        return esp_dir_list(d, k, ret);
    _cleanup_free_ char *img = esp_image(k), *out = NULL;
    char *argv[] = { "mdir", "-b", "-i", img, "::/EFI/Linux", NULL };
    int r = mtool(d, argv, &out);
    if (r < 0)
        return r;
    char **names = NULL;
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        const char *base = strrchr(l, '/');
        strv_push(&names, xstrdup(base ? base + 1 : l));
    }
    *ret = names;
    return 0;
}

/* A rename or unlink in /EFI/Linux is made durable before the caller goes
 * on: the boot loader must never see an entry the state says is gone. */
static int esp_sync(struct lapis_diag *d, const char *dir)
{
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        return lapis_err(d, -errno, "cannot sync %s: %s", dir, strerror(errno));
    return 0;
}

static int esp_delete(struct lapis_diag *d, const struct su_disk *k, const char *name)
{
    if (!k->esp_dir) {
        _cleanup_free_ char *img = esp_image(k), *p = xasprintf("::/EFI/Linux/%s", name);
        char *argv[] = { "mdel", "-i", img, p, NULL };
        return mtool(d, argv, NULL);
    }
    _cleanup_free_ char *dir = esp_linux(k), *p = path_join(dir, name);
    if (unlink(p) < 0 && errno != ENOENT)
        return lapis_err(d, -errno, "cannot remove %s: %s", p, strerror(errno));
    return esp_sync(d, dir);
}

static int esp_rename(struct lapis_diag *d, const struct su_disk *k, const char *from, const char *to)
{
    if (!k->esp_dir) {
        _cleanup_free_ char *img = esp_image(k), *f = xasprintf("::/EFI/Linux/%s", from),
                            *t = xasprintf("::/EFI/Linux/%s", to);
        char *argv[] = { "mren", "-i", img, f, t, NULL };
        return mtool(d, argv, NULL);
    }
    _cleanup_free_ char *dir = esp_linux(k), *f = path_join(dir, from), *t = path_join(dir, to);
    if (rename(f, t) < 0)
        return lapis_err(d, -errno, "cannot rename %s to %s: %s", f, to, strerror(errno));
    return esp_sync(d, dir);
}

/* Copy src into the mounted ESP under a temporary name, fsync, rename: a
 * power cut leaves no half UKI under a name systemd-boot would boot. */
static int esp_dir_put(struct lapis_diag *d, const struct su_disk *k, const char *src, const char *name)
{
    _cleanup_free_ char *dir = esp_linux(k), *tmp = xasprintf("%s/.%s.tmp", dir, name),
                        *dst = path_join(dir, name);
    int r = mkdir_p(dir, 0755);
    _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int out = r < 0 || in < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (r < 0 || in < 0 || out < 0)
        return lapis_err(d, r < 0 ? r : -errno, "cannot write %s: %s", dst, strerror(r < 0 ? -r : errno));
    char buf[1 << 16];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n) {
            n = -1;
            break;
        }
    if (n < 0 || fsync(out) < 0 || rename(tmp, dst) < 0) {
        int e = errno;
        unlink(tmp);
        return lapis_err(d, -e, "cannot write %s: %s", dst, strerror(e));
    }
    return esp_sync(d, dir);
}

/* lapis_V.efi, lapis_V+N.efi or lapis_V+N-M.efi (systemd-boot's counters). */
static bool uki_of(const char *name, const char *version)
{
    size_t lv = strlen(version);
    if (strncmp(name, "lapis_", 6) != 0 || strncmp(name + 6, version, lv) != 0)
        return false;
    const char *rest = name + 6 + lv;
    if (*rest == '+')
        rest += 1 + strspn(rest + 1, "0123456789-");
    return strcasecmp(rest, ".efi") == 0;
}

/* The tries systemd-boot has left for name (lapis_V+N.efi, lapis_V+N-M.efi:
 * N), or -1 when it does not count (a blessed lapis_V.efi). */
int su_uki_tries_left(const char *name)
{
    const char *plus = strrchr(name, '+');
    char *end;
    if (!plus)
        return -1;
    long n = strtol(plus + 1, &end, 10);
    return end != plus + 1 && (*end == '-' || *end == '.') && n >= 0 && n < 1000 ? (int)n : -1;
}

/* The UKI of version among names, or NULL. */
const char *su_uki_find(char *const *names, const char *version)
{
    for (size_t i = 0; names && names[i]; i++)
        if (uki_of(names[i], version))
            return names[i];
    return NULL;
}

int su_esp_remove_version(struct lapis_diag *d, const struct su_disk *k, const char *version)
{
    char **names = NULL;
    int r = su_esp_list(d, k, &names);
    for (size_t i = 0; r >= 0 && names && names[i]; i++)
        if (uki_of(names[i], version))
            r = esp_delete(d, k, names[i]);
    lapis_strv_free(names);
    return r;
}

int su_esp_put(struct lapis_diag *d, const struct su_disk *k, const char *src, const char *name)
{
    if (k->esp_dir)
        return esp_dir_put(d, k, src, name);
    _cleanup_free_ char *img = esp_image(k), *p = xasprintf("::/EFI/Linux/%s", name);
    char *argv[] = { "mcopy", "-o", "-i", img, (char *)src, p, NULL };
    return mtool(d, argv, NULL);
}

/* Every UKI of version becomes lapis_V+0.efi: no tries left, so systemd-boot
 * sorts it after every other entry and boots another one by default, while
 * it stays in the menu for a hand-picked boot. */
int su_esp_retire_version(struct lapis_diag *d, const struct su_disk *k, const char *version)
{
    char **names = NULL;
    int r = su_esp_list(d, k, &names);
    _cleanup_free_ char *to = xasprintf("lapis_%s+0.efi", version);
    bool found = false;
    for (size_t i = 0; r >= 0 && names && names[i]; i++) {
        if (!uki_of(names[i], version))
            continue;
        found = true;
        if (strcmp(names[i], to) != 0)
            r = esp_rename(d, k, names[i], to);
    }
    lapis_strv_free(names);
    if (r >= 0 && !found)
        r = lapis_err(d, LAPIS_E_CONFIG, "the ESP has no UKI of %s", version);
    return r;
}
