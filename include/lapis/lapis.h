/*
 * liblapis — the public API of the Lapis package manager library.
 *
 * One lapis_ctx holds everything a run needs: configuration, repositories,
 * the libsolv pool and the last error. The CLI (and later the image composer
 * and build system) only ever talk to this header.
 *
 * Error convention: functions return int, >= 0 on success, a negative errno
 * or a negative LAPIS_E_* code on failure. The human-readable reason is kept
 * on the context (lapis_ctx_error()); the library itself never prints.
 */
#ifndef LAPIS_LAPIS_H
#define LAPIS_LAPIS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lapis/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* On functions whose result must be checked: ignoring a failure (or a
 * result the caller owns) is a bug the compiler then reports. */
#if defined(__GNUC__) || defined(__clang__)
#define LAPIS_MUST_USE __attribute__((warn_unused_result))
#else
#define LAPIS_MUST_USE
#endif

/* What this header declares is liblapis.so's ABI: exported, while the rest of the
 * library is built with -fvisibility=hidden (scripts/check-exports checks both ways). */
#pragma GCC visibility push(default)

typedef struct lapis_ctx lapis_ctx;

/* ---- context ------------------------------------------------------------ */

LAPIS_MUST_USE int lapis_ctx_new(lapis_ctx **ret);
void lapis_ctx_free(lapis_ctx *ctx);
const char *lapis_ctx_error(const lapis_ctx *ctx);
void lapis_ctx_set_log(lapis_ctx *ctx, lapis_log_fn fn, void *userdata);
/* Whether LAPIS_LOG_DEBUG messages go to the log callback (default: yes); off skips
 * building them, e.g. the per-package reasons of a resolve. */
void lapis_ctx_set_debug(lapis_ctx *ctx, bool wanted);

/* Questions the library must ask (importing a signing key). Return true for yes.
 * Without a callback the answer is no. */
typedef bool (*lapis_confirm_fn)(const char *question, void *userdata);
void lapis_ctx_set_confirm(lapis_ctx *ctx, lapis_confirm_fn fn, void *userdata);

/* Progress of long steps: lapis_progress_fn (lapis/common.h). */
void lapis_ctx_set_progress(lapis_ctx *ctx, lapis_progress_fn fn, void *userdata);

/* A flag the program's SIGINT/SIGTERM handler sets (non-zero: stop). Downloads
 * and the lock wait check it and return -LAPIS_E_INTERRUPTED, keeping partial
 * downloads for the next run; a transaction is never stopped half-way (it runs
 * with SIGINT/SIGTERM blocked, and a signal that came before it starts stops
 * the run first). The handler must not use SA_RESTART, so blocking waits wake.
 * flag must outlive ctx; NULL: never interrupted. */
void lapis_ctx_set_interrupt(lapis_ctx *ctx, const volatile sig_atomic_t *flag);

/* Settings to apply before lapis_ctx_setup(). Strings are copied. Repo
 * settings (REPOID.KEY=VALUE, enable/disable) may also come between setup
 * and lapis_load(), e.g. to skip a repo after a failed load; anything later
 * returns -LAPIS_E_USAGE instead of being ignored. */
LAPIS_MUST_USE int lapis_ctx_set_installroot(lapis_ctx *ctx, const char *path);
LAPIS_MUST_USE int lapis_ctx_set_config_file(lapis_ctx *ctx, const char *path);
LAPIS_MUST_USE int lapis_ctx_set_releasever(lapis_ctx *ctx, const char *releasever);
LAPIS_MUST_USE int lapis_ctx_set_arch(lapis_ctx *ctx, const char *arch);
/* "KEY=VALUE" for [main] or "REPOID.KEY=VALUE" (REPOID may be a glob). */
LAPIS_MUST_USE int lapis_ctx_setopt(lapis_ctx *ctx, const char *assignment);
/* Applied in call order after the .repo files are read, like dnf. */
LAPIS_MUST_USE int lapis_ctx_enable_repos(lapis_ctx *ctx, const char *glob_list);
/* dnf5's --repofrompath=ID,PATH: one more enabled repo (checked at setup). */
LAPIS_MUST_USE int lapis_ctx_add_repofrompath(lapis_ctx *ctx, const char *id_path);
LAPIS_MUST_USE int lapis_ctx_disable_repos(lapis_ctx *ctx, const char *glob_list);
void lapis_ctx_set_cacheonly(lapis_ctx *ctx, bool on);
/* --exclude: comma/space separated globs hidden in every repo, on top of the configured ones. */
LAPIS_MUST_USE int lapis_ctx_add_excludes(lapis_ctx *ctx, const char *globs);
void lapis_ctx_set_nogpgcheck(lapis_ctx *ctx, bool on);

/* A local .rpm file to offer to the solver (as repo "@commandline"); before or after load. */
LAPIS_MUST_USE int lapis_ctx_add_rpm_file(lapis_ctx *ctx, const char *path, int *ret_pkg);

/* Read lapis.conf and the .repo files; no network. */
LAPIS_MUST_USE int lapis_ctx_setup(lapis_ctx *ctx);

