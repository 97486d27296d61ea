/*
 * Private declarations shared by the liblapis source files: the context and
 * repository structs, the option tables, and small utilities with
 * __attribute__((cleanup)) helpers so early returns never leak.
 */
#ifndef LAPIS_INTERNAL_H
#define LAPIS_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <solv/pool.h>
#include <solv/repo.h>
#include <solv/bitmap.h>

#include "lapis/lapis.h"

/* ---- cleanup helpers ---------------------------------------------------- */

static inline void freep(void *p) { free(*(void **)p); }
static inline void fclosep(FILE **f) { if (*f) fclose(*f); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }
static inline void strvfreep(char ***v) { lapis_strv_free(*v); }
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_strv_ _cleanup_(strvfreep)

/* Hand ownership out of a cleanup variable. */
#define TAKE_PTR(p) ({ __typeof__(p) _tp = (p); (p) = NULL; _tp; })

#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -1; _fd; })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors ------------------------------------------------------------- */

/* Store a formatted message on ctx and return code (a negative value). */
int lapis_err(lapis_ctx *ctx, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void lapis_log(lapis_ctx *ctx, enum lapis_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define LAPIS_OOM(ctx) lapis_err((ctx), -12, "out of memory")

/* ---- utilities (util.c) ------------------------------------------------- */

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

char *strstrip(char *s);
bool str_startswith(const char *s, const char *prefix);
bool str_endswith(const char *s, const char *suffix);
/* Split on any of the separator chars, dropping empty items. */
char **strv_split(const char *s, const char *seps);
size_t strv_length(char *const *v);
int strv_push(char ***v, char *item); /* takes ownership */
char **strv_copy(char *const *v);
bool strv_contains(char *const *v, const char *s);

/* Path helpers. */
char *path_join(const char *a, const char *b);
/* Prefix root (may be NULL or "/") to an absolute path. */
char *path_in_root(const char *root, const char *path);
int mkdir_p(const char *path, mode_t mode);
int rm_rf(const char *path, int *ret_count);
bool path_exists(const char *path);
/* Symlinks resolved in the part of an absolute path that exists. */
char *path_resolve(const char *path);
/* Read a whole (small) file; max_size bounds it. */
int read_file(const char *path, size_t max_size, char **ret_buf, size_t *ret_len);
/* Write data atomically: temp file in the same dir, fsync, rename. */
int write_file_atomic(const char *path, const void *data, size_t len);
/* A directory inside root (symlinks resolved within it, never escaping), created
 * with create. Returns an fd or a negative errno. */
int open_dir_in_root(const char *root, const char *dir, bool create);
/* Remove PREFIX<pid>-* directories whose owner is dead and that are older than
 * grace_s seconds; returns how many. */
int sweep_dead_owner_dirs(const char *parent, const char *prefix, long grace_s);
/* Atomically write name in dirfd (temp file, fsync, rename; no symlink followed). */
int write_file_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);

/* ---- ini.c -------------------------------------------------------------- */

/* Called for each key; section is "" before the first [section]. Return <0 to stop. */
typedef int (*lapis_ini_cb)(const char *section, const char *key, const char *value,
                            int lineno, void *userdata);
/* Returns 0, the callback's negative value, or -EINVAL with *ret_errline set. */
int lapis_ini_parse(const char *buf, size_t len, lapis_ini_cb cb, void *userdata, int *ret_errline);

/* ---- vars.c ------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *value;
} lapis_var;
/* Substitute $name and ${name}; unknown variables are left as they are. */
char *lapis_vars_subst(const char *s, const lapis_var *vars, size_t nvars);

/* ---- url.c -------------------------------------------------------------- */

/* Join base URL and a relative href with exactly one '/'. */
char *lapis_url_join(const char *base, const char *href);
/* An href is safe if it is a relative path that cannot leave its base. */
bool lapis_href_is_safe(const char *href);
/* file:// URL -> local path (percent-decoded); NULL if not a file URL. */
char *lapis_url_to_path(const char *url);
/* http:// or https:// (answers carry an HTTP status). */
bool lapis_url_is_remote(const char *url);
/* Scheme allowed for repositories and keys: http, https, ftp, ftps, file. */
bool lapis_url_scheme_ok(const char *url);

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
    long long timeout;         /* seconds */
    int retries;
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
    int clean_requirements_on_remove;
    long long lock_timeout;    /* seconds to wait for another lapis on the same root */
    char **tsflags;            /* nodocs, noscripts, test */
    int localpkg_gpgcheck;
};

