/*
 * The image composer's internal contract (src/image): the parsed config, the
 * per-arch build object, and one entry point per stage of the pipeline that
 * build.c runs (docs/image.md describes the config for users). Stages only
 * talk through struct lapis_image_build, so each can be tested on its own
 * against a root directory made by any means.
 */
#ifndef LAPIS_IMAGE_IMAGE_H
#define LAPIS_IMAGE_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "shared/diag.h"

/* ---- config (config.c) -------------------------------------------------- */

enum lapis_image_format {
    LAPIS_IMAGE_RAW = 1 << 0,
    LAPIS_IMAGE_QCOW2 = 1 << 1,
    LAPIS_IMAGE_VHD = 1 << 2,        /* Azure fixed VHD */
    LAPIS_IMAGE_VHDX = 1 << 3,
    LAPIS_IMAGE_ISO = 1 << 4,
    LAPIS_IMAGE_OCI = 1 << 5,        /* OCI image layout directory */
    LAPIS_IMAGE_OCI_ARCHIVE = 1 << 6,/* the same as an oci-archive tar */
    LAPIS_IMAGE_BUNDLE = 1 << 7,     /* signed update bundle of the A/B host (lapis-sysupdate) */
};
#define LAPIS_IMAGE_DISK_FORMATS \
    (LAPIS_IMAGE_RAW | LAPIS_IMAGE_QCOW2 | LAPIS_IMAGE_VHD | LAPIS_IMAGE_VHDX)
#define LAPIS_IMAGE_BOOT_FORMATS (LAPIS_IMAGE_DISK_FORMATS | LAPIS_IMAGE_ISO)

/* One `repos:` entry: a .repo file (path relative to the config) or inline. */
struct lapis_image_repo {
    char *file;            /* .repo file, absolute after load; or NULL for inline */
    char *id;              /* inline only */
    char **baseurls;
    char **gpgkeys;
    int gpgcheck;          /* -1 = default (on) */
    int repo_gpgcheck;     /* -1 = default (on) */
    int priority;          /* 0 = default */
};

struct lapis_image_user {
    char *name;
    long uid;              /* -1 = allocate */
    char *password_hash;   /* crypt(3) hash; NULL = locked */
    char **ssh_keys;       /* authorized_keys lines */
    char **groups;         /* secondary groups */
    char *shell;           /* NULL = /bin/bash if present, else /bin/sh */
    char *home;            /* NULL = /home/NAME (/root for root) */
};

struct lapis_image_group {
    char *name;
    long gid;              /* -1 = allocate */
};

/* additionalFiles / additionalDirs */
struct lapis_image_file {
    char *destination;     /* absolute path in the image */
    char *source;          /* host file (absolute after load), or NULL */
    char *content;         /* inline content, or NULL; exactly one of source/content for files */
    mode_t mode;           /* default 0644 files, 0755 dirs */
    uid_t uid;
    gid_t gid;
    bool is_dir;
};

struct lapis_image_kv {
    char *key;
    char *value;
};

enum lapis_image_fs { LAPIS_FS_EXT4, LAPIS_FS_EROFS, LAPIS_FS_VFAT, LAPIS_FS_NONE /* usr-verity */ };
enum lapis_image_part_type { LAPIS_PART_ESP, LAPIS_PART_ROOT, LAPIS_PART_VAR, LAPIS_PART_XBOOTLDR,
                             LAPIS_PART_USR, LAPIS_PART_USR_VERITY /* the A/B host's slots */ };

struct lapis_image_partition {
    char *id;                      /* label, e.g. "esp", "root" */
    enum lapis_image_part_type type;
    enum lapis_image_fs fs;
    unsigned long long size;       /* bytes; 0 = grow to fill the disk */
};

struct lapis_image_config {
    char *path;                    /* the config file, absolute */
    char *dir;                     /* its directory: relative paths are resolved here */
    unsigned char sha256[32];      /* digest of the config file's bytes */

    char *name;                    /* [A-Za-z0-9._-]+ */
    char *version;
    char **arches;                 /* default: the host's */
    char *releasever;
    struct lapis_image_repo *repos;
    size_t nrepos;

    /* packages: */
    char **install;
    char **exclude;
    bool install_weak_deps;        /* default false */
    bool nodocs;                   /* default true */
    char **languages;              /* locales kept; NULL = all */

    /* os: */
    char *hostname;
    char *timezone;                /* default UTC */
    char *locale;                  /* default C.UTF-8 */
    char **kernel_cmdline;         /* extra arguments */
    bool serial_console;           /* add console=<the arch's serial port> */
    char *selinux_mode;            /* NULL (not selected) | disabled | permissive | enforcing */
    struct lapis_image_user *users;
    size_t nusers;
    struct lapis_image_group *groups;
    size_t ngroups;
    char **services_enable;
    char **services_disable;
    struct lapis_image_file *files; /* files and dirs, in config order */
    size_t nfiles;
    struct lapis_image_kv *sysctl;
    size_t nsysctl;
    bool hardening;                /* the hardened default profile; default true */
    char **setuid_allow;           /* allowed setuid/setgid paths; NULL = the built-in list */
    char **keep;                   /* "package-cache", "logs", "history", "tmp": kept in the image */