const char *lapis_ctx_installroot(const lapis_ctx *ctx); /* "/" when unset */
const char *lapis_ctx_cachedir(const lapis_ctx *ctx);    /* resolved, host path */
const char *lapis_ctx_destdir(const lapis_ctx *ctx);     /* destdir= (download dir), or NULL */
bool lapis_ctx_skip_unavailable(const lapis_ctx *ctx);   /* skip_unavailable= (--skip-unavailable) */
int lapis_ctx_recent_days(const lapis_ctx *ctx);          /* recent=: what --recent means */
int lapis_ctx_color(const lapis_ctx *ctx); /* color=: an enum lapis_color (lapis/term.h) */

/* ---- repositories ------------------------------------------------------- */

typedef struct lapis_repo lapis_repo;

size_t lapis_repo_count(const lapis_ctx *ctx);
lapis_repo *lapis_repo_at(lapis_ctx *ctx, size_t index);
const char *lapis_repo_id(const lapis_repo *repo);
const char *lapis_repo_name(const lapis_repo *repo);
bool lapis_repo_enabled(const lapis_repo *repo);
/* Newline-separated list of base URLs after variable substitution. */
const char *lapis_repo_baseurl(const lapis_repo *repo);
int lapis_repo_priority(const lapis_repo *repo);
/* After loading: number of packages, repomd revision/timestamp, and whether it was skipped. */
int lapis_repo_npackages(const lapis_repo *repo);
long long lapis_repo_timestamp(const lapis_repo *repo);
bool lapis_repo_skipped(const lapis_repo *repo);

/* What a repo is configured with (repo info). Strings and arrays belong to
 * the repo; arrays are NULL-terminated or NULL. */
typedef struct {
    int cost;
    long long metadata_expire;      /* seconds, -1: never */
    bool skip_if_unavailable, gpgcheck, repo_gpgcheck;
    const char *config_file;        /* the .repo file, NULL when unknown */
    char *const *gpgkeys;
    char *const *excludepkgs;
    char *const *includepkgs;
} lapis_repo_settings;
void lapis_repo_get_settings(const lapis_repo *repo, lapis_repo_settings *ret);

enum lapis_load_flags {
    LAPIS_LOAD_REFRESH   = 1 << 0, /* treat cached metadata as expired (makecache --refresh) */
    LAPIS_LOAD_FILELISTS = 1 << 1, /* also load filelists: full file paths are needed */
    LAPIS_LOAD_NO_SYSTEM = 1 << 2, /* do not read the installroot's rpmdb */
    LAPIS_LOAD_NO_REPOS  = 1 << 3, /* only the installed system */
    LAPIS_LOAD_PIN_KEYS  = 1 << 4, /* record a repo's first verified gpgkey in the root
                                    * (makecache; transactions pin the keys they import) */
    LAPIS_LOAD_CACHES_ONLY = 1 << 5, /* makecache: make the caches current and count each
                                      * repo's packages; nothing stays loaded after */
};

/* Fetch (as needed), verify and load the enabled repositories and the rpmdb.
 * On failure nothing stays loaded: a retry starts over. */
LAPIS_MUST_USE int lapis_load(lapis_ctx *ctx, unsigned flags);

enum lapis_clean_what { LAPIS_CLEAN_METADATA = 1, LAPIS_CLEAN_PACKAGES = 2, LAPIS_CLEAN_ALL = 3 };
/* Remove cached data of all configured repos; returns the number of files removed. */
LAPIS_MUST_USE int lapis_clean(lapis_ctx *ctx, unsigned what);

/* ---- packages ----------------------------------------------------------- */

/* A package is a libsolv solvable id; 0 is "none". */
typedef int lapis_pkg;

typedef struct {
    lapis_pkg *pkgs;
    size_t count;
} lapis_pkglist;

void lapis_pkglist_free(lapis_pkglist *list);

const char *lapis_pkg_name(lapis_ctx *ctx, lapis_pkg p);
const char *lapis_pkg_arch(lapis_ctx *ctx, lapis_pkg p);
/* evr split; epoch is "0" when absent. Returned strings live until the next call. */
unsigned lapis_pkg_epoch(lapis_ctx *ctx, lapis_pkg p);
const char *lapis_pkg_version(lapis_ctx *ctx, lapis_pkg p);
const char *lapis_pkg_release(lapis_ctx *ctx, lapis_pkg p);
const char *lapis_pkg_evr(lapis_ctx *ctx, lapis_pkg p);   /* [E:]V-R as rpm prints */
const char *lapis_pkg_nevra(lapis_ctx *ctx, lapis_pkg p); /* N-[E:]V-R.A */
const char *lapis_pkg_repoid(lapis_ctx *ctx, lapis_pkg p); /* "@System" for installed */
bool lapis_pkg_installed(lapis_ctx *ctx, lapis_pkg p);
const char *lapis_pkg_summary(lapis_ctx *ctx, lapis_pkg p);
const char *lapis_pkg_description(lapis_ctx *ctx, lapis_pkg p);
const char *lapis_pkg_url(lapis_ctx *ctx, lapis_pkg p);
const char *lapis_pkg_license(lapis_ctx *ctx, lapis_pkg p);
const char *lapis_pkg_sourcerpm(lapis_ctx *ctx, lapis_pkg p);
const char *lapis_pkg_location(lapis_ctx *ctx, lapis_pkg p); /* href relative to the repo */
unsigned long long lapis_pkg_downloadsize(lapis_ctx *ctx, lapis_pkg p);
unsigned long long lapis_pkg_installsize(lapis_ctx *ctx, lapis_pkg p);
unsigned long long lapis_pkg_buildtime(lapis_ctx *ctx, lapis_pkg p);
/* The package file's digest from the repo metadata, hex, and its type
 * ("sha256", ...) in *ret_type (may be NULL); "" when the metadata has none. */
