/*
 * Shared CLI declarations: parsed options and the command table entries.
 * The CLI uses only the public liblapis headers.
 */
#ifndef LAPIS_CLI_H
#define LAPIS_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "lapis/lapis.h"
#include "lapis/output.h"
#include "lapis/term.h"

struct cli {
    lapis_ctx *ctx;
    bool json, quiet, verbose, assumeyes, assumeno, refresh, showduplicates;
    /* command-specific flags */
    bool all;                      /* search --all, repolist all */
    bool q_requires, q_provides, q_location, q_info, q_files, q_installed, q_available, q_upgrades;
    bool q_recommends, q_suggests, q_conflicts, q_obsoletes;
    bool q_userinstalled, q_extras, q_recent, reverse;
    char *queryformat;             /* --queryformat / --qf */
    /* repoquery (cmd_repoquery.c) */
    char **what[LAPIS_DEP_DEPENDS + 1]; /* --whatprovides ... --whatdepends, by kind */
    char **q_file;                 /* --file */
    bool q_enhances, q_supplements, q_requires_pre, q_depends, q_files_attr; /* attributes */
    bool q_exactdeps, q_recursive, q_leaves, q_unneeded, q_duplicates, q_installonly;
    bool q_querytags;
    int latest_limit;              /* --latest-limit; 0: not given */
    bool providers_of_given;       /* --providers-of=ATTR */
    enum lapis_dep_kind providers_of;
    bool repo_given;
    bool allowerasing, skip_broken, downloadonly, nodocs, noscripts, allow_downgrade;
    char *downloaddir;
    bool offline;                  /* --offline: store the transaction for the next boot */
    bool minimal;                  /* upgrade --minimal: dnf5's upgrade-minimal */
    bool poweroff, no_reboot;      /* offline reboot --poweroff; reboot/_execute --no-reboot */
    char *cmdline;                 /* the whole command line, for history */
    char *comment;                 /* --comment: recorded in history too */
    /* advisory filters (updateinfo, upgrade, upgrade-minimal, check-update) */
    unsigned adv_types;
    char **adv_ids, **adv_cves, **adv_bzs, **adv_severities;
    bool with_cve, with_bz;        /* advisory --with-cve / --with-bz */
    char **contains_pkgs;          /* advisory --contains-pkgs */
    bool summary;                  /* updateinfo --summary */
    bool reboothint;               /* needs-restarting -r */
    bool timer;                    /* automatic --timer */
    bool resolve, alldeps, url;    /* download --resolve --alldeps --url */
    char **arches;                 /* download --arch (repeatable, comma list) */
    bool repo_enabled, repo_disabled; /* repo list|info --enabled/--disabled */
    bool help;                     /* -h/--help: the command's help (lapis's without one) */
    bool with_optional, hidden;    /* group install --with-optional, group list --hidden */
    char group_op;                 /* group install/remove/upgrade: 'i', 'r', 'u' */
    char **check_repos;            /* repoclosure --check */
    bool newest;                   /* repoclosure --newest */
    char *config_arg;              /* -c: lapis.conf, or automatic.conf for "automatic" */
    long long history_id;          /* history undo/redo/rollback target */
    bool interrupt_told;           /* the "interrupted" line has been printed */
    const char *cmd_name;          /* the command's own name (an alias resolved) */
    char **args;                   /* positional arguments after the command */
    int nargs;
    char **image_argv;             /* "image" and everything after it (own options) */
    int image_argc;
    char *color_arg;               /* --color=auto|always|never (over color= of lapis.conf) */
    bool color;                    /* colour stdout: SGR codes in tables and matches */
    size_t width;                  /* the terminal's width on stdout; 0: not a terminal */
    lapis_log_fn log_fn;           /* the CLI's message printer, for the image composer */
    void *log_data;
    struct cli_mdprogress *mdprogress; /* the metadata progress block (mdprogress.c) */
};

/* heap.c: glibc malloc's policy for the process: set in main, released when
 * metadata is fetched or a transaction confirmed. */
void cli_heap_prepare(void);
void cli_heap_release(void);

/* mdprogress.c: per repository metadata download lines on a terminal. */
struct cli_md_repo {
    char *id;
    unsigned long long done, total;
    double start;
};
struct cli_mdprogress {
    bool enabled;                  /* a terminal, not -q, not --json */
    bool fetching;                 /* a download began: cli_heap_release() was called */
    struct cli_md_repo *repos;
    size_t n, drawn;               /* drawn: lines of the block above the cursor */
};
void cli_mdprogress_event(struct cli_mdprogress *p, enum lapis_progress_kind k, const char *name,
                          unsigned long long done, unsigned long long total);
void cli_mdprogress_cb(enum lapis_progress_kind k, const char *name, unsigned long long done,
                       unsigned long long total, void *ud);
void cli_mdprogress_detach(struct cli_mdprogress *p);
void cli_mdprogress_free(struct cli_mdprogress *p);

enum cmd_flags {
    CMD_LOAD = 1 << 0,        /* needs repos + rpmdb loaded */
    CMD_LOAD_NO_SYSTEM = 1 << 1,
    CMD_OWN_SETUP = 1 << 2,   /* calls lapis_ctx_setup() itself (after reading its own config) */
};

struct cmd {
    const char *name;
    int (*run)(struct cli *c);
    unsigned flags;
    const char *help;
};

/* help.c: one command's usage and its own options (alias: the name typed). */
int cli_command_help(const struct cmd *cmd, const char *alias, FILE *out);
/* The name in names (NULL-terminated) nearest to a mistyped word, or NULL. */
const char *cli_suggest_command(const char *word, const char *const *names);

