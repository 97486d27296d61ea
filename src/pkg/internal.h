/*
 * Private declarations shared by the package-manager library (src/pkg): the
 * context and repository structs, the option tables, and the modules' entry
 * points. Helpers from the layers below come in through their own headers.
 */
#ifndef LAPIS_INTERNAL_H
#define LAPIS_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <solv/pool.h>
#include <solv/repo.h>
#include <solv/bitmap.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/ini.h"
#include "basic/macro.h"
#include "basic/parse.h"
#include "basic/strv.h"
#include "basic/url.h"
#include "basic/vars.h"
#include "lapis/lapis.h"
#include "shared/diag.h"
#include "shared/digest.h"
#include "shared/fetch.h"
#include "shared/lock.h"
#include "shared/reboot.h"

/* lapis_err(ctx, ...), lapis_log and lapis_progress take a lapis_ctx too: its
 * first member is its struct lapis_diag (checked in context.c). */
#undef LAPIS_DIAG_OF
#define LAPIS_DIAG_OF(x) _Generic((x), lapis_ctx *: (struct lapis_diag *)(void *)(x), \
    const lapis_ctx *: (const struct lapis_diag *)(const void *)(x), default: (x))

/* ---- options (config.c) ------------------------------------------------- */

/* Options that a .repo section may override; [main] holds the defaults. */
struct lapis_repo_opts {
    int gpgcheck;
    int repo_gpgcheck;
    int skip_if_unavailable;
    int sslverify;
    long long metadata_expire; /* seconds, -1 = never */
    char *sslcacert;
    char **exclude;
    struct lapis_fetch_limits net; /* timeout (seconds), retries */
    int signature_policy;      /* enum lapis_sigpolicy */
    int pinned_key_reset;      /* accept a changed gpgkey once, re-pinning it */
};

/* signature_policy: default refuses SHA-1, DSA, RSA < 2048, revoked keys and
 * signatures made after the key expired (sigpolicy.c); legacy is librpm alone. */
enum lapis_sigpolicy { LAPIS_SIGPOLICY_DEFAULT, LAPIS_SIGPOLICY_LEGACY };

struct lapis_config {
    struct lapis_repo_opts repo;
    char **reposdir;
    char *cachedir;
    int max_parallel_downloads;
    char **installonlypkgs;
    int installonly_limit;
    int install_weak_deps;
    int keepcache;
    int best;
    int skip_unavailable;      /* a spec that matches nothing is skipped, not an error */
    int obsoletes;             /* obsoleting packages replace what they obsolete */
    char **protected_packages; /* never removed */
    char **includepkgs;        /* [main] includepkgs: only these (a repo's own list wins) */
    char *destdir;             /* where download / --downloadonly put packages */
    int cacheonly;             /* 0 none, 1 metadata, 2 all (dnf5's cacheonly=) */
    int recent;                /* days: what --recent lists */
    int clean_requirements_on_remove;
    long long lock_timeout;    /* seconds to wait for another lapis on the same root */
    char **tsflags;            /* nodocs, noscripts, test */
    int localpkg_gpgcheck;
    int color;                 /* enum lapis_color: color=auto|always|never (dnf 4) */
};

int lapis_config_defaults(struct lapis_config *conf);
void lapis_config_clear(struct lapis_config *conf);
/* Apply KEY=VALUE for [main]; returns -ENOENT for unknown keys, -EINVAL for bad values. */
int lapis_config_set_main(struct lapis_config *conf, const char *key, const char *value);
int lapis_config_load_file(lapis_ctx *ctx, const char *path, bool must_exist);

/* ---- repositories (repo.c) ---------------------------------------------- */

struct lapis_repo {
    char *id;
    char *name;
    char **baseurls;
    char *baseurl_text; /* newline-joined, for display */
    char **gpgkeys;
    char **includepkgs;
    int enabled;
    int priority;
    int cost;
    struct lapis_repo_opts opts;
    char *source;       /* file the repo came from */