const char *lapis_pkg_checksum(lapis_ctx *ctx, lapis_pkg p, const char **ret_type);
const char *lapis_pkg_vendor(lapis_ctx *ctx, lapis_pkg p);
const char *lapis_pkg_packager(lapis_ctx *ctx, lapis_pkg p);
const char *lapis_pkg_group(lapis_ctx *ctx, lapis_pkg p);          /* rpm's Group tag */
unsigned long long lapis_pkg_installtime(lapis_ctx *ctx, lapis_pkg p); /* 0: not installed */
/* Is p an installonly package (installonlypkgs names it or a provide of it)? */
bool lapis_pkg_installonly(lapis_ctx *ctx, lapis_pkg p);

enum lapis_dep_kind {
    LAPIS_DEP_REQUIRES, LAPIS_DEP_PROVIDES, LAPIS_DEP_CONFLICTS, LAPIS_DEP_OBSOLETES,
    LAPIS_DEP_RECOMMENDS, LAPIS_DEP_SUGGESTS, LAPIS_DEP_SUPPLEMENTS, LAPIS_DEP_ENHANCES,
    /* dnf5's parts of the requires: only the pre-requires (Requires(pre) and the like),
     * only the others, and the pre-requires rpm ignores once installed (installed
     * packages only). */
    LAPIS_DEP_REQUIRES_PRE, LAPIS_DEP_REGULAR_REQUIRES, LAPIS_DEP_PREREQ_IGNOREINST,
    /* dnf5's "depends": requires, recommends, suggests, supplements and enhances. */
    LAPIS_DEP_DEPENDS,
};
/* NULL-terminated array of strings; free with lapis_strv_free(). */
LAPIS_MUST_USE char **lapis_pkg_deps(lapis_ctx *ctx, lapis_pkg p, enum lapis_dep_kind kind);
LAPIS_MUST_USE char **lapis_pkg_files(lapis_ctx *ctx, lapis_pkg p);
void lapis_strv_free(char **strv);

/* ---- queries ------------------------------------------------------------ */

enum lapis_list_what {
    LAPIS_LIST_ALL,       /* installed + available */
    LAPIS_LIST_INSTALLED,
    LAPIS_LIST_AVAILABLE, /* newest per name.arch, not installed */
    LAPIS_LIST_UPGRADES,  /* newest upgrade per installed name.arch */
};

/* globs may be NULL/empty (everything). Matches name, name.arch, nevra. */
LAPIS_MUST_USE int lapis_query_list(lapis_ctx *ctx, enum lapis_list_what what, char *const *globs,
                                    lapis_pkglist *ret);
/* Every package (all versions) matching the globs, installed and available. */
LAPIS_MUST_USE int lapis_query_all_versions(lapis_ctx *ctx, char *const *globs, bool installed,
                                            bool available, lapis_pkglist *ret);
/* Search on name and summary (and description/url when all=true), ignoring case: a
 * glob term matches a whole field, another term a part. Without all every term must
 * match, with all any term (dnf5's rules). */
LAPIS_MUST_USE int lapis_query_search(lapis_ctx *ctx, char *const *terms, bool all,
                                      lapis_pkglist *ret);
/* The fields of p the terms match, as dnf5 ranks them: a higher value is a better
 * match; each _EXACT bit (whole field, a single non-glob term) outranks its field. */
enum lapis_search_field {
    LAPIS_SEARCH_URL = 1 << 0,
    LAPIS_SEARCH_URL_EXACT = 1 << 1,
    LAPIS_SEARCH_DESCRIPTION = 1 << 2,
    LAPIS_SEARCH_DESCRIPTION_EXACT = 1 << 3,
    LAPIS_SEARCH_SUMMARY = 1 << 4,
    LAPIS_SEARCH_SUMMARY_EXACT = 1 << 5,
    LAPIS_SEARCH_NAME = 1 << 6,
    LAPIS_SEARCH_NAME_EXACT = 1 << 7,
};
unsigned lapis_search_fields(lapis_ctx *ctx, lapis_pkg p, char *const *terms, bool all);
/* Packages providing a capability ("mta", "libfoo(abi) >= 1"), a file path or a glob of either. */
LAPIS_MUST_USE int lapis_query_whatprovides(lapis_ctx *ctx, const char *spec, lapis_pkglist *ret);
LAPIS_MUST_USE int lapis_query_whatrequires(lapis_ctx *ctx, const char *spec, lapis_pkglist *ret);
/* repoquery's what<kind> filters, in place on l (querydeps.c): keep the packages with
 * a KIND dependency that spec matches as a capability (a name glob, or a relation the
 * dependency satisfies) or, without EXACT, that a package of l named by spec (a
 * name/NEVRA glob) provides. RECURSIVE then adds, until nothing changes, the packages
 * of l with a KIND dependency a kept package provides (dnf5's --recursive). */
