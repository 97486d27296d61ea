/*
 * The host updater's library (docs/sysupdate.md): the signed index and bundle
 * manifest, Ed25519 signatures, the disk's slots, the state file and the
 * update itself. It links src/basic + src/shared (libcurl, libcrypto),
 * libzstd and libfdisk only: an immutable host has no package manager, so
 * scripts/check-layers refuses librpm, libsolv, sqlite and gpgme here.
 */
#ifndef LAPIS_SYSUPDATE_H
#define LAPIS_SYSUPDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/diag.h"
#include "shared/digest.h"

#define SU_HEX 65               /* a sha256 in hex, NUL-terminated */
#define SU_MANIFEST_MAX (4 << 20)
#define SU_UKI_TRIES 3          /* the default boots a new version gets */
#define SU_UKI_TRIES_MAX 16
#define SU_UKI_MAX (256LL << 20)

/* ---- versions (version.c) ---- */
bool su_version_valid(const char *v);
int su_version_cmp(const char *a, const char *b);

/* ---- signatures (sign.c): "ed25519 KEYID SIG" lines over exact bytes ---- */
struct su_keys;
int su_keys_load(struct lapis_diag *d, const char *dir, struct su_keys **ret);
void su_keys_free(struct su_keys *k);
int su_sig_verify(struct lapis_diag *d, const struct su_keys *k, const char *what,
                  const void *data, size_t len, const char *sigline);
int su_sig_make(struct lapis_diag *d, const char *keyfile, const void *data, size_t len,
                char **ret_line);

/* ---- the manifest and the index (manifest.c) ---- */
enum su_payload_kind { SU_USR, SU_VERITY, SU_UKI, SU_NPAYLOADS };
extern const char *const su_payload_names[SU_NPAYLOADS];

struct su_chunk {
    long long zoff, zlen;       /* offset and length in the compressed file */
    char sha[SU_HEX];           /* sha256 of those compressed bytes */
};

struct su_payload {
    char *file;                 /* relative to the manifest's directory */
    long long size, zsize;
    char sha[SU_HEX], zsha[SU_HEX];
    struct su_chunk *chunks;
    size_t nchunks;
};

struct su_manifest {
    char *version, *arch, *min_from;
    char roothash[SU_HEX], salt[SU_HEX];
    long block_size;
    long long chunk_size;
    struct su_payload p[SU_NPAYLOADS];
};

int su_manifest_parse(struct lapis_diag *d, const char *text, struct su_manifest *ret);
void su_manifest_clear(struct su_manifest *m);

struct su_index_entry { char *version, *arch, *path; char sha[SU_HEX]; };
struct su_index {
    long long issued, expires;
    struct su_index_entry *e;
    size_t n;
};
int su_index_parse(struct lapis_diag *d, const char *text, struct su_index *ret);
void su_index_clear(struct su_index *x);
/* The newest entry for arch, or NULL. */
const struct su_index_entry *su_index_newest(const struct su_index *x, const char *arch);

/* ---- the disk (disk.c) ---- */
struct su_range { long long offset, size; size_t partno; char uuid[37]; };
struct su_disk {
    char *path;                 /* the image file (or the whole disk) */
    char *esp_dir;              /* the mounted ESP (host), or NULL: mtools at its offset */
    struct su_range esp, usr[2], verity[2];  /* [0] slot a, [1] slot b */
};
int su_disk_open(struct lapis_diag *d, const char *path, const char *arch, struct su_disk *ret);
void su_disk_clear(struct su_disk *k);
/* Give slot's usr and usr-verity partitions the PARTUUIDs of the first and
 * last 128 bits of the verity root hash (DPS; what usrhash= looks for). */
int su_disk_set_uuids(struct lapis_diag *d, const struct su_disk *k, int slot, const char *roothash);
/* The ESP's /EFI/Linux: remove every UKI of version; write one. (mtools) */
int su_esp_remove_version(struct lapis_diag *d, const struct su_disk *k, const char *version);
int su_esp_retire_version(struct lapis_diag *d, const struct su_disk *k, const char *version);
int su_esp_put(struct lapis_diag *d, const struct su_disk *k, const char *src, const char *name);
int su_esp_list(struct lapis_diag *d, const struct su_disk *k, char ***ret);
/* Boot counting in a UKI's name: tries left, or -1 when not counted (blessed). */
int su_uki_tries_left(const char *name);
const char *su_uki_find(char *const *names, const char *version);

/* ---- the running host (host.c) ---- */
/* The 64 hex digits of the last usrhash= of a kernel command line; -ENOENT. */
int su_cmdline_usrhash(const char *cmdline, char ret[SU_HEX]);
struct su_mount { const char *target; unsigned major, minor; bool autofs, vfat; };
/* Where the ESP is mounted per /proc/self/mountinfo: /efi, else /boot; -ENOENT. */
int su_mountinfo_esp(const char *mountinfo, struct su_mount *ret);
struct su_blockdev { char *disk; unsigned partno; long long start, size; };
/* A partition's resolved sysfs directory: number, bytes, parent disk. */
int su_sysfs_partition(const char *sysdir, struct su_blockdev *ret);
/* The slots through ROOT/dev/disk/by-partlabel, their disk through sysfs and
 * its GPT, the ESP mounted at /efi or /boot (root "/" is the host). */
int su_host_disk_open(struct lapis_diag *d, const char *root, const char *arch, struct su_disk *ret);
int su_disk_slot_of_hash(const struct su_disk *k, const char *roothash);
char *su_os_release_version(const char *text);

/* ---- the dm-verity root hash of a data range (verity.c) ---- */
/* The root hash and the plain sha256 of the range, from one read of it. */
int su_verity_root(struct lapis_diag *d, int fd, long long offset, long long size,
                   long block, const char *salt_hex, char ret_root[SU_HEX], char ret_sha[SU_HEX]);