/* Exit codes (dnf's). */
#define EXIT_UPDATES 100
#define EXIT_USAGE 2   /* dnf5's exit status for every command-line usage error */
#define PARSE_DONE (-1) /* an option parser's "nothing more to do" (--help, --version) */

/* The SIGINT/SIGTERM that asked us to stop, or 0. */
int cli_interrupted(void);
/* Print the one "lapis: interrupted: ..." line (msg, sanitized; stderr only) unless
 * it was printed already; returns the exit code 128+signal. */
int cli_interrupt_note(struct cli *c, const char *msg);

/* Print the context's error (and a JSON error document with --json); returns 1. */
int cli_fail(struct cli *c, int r);
/* The same when the CLI has printed the text itself (only the JSON document follows). */
int cli_fail_printed(struct cli *c, int r);
/* Report an error of our own (code: a LAPIS_E_* value); returns exit code 1. */
int cli_error(struct cli *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Load with flags derived from options (refresh) plus extra. */
int cli_load(struct cli *c, unsigned extra);
void cli_json_out(struct cli *c, cJSON *doc);
/* puts() of text from a package or repo, through lapis_sanitize(). */
void cli_puts(const char *s);
/* dnf5's "key                 : value" info lines (repo info, group info), sanitized;
 * a list puts its first item beside the key and the others under it. */
void cli_kv(const struct cli *c, const char *key, const char *value);
void cli_kv_list(const struct cli *c, const char *key, char *const *v);
/* The same with the key column KEYW wide, the blank before ':' included (dnf5 sizes
 * it to the longest key: history info's is 15). */
void cli_kv_width(const struct cli *c, int keyw, const char *key, const char *value);
cJSON *cli_json_pkglist(struct cli *c, const lapis_pkglist *l);
/* Where downloads go: --destdir/--downloaddir, else destdir= (--setopt, lapis.conf), else NULL. */
const char *cli_destdir(const struct cli *c);
/* Appends p unless l holds it already (out of memory: abort, as the library's xrealloc). */
void cli_pkglist_add(lapis_pkglist *l, lapis_pkg p);

int cmd_repolist(struct cli *c);
int cmd_makecache(struct cli *c);
int cmd_clean(struct cli *c);
int cmd_list(struct cli *c);
int cmd_info(struct cli *c);
int cmd_search(struct cli *c);
int cmd_provides(struct cli *c);
int cmd_repoquery(struct cli *c);
/* cmd_query.c's helpers that repoquery shares: does a spec name a path, the
 * --userinstalled/--recent/--extras filters, and info's layout. */
bool cli_args_need_filelists(char *const *args, int n);
int cli_query_filters(struct cli *c, lapis_pkglist *l);
int cli_info_key_width(struct cli *c, const lapis_pkglist *a, const lapis_pkglist *b);
void cli_print_info(struct cli *c, lapis_pkg p, int keyw);
/* An available package's URL (its repo's first baseurl + href); NULL if unknown. */
char *cli_location_url(struct cli *c, lapis_pkg p);
int cmd_check_update(struct cli *c);
int cmd_install(struct cli *c);
int cmd_reinstall(struct cli *c);
int cmd_remove(struct cli *c);
int cmd_upgrade(struct cli *c);
int cmd_downgrade(struct cli *c);
int cmd_distro_sync(struct cli *c);
int cmd_autoremove(struct cli *c);
int cmd_history(struct cli *c);
int cmd_mark(struct cli *c);
int cmd_updateinfo(struct cli *c);
int cmd_upgrade_minimal(struct cli *c);
int cmd_needs_restarting(struct cli *c);
int cmd_automatic(struct cli *c);
int cmd_image(struct cli *c);
int cmd_download(struct cli *c);
int cmd_repo(struct cli *c);
int cmd_repoinfo(struct cli *c);
int cmd_group(struct cli *c);
int cmd_environment(struct cli *c);
int cmd_repoclosure(struct cli *c);
int cmd_offline(struct cli *c);
/* An @group spec (or group name) as jobs: op 'i' install, 'r' remove, 'u' upgrade. */
int cli_goal_group_spec(struct cli *c, lapis_goal *goal, const char *spec, char op);
/* The flag the SIGINT/SIGTERM handler sets. */
const volatile sig_atomic_t *cli_interrupt_flag(void);

/* The advisory filter given by --security/--bugfix/--enhancement/--newpackage,
 * --advisory, --cve, --bz and --sec-severity. */
lapis_advisory_filter cli_advisory_filter(const struct cli *c);
bool cli_has_advisory_filter(const struct cli *c);
/* upgrade / upgrade-minimal restricted to packages advisories name (args narrow it). */
int cli_build_advisory_upgrade(struct cli *c, lapis_goal *goal, bool minimal);

/* --queryformat (queryformat.c): one package's line(s), malloc'd; a whole list,
 * sorted and unique, on stdout; whether the format asks for file lists. */
char *cli_qf_format(struct cli *c, lapis_pkg p, const char *fmt);
void cli_qf_print(struct cli *c, const lapis_pkglist *l, const char *fmt);
bool cli_qf_needs_filelists(const char *fmt);
/* repoquery --querytags: every tag, sorted, one per line. */
void cli_qf_print_tags(void);

/* run(arg) with the transaction's progress lines and questions (-y, --assumeno). */
int cli_with_progress(struct cli *c, int (*run)(void *arg), void *arg);
/* Lock, load, build the goal with build(), resolve, show, confirm, run. Returns the exit code. */
int cli_run_goal(struct cli *c, unsigned load_flags, int (*build)(struct cli *c, lapis_goal *goal));

#endif