    /* runtime */
    char *cachedir;     /* <cachedir>/<id> */
    Repo *solv;
    int npackages;
    long long timestamp;
    bool skipped;
    bool filelists_loaded;
    bool details_loaded;
    char *solv_dir;     /* where this repo's .solv files were loaded from */
    char *comps_path;   /* its comps (groups) file in the cache, NULL: none (comps.c) */
    long long comps_open_size; /* decompressed size repomd.xml gives, -1 unknown */
    bool gpgkeys_fetched; /* this run fetched gpgkey= into the cache (transaction.c) */
    char repomd_sha256[65];
};

struct lapis_repo *lapis_repo_new(const char *id, const struct lapis_repo_opts *defaults);
void lapis_repo_free(struct lapis_repo *r);
int lapis_repo_set(lapis_ctx *ctx, struct lapis_repo *r, const char *key, const char *value);
bool lapis_repo_id_valid(const char *id);
/* Whether an exclude or include filter may hide packages of the repo. */
bool lapis_repo_filtered(const lapis_ctx *ctx, const struct lapis_repo *lr);
int lapis_repos_read_dirs(lapis_ctx *ctx);
struct lapis_repo *lapis_repo_find(lapis_ctx *ctx, const char *id);
void lapis_repo_opts_copy(struct lapis_repo_opts *dst, const struct lapis_repo_opts *src);
void lapis_repo_opts_clear(struct lapis_repo_opts *o);

/* ---- context ------------------------------------------------------------ */

/* A "@commandline" package: the file behind it and, for a copy found in a
 * repo's package cache, that repo (its keys verify the file). */
struct lapis_cmdline_pkg {
    char *path;
    struct lapis_repo *origin;
    char *from_repo;          /* the repo history records (an offline transaction's), or NULL */
};

struct lapis_ctx {
    struct lapis_diag diag;  /* first: lapis_err(ctx, ...) relies on it */
    /* GnuPG's key facts per set of key texts, kept for the context's life
     * (sigpolicy.c): a transaction checks signatures, then imports the keys. */
    struct lapis_sigmemo *sigmemo;

    /* command-line settings */
    char *installroot;      /* NULL = "/" */
    char *config_file;      /* -c: host path */
    bool config_explicit;
    char *releasever;
    char *arch;
    bool arch_forced;              /* set by lapis_ctx_set_arch (--forcearch) */
    char *basearch;
    char **setopts_main;    /* "key=value" */
    char **setopts_repo;    /* "glob.key=value" */
    char **repo_toggles;    /* "+glob" / "-glob", in order */
    char **repofrompath;    /* --repofrompath: "ID,PATH", in order */
    bool cacheonly;
    bool nogpgcheck;
    bool cachedir_explicit;
    bool reposdir_explicit;

    struct lapis_config conf;
    struct lapis_repo **repos;
    size_t nrepos;
    bool setup_done;
    int setup_rc;
    char *setup_errmsg;

    Pool *pool;
    bool loaded;
    bool details_loaded;
    Repo *cmdline_repo;     /* "@commandline": local .rpm files */
    struct lapis_cmdline_pkg *cmdline_pkgs; /* indexed by solvable id - cmdline_repo->start */
    size_t ncmdline_pkgs;

    lapis_confirm_fn confirm_fn;
    void *confirm_data;
    int lock_fd;            /* -1 until lapis_ctx_lock() */
    int cache_lock_fd;      /* CACHEDIR/lock; -1 until first needed (or not lockable) */
    bool cache_lock_tried;
    bool cache_lock_ro;     /* opened read-only: exclusive locks are skipped */
    short cache_held[3];    /* F_UNLCK/F_RDLCK/F_WRLCK per byte of the cache lock (lock.c) */
    char **pending_rpms;    /* added before load */
    char **extra_excludes;  /* --exclude */
    unsigned char *reasons; /* lapis_reason per installed solvable, loaded lazily */
    bool reasons_loaded;
    char **from_repos;      /* repo id per installed solvable (history), loaded lazily */
    size_t nfrom_repos;
    bool from_repos_loaded;
};