enum lapis_what_flags { LAPIS_WHAT_EXACT = 1 << 0, LAPIS_WHAT_RECURSIVE = 1 << 1 };
LAPIS_MUST_USE int lapis_query_filter_what(lapis_ctx *ctx, enum lapis_dep_kind kind,
                                           char *const *specs, unsigned flags, lapis_pkglist *l);
/* --providers-of: keep the packages of universe that provide a KIND dependency of a
 * package in of; RECURSIVE follows the kept packages' own KIND dependencies too. */
LAPIS_MUST_USE int lapis_query_filter_providers_of(lapis_ctx *ctx, enum lapis_dep_kind kind,
                                                   unsigned flags, const lapis_pkglist *of,
                                                   lapis_pkglist *universe);
/* Installed packages no other installed package requires; packages that require each
 * other in a cycle count as one (dnf5's --leaves). */
LAPIS_MUST_USE int lapis_query_leaves(lapis_ctx *ctx, lapis_pkglist *ret);
/* Installed packages whose name.arch is installed in more than one version,
 * installonly packages left out (dnf5's --duplicates). */
LAPIS_MUST_USE int lapis_query_duplicates(lapis_ctx *ctx, lapis_pkglist *ret);
/* Keep per name.arch the packages of the n newest versions in l (n < 0: all but the
 * -n newest; dnf5's --latest-limit). */
void lapis_pkglist_latest(lapis_ctx *ctx, lapis_pkglist *l, int n);
/* Newest available package per name.arch matching spec as a name/NEVRA glob,
 * or else as a capability or file (dnf5 download's choice). */
LAPIS_MUST_USE int lapis_query_latest(lapis_ctx *ctx, const char *spec, lapis_pkglist *ret);
/* Does spec look like it needs filelists (an absolute path)? */
bool lapis_spec_needs_filelists(const char *spec);
/* Sort by name, arch, evr (newest last), then repo. */
void lapis_pkglist_sort(lapis_ctx *ctx, lapis_pkglist *list);

/* ---- solving ------------------------------------------------------------ */

enum lapis_action {
    LAPIS_ACT_INSTALL, LAPIS_ACT_INSTALL_DEP, LAPIS_ACT_INSTALL_WEAK,
    LAPIS_ACT_UPGRADE, LAPIS_ACT_DOWNGRADE, LAPIS_ACT_REINSTALL,
    LAPIS_ACT_REMOVE, LAPIS_ACT_REMOVE_DEP, LAPIS_ACT_REMOVE_UNUSED,
    LAPIS_ACT_OBSOLETED, LAPIS_ACT_UPGRADED, LAPIS_ACT_DOWNGRADED,
};

/* Why a package is installed, as recorded in the history database. */
enum lapis_reason { LAPIS_REASON_UNKNOWN, LAPIS_REASON_USER, LAPIS_REASON_DEP, LAPIS_REASON_WEAK,
                   LAPIS_REASON_GROUP };

typedef struct {
    enum lapis_action action;
    lapis_pkg pkg;
    lapis_pkg replaces; /* for upgrades/downgrades: the installed package, else 0 */
} lapis_trans_item;

typedef struct lapis_goal lapis_goal;

LAPIS_MUST_USE int lapis_goal_new(lapis_ctx *ctx, lapis_goal **ret);
void lapis_goal_free(lapis_goal *goal);
enum lapis_goal_flags {
    LAPIS_GOAL_ALLOWERASING = 1 << 0, /* may remove installed packages to resolve conflicts */
    LAPIS_GOAL_SKIP_BROKEN  = 1 << 1, /* drop uninstallable requests instead of failing */
    /* dnf5's way: a spec that matches nothing is noted in lapis_goal_log() and fails the
     * resolve (skip_unavailable=1: the resolve goes on without it); removing what is not
     * installed is only a note. Without it, such a request fails at once. */
    LAPIS_GOAL_LOG_UNAVAILABLE = 1 << 2,
    LAPIS_GOAL_ALLOW_DOWNGRADE = 1 << 3, /* dependencies may be downgraded to resolve */
};
void lapis_goal_set_flags(lapis_goal *goal, unsigned flags);

/* Requests. SPEC is a name, glob, name-version, capability, file path, or a
 * local .rpm already added with lapis_ctx_add_rpm_file(). */
LAPIS_MUST_USE int lapis_goal_install(lapis_goal *goal, const char *spec);
LAPIS_MUST_USE int lapis_goal_reinstall(lapis_goal *goal, const char *spec);
LAPIS_MUST_USE int lapis_goal_remove(lapis_goal *goal, const char *spec);
/* spec NULL: everything. */
LAPIS_MUST_USE int lapis_goal_upgrade(lapis_goal *goal, const char *spec);
LAPIS_MUST_USE int lapis_goal_downgrade(lapis_goal *goal, const char *spec);
LAPIS_MUST_USE int lapis_goal_distro_sync(lapis_goal *goal, const char *spec);
LAPIS_MUST_USE int lapis_goal_autoremove(lapis_goal *goal);
/* Exact packages (history undo/redo/rollback). */
LAPIS_MUST_USE int lapis_goal_install_pkg(lapis_goal *goal, lapis_pkg p);
LAPIS_MUST_USE int lapis_goal_remove_pkg(lapis_goal *goal, lapis_pkg p);
/* Solve. On LAPIS_E_SOLVE, lapis_goal_problems() explains. */
LAPIS_MUST_USE int lapis_goal_resolve(lapis_goal *goal);
const lapis_trans_item *lapis_goal_items(const lapis_goal *goal, size_t *ret_count);
/* NULL-terminated list of the solver's problems in dnf5's words, one entry per
 * problem ("Problem: ...", further rules on "\n  - " lines; owned by goal). */