int lapis_config_defaults(struct lapis_config *conf);
void lapis_config_clear(struct lapis_config *conf);
/* Apply KEY=VALUE for [main]; returns -ENOENT for unknown keys, -EINVAL for bad values. */
int lapis_config_set_main(struct lapis_config *conf, const char *key, const char *value);
int lapis_parse_bool(const char *s, int *ret);
int lapis_parse_seconds(const char *s, long long *ret);
int lapis_parse_int(const char *s, long long min, long long max, long long *ret);
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
    char repomd_sha256[65];
};

struct lapis_repo *lapis_repo_new(const char *id, const struct lapis_repo_opts *defaults);
void lapis_repo_free(struct lapis_repo *r);
int lapis_repo_set(lapis_ctx *ctx, struct lapis_repo *r, const char *key, const char *value);
bool lapis_repo_id_valid(const char *id);
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
};

struct lapis_ctx {
    char *errmsg;
    lapis_log_fn log_fn;
    void *log_data;

    /* command-line settings */
    char *installroot;      /* NULL = "/" */
    char *config_file;      /* -c: host path */
    bool config_explicit;
    char *releasever;
    char *arch;
    char *basearch;
    char **setopts_main;    /* "key=value" */
    char **setopts_repo;    /* "glob.key=value" */
    char **repo_toggles;    /* "+glob" / "-glob", in order */
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
    lapis_progress_fn progress_fn;
    void *progress_data;
    const volatile sig_atomic_t *interrupt; /* the program's signal flag, or NULL */
    int lock_fd;            /* -1 until lapis_ctx_lock() */
    int cache_lock_fd;      /* CACHEDIR/lock; -1 until first needed (or not lockable) */
    bool cache_lock_tried;
    bool cache_lock_ro;     /* opened read-only: exclusive locks are skipped */
    short cache_held[3];    /* F_UNLCK/F_RDLCK/F_WRLCK per byte of the cache lock (lock.c) */
    char **pending_rpms;    /* added before load */
    char **extra_excludes;  /* --exclude */
    unsigned char *reasons; /* lapis_reason per installed solvable, loaded lazily */
    bool reasons_loaded;
};