    /* container: (OCI config) */
    char **entrypoint;
    char **cmd;
    struct lapis_image_kv *env;
    size_t nenv;
    char *user;
    char *workdir;
    struct lapis_image_kv *labels;
    size_t nlabels;
    char *layer_compression;       /* "gzip" (default) | "zstd" */
    char *qcow2_compression;       /* "zstd" (default) | "zlib" | "none" */

    /* storage: */
    unsigned long long disk_size;  /* bytes; 0 = root content + headroom */
    struct lapis_image_partition *partitions; /* default: esp 256M + root ext4 grow */
    size_t npartitions;
    bool uki;                      /* true: UKI in /EFI/Linux; false: BLS entry; default true */
    bool ab;                       /* the A/B host: usr-a/usr-b partitions (abhost.c) */

    /* sysupdate: (the A/B host's update agent) */
    char **sysupdate_keys;         /* trusted public keys (host paths, absolute) -> keys.d */
    char *sysupdate_url;           /* update server, or NULL */
    char *sysupdate_signing_key;   /* private key signing the bundle output (host path), or NULL */
    char *sysupdate_min_from;      /* bundle's min-from-version, or NULL */
    int sysupdate_tries;           /* boots a staged version gets (tries=), 0: the agent's default */

    /* output: */
    unsigned formats;              /* enum lapis_image_format bits; default raw|oci */
    char *signing_key;             /* OpenPGP key id/fingerprint for SHA256SUMS.asc, or NULL */
    char *signing_gnupghome;       /* GNUPGHOME holding it, or NULL (the default) */
};

/* Parse and check a config; every problem is one message "FILE:LINE: KEY: ..." on d. */
int lapis_image_config_load(struct lapis_diag *d, const char *path,
                            struct lapis_image_config **ret);
void lapis_image_config_free(struct lapis_image_config *c);
int lapis_image_format_from_name(const char *name);   /* bit, or -1 */
const char *lapis_image_format_name(unsigned bit);
/* HEAD, the config's extra kernel arguments, then (serialConsole) the arch's
 * serial console last, so that /dev/console is the serial port. */
char *lapis_image_kernel_args(const struct lapis_image_config *c, const char *arch,
                              const char *head);

/* ---- lock file (lockfile.c): CONFIG.lock, JSON -------------------------------- */

struct lapis_image_pkg {
    char *name;
    unsigned epoch;
    char *version;
    char *release;
    char *arch;
    char *repo;            /* repo id it came from */
    char *sha256;          /* of the .rpm file, hex */
    char *license;
    char *vendor;          /* supplier, may be NULL */
    char *sourcerpm;
    char *url;
    unsigned long long installsize;
    unsigned long long buildtime;
};

struct lapis_image_lock {
    char *config_sha256;   /* hex digest of the config it was made from */
    struct lapis_image_pkg *pkgs; /* per arch, sorted by (arch, name) */
    size_t npkgs;
};

int lapis_image_lock_read(struct lapis_diag *d, const char *path, struct lapis_image_lock **ret);
int lapis_image_lock_write(struct lapis_diag *d, const char *path, const struct lapis_image_lock *l);
void lapis_image_lock_free(struct lapis_image_lock *l);
void lapis_image_pkg_clear(struct lapis_image_pkg *p);

/* ---- one build, per arch (build.c) -------------------------------------- */

struct lapis_image_report {
    char **setuid_removed;         /* paths whose setuid/setgid bit finalize dropped */
    unsigned long long root_bytes; /* bytes of regular files in the root */
    double stage_seconds[8];
};