char *const *lapis_goal_problems(const lapis_goal *goal);
/* With LAPIS_GOAL_SKIP_BROKEN, after a resolve: for each install request that
 * could not be met and was dropped, the package it would have installed. */
const lapis_pkg *lapis_goal_skipped(const lapis_goal *goal, size_t *ret_count);
/* The resolve log, dnf5's lines: "No match for argument: X", "Package \"NEVRA\" is
 * already installed.", "No packages to remove for argument: X" (owned by goal). */
char *const *lapis_goal_log(const lapis_goal *goal);
/* After a failed resolve: the options that may help (dnf5's hints). */
enum lapis_goal_hint {
    LAPIS_HINT_SKIP_UNAVAILABLE = 1 << 0,
    LAPIS_HINT_NO_BEST          = 1 << 1,
    LAPIS_HINT_ALLOWERASING     = 1 << 2,
    LAPIS_HINT_FILEDEP          = 1 << 3,
    LAPIS_HINT_SKIP_BROKEN      = 1 << 4,
};
unsigned lapis_goal_hints(const lapis_goal *goal);

const char *lapis_action_name(enum lapis_action action);
int lapis_action_from_name(const char *name); /* -1 if unknown */
const char *lapis_reason_name(enum lapis_reason reason);

/* ---- running a transaction --------------------------------------------- */

enum lapis_run_flags {
    LAPIS_RUN_DOWNLOADONLY = 1 << 0, /* download and verify, change nothing */
    LAPIS_RUN_NODOCS       = 1 << 1, /* rpm --excludedocs */
    LAPIS_RUN_NOSCRIPTS    = 1 << 2, /* rpm --noscripts */
    LAPIS_RUN_TEST         = 1 << 3, /* rpm test transaction only */
    /* With DOWNLOADONLY: import the verified packages' repo keys into the root
     * as a real run would (an offline transaction checks against them later). */
    LAPIS_RUN_IMPORT_KEYS  = 1 << 4,
};

typedef struct {
    unsigned flags;
    const char *downloaddir; /* with DOWNLOADONLY: where packages go (default: the cache) */
    const char *cmdline;     /* recorded in history */
    const char *comment;     /* recorded in history too (dnf5's --comment); may be NULL */
    int script_fd;           /* where scriptlet output goes; -1: inherit */
} lapis_run_opts;

/* Download, verify (sizes, checksums, OpenPGP signatures), then run the rpm
 * transaction into the installroot and record it in history. All or nothing:
 * any failure before rpm starts leaves the root untouched. */
LAPIS_MUST_USE int lapis_goal_run(lapis_goal *goal, const lapis_run_opts *opts);
/* Where downloaded packages were put (valid after lapis_goal_run with DOWNLOADONLY). */
char *const *lapis_goal_downloaded(const lapis_goal *goal);
/* Download repo packages into destdir and verify them as lapis_goal_run does
 * (size, digest, OpenPGP signature against the repo's keys, signature policy);
 * nothing goes into the cache or the root. A package that fails is removed
 * from destdir. *ret_paths: NULL-terminated (lapis_strv_free). */
LAPIS_MUST_USE int lapis_download_pkgs(lapis_ctx *ctx, const lapis_pkglist *pkgs,
                                       const char *destdir, char ***ret_paths);
/* History id of the transaction just run (0 if none). */
long long lapis_goal_history_id(const lapis_goal *goal);

/* ---- offline transactions (dnf5's --offline and "offline") ------------------
 * The state lives in ROOT/usr/lib/sysimage/lapis/offline (dnf5:
 * /usr/lib/sysimage/libdnf5/offline): transaction.json and packages/. The
 * /system-update symlink (systemd.offline-updates(7)) points at it. */
#define LAPIS_OFFLINE_DIR "/usr/lib/sysimage/lapis/offline"
#define LAPIS_OFFLINE_LINK "/system-update"
/* Download and verify goal's packages into the state directory, import their
 * keys into the root, and store the resolved transaction (replacing one stored
 * before). Nothing is installed. opts->cmdline is what history records later. */
LAPIS_MUST_USE int lapis_offline_store(lapis_goal *goal, const lapis_run_opts *opts);
typedef struct {
    char *cmdline;          /* the command that stored it */
    long long stored;       /* unix time */
    bool scheduled;         /* ROOT/system-update points at the state directory */
    bool poweroff;          /* power off instead of rebooting after it is applied */
    char **items;           /* "ACTION NEVRA" lines, NULL-terminated */
} lapis_offline_info;
/* 1 and *ret filled when a transaction is stored, 0 when none is. */
LAPIS_MUST_USE int lapis_offline_status(lapis_ctx *ctx, lapis_offline_info *ret);
void lapis_offline_info_free(lapis_offline_info *info);
/* Remove the stored transaction, its packages and a /system-update that points at it. */
LAPIS_MUST_USE int lapis_offline_clean(lapis_ctx *ctx);
/* Create ROOT/system-update -> the state directory (recording poweroff). */
LAPIS_MUST_USE int lapis_offline_schedule(lapis_ctx *ctx, bool poweroff);
/* Apply the stored transaction, which must be scheduled (ROOT/system-update
 * pointing at the state directory; it is removed first: a crash
 * must not loop), each package is checked against its stored digest and its
 * signature against the root's keys, and the installed system must be the
 * one it was resolved against. Needs lapis_load(LAPIS_LOAD_NO_REPOS) first.
 * On success the state directory is removed; *ret_goal (caller frees) holds
 * the items run. */