static inline void lapis_progress(lapis_ctx *ctx, enum lapis_progress_kind k, const char *name,
                                  unsigned long long done, unsigned long long total)
{
    if (ctx->progress_fn)
        ctx->progress_fn(k, name, done, total, ctx->progress_data);
}
bool lapis_confirm(lapis_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True once the program's SIGINT/SIGTERM handler has asked us to stop. */
static inline bool lapis_interrupted(const lapis_ctx *ctx)
{
    return ctx->interrupt && *ctx->interrupt;
}

lapis_var *lapis_ctx_vars(lapis_ctx *ctx, size_t *ret_n);

/* ---- lock.c: the cache lock (see the top of lock.c) ------------------------ */

enum lapis_cache_area { LAPIS_CACHE_METADATA = 1, LAPIS_CACHE_PACKAGES = 2 };

/* Hold the cache for the life of the context: shared, or exclusive to clean it. */
int lapis_lock_cache(lapis_ctx *ctx, bool clean);
/* Hold an area at least as strongly as type (F_RDLCK, F_WRLCK), waiting up to
 * lock_timeout; *ret_prev is what to hand lapis_lock_cache_area_restore. */
int lapis_lock_cache_area(lapis_ctx *ctx, enum lapis_cache_area area, short type,
                          short *ret_prev);
void lapis_lock_cache_area_restore(lapis_ctx *ctx, enum lapis_cache_area area, short prev);

/* ---- fetch.c ------------------------------------------------------------ */

enum lapis_chk { LAPIS_CHK_NONE, LAPIS_CHK_SHA1, LAPIS_CHK_SHA256, LAPIS_CHK_SHA512 };

struct lapis_fetch_job {
    /* input */
    char *const *mirrors;     /* base URLs, tried in order ... */
    const char *href;         /* ... each joined with this relative href */
    const char *url;          /* or: one full URL (keys); then mirrors/href are unused */
    const char *dest;         /* final path; written via dest.part then renamed */
    long long expected_size;  /* -1 unknown */
    long long max_size;       /* hard cap on bytes accepted; 0 = default cap */
    enum lapis_chk chk_type;
    const char *chk_hex;
    bool optional;            /* 404 is not an error (e.g. repomd.xml.asc) */
    bool resume;              /* continue an existing dest.part with a range request */
    const char *what;         /* for messages: "repo main: repomd.xml" */
    bool sslverify;
    const char *sslcacert;
    const struct lapis_repo_opts *repo_opts; /* the repo's timeout/retries; NULL: fetch opts' */
    /* output */
    int result;               /* 0 ok, 1 absent (optional 404), <0 error */
    size_t served_by;         /* index of the mirror that delivered the file */
    char *error;              /* message when result < 0 */
};

struct lapis_fetch_opts {
    int max_parallel;
    long long timeout;  /* connect and low-speed timeout, seconds */
    int retries;
    long long progress_total; /* > 0: report LAPIS_PROGRESS_DOWNLOAD against this many bytes */
    bool fsync;               /* fsync each file before it is renamed into place */
};

/* Run every job to completion; returns 0 if all succeeded, else the first error code. */
int lapis_fetch_run(lapis_ctx *ctx, struct lapis_fetch_job *jobs, size_t njobs,
                    const struct lapis_fetch_opts *opts);
void lapis_fetch_job_clear(struct lapis_fetch_job *job);
/* Largest gpgkey file accepted (a key block is a few KiB). */
#define LAPIS_KEY_MAX (1LL << 20)
/* Defaults from [main]: parallelism, timeout, retries; fsync on. */
void lapis_fetch_opts_from(lapis_ctx *ctx, struct lapis_fetch_opts *o);

/* ---- verify.c ----------------------------------------------------------- */

enum lapis_chk lapis_chk_from_name(const char *name);
const char *lapis_chk_name(enum lapis_chk t);
int lapis_chk_file(const char *path, enum lapis_chk t, char *ret_hex, size_t hexlen);
int lapis_chk_buf(const void *buf, size_t len, enum lapis_chk t, char *ret_hex, size_t hexlen);
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
bool lapis_cache_expired(const char *repomd_path, long long max_age);

/* ---- metadata.c / sack.c ------------------------------------------------ */

int lapis_metadata_load_all(lapis_ctx *ctx, unsigned flags);
int lapis_metadata_load_filelists(lapis_ctx *ctx);
void lapis_metadata_load_details(lapis_ctx *ctx);
int lapis_sack_init(lapis_ctx *ctx);
int lapis_sack_load_system(lapis_ctx *ctx);
void lapis_sack_finish(lapis_ctx *ctx);
void lapis_sack_mark_unsafe(lapis_ctx *ctx, Repo *repo);
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
/* Does any of the globs match (false for none)? */
bool lapis_pkg_match_any(Pool *pool, Solvable *s, char *const *globs);
/* Exactly name.arch at evr: installed, or offered by the best-priority repo. 0 if none. */
Id lapis_sack_find_exact(Pool *pool, Id name, Id arch, Id evr, bool installed);
/* The file behind a "@commandline" package, else NULL. */
const char *lapis_sack_cmdline_path(lapis_ctx *ctx, Id p);
/* pool_errstr(), never "no error": fallback when libsolv has no reason. */
const char *lapis_sack_errstr(Pool *pool, const char *fallback);
/* For a package taken from a repo's package cache: that repo (its keys verify it). */
struct lapis_repo *lapis_sack_cmdline_origin(lapis_ctx *ctx, Id p);
int lapis_sack_add_cached_rpm(lapis_ctx *ctx, const char *path, struct lapis_repo *origin, Id *ret);

/* ---- history.c / download.c / transaction.c ---------------------------- */

struct lapis_goal;
int lapis_history_begin(struct lapis_goal *g, const char *cmdline);
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

/* ---- advisory.c / reboot.c --------------------------------------------- */

/* Does this transaction action bring its package onto the system? */
bool lapis_action_installs(enum lapis_action a);
/* Is installed-or-candidate package p name.arch at evr or newer (it carries that fix)? */
bool lapis_pkg_fixes(lapis_ctx *ctx, lapis_pkg p, const char *name, const char *arch,
                     const char *evr);
/* Names of the packages the goal installs that need a reboot (core packages, or
 * named by a reboot-suggested advisory); NULL-terminated, never NULL. */
char **lapis_goal_reboot_pkgs(lapis_ctx *ctx, struct lapis_goal *g);

#endif