/* The root hash of a slot written by veritysetup format (salt and sizes from
 * the verity superblock at the start of the hash partition). */
int su_verity_slot_root(struct lapis_diag *d, int fd, const struct su_range *data,
                        const struct su_range *hash, char ret_root[SU_HEX]);
int su_range_sha256(struct lapis_diag *d, int fd, long long offset, long long size,
                    char ret_hex[SU_HEX]);
/* Feed size bytes of fd at offset to h. */
int su_range_hash(struct lapis_diag *d, lapis_hasher *h, int fd, long long offset, long long size);
/* The same root hash and sha256, accumulated from the data as it is written
 * (su_verity_add: whole blocks, in order) instead of read back afterwards. */
struct su_verity;
int su_verity_new(struct lapis_diag *d, long long size, long block, const char *salt_hex,
                  struct su_verity **ret);
void su_verity_add(struct su_verity *v, const unsigned char *buf, size_t len);
int su_verity_add_range(struct lapis_diag *d, struct su_verity *v, int fd, long long offset, long long size);
int su_verity_final(struct lapis_diag *d, struct su_verity *v, char ret_root[SU_HEX], char ret_sha[SU_HEX]);
void su_verity_free(struct su_verity *v);

/* ---- state (state.c): /var/lib/lapis-sysupdate/state ---- */
enum su_slot_status { SU_EMPTY, SU_WRITING, SU_STAGED, SU_GOOD, SU_BAD };
extern const char *const su_status_names[];
struct su_slot { char *version; enum su_slot_status status; char roothash[SU_HEX]; };
struct su_state {
    int booted;                 /* 0 = a, 1 = b */
    struct su_slot slot[2];
    long long index_issued;
    char **failed;              /* versions that failed their boot (strv) */
    /* a write in progress */
    int prog_slot;              /* -1: none */
    char prog_manifest[SU_HEX];
    int prog_payload;
    size_t prog_chunk;          /* chunks of prog_payload done */
    char *rolled_back;          /* the last staged version the boot loader fell back from */
};
int su_state_load(struct lapis_diag *d, const char *dir, struct su_state *ret);
int su_state_save(struct lapis_diag *d, const char *dir, const struct su_state *s);
void su_state_clear(struct su_state *s);
void su_slot_set(struct su_slot *s, const char *version, enum su_slot_status st, const char *hash);
bool su_state_failed(const struct su_state *s, const char *version);

/* ---- the agent's operations (update.c) ---- */
struct su_opts {
    const char *root;           /* host mode: prefix of /dev, /sys, /proc, /run, the ESP ("/") */
    const char *image, *state_dir, *keys_dir, *url, *arch;
    bool allow_downgrade;
    int tries;                  /* boot counter of a staged UKI (lapis_V+TRIES.efi), 1..SU_UKI_TRIES_MAX */
    long long now;              /* time to judge the index's expiry by */
};
struct su_check {
    char *current, *available;  /* available: NULL when nothing newer */
    char *reason;               /* why nothing is offered, or NULL */
};
int su_check(struct lapis_diag *d, const struct su_opts *o, struct su_check *ret);
void su_check_clear(struct su_check *c);
/* ret_version: what was staged, or NULL and ret_reason says why nothing was. */
int su_update(struct lapis_diag *d, const struct su_opts *o, char **ret_version, int *ret_slot,
              char **ret_reason);
int su_init(struct lapis_diag *d, const struct su_opts *o, const char *version);
/* The ESP's entries of the disk o names (image file or host); NULL on failure. */
char **su_esp_names(const struct su_opts *o);
int su_mark_bad(struct lapis_diag *d, const struct su_opts *o, char **ret_version);
int su_mark_good(struct lapis_diag *d, const struct su_opts *o, char **ret_version);
/* At boot: which slot runs (the usrhash= of cmdline_path, /proc/cmdline on
 * the host), and whether the boot loader fell back from a staged version
 * whose tries ran out (then it is marked bad, as mark-bad does). */
struct su_boot { int booted; char *rolled_back; };
int su_boot(struct lapis_diag *d, const struct su_opts *o, const char *cmdline_path, struct su_boot *ret);
/* Make the other slot, which must be good, the next boot's default: the
 * booted version's UKI is retired and the version blocked like a failed one. */
int su_rollback(struct lapis_diag *d, const struct su_opts *o, char **ret_from, char **ret_to);
/* ret_removed: what was removed (strv, may be NULL). */
int su_cleanup(struct lapis_diag *d, const struct su_opts *o, char ***ret_removed);

/* ---- the health-check hook (health.c) ---- */
#define SU_HEALTH_VENDOR "/usr/lib/lapis-sysupdate/health.d"
#define SU_HEALTH_ADMIN "/etc/lapis-sysupdate/health.d"
struct su_check_result { char *name, *path, *output; int status; };
/* Run every check of dirs (a later dir masks a name of an earlier one) in
 * name order; all are run and reported (*ret, *ret_n) even when one fails,
 * and the first failure is the error. */
int su_health(struct lapis_diag *d, char *const *dirs, struct su_check_result **ret, size_t *ret_n);
void su_health_free(struct su_check_result *res, size_t n);

/* ---- the bundle writer (bundle.c) ---- */
struct su_bundle_opts {
    const char *key, *version, *arch, *min_from, *usr, *uki, *outdir;
    long long chunk_size;
    int level;
};
int su_bundle_write(struct lapis_diag *d, const struct su_bundle_opts *o, char ret_root[SU_HEX]);
int su_bundle_index(struct lapis_diag *d, const char *key, const char *dir, long long issued,
                   long long valid);

#endif