struct lapis_image_build {
    struct lapis_diag diag;
    const struct lapis_image_config *conf;
    const struct lapis_image_lock *lock; /* --locked, else NULL */
    const char *arch;
    char *basename;                /* NAME-VERSION.ARCH */
    char *stagedir;                /* OUTDIR/.lapis-build-PID-XXXXXX */
    char *rootdir;                 /* stagedir/root */
    char *workdir;                 /* stagedir/work (ESP tree in workdir/esp) */
    char *cachedir;                /* package/metadata cache (outside OUTDIR) */
    long long epoch;               /* SOURCE_DATE_EPOCH */
    struct lapis_image_pkg *pkgs;  /* installed set, sorted by name */
    size_t npkgs;
    char *kver;                    /* kernel version, NULL if no kernel */
    char *initrd;                  /* workdir path of the initrd, once boot_prepare ran */
    char *usr_image;               /* A/B host: workdir erofs of /usr, once write_usr ran */
    char *usr_verity;              /* its dm-verity hash tree */
    char usrhash[65];              /* its verity root hash (hex), "" when not an A/B host */
    char *uki;                     /* workdir path of the UKI, once boot_prepare ran */
    char **outputs;                /* names in stagedir to move to OUTDIR at the end */
    struct lapis_image_report report;
    struct lapis_image_compose *compose; /* compose.c's state between resolve and compose */
    struct lapis_image_bg *depmod; /* finalize.c's depmod, running beside later steps */
    struct lapis_image_finisher *finisher; /* build.c's: finishes outputs meanwhile (build.h) */
    bool drop_root;                /* no stage after the disk's file systems reads rootdir */
    bool root_dropped;             /* ... and its removal has begun */
};

/* The stages, in order. Each returns 0 or a negative error with the message on b->diag. */
/* Load the repos and resolve the package set (b->pkgs filled, nothing installed):
 * build.c looks up its cache with it. lapis_image_compose resolves first if needed. */
int lapis_image_resolve(struct lapis_image_build *b);         /* compose.c */
int lapis_image_compose(struct lapis_image_build *b);         /* compose.c */
void lapis_image_compose_free(struct lapis_image_build *b);   /* compose.c: drop the state */
int lapis_image_finalize(struct lapis_image_build *b);        /* finalize.c */
int lapis_image_boot_prepare(struct lapis_image_build *b);    /* boot.c */
int lapis_image_write_disk(struct lapis_image_build *b);      /* disk.c: every disk format asked */
/* The same while the boot stage runs in another thread: the partitions that need
 * nothing of it are made first, then wait_boot(data) (< 0 stops) before the ESP. */
int lapis_image_write_disk_overlapped(struct lapis_image_build *b, int (*wait_boot)(void *),
                                      void *data);              /* disk.c */
int lapis_image_write_iso(struct lapis_image_build *b);       /* iso.c */
int lapis_image_write_oci(struct lapis_image_build *b);       /* oci.c */
/* After every arch's write_oci, when there are several: NAME-VERSION.oci/
 * (+ .oci.tar) in the stagedir, an index over the per-arch manifests; the
 * outputs are recorded on the last build (oci.c). */
int lapis_image_write_oci_index(struct lapis_image_build *builds, size_t n);
int lapis_image_write_sbom(struct lapis_image_build *b);      /* sbom.c */
/* An output (a name in stagedir) is complete and stays as it is: it is hashed
 * (and fsynced first when sync is set) and copied into the image cache while
 * the build goes on. lapis_image_add_output does it too (build.c). */
void lapis_image_output_ready(struct lapis_image_build *b, const char *name, bool sync);
/* The stages left read nothing of rootdir: with drop_root set, it is removed
 * in the background from now on (build.c). */
void lapis_image_root_unused(struct lapis_image_build *b);
/* The A/B host (abhost.c): factory /etc, agent keys, then /usr as erofs +
 * dm-verity tree (b->usr_image, usr_verity, usrhash); before boot_prepare. */
int lapis_image_write_usr(struct lapis_image_build *b);
/* The signed update bundle of this version (BASENAME.bundle/VERSION/), by
 * the lapis-sysupdate built next to lapis; after boot_prepare. */
int lapis_image_write_bundle(struct lapis_image_build *b);

/* ---- provenance (provenance.c): /usr/lib/lapis/image.json in the image ---- */

/* Write rootdir/usr/lib/lapis/image.json (mode 0644, mtime b->epoch): config
 * digest, name, version, arch, lapis version, build time and the lock (the
 * installed set, in CONFIG.lock's package shape). build.c runs it after
 * lapis_image_finalize, before the disk/ISO/OCI outputs. */
int lapis_image_write_provenance(struct lapis_image_build *b);

struct lapis_image_provenance {
    int format;                    /* "format" key, 1 */
    char *name, *version, *arch;
    char *config_sha256;           /* hex */
    char *lapis_version;
    long long build_time;          /* SOURCE_DATE_EPOCH of the build */
    struct lapis_image_lock lock;  /* the installed set */
};

/* Parse an image.json (for `lapis image inspect`); one error message on d. */
int lapis_image_provenance_parse(struct lapis_diag *d, const char *json, size_t len,
                                 struct lapis_image_provenance **ret);
int lapis_image_provenance_read(struct lapis_diag *d, const char *path,
                                struct lapis_image_provenance **ret);
void lapis_image_provenance_free(struct lapis_image_provenance *p);

/* Record an output file (a name relative to stagedir). */
void lapis_image_add_output(struct lapis_image_build *b, const char *name);

#endif