LAPIS_MUST_USE int lapis_offline_execute(lapis_ctx *ctx, const lapis_run_opts *opts,
                                         lapis_goal **ret_goal);
/* ---- installroot lock ---------------------------------------------------- */

/* Take the installroot's lock (ROOT/var/lib/lapis/lock), waiting up to the
 * lock_timeout option and logging who holds it. Released by lapis_ctx_free(). */
LAPIS_MUST_USE int lapis_ctx_lock(lapis_ctx *ctx);

/* ---- reasons and history ---------------------------------------------- */

enum lapis_reason lapis_pkg_reason(lapis_ctx *ctx, lapis_pkg p);
/* The repo id an installed package was installed from, per the history (caller frees;
 * NULL when unknown: installed by rpm, or not installed). */
char *lapis_pkg_from_repo(lapis_ctx *ctx, lapis_pkg p);
/* mark install (user) / remove (dependency) for the installed packages matching spec. */
LAPIS_MUST_USE int lapis_mark(lapis_ctx *ctx, const char *spec, enum lapis_reason reason);

typedef struct {
    long long id;
    long long begin, end;   /* unix time */
    char *cmdline;
    char *result;           /* "ok", "failed", "interrupted" */
    int nitems;
    char *actions;          /* e.g. "Install, Upgrade" */
    long long uid;          /* who ran it */
    char *releasever;       /* $releasever then ("" in a history from before it was kept) */
    char *comment;          /* --comment ("" when none) */
} lapis_history_trans;

typedef struct {
    char *action;           /* lapis_action_name() or "upgraded"/"downgraded"/"obsoleted" */
    char *reason;
    char *name, *epoch, *version, *release, *arch, *repo;
} lapis_history_item;

LAPIS_MUST_USE int lapis_history_list(lapis_ctx *ctx, lapis_history_trans **ret, size_t *ret_n);
LAPIS_MUST_USE int lapis_history_items(lapis_ctx *ctx, long long id, lapis_history_item **ret,
                                       size_t *ret_n);
void lapis_history_trans_free(lapis_history_trans *t, size_t n);
void lapis_history_items_free(lapis_history_item *it, size_t n);
/* Add the jobs that undo / redo transaction id, or return to the state right after it. */
LAPIS_MUST_USE int lapis_goal_history_undo(lapis_goal *goal, long long id);
LAPIS_MUST_USE int lapis_goal_history_redo(lapis_goal *goal, long long id);
LAPIS_MUST_USE int lapis_goal_history_rollback(lapis_goal *goal, long long id);
/* "last" or a number -> id; -LAPIS_E_HISTORY if there is none. */
LAPIS_MUST_USE int lapis_history_resolve_id(lapis_ctx *ctx, const char *text, long long *ret);

/* ---- advisories (updateinfo) ------------------------------------------ */

enum lapis_advisory_type {
    LAPIS_ADV_SECURITY = 1 << 0, LAPIS_ADV_BUGFIX = 1 << 1,
    LAPIS_ADV_ENHANCEMENT = 1 << 2, LAPIS_ADV_NEWPACKAGE = 1 << 3,
};

/* Which advisories: types, ids, CVEs and bug ids add up (an advisory matching
 * any of them is in); severities then narrow the result (dnf5's rule, so
 * "--security --sec-severity=Critical" means critical security advisories).
 * All empty: every advisory. Arrays are NULL-terminated or NULL. */
typedef struct {
    unsigned types;            /* lapis_advisory_type bits */
    char *const *ids;
    char *const *cves;
    char *const *bzs;
    char *const *severities;   /* Critical, Important, Moderate, Low, None (no severity); any case */
    bool with_cve, with_bz;    /* narrow to advisories with a CVE / bugzilla reference (dnf5) */
} lapis_advisory_filter;

static inline bool lapis_advisory_filter_empty(const lapis_advisory_filter *f)
{
    return !f || (!f->types && !(f->ids && f->ids[0]) && !(f->cves && f->cves[0]) &&
                  !(f->bzs && f->bzs[0]) && !(f->severities && f->severities[0]) &&
                  !f->with_cve && !f->with_bz);
}

/* dnf's availability for updateinfo. An advisory package is compared with the
 * newest installed package of the same name and arch. */
enum lapis_advisory_scope {
    LAPIS_ADV_AVAILABLE, /* an installed package is older than the advisory's (default) */
    LAPIS_ADV_INSTALLED, /* an installed package is at the advisory's version or newer */
    LAPIS_ADV_ALL,       /* either: the advisory is about an installed package */
};

enum lapis_advisory_pkg_state {
    LAPIS_ADVPKG_NOT_INSTALLED, /* no package of this name.arch is installed */
    LAPIS_ADVPKG_AVAILABLE,     /* installed, older than the advisory's version */
    LAPIS_ADVPKG_INSTALLED,     /* installed at the advisory's version or newer */
};