bool lapis_confirm(lapis_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

lapis_var *lapis_ctx_vars(lapis_ctx *ctx, size_t *ret_n);

/* ---- lock.c: the root and cache locks (see the top of lock.c) ------------ */

enum lapis_cache_area { LAPIS_CACHE_METADATA = 1, LAPIS_CACHE_PACKAGES = 2 };

/* Hold the cache for the life of the context: shared, or exclusive to clean it.
 * After lapis_ctx_setup() (these are called from below it). */
int lapis_lock_cache(lapis_ctx *ctx, bool clean);
/* Hold an area at least as strongly as type (F_RDLCK, F_WRLCK), waiting up to
 * lock_timeout; *ret_prev is what to hand lapis_lock_cache_area_restore. */
int lapis_lock_cache_area(lapis_ctx *ctx, enum lapis_cache_area area, short type,
                          short *ret_prev);
void lapis_lock_cache_area_restore(lapis_ctx *ctx, enum lapis_cache_area area, short prev);

/* ---- fetch options (metadata.c) ------------------------------------------ */

/* Defaults from [main]: parallelism, timeout, retries; fsync on. */
void lapis_fetch_opts_from(lapis_ctx *ctx, struct lapis_fetch_opts *o);

/* ---- verify.c ----------------------------------------------------------- */

/* OpenPGP public keys in armored text: fn gets each key's binary packet; returns the sum
 * of fn's results (or its first negative one). */
typedef int (*lapis_key_pkt_fn)(const uint8_t *pkt, size_t len, void *userdata);
int lapis_foreach_key_packet(const char *text, lapis_key_pkt_fn fn, void *userdata);
/* A lapis_key_pkt_fn adding the key (and subkeys) to an rpmKeyring passed as userdata. */
int lapis_keyring_add_packet(const uint8_t *pkt, size_t len, void *keyring);
/* Verify an armored detached signature over a file against trusted keys (trust.h). */
struct lapis_trusted_keys;
int lapis_verify_detached(lapis_ctx *ctx, const char *what, const char *data_path,
                          const char *sig_path, const struct lapis_trusted_keys *keys);

/* ---- cache.c ------------------------------------------------------------ */

char *lapis_cache_repo_dir(lapis_ctx *ctx, const struct lapis_repo *r);
/* The cookie .solv caches made from repomd_path carry (kind: "main", "details",
 * "filelists"); an unreadable repomd.xml is an error, never a shared cookie. */
int lapis_cache_solv_cookie(lapis_ctx *ctx, const char *repomd_path, const char *kind,
                            char ret[65]);
int lapis_cache_solv_write(lapis_ctx *ctx, Repo *repo, Repodata *data, const char *path,
                           const char *cookie);
enum lapis_solv_part { LAPIS_SOLV_ALL, LAPIS_SOLV_MAIN, LAPIS_SOLV_DETAILS };
int lapis_cache_solv_write_part(lapis_ctx *ctx, Repo *repo, Repodata *data,
                                enum lapis_solv_part part, const char *path, const char *cookie);
int lapis_cache_solv_read(lapis_ctx *ctx, Repo *repo, const char *path, const char *cookie,
                          int flags);
/* The writer itself, without a context (for a parse thread's private pool): <0 on failure. */
int lapis_cache_solv_write_file(Repo *repo, Repodata *data, enum lapis_solv_part part,
                                const char *path, const char *cookie);
/* The main and details caches of a parsed repo, written at the same time by
 * two threads (each write spends most of its time sorting the pool's
 * strings); both or neither are left: <0 on failure. */
int lapis_cache_solv_write_split(Repo *repo, const char *main_path, const char *main_cookie,
                                 const char *details_path, const char *details_cookie);
bool lapis_cache_expired(const char *repomd_path, long long max_age);

/* ---- metadata.c / sack.c ------------------------------------------------ */

int lapis_metadata_load_all(lapis_ctx *ctx, unsigned flags);
int lapis_metadata_load_filelists(lapis_ctx *ctx);
void lapis_metadata_load_details(lapis_ctx *ctx);
int lapis_sack_init(lapis_ctx *ctx);
int lapis_sack_load_system(lapis_ctx *ctx);
/* lapis_sack_count(), then the file provides and the whatprovides index. */
void lapis_sack_finish(lapis_ctx *ctx);
void lapis_sack_count(lapis_ctx *ctx);
/* Packages whose location leaves their repo, recorded in this meta key of the .solv. */
#define UNSAFE_KEY "lapis:unsafe-location"
Map *lapis_sack_considered(lapis_ctx *ctx);
void lapis_sack_free(lapis_ctx *ctx);
struct lapis_repo *lapis_sack_repo_of(lapis_ctx *ctx, Repo *repo);
bool lapis_pkg_glob_match(Pool *pool, Solvable *s, const char *glob);
/* libsolvext loads each updateinfo advisory as a solvable named "patch:<id>". */
#define LAPIS_ADVISORY_PREFIX "patch:"
static inline bool lapis_is_advisory(Pool *pool, Solvable *s)
{
    return str_startswith(pool_id2str(pool, s->name), LAPIS_ADVISORY_PREFIX);
}
/* Order by name, then arch (as strings); 0 when both are the same: the sort
 * keys before a version that the package lists share. */
static inline int lapis_cmp_name_arch(Pool *pool, const Solvable *a, const Solvable *b)
{
    if (a->name != b->name)
        return strcmp(pool_id2str(pool, a->name), pool_id2str(pool, b->name));
    if (a->arch != b->arch)
        return strcmp(pool_id2str(pool, a->arch), pool_id2str(pool, b->arch));
    return 0;
}
/* A real, installable package from a repo (not an advisory, not a source rpm,
 * not excluded) (query.c). */
bool lapis_pkg_is_available(lapis_ctx *ctx, Id p, Solvable *s);
/* query.c's helpers for querydeps.c: the "queried before lapis_load()" error,
 * and a list holding q's packages. */
int lapis_query_require_loaded(lapis_ctx *ctx);
void lapis_pkglist_from_queue(lapis_pkglist *ret, const Queue *q);
/* The --repofrompath repositories, after the .repo files (repo.c). */
int lapis_repos_add_from_paths(lapis_ctx *ctx);
/* "name", "name OP evr" or a rich dependency "(a or b)" -> libsolv dependency id (0: none). */
Id lapis_str2dep(Pool *pool, const char *spec);
/* Appends s's dependencies of a kind to q, libsolv's markers left out. */
void lapis_solvable_deps(Solvable *s, enum lapis_dep_kind kind, Queue *q);
/* Does any of the globs match (false for none)? */
bool lapis_pkg_match_any(Pool *pool, Solvable *s, char *const *globs);
/* Exactly name.arch at evr: installed, or offered by the best-priority repo. 0 if none. */
Id lapis_sack_find_exact(Pool *pool, Id name, Id arch, Id evr, bool installed);
/* The file behind a "@commandline" package, else NULL. */
const char *lapis_sack_cmdline_path(lapis_ctx *ctx, Id p);
/* The repo id history records for a command-line package instead of
 * "@commandline" (an offline transaction's stored package), or NULL. */
const char *lapis_sack_cmdline_from_repo(lapis_ctx *ctx, Id p);
void lapis_sack_set_from_repo(lapis_ctx *ctx, Id p, const char *repoid);
/* pool_errstr(), never "no error": fallback when libsolv has no reason. It says
 * "no error" (or strerror(0), "Success") when a library under it failed without
 * telling it why. Inline: cache, metadata and sack all use it, below each other. */
static inline const char *lapis_sack_errstr(Pool *pool, const char *fallback)
{
    const char *e = pool_errstr(pool);
    if (!e || !*e || strcmp(e, "no error") == 0 || str_endswith(e, ": Success"))
        return fallback;
    return e;
}
/* For a package taken from a repo's package cache: that repo (its keys verify it). */
struct lapis_repo *lapis_sack_cmdline_origin(lapis_ctx *ctx, Id p);
/* Add a local .rpm file to the pool (also "@commandline" files pending since before load). */
int lapis_sack_add_rpm(lapis_ctx *ctx, const char *path, Id *ret);
int lapis_sack_add_cached_rpm(lapis_ctx *ctx, const char *path, struct lapis_repo *origin, Id *ret);

/* ---- history.c / download.c / transaction.c ---------------------------- */

struct lapis_goal;
/* Parse a loaded repo's verified comps file into `into` (a repo of a private pool). */
int lapis_metadata_add_comps(lapis_ctx *ctx, struct lapis_repo *lr, Repo *into);
/* mdparse.c: primary/filelists XML (decompressed) into repo; libsolv's result code. */
int lapis_mdparse_rpmmd(Repo *repo, FILE *xml, int flags);
/* md.c: err (libsolv's "... at line L:C" or "line L: ...") with L moved down
 * delta lines (a part of a document parsed alone), as the pool's error; -1.
 * error_shift: the pool's own error. */
int lapis_md_error_shifted(Pool *pool, const char *err, long delta);
int lapis_md_error_shift(Pool *pool, long delta);
/* mdfast.c: primary.xml into repo as repo_add_rpmmd(repo, xml, NULL, 0) would,
 * without expat where the document has createrepo_c's shape; libsolv's result code. */
int lapis_mdfast_rpmmd(Repo *repo, FILE *xml);
/* md.c: a decompressing reader (by name's suffix; of fd when fd >= 0,
 * which it then owns) that fails with EFBIG past limit bytes. */
struct lapis_md_bounded {
    FILE *inner;
    long long limit, done;
    bool exceeded;
    bool readahead;    /* set before opening: decompress on another thread */
    struct md_ra *ra;
};
/* pthread_create with every signal blocked in the new thread (the caller's
 * poll loops are the ones that must wake on SIGINT/SIGTERM). */
int lapis_md_start_thread(pthread_t *t, void *(*fn)(void *), void *arg);
FILE *lapis_md_open_bounded(const char *name, int fd, struct lapis_md_bounded *b);
/* Record the packages whose location leaves the repository (once per XML parse). */
int lapis_md_mark_unsafe_locations(Repo *repo);
int lapis_history_begin(struct lapis_goal *g, const char *cmdline, const char *comment);
/* Installed groups: ids and their package names (space separated), by id. */
int lapis_history_groups(lapis_ctx *ctx, char ***ret_ids, char ***ret_pkgs);
/* A goal's group changes alone (its transaction had nothing to install). */
int lapis_history_record_groups(struct lapis_goal *g);
int lapis_history_end(struct lapis_goal *g, bool ok);
/* Was the newest recorded transaction killed inside rpm (still "interrupted")? */
bool lapis_history_last_interrupted(lapis_ctx *ctx);
/* Open (creating) the history database, to fail before the root is changed. */
int lapis_history_check(lapis_ctx *ctx);

/* ---- rpmdb.c ------------------------------------------------------------ */

/* Does dir hold an rpmdb (any backend's main file)? */
bool lapis_rpmdb_present(const char *dir);
/* The root's rpmdb directory, relative to the root (see rpmdb.c for the rule);
 * *ret_link: var/lib/rpm does not exist and must become a link to it. */
int lapis_rpmdb_locate(lapis_ctx *ctx, char **ret_dir, bool *ret_link);

/* ---- names.c ------------------------------------------------------------ */

/* Does this transaction action bring its package onto the system? */
bool lapis_action_installs(enum lapis_action a);
/* LAPIS_REASON_UNKNOWN for a name history does not know. */
enum lapis_reason lapis_reason_from_name(const char *s);

/* ---- advisory.c / reboot.c --------------------------------------------- */

/* Is installed-or-candidate package p name.arch at evr or newer (it carries that fix)? */
bool lapis_pkg_fixes(lapis_ctx *ctx, lapis_pkg p, const char *name, const char *arch,
                     const char *evr);
/* Names of the packages the goal installs that need a reboot (core packages, or
 * named by a reboot-suggested advisory); NULL-terminated, never NULL. */
char **lapis_goal_reboot_pkgs(lapis_ctx *ctx, struct lapis_goal *g);

#endif