typedef struct {
    char *name, *evr, *arch, *filename;
    bool reboot_suggested;
    enum lapis_advisory_pkg_state state;
} lapis_advisory_pkg;

/* Does a package in this state belong to the scope? */
bool lapis_advisory_state_in_scope(enum lapis_advisory_pkg_state state,
                                   enum lapis_advisory_scope scope);

typedef struct {
    char *type, *id, *href, *title;   /* type: "cve", "bugzilla", ... */
} lapis_advisory_ref;

typedef struct {
    char *id, *type, *severity, *title, *description, *status, *repo;
    char *vendor, *rights, *message;  /* updateinfo's from=, <rights>, <message>; may be NULL */
    long long issued;                 /* unix time (the newer of issued/updated) */
    bool reboot_suggested;
    lapis_advisory_ref *refs;
    size_t nrefs;
    lapis_advisory_pkg *pkgs;
    size_t npkgs;
} lapis_advisory;

/* Advisories matching filter and scope, sorted by id, one per id. specs
 * (optional) match an advisory id or one of its package names (globs). */
LAPIS_MUST_USE int lapis_advisory_query(lapis_ctx *ctx, const lapis_advisory_filter *filter,
                                        enum lapis_advisory_scope scope, char *const *specs,
                                        lapis_advisory **ret, size_t *ret_n);
void lapis_advisories_free(lapis_advisory *a, size_t n);
/* "security" -> LAPIS_ADV_SECURITY; 0 if unknown. */
unsigned lapis_advisory_type_from_name(const char *name);
/* Is this a severity name lapis knows (Critical/Important/Moderate/Low, any case)? */
bool lapis_advisory_severity_valid(const char *severity);

/* Upgrades named by matching advisories, newest per name.arch (check-update --security). */
LAPIS_MUST_USE int lapis_query_advisory_upgrades(lapis_ctx *ctx,
                                                 const lapis_advisory_filter *filter,
                                                 char *const *globs, lapis_pkglist *ret);
/* upgrade / upgrade-minimal with advisory filters: only installed packages an
 * advisory names are upgraded, to the newest version (or, minimal, to the
 * newest version an advisory names). specs (optional) narrow it further.
 * Returns the number of packages with such an upgrade (0: nothing needed). */
LAPIS_MUST_USE int lapis_goal_upgrade_advisories(lapis_goal *goal,
                                                 const lapis_advisory_filter *filter, bool minimal,
                                                 char *const *specs);

/* ---- groups (comps.xml) --------------------------------------------------- */

/* A comps group, merged across the enabled repos that define it (package
 * lists are the union). Arrays are NULL-terminated package names. */
typedef struct {
    char *id, *name, *description;
    char *order;                /* <display_order> ("" when none) */
    bool visible;               /* <uservisible> */
    bool installed;             /* recorded as installed in this root */
    char **mandatory, **defaults, **optional;
    char **members;             /* installed: the packages it was installed with */
} lapis_group;

/* Groups whose id or name matches one of specs (globs, any case; a leading
 * '@' is dropped), sorted by id; specs NULL or empty: every group. */
LAPIS_MUST_USE int lapis_group_query(lapis_ctx *ctx, char *const *specs, lapis_group **ret,
                                     size_t *ret_n);
void lapis_groups_free(lapis_group *g, size_t n);
/* Jobs for group install of the groups matching spec (as lapis_group_query;
 * none: -LAPIS_E_NOTFOUND): mandatory + default packages, + optional with
 * with_optional; the ones no repo has are skipped with a warning. Packages
 * it installs get the reason "group"; the group is recorded as installed
 * when the transaction succeeds (also when nothing needed installing). */
LAPIS_MUST_USE int lapis_goal_group_install(lapis_goal *goal, const char *spec,
                                            bool with_optional);
/* group remove: the group's packages that are installed for it (reason
 * "group", no other installed group has them); the group is forgotten. */
LAPIS_MUST_USE int lapis_goal_group_remove(lapis_goal *goal, const char *spec);
/* group upgrade: upgrade its installed packages, install what the group
 * has gained since it was installed. */
LAPIS_MUST_USE int lapis_goal_group_upgrade(lapis_goal *goal, const char *spec);
/* comps environments, as lapis_group_query: mandatory holds the ids of the
 * groups it requires, optional its optional groups; installed when every
 * required group is installed. */
LAPIS_MUST_USE int lapis_environment_query(lapis_ctx *ctx, char *const *specs,
                                           lapis_group **ret, size_t *ret_n);
/* dnf5's install @^ENV: group install of each group the environment requires
 * (spec as lapis_group_query; none: -LAPIS_E_NOTFOUND). */
LAPIS_MUST_USE int lapis_goal_environment_install(lapis_goal *goal, const char *spec,
                                                  bool with_optional);
/* remove/upgrade @^ENV: group remove/upgrade of its installed required groups. */
LAPIS_MUST_USE int lapis_goal_environment_remove(lapis_goal *goal, const char *spec);
LAPIS_MUST_USE int lapis_goal_environment_upgrade(lapis_goal *goal, const char *spec);

/* ---- repoclosure ------------------------------------------------------------ */

typedef struct {
    char *const *check_repos;  /* repo id globs whose packages are checked (NULL: all) */
    char *const *arches;       /* only packages of these arches are checked (NULL: all) */
    char *const *specs;        /* only packages matching these NEVRA globs (NULL: all) */
    bool newest;               /* only each repo's newest per name.arch, checked and used */
} lapis_closure_opts;

typedef struct {
    lapis_pkg pkg;
    char **unresolved;         /* its requirements nothing available provides, sorted */
} lapis_closure_item;

/* dnf5 repoclosure over the loaded repos (load with LAPIS_LOAD_NO_SYSTEM and
 * LAPIS_LOAD_FILELISTS): the packages with unresolved requirements, by NEVRA. */
LAPIS_MUST_USE int lapis_repoclosure(lapis_ctx *ctx, const lapis_closure_opts *opts,
                                     lapis_closure_item **ret, size_t *ret_n);
void lapis_closure_free(lapis_closure_item *items, size_t n);

/* ---- reboot and restarts ------------------------------------------------ */

/* Why the installroot needs a reboot: installed core packages (kernel, glibc,
 * systemd, openssl, ... or any package an advisory says needs a reboot)
 * installed after the last boot. For "/" the boot is the host's; for another
 * root it is the one recorded in ROOT/var/lib/lapis/last-boot (written by
 * lapis whenever it runs on a booted host), or none: never booted.
 * *ret_pkgs: NULL-terminated names (free with lapis_strv_free); empty: no reboot. */
LAPIS_MUST_USE int lapis_reboot_needed(lapis_ctx *ctx, char ***ret_pkgs, long long *ret_boot_time);

typedef struct {
    int pid;
    char *cmdline;
    char **files;   /* deleted files of installed packages it still maps */
} lapis_stale_process;

/* Processes still using deleted files that belong to installed packages (updated under them). */
LAPIS_MUST_USE int lapis_stale_processes(lapis_ctx *ctx, lapis_stale_process **ret, size_t *ret_n);
void lapis_stale_processes_free(lapis_stale_process *p, size_t n);

/* Write ROOT/var/run/reboot-required (+ .pkgs, one name per line) as kured and
 * Debian expect. Symlinks inside the root (/var/run -> /run) resolve within it. */
LAPIS_MUST_USE int lapis_write_reboot_required(lapis_ctx *ctx, char *const *pkgs);

/* ---- automatic updates (lapis automatic) -------------------------------- */

enum lapis_auto_upgrade { LAPIS_AUTO_UPGRADE_DEFAULT, LAPIS_AUTO_UPGRADE_SECURITY };
enum lapis_auto_reboot { LAPIS_AUTO_REBOOT_NEVER, LAPIS_AUTO_REBOOT_WHEN_CHANGED,
                         LAPIS_AUTO_REBOOT_WHEN_NEEDED };

/* automatic.conf, dnf-automatic's format: [commands], [emitters], and [base]
 * whose keys override lapis.conf's [main]. */
typedef struct {
    enum lapis_auto_upgrade upgrade_type;
    bool download_updates, apply_updates;
    enum lapis_auto_reboot reboot;
    char *reboot_command;       /* run with /bin/sh -c on the host */
    long long random_sleep;     /* seconds; only with the timer */
    char **emit_via;            /* "stdio", "motd", "json:PATH" */
    char *system_name;          /* for messages; default: the host name */
    char **base_opts;           /* "KEY=VALUE" from [base] */
} lapis_automatic_conf;

void lapis_automatic_conf_defaults(lapis_automatic_conf *conf);
/* Parse path into conf (over the defaults). A missing file is an error only with must_exist. */
LAPIS_MUST_USE int lapis_automatic_conf_read(lapis_ctx *ctx, const char *path, bool must_exist,
                                             lapis_automatic_conf *conf);
void lapis_automatic_conf_clear(lapis_automatic_conf *conf);

typedef struct {
    char *action, *name, *arch, *evr, *from_evr, *repo;
} lapis_automatic_update;

typedef struct {
    const char *status;         /* "none", "available", "downloaded", "applied", "failed" */
    char *error;                /* with "failed" */
    long long time;             /* when the run started */
    lapis_automatic_update *updates;
    size_t nupdates;
    char **advisories;          /* ids of the advisories the updates fix */
    bool reboot_required;       /* applied updates need a reboot (sentinel written) */
    char **reboot_pkgs;         /* which packages */
    const char *reboot;         /* "not-needed", "never" (policy), "scheduled", "failed" */
    long long history_id;
} lapis_automatic_report;

/* One unattended run: lock, load, upgrade (all or security), download and/or
 * apply as configured, write the reboot-required sentinel, run the reboot
 * command per policy. The report is filled even on failure. */
LAPIS_MUST_USE int lapis_automatic_run(lapis_ctx *ctx, const lapis_automatic_conf *conf,
                                       lapis_automatic_report *report);
/* Send the report through conf->emit_via; stdio goes to out. */
LAPIS_MUST_USE int lapis_automatic_emit(lapis_ctx *ctx, const lapis_automatic_conf *conf,
                                        const lapis_automatic_report *report, FILE *out);
void lapis_automatic_report_clear(lapis_automatic_report *report);
/* The timer's jitter: sleep a random time up to max seconds (less when interrupted). */
void lapis_automatic_random_sleep(lapis_ctx *ctx, long long max);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
