/*
 * lapis: command-line front end. Parses dnf-style global and command
 * options (anywhere on the line, as dnf allows), configures the context,
 * and dispatches through one static command table.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int cmd_help(struct cli *c);

static const struct cmd commands[] = {
    { "repolist",     cmd_repolist,     0,        "list configured repositories" },
    { "makecache",    cmd_makecache,    0,        "download and cache repository metadata" },
    { "clean",        cmd_clean,        0,        "remove cached data: all, metadata or packages" },
    { "list",         cmd_list,         CMD_LOAD, "list packages [installed|available|updates] [GLOB...]" },
    { "info",         cmd_info,         CMD_LOAD, "show package details" },
    { "search",       cmd_search,       CMD_LOAD, "search names and summaries" },
    { "provides",     cmd_provides,     CMD_LOAD, "find packages providing a capability or file" },
    { "whatprovides", cmd_provides,     CMD_LOAD, "alias of provides" },
    { "repoquery",    cmd_repoquery,    CMD_LOAD, "query packages (--requires --provides --whatrequires ...)" },
    { "check-update", cmd_check_update, CMD_LOAD, "list available upgrades; exit 100 if any" },
    { "updateinfo",   cmd_updateinfo,   CMD_LOAD, "advisories [summary|list|info] [--security ...]" },
    { "advisory",     cmd_updateinfo,   CMD_LOAD, "alias of updateinfo (dnf5's name)" },
    { "install",      cmd_install,      0,        "install packages (names, globs, capabilities, files, .rpm)" },
    { "reinstall",    cmd_reinstall,    0,        "reinstall installed packages" },
    { "remove",       cmd_remove,       0,        "remove packages (and dependencies nothing else needs)" },
    { "erase",        cmd_remove,       0,        "alias of remove" },
    { "upgrade",      cmd_upgrade,      0,        "upgrade all or the named packages" },
    { "update",       cmd_upgrade,      0,        "alias of upgrade" },
    { "upgrade-minimal", cmd_upgrade_minimal, 0,  "upgrade to the versions advisories name" },
    { "update-minimal",  cmd_upgrade_minimal, 0,  "alias of upgrade-minimal" },
    { "downgrade",    cmd_downgrade,    0,        "downgrade packages to the next older version" },
    { "distro-sync",  cmd_distro_sync,  0,        "synchronize installed packages with the repositories" },
    { "autoremove",   cmd_autoremove,   0,        "remove dependencies no user-installed package needs" },
    { "mark",         cmd_mark,         0,        "mark user|dependency|weak PKG...: set why a package is installed" },
    { "history",      cmd_history,      0,        "history [list|info N|undo N|redo N|rollback N]" },
    { "needs-restarting", cmd_needs_restarting, CMD_LOAD, "processes to restart; -r: is a reboot needed" },
    { "automatic",    cmd_automatic,    CMD_OWN_SETUP, "unattended upgrade run [--timer] [-c automatic.conf]" },
    { "image",        cmd_image,        CMD_OWN_SETUP, "image build|lock|inspect: compose disk and OCI images" },
    { "check-upgrade", cmd_check_update, CMD_LOAD, "dnf5's name of check-update; exit 100 if any" },
    { "repo",         cmd_repo,         0,        "repo list|info [--all|--disabled] [REPO...] (dnf5's repolist)" },
    { "repoinfo",     cmd_repoinfo,     0,        "alias of repo info" },
    { "download",     cmd_download,     0,        "download packages into --destdir (default: here), verified" },
    { "group",        cmd_group,        0,        "group list|info|install|remove|upgrade (comps groups)" },
    { "environment",  cmd_environment,  0,        "environment list|info (comps environments; install @^ENV)" },
    { "repoclosure",  cmd_repoclosure,  0,        "packages whose requirements nothing available provides" },
    { "offline",      cmd_offline,      0,        "offline status|reboot|clean|_execute: the transaction --offline stored" },
    { "help",         cmd_help,         CMD_OWN_SETUP, "help [COMMAND]: the commands, or one command's options" },
};

/* Short and old names: dnf 4's command aliases and dnf5's aliases.d. */
static const struct {
    const char *alias, *command;
} aliases[] = {
    { "in", "install" }, { "localinstall", "install" }, { "rm", "remove" }, { "uninstall", "remove" },
    { "up", "upgrade" }, { "upgrade-to", "upgrade" }, { "update-to", "upgrade" },
    { "localupdate", "upgrade" }, { "up-min", "upgrade-minimal" }, { "se", "search" },
    { "if", "info" }, { "rq", "repoquery" }, { "mc", "makecache" }, { "ls", "list" },
    { "dsync", "distro-sync" }, { "distrosync", "distro-sync" },
    { "distribution-synchronization", "distro-sync" }, { "dg", "downgrade" },
    { "rei", "reinstall" }, { "prov", "provides" }, { "wp", "provides" }, { "hist", "history" },
    { "upif", "updateinfo" }, { "grp", "group" }, { "groups", "group" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))
#define NALIASES (sizeof(aliases) / sizeof(aliases[0]))

enum {
    OPT_INSTALLROOT = 256, OPT_RELEASEVER, OPT_SETOPT, OPT_ENABLEREPO, OPT_DISABLEREPO, OPT_REPO,
    OPT_ASSUMENO, OPT_NOGPGCHECK, OPT_JSON, OPT_REFRESH, OPT_FORCEARCH, OPT_VERSION,
    OPT_SHOWDUP, OPT_ALL, OPT_REQUIRES, OPT_PROVIDES, OPT_WHATREQUIRES, OPT_WHATPROVIDES,
    OPT_LOCATION, OPT_INFO, OPT_INSTALLED, OPT_AVAILABLE, OPT_UPGRADES, OPT_RECOMMENDS,
    OPT_SUGGESTS, OPT_CONFLICTS, OPT_OBSOLETES, OPT_ALLOWERASING, OPT_SKIPBROKEN,
    OPT_DOWNLOADONLY, OPT_DOWNLOADDIR, OPT_NODOCS, OPT_NOSCRIPTS, OPT_EXCLUDE,
    OPT_SECURITY, OPT_BUGFIX, OPT_ENHANCEMENT, OPT_NEWPACKAGE, OPT_SEVERITY, OPT_ADVISORY,
    OPT_CVE, OPT_BZ, OPT_SUMMARY, OPT_TIMER,
    OPT_ARCH, OPT_RESOLVE, OPT_ALLDEPS, OPT_URL, OPT_ENABLED, OPT_DISABLED,
    OPT_WITH_CVE, OPT_WITH_BZ, OPT_CONTAINS_PKGS, OPT_WITH_OPTIONAL, OPT_HIDDEN,
    OPT_CHECK, OPT_NEWEST,
    OPT_SKIPUNAVAILABLE, OPT_BEST, OPT_NOBEST, OPT_ALLOWDOWNGRADE, OPT_NOALLOWDOWNGRADE,
    OPT_QUERYFORMAT, OPT_USERINSTALLED, OPT_EXTRAS, OPT_RECENT, OPT_REVERSE, OPT_COLOR,
    OPT_OFFLINE, OPT_POWEROFF, OPT_NO_REBOOT, OPT_NOPLUGINS, OPT_MINIMAL,
    OPT_WHATDEPENDS, OPT_WHATCONFLICTS, OPT_WHATENHANCES, OPT_WHATOBSOLETES, OPT_WHATRECOMMENDS,
    OPT_WHATSUPPLEMENTS, OPT_WHATSUGGESTS, OPT_EXACTDEPS, OPT_RECURSIVE, OPT_LEAVES,
    OPT_UNNEEDED, OPT_DUPLICATES, OPT_INSTALLONLY, OPT_QUERYTAGS, OPT_DEPENDS, OPT_REQUIRES_PRE,
    OPT_ENHANCES, OPT_SUPPLEMENTS, OPT_FILES, OPT_LATEST_LIMIT, OPT_PROVIDERS_OF, OPT_COMMENT,
    OPT_REPOFROMPATH,
};

static const struct option long_opts[] = {
    { "installroot", required_argument, NULL, OPT_INSTALLROOT },
    { "config", required_argument, NULL, 'c' },
    { "releasever", required_argument, NULL, OPT_RELEASEVER },
    { "setopt", required_argument, NULL, OPT_SETOPT },
    { "enablerepo", required_argument, NULL, OPT_ENABLEREPO },
    { "enable-repo", required_argument, NULL, OPT_ENABLEREPO },
    { "disablerepo", required_argument, NULL, OPT_DISABLEREPO },
    { "disable-repo", required_argument, NULL, OPT_DISABLEREPO },
    { "repo", required_argument, NULL, OPT_REPO },
    { "repofrompath", required_argument, NULL, OPT_REPOFROMPATH },
    { "repoid", required_argument, NULL, OPT_REPO },
    { "assumeyes", no_argument, NULL, 'y' },
    { "assumeno", no_argument, NULL, OPT_ASSUMENO },
    { "quiet", no_argument, NULL, 'q' },
    { "verbose", no_argument, NULL, 'v' },
    { "cacheonly", no_argument, NULL, 'C' },
    { "nogpgcheck", no_argument, NULL, OPT_NOGPGCHECK },
    { "no-gpgchecks", no_argument, NULL, OPT_NOGPGCHECK },
    /* lapis has no plugins: turning them off is true as asked */
    { "noplugins", no_argument, NULL, OPT_NOPLUGINS },
    { "no-plugins", no_argument, NULL, OPT_NOPLUGINS },
    { "json", no_argument, NULL, OPT_JSON },
    { "color", required_argument, NULL, OPT_COLOR },
    { "refresh", no_argument, NULL, OPT_REFRESH },
    { "forcearch", required_argument, NULL, OPT_FORCEARCH },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, OPT_VERSION },
    { "showduplicates", no_argument, NULL, OPT_SHOWDUP },
    { "all", no_argument, NULL, OPT_ALL },
    { "requires", no_argument, NULL, OPT_REQUIRES },
    { "provides", no_argument, NULL, OPT_PROVIDES },
    { "recommends", no_argument, NULL, OPT_RECOMMENDS },
    { "suggests", no_argument, NULL, OPT_SUGGESTS },
    { "conflicts", no_argument, NULL, OPT_CONFLICTS },
    { "obsoletes", no_argument, NULL, OPT_OBSOLETES },
    { "whatrequires", required_argument, NULL, OPT_WHATREQUIRES },
    { "whatprovides", required_argument, NULL, OPT_WHATPROVIDES },
    { "location", no_argument, NULL, OPT_LOCATION },
    { "info", no_argument, NULL, OPT_INFO },
    { "list", no_argument, NULL, 'l' },
    { "installed", no_argument, NULL, OPT_INSTALLED },
    { "available", no_argument, NULL, OPT_AVAILABLE },
    { "upgrades", no_argument, NULL, OPT_UPGRADES },
    { "allowerasing", no_argument, NULL, OPT_ALLOWERASING },
    { "skip-broken", no_argument, NULL, OPT_SKIPBROKEN },
    { "downloadonly", no_argument, NULL, OPT_DOWNLOADONLY },
    { "offline", no_argument, NULL, OPT_OFFLINE },
    { "poweroff", no_argument, NULL, OPT_POWEROFF },
    { "no-reboot", no_argument, NULL, OPT_NO_REBOOT },
    { "downloaddir", required_argument, NULL, OPT_DOWNLOADDIR },
    { "destdir", required_argument, NULL, OPT_DOWNLOADDIR },
    { "nodocs", no_argument, NULL, OPT_NODOCS },
    { "no-docs", no_argument, NULL, OPT_NODOCS },
    { "noscripts", no_argument, NULL, OPT_NOSCRIPTS },
    { "exclude", required_argument, NULL, OPT_EXCLUDE },
    { "excludepkgs", required_argument, NULL, OPT_EXCLUDE },
    { "security", no_argument, NULL, OPT_SECURITY },
    { "bugfix", no_argument, NULL, OPT_BUGFIX },
    { "enhancement", no_argument, NULL, OPT_ENHANCEMENT },
    { "newpackage", no_argument, NULL, OPT_NEWPACKAGE },
    { "sec-severity", required_argument, NULL, OPT_SEVERITY },
    { "secseverity", required_argument, NULL, OPT_SEVERITY },
    { "advisory", required_argument, NULL, OPT_ADVISORY },
    { "advisories", required_argument, NULL, OPT_ADVISORY },
    { "cve", required_argument, NULL, OPT_CVE },
    { "cves", required_argument, NULL, OPT_CVE },
    { "bz", required_argument, NULL, OPT_BZ },
    { "bzs", required_argument, NULL, OPT_BZ },
    { "summary", no_argument, NULL, OPT_SUMMARY },
    { "reboothint", no_argument, NULL, 'r' },
    { "timer", no_argument, NULL, OPT_TIMER },
    { "arch", required_argument, NULL, OPT_ARCH },
    { "resolve", no_argument, NULL, OPT_RESOLVE },
    { "alldeps", no_argument, NULL, OPT_ALLDEPS },
    { "url", no_argument, NULL, OPT_URL },
    { "enabled", no_argument, NULL, OPT_ENABLED },
    { "disabled", no_argument, NULL, OPT_DISABLED },
    { "advisory-severities", required_argument, NULL, OPT_SEVERITY },
    { "with-cve", no_argument, NULL, OPT_WITH_CVE },
    { "with-bz", no_argument, NULL, OPT_WITH_BZ },
    { "contains-pkgs", required_argument, NULL, OPT_CONTAINS_PKGS },
    { "with-optional", no_argument, NULL, OPT_WITH_OPTIONAL },
    { "hidden", no_argument, NULL, OPT_HIDDEN },
    { "check", required_argument, NULL, OPT_CHECK },
    { "newest", no_argument, NULL, OPT_NEWEST },
    { "skip-unavailable", no_argument, NULL, OPT_SKIPUNAVAILABLE },
    { "best", no_argument, NULL, OPT_BEST },
    { "no-best", no_argument, NULL, OPT_NOBEST },
    { "nobest", no_argument, NULL, OPT_NOBEST },
    { "allow-downgrade", no_argument, NULL, OPT_ALLOWDOWNGRADE },
    { "no-allow-downgrade", no_argument, NULL, OPT_NOALLOWDOWNGRADE },
    { "queryformat", required_argument, NULL, OPT_QUERYFORMAT },
    { "qf", required_argument, NULL, OPT_QUERYFORMAT },
    { "userinstalled", no_argument, NULL, OPT_USERINSTALLED },
    { "updates", no_argument, NULL, OPT_UPGRADES },
    { "extras", no_argument, NULL, OPT_EXTRAS },
    { "recent", no_argument, NULL, OPT_RECENT },
    { "reverse", no_argument, NULL, OPT_REVERSE },
    { "minimal", no_argument, NULL, OPT_MINIMAL },
    { "comment", required_argument, NULL, OPT_COMMENT },
    { "whatdepends", required_argument, NULL, OPT_WHATDEPENDS },
    { "whatconflicts", required_argument, NULL, OPT_WHATCONFLICTS },
    { "whatenhances", required_argument, NULL, OPT_WHATENHANCES },
    { "whatobsoletes", required_argument, NULL, OPT_WHATOBSOLETES },
    { "whatrecommends", required_argument, NULL, OPT_WHATRECOMMENDS },
    { "whatsupplements", required_argument, NULL, OPT_WHATSUPPLEMENTS },
    { "whatsuggests", required_argument, NULL, OPT_WHATSUGGESTS },
    { "file", required_argument, NULL, 'f' },
    { "exactdeps", no_argument, NULL, OPT_EXACTDEPS },
    { "recursive", no_argument, NULL, OPT_RECURSIVE },
    { "leaves", no_argument, NULL, OPT_LEAVES },
    { "unneeded", no_argument, NULL, OPT_UNNEEDED },
    { "duplicates", no_argument, NULL, OPT_DUPLICATES },
    { "installonly", no_argument, NULL, OPT_INSTALLONLY },
    { "querytags", no_argument, NULL, OPT_QUERYTAGS },
    { "depends", no_argument, NULL, OPT_DEPENDS },
    { "requires-pre", no_argument, NULL, OPT_REQUIRES_PRE },
    { "enhances", no_argument, NULL, OPT_ENHANCES },
    { "supplements", no_argument, NULL, OPT_SUPPLEMENTS },
    { "files", no_argument, NULL, OPT_FILES },
    { "latest-limit", required_argument, NULL, OPT_LATEST_LIMIT },
    { "providers-of", required_argument, NULL, OPT_PROVIDERS_OF },
    { NULL, 0, NULL, 0 },
};

static void usage(FILE *out)
{
    fprintf(out, "usage: lapis [options] COMMAND [args...]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nAliases:");
    for (size_t i = 0; i < NALIASES; i++)
        fprintf(out, "%s %s=%s", i % 6 ? "" : "\n ", aliases[i].alias, aliases[i].command);
    fprintf(out, "\n\n'lapis help COMMAND' or 'lapis COMMAND --help' shows a command's options.\n");
    fprintf(out,
            "\nOptions:\n"
            "  --installroot=DIR     operate on the system in DIR\n"
            "  -c, --config=FILE     configuration file (default /etc/lapis/lapis.conf)\n"
            "  --releasever=VER      value of $releasever\n"
            "  --setopt=KEY=VALUE    override a [main] option; REPOID.KEY=VALUE for a repo\n"
            "  --enablerepo, --enable-repo=GLOB    enable repositories (repeatable, comma list)\n"
            "  --disablerepo, --disable-repo=GLOB  disable repositories\n"
            "  --repo=ID             use only these repositories\n"
            "  --repofrompath=ID,PATH  one more repository, at PATH (a directory or URL)\n"
            "  -C, --cacheonly       use only cached metadata\n"
            "  --refresh             treat cached metadata as expired\n"
            "  --nogpgcheck, --no-gpgchecks  skip signature checks (explicit opt-out)\n"
            "  --noplugins, --no-plugins     accepted: lapis has no plugins\n"
            "  -y, --assumeyes       answer yes    --assumeno  answer no (show only)\n"
            "  --json                one JSON document on stdout\n"
            "  --color=WHEN          auto (a terminal, unless NO_COLOR is set), always, never\n"
            "  -q, --quiet           only errors    -v, --verbose  more detail\n"
            "  -x, --exclude=GLOB    hide matching packages (repeatable)\n"
            "\nQuery options (repoquery, list, info):\n"
            "  --queryformat, --qf=FMT  dnf5's tags: %%{name} %%{evr} %%{full_nevra} %%{repoid} ...\n"
            "  --installed --available --upgrades --updates --extras --recent --userinstalled\n"
            "  history list --reverse; history info N..M | last | last-N\n"
            "\nTransaction options:\n"
            "  --allowerasing        allow removing installed packages to resolve conflicts\n"
            "  --skip-broken         skip packages whose dependencies cannot be satisfied\n"
            "  --skip-unavailable    skip specs that match nothing (a note, not an error)\n"
            "  --best, --no-best     insist on the newest candidates (default), or fall back\n"
            "  --allow-downgrade     allow downgrading dependencies to resolve\n"
            "  --no-allow-downgrade  never downgrade a dependency (the default)\n"
            "  --downloadonly        only download (and verify) packages\n"
            "  --downloaddir=DIR     with --downloadonly: where to put them\n"
            "  --offline             store the transaction for the next boot (lapis offline)\n"
            "  --comment=TEXT        recorded with the transaction (history info)\n"
            "  --nodocs, --no-docs   do not install documentation\n"
            "  --noscripts           do not run scriptlets\n"
            "\nAdvisory filters (updateinfo, upgrade, upgrade-minimal, check-update):\n"
            "  --security --bugfix --enhancement --newpackage   advisory types\n"
            "  --advisory=ID  --cve=CVE  --bz=ID                 named advisories\n"
            "  --sec-severity=Critical|Important|Moderate|Low|None  narrow by severity\n"
            "  updateinfo: --available (default) --installed --all; --summary --list --info\n"
            "\nOther:\n"
            "  needs-restarting -r   exit 1 and say why when a reboot is needed\n"
            "  automatic --timer     apply random_sleep first; -c FILE names automatic.conf\n");
}

struct log_state {
    bool quiet, verbose;
    struct cli_mdprogress *md; /* a message moves the progress block's redraw below it */
};

static void log_cb(enum lapis_log_level lvl, const char *msg, void *ud)
{
    struct log_state *ls = ud;
    char *clean = lapis_sanitize(msg);
    if (lvl != LAPIS_LOG_DEBUG || ls->verbose)
        cli_mdprogress_detach(ls->md);
    if (lvl == LAPIS_LOG_ERROR)
        fprintf(stderr, "lapis: error: %s\n", clean);
    else if (lvl == LAPIS_LOG_WARNING && !ls->quiet)
        fprintf(stderr, "lapis: warning: %s\n", clean);
    else if (lvl == LAPIS_LOG_INFO && !ls->quiet)
        fprintf(stderr, "%s\n", clean);
    else if (lvl == LAPIS_LOG_DEBUG && ls->verbose)
        fprintf(stderr, "lapis: debug: %s\n", clean);
    free(clean);
}

/* ---- signals ----------------------------------------------------------------
 * The CLI's only global mutable state: what a signal handler may touch.
 * It holds the number of the SIGINT/SIGTERM received (0: none); the context
 * gets a pointer to it, and downloads and the lock wait check it. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

/* No SA_RESTART: the lock wait, curl's poll and the terminal prompt must wake
 * up. A second signal does not kill us either: the run stops at the next
 * check, and never inside the rpm transaction. */
static void install_signal_handlers(lapis_ctx *ctx)
{
    struct sigaction sa = { .sa_handler = on_stop_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    lapis_ctx_set_interrupt(ctx, &stop_signal);
}

int cli_interrupted(void)
{
    return stop_signal;
}

const volatile sig_atomic_t *cli_interrupt_flag(void)
{
    return &stop_signal;
}

int cli_interrupt_note(struct cli *c, const char *msg)
{
    if (!c->interrupt_told) {
        char *clean = lapis_sanitize(msg);
        fprintf(stderr, "lapis: %s\n", clean);
        free(clean);
    }
    c->interrupt_told = true;
    return 128 + (stop_signal ? stop_signal : SIGINT);
}

/* The one way the CLI reports an error: a line on stderr and, with --json,
 * the error document on stdout. Returns the exit code: 2 for a usage error
 * (dnf5's ARGPARSER_ERROR), 128+signal when the run was interrupted (the
 * library's message then says what was kept), else 1. */
static int emit_error_line(struct cli *c, int code, const char *msg, bool line)
{
    int rc = code == -LAPIS_E_USAGE ? EXIT_USAGE : 1;
    if (code == -LAPIS_E_INTERRUPTED) {
        rc = cli_interrupt_note(c, msg);
    } else if (line) {
        char *clean = lapis_sanitize(msg);
        fprintf(stderr, "lapis: error: %s\n", clean);
        free(clean);
    }
    if (c->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON *err = cJSON_AddObjectToObject(doc, "error");
        cJSON_AddStringToObject(err, "message", msg);
        cJSON_AddNumberToObject(err, "code", code);
        lapis_json_print(doc, stdout);
        cJSON_Delete(doc);
    }
    return rc;
}

static int emit_error(struct cli *c, int code, const char *msg)
{
    return emit_error_line(c, code, msg, true);
}

int cli_fail(struct cli *c, int r)
{
    return emit_error(c, r, lapis_ctx_error(c->ctx));
}

int cli_fail_printed(struct cli *c, int r)
{
    return emit_error_line(c, r, lapis_ctx_error(c->ctx), false);
}

int cli_error(struct cli *c, int code, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    int r;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    r = emit_error(c, code < 0 ? code : -code, msg ? msg : "error");
    free(msg);
    return r;
}

static int usage_error(struct cli *c, const char *what, const char *arg)
{
    if (arg)
        return cli_error(c, LAPIS_E_USAGE, "%s '%s'; see 'lapis --help'", what, arg);
    return cli_error(c, LAPIS_E_USAGE, "%s; see 'lapis --help'", what);
}

int cli_load(struct cli *c, unsigned extra)
{
    bool say = !c->quiet && !c->json; /* dnf5's lines around loading, on stderr */
    if (say)
        fprintf(stderr, "Updating and loading repositories:\n");
    int r = lapis_load(c->ctx, extra | (c->refresh ? LAPIS_LOAD_REFRESH : 0));
    if (say && r >= 0)
        fprintf(stderr, "Repositories loaded.\n");
    return r;
}

void cli_json_out(struct cli *c, cJSON *doc)
{
    (void)c;
    lapis_json_print(doc, stdout);
    cJSON_Delete(doc);
}

void cli_puts(const char *s)
{
    char *clean = lapis_sanitize(s);
    puts(clean);
    free(clean);
}

/* dnf5's "Key                 : value" of repo, group and environment info;
 * on a terminal a long value wraps under its column, as info's values do. */
void cli_kv(const struct cli *c, const char *key, const char *value)
{
    cli_kv_width(c, 20, key, value);
}

void cli_kv_width(const struct cli *c, int keyw, const char *key, const char *value)
{
    char prefix[128], hang[128];
    if (!value || !*value) {
        printf("%-*s:\n", keyw, key);
        return;
    }
    snprintf(prefix, sizeof(prefix), "%-*s: ", keyw, key);
    snprintf(hang, sizeof(hang), "%-*s: ", keyw, "");
    lapis_term_print_wrapped(stdout, prefix, hang, value, c->width);
}

void cli_kv_list(const struct cli *c, const char *key, char *const *v)
{
    for (size_t i = 0; v && v[i]; i++)
        cli_kv(c, i == 0 ? key : "", v[i]);
}

const char *cli_destdir(const struct cli *c)
{
    return c->downloaddir ? c->downloaddir : lapis_ctx_destdir(c->ctx);
}

void cli_pkglist_add(lapis_pkglist *l, lapis_pkg p)
{
    lapis_pkg *grown;

    for (size_t i = 0; i < l->count; i++)
        if (l->pkgs[i] == p)
            return;
    if (!(grown = realloc(l->pkgs, (l->count + 1) * sizeof(*l->pkgs))))
        abort();
    l->pkgs = grown;
    l->pkgs[l->count++] = p;
}

cJSON *cli_json_pkglist(struct cli *c, const lapis_pkglist *l)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < l->count; i++)
        cJSON_AddItemToArray(a, lapis_json_pkg(c->ctx, l->pkgs[i]));
    return a;
}

static char *join_argv(int argc, char **argv)
{
    size_t len = 1;
    for (int i = 1; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *s = calloc(1, len);
    for (int i = 1; s && i < argc; i++) {
        if (i > 1)
            strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

static size_t strv_len(char **v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

/* Append the comma/space separated items of text to *v (NULL-terminated);
 * returns how many. */
static size_t add_list(char ***v, const char *text)
{
    char *copy = strdup(text), *save = NULL;
    size_t n = strv_len(*v), first = n;
    for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        *v = realloc(*v, (n + 2) * sizeof(char *));
        (*v)[n++] = strdup(t);
        (*v)[n] = NULL;
    }
    if (!*v)
        *v = calloc(1, sizeof(char *));
    free(copy);
    return n - first;
}

lapis_advisory_filter cli_advisory_filter(const struct cli *c)
{
    return (lapis_advisory_filter){ .types = c->adv_types, .ids = c->adv_ids, .cves = c->adv_cves,
                                    .bzs = c->adv_bzs, .severities = c->adv_severities,
                                    .with_cve = c->with_cve, .with_bz = c->with_bz };
}

bool cli_has_advisory_filter(const struct cli *c)
{
    lapis_advisory_filter f = cli_advisory_filter(c);
    return !lapis_advisory_filter_empty(&f);
}

static int empty_value(struct cli *c, int opt)
{
    for (const struct option *o = long_opts; o->name; o++)
        if (o->val == opt)
            return cli_error(c, LAPIS_E_USAGE, "--%s needs a value (an empty filter would match "
                             "everything); see 'lapis --help'", o->name);
    return cli_error(c, LAPIS_E_USAGE, "an option needs a value; see 'lapis --help'");
}

/* arg is the option as written ("--releasever", "-c", or "-yc" for a cluster). */
static int missing_value(struct cli *c, const char *arg)
{
    if (arg[1] != '-' && optopt > 0 && optopt < 256)
        return cli_error(c, LAPIS_E_USAGE, "option '-%c' requires a value; see 'lapis --help'",
                         optopt);
    return cli_error(c, LAPIS_E_USAGE, "option '%s' requires a value; see 'lapis --help'", arg);
}

/* Options that only set a flag, or keep their value, in struct cli
 * (-c is applied once the command is known). */
struct cli_field {
    int opt;
    size_t off;
};
static const struct cli_field cli_flags[] = {
    { 'y', offsetof(struct cli, assumeyes) },
    { OPT_ASSUMENO, offsetof(struct cli, assumeno) },
    { 'q', offsetof(struct cli, quiet) },
    { 'v', offsetof(struct cli, verbose) },
    { OPT_JSON, offsetof(struct cli, json) },
    { OPT_REFRESH, offsetof(struct cli, refresh) },
    { OPT_SHOWDUP, offsetof(struct cli, showduplicates) },
    { OPT_ALL, offsetof(struct cli, all) },
    { OPT_REQUIRES, offsetof(struct cli, q_requires) },
    { OPT_PROVIDES, offsetof(struct cli, q_provides) },
    { OPT_RECOMMENDS, offsetof(struct cli, q_recommends) },
    { OPT_SUGGESTS, offsetof(struct cli, q_suggests) },
    { OPT_CONFLICTS, offsetof(struct cli, q_conflicts) },
    { OPT_OBSOLETES, offsetof(struct cli, q_obsoletes) },
    { OPT_LOCATION, offsetof(struct cli, q_location) },
    { OPT_INFO, offsetof(struct cli, q_info) },
    { 'l', offsetof(struct cli, q_files) },
    { OPT_INSTALLED, offsetof(struct cli, q_installed) },
    { OPT_AVAILABLE, offsetof(struct cli, q_available) },
    { OPT_UPGRADES, offsetof(struct cli, q_upgrades) },
    { OPT_ALLOWERASING, offsetof(struct cli, allowerasing) },
    { OPT_SKIPBROKEN, offsetof(struct cli, skip_broken) },
    { OPT_DOWNLOADONLY, offsetof(struct cli, downloadonly) },
    { OPT_OFFLINE, offsetof(struct cli, offline) },
    { OPT_POWEROFF, offsetof(struct cli, poweroff) },
    { OPT_NO_REBOOT, offsetof(struct cli, no_reboot) },
    { OPT_NODOCS, offsetof(struct cli, nodocs) },
    { OPT_NOSCRIPTS, offsetof(struct cli, noscripts) },
    { OPT_SUMMARY, offsetof(struct cli, summary) },
    { 'r', offsetof(struct cli, reboothint) },
    { OPT_TIMER, offsetof(struct cli, timer) },
    { OPT_RESOLVE, offsetof(struct cli, resolve) },
    { OPT_ALLDEPS, offsetof(struct cli, alldeps) },
    { OPT_URL, offsetof(struct cli, url) },
    { OPT_ENABLED, offsetof(struct cli, repo_enabled) },
    { OPT_DISABLED, offsetof(struct cli, repo_disabled) },
    { OPT_WITH_CVE, offsetof(struct cli, with_cve) },
    { OPT_WITH_BZ, offsetof(struct cli, with_bz) },
    { OPT_WITH_OPTIONAL, offsetof(struct cli, with_optional) },
    { OPT_HIDDEN, offsetof(struct cli, hidden) },
    { OPT_NEWEST, offsetof(struct cli, newest) },
    { OPT_ALLOWDOWNGRADE, offsetof(struct cli, allow_downgrade) },
    { OPT_USERINSTALLED, offsetof(struct cli, q_userinstalled) },
    { OPT_EXTRAS, offsetof(struct cli, q_extras) },
    { OPT_RECENT, offsetof(struct cli, q_recent) },
    { OPT_REVERSE, offsetof(struct cli, reverse) },
    { OPT_MINIMAL, offsetof(struct cli, minimal) },
    { OPT_EXACTDEPS, offsetof(struct cli, q_exactdeps) },
    { OPT_RECURSIVE, offsetof(struct cli, q_recursive) },
    { OPT_LEAVES, offsetof(struct cli, q_leaves) },
    { OPT_UNNEEDED, offsetof(struct cli, q_unneeded) },
    { OPT_DUPLICATES, offsetof(struct cli, q_duplicates) },
    { OPT_INSTALLONLY, offsetof(struct cli, q_installonly) },
    { OPT_QUERYTAGS, offsetof(struct cli, q_querytags) },
    { OPT_DEPENDS, offsetof(struct cli, q_depends) },
    { OPT_REQUIRES_PRE, offsetof(struct cli, q_requires_pre) },
    { OPT_ENHANCES, offsetof(struct cli, q_enhances) },
    { OPT_SUPPLEMENTS, offsetof(struct cli, q_supplements) },
    { OPT_FILES, offsetof(struct cli, q_files_attr) },
};
static const struct cli_field cli_values[] = {
    { 'c', offsetof(struct cli, config_arg) },
    { OPT_DOWNLOADDIR, offsetof(struct cli, downloaddir) },
    { OPT_QUERYFORMAT, offsetof(struct cli, queryformat) },
    { OPT_COMMENT, offsetof(struct cli, comment) },
};

static bool set_field_option(struct cli *c, int opt)
{
    for (size_t i = 0; i < sizeof(cli_flags) / sizeof(cli_flags[0]); i++)
        if (cli_flags[i].opt == opt) {
            *(bool *)((char *)c + cli_flags[i].off) = true;
            return true;
        }
    for (size_t i = 0; i < sizeof(cli_values) / sizeof(cli_values[0]); i++)
        if (cli_values[i].opt == opt) {
            *(char **)((char *)c + cli_values[i].off) = optarg;
            return true;
        }
    return false;
}

/* The first --repo disables everything else; later ones add (dnf). */
static int set_repo_option(struct cli *c)
{
    int r = 0;
    if (!c->repo_given && (r = lapis_ctx_disable_repos(c->ctx, "*")) == 0)
        c->repo_given = true;
    return r == 0 ? lapis_ctx_enable_repos(c->ctx, optarg) : r;
}

/* Options the context takes: 0 or a negative errno; 1 when opt is none of them. */
static int set_ctx_option(struct cli *c, int opt)
{
    lapis_ctx *ctx = c->ctx;
    switch (opt) {
    case OPT_INSTALLROOT: return lapis_ctx_set_installroot(ctx, optarg);
    case OPT_RELEASEVER: return lapis_ctx_set_releasever(ctx, optarg);
    case OPT_SETOPT: return lapis_ctx_setopt(ctx, optarg);
    case OPT_ENABLEREPO: return lapis_ctx_enable_repos(ctx, optarg);
    case OPT_DISABLEREPO: return lapis_ctx_disable_repos(ctx, optarg);
    case OPT_REPOFROMPATH: return lapis_ctx_add_repofrompath(ctx, optarg);
    case OPT_REPO: return set_repo_option(c);
    case 'C': lapis_ctx_set_cacheonly(ctx, true); return 0;
    case OPT_NOGPGCHECK: lapis_ctx_set_nogpgcheck(ctx, true); return 0;
    case OPT_FORCEARCH: return lapis_ctx_set_arch(ctx, optarg);
    case 'x': case OPT_EXCLUDE: return lapis_ctx_add_excludes(ctx, optarg);
    case OPT_SKIPUNAVAILABLE: return lapis_ctx_setopt(ctx, "skip_unavailable=1");
    case OPT_BEST: return lapis_ctx_setopt(ctx, "best=1");
    case OPT_NOBEST: return lapis_ctx_setopt(ctx, "best=0");
    default: return 1;
    }
}

static int set_severity_option(struct cli *c, int opt)
{
    size_t first = strv_len(c->adv_severities);
    /* An empty filter must not widen an upgrade to everything. */
    if (add_list(&c->adv_severities, optarg) == 0)
        return empty_value(c, opt);
    for (size_t i = first; c->adv_severities[i]; i++)
        if (!lapis_advisory_severity_valid(c->adv_severities[i]))
            return usage_error(c, "unknown severity (use Critical, Important, Moderate "
                               "or Low):", c->adv_severities[i]);
    return 0;
}

/* Advisory filters: 0, a usage error's exit status, or -1 when opt is none of them. */
static int set_advisory_option(struct cli *c, int opt)
{
    switch (opt) {
    case OPT_SECURITY: c->adv_types |= LAPIS_ADV_SECURITY; return 0;
    case OPT_BUGFIX: c->adv_types |= LAPIS_ADV_BUGFIX; return 0;
    case OPT_ENHANCEMENT: c->adv_types |= LAPIS_ADV_ENHANCEMENT; return 0;
    case OPT_NEWPACKAGE: c->adv_types |= LAPIS_ADV_NEWPACKAGE; return 0;
    case OPT_SEVERITY: return set_severity_option(c, opt);
    case OPT_ARCH: return add_list(&c->arches, optarg) == 0 ? empty_value(c, opt) : 0;
    case OPT_CHECK: return add_list(&c->check_repos, optarg) == 0 ? empty_value(c, opt) : 0;
    case OPT_CONTAINS_PKGS: return add_list(&c->contains_pkgs, optarg) == 0 ? empty_value(c, opt) : 0;
    case OPT_ADVISORY: case OPT_CVE: case OPT_BZ: {
        char ***v = opt == OPT_ADVISORY ? &c->adv_ids : opt == OPT_CVE ? &c->adv_cves : &c->adv_bzs;
        return add_list(v, optarg) == 0 ? empty_value(c, opt) : 0;
    }
    default: return -1;
    }
}

/* repoquery's --what<kind> options and the kind each filters on. */
static const struct {
    int opt;
    enum lapis_dep_kind kind;
} what_opts[] = {
    { OPT_WHATPROVIDES, LAPIS_DEP_PROVIDES }, { OPT_WHATREQUIRES, LAPIS_DEP_REQUIRES },
    { OPT_WHATDEPENDS, LAPIS_DEP_DEPENDS }, { OPT_WHATCONFLICTS, LAPIS_DEP_CONFLICTS },
    { OPT_WHATENHANCES, LAPIS_DEP_ENHANCES }, { OPT_WHATOBSOLETES, LAPIS_DEP_OBSOLETES },
    { OPT_WHATRECOMMENDS, LAPIS_DEP_RECOMMENDS }, { OPT_WHATSUPPLEMENTS, LAPIS_DEP_SUPPLEMENTS },
    { OPT_WHATSUGGESTS, LAPIS_DEP_SUGGESTS },
};

/* dnf5's --providers-of values. */
static const struct {
    const char *name;
    enum lapis_dep_kind kind;
} providers_of_attrs[] = {
    { "conflicts", LAPIS_DEP_CONFLICTS }, { "depends", LAPIS_DEP_DEPENDS },
    { "enhances", LAPIS_DEP_ENHANCES }, { "obsoletes", LAPIS_DEP_OBSOLETES },
    { "provides", LAPIS_DEP_PROVIDES }, { "recommends", LAPIS_DEP_RECOMMENDS },
    { "requires", LAPIS_DEP_REQUIRES }, { "requires_pre", LAPIS_DEP_REQUIRES_PRE },
    { "suggests", LAPIS_DEP_SUGGESTS }, { "supplements", LAPIS_DEP_SUPPLEMENTS },
};

static int set_providers_of(struct cli *c)
{
    for (size_t i = 0; i < sizeof(providers_of_attrs) / sizeof(providers_of_attrs[0]); i++)
        if (strcmp(providers_of_attrs[i].name, optarg) == 0) {
            c->providers_of = providers_of_attrs[i].kind;
            c->providers_of_given = true;
            return 0;
        }
    return usage_error(c, "--providers-of takes conflicts, depends, enhances, obsoletes, "
                       "provides, recommends, requires, requires_pre, suggests or supplements, "
                       "not", optarg);
}

static int set_latest_limit(struct cli *c)
{
    char *end;
    errno = 0;
    long n = strtol(optarg, &end, 10);
    if (errno || end == optarg || *end || n == 0 || n < INT_MIN / 2 || n > INT_MAX / 2)
        return usage_error(c, "--latest-limit takes a number other than 0 (negative: all but "
                           "the newest N), not", optarg);
    c->latest_limit = (int)n;
    return 0;
}

/* repoquery's options that take a value: 0, a usage error's exit status, or -1
 * when opt is none of them. */
static int set_query_option(struct cli *c, int opt)
{
    for (size_t i = 0; i < sizeof(what_opts) / sizeof(what_opts[0]); i++)
        if (what_opts[i].opt == opt)
            return add_list(&c->what[what_opts[i].kind], optarg) == 0 ? empty_value(c, opt) : 0;
    switch (opt) {
    case 'f': return add_list(&c->q_file, optarg) == 0 ? empty_value(c, opt) : 0;
    case OPT_LATEST_LIMIT: return set_latest_limit(c);
    case OPT_PROVIDERS_OF: return set_providers_of(c);
    default: return -1;
    }
}

static int set_color_option(struct cli *c)
{
    enum lapis_color mode;
    if (lapis_color_parse(optarg, &mode) < 0)
        return usage_error(c, "--color takes auto, always or never, not", optarg);
    c->color_arg = optarg;
    return 0;
}

/* Colours and the width, once lapis.conf's color= is read: --color wins
 * over it; JSON is never coloured or wrapped. */
static void set_terminal(struct cli *c)
{
    enum lapis_color mode = (enum lapis_color)lapis_ctx_color(c->ctx);
    if (c->color_arg)
        (void)lapis_color_parse(c->color_arg, &mode);
    c->color = !c->json && lapis_color_wanted(mode, STDOUT_FILENO);
    c->width = c->json ? 0 : lapis_term_width();
}

/* One option: 0 to continue, PARSE_DONE when done (--version), else the
 * exit status of the usage error it reported. */
static int parse_option(struct cli *c, int opt, char **argv)
{
    int r;

    if (set_field_option(c, opt))
        return 0;
    if ((r = set_ctx_option(c, opt)) <= 0) {
        return r < 0 ? cli_fail(c, r) : 0;
    }
    if ((r = set_advisory_option(c, opt)) >= 0)
        return r;
    if ((r = set_query_option(c, opt)) >= 0)
        return r;
    switch (opt) {
    case OPT_NOPLUGINS: return 0;
    case 'h': c->help = true; return 0;
    /* lapis's default: a dependency is not downgraded (it could bring back a fixed
     * flaw) unless --allow-downgrade says so; dnf5 allows it by default. */
    case OPT_NOALLOWDOWNGRADE: c->allow_downgrade = false; return 0;
    case OPT_COLOR: return set_color_option(c);
    case OPT_VERSION: printf("lapis 0.1.0\n"); return PARSE_DONE;
    case ':': return missing_value(c, argv[optind - 1]);
    default: return usage_error(c, "unknown option", argv[optind - 1]);
    }
}

/* Returns 0 to continue, PARSE_DONE when done, else a usage error's exit status. */
static int parse_options(struct cli *c, int argc, char **argv)
{
    int opt, r;

    opterr = 0;
    /* '+': stop at positionals (handled below); ':' right after it makes a
     * missing value come back as ':' instead of '?'. */
    while ((opt = getopt_long(argc, argv, "+:c:yqvChlx:rf:", long_opts, NULL)) != -1 || optind < argc) {
        if (opt == -1) {
            /* A positional: keep it and continue parsing options after it (dnf style). */
            c->args = realloc(c->args, (size_t)(c->nargs + 2) * sizeof(char *));
            c->args[c->nargs++] = argv[optind++];
            c->args[c->nargs] = NULL;
            continue;
        }
        if ((r = parse_option(c, opt, argv)) != 0)
            return r;
    }
    return 0;
}

static bool option_takes_value(const char *arg)
{
    if (arg[1] == '-') {
        if (strchr(arg, '='))
            return false;
        for (const struct option *o = long_opts; o->name; o++)
            if (strcmp(o->name, arg + 2) == 0)
                return o->has_arg == required_argument;
        return false;
    }
    /* Short options: the first of c/x ends the cluster; it takes the next
     * word when nothing follows it (-f too). */
    size_t at = strcspn(arg + 1, "cxf");
    return arg[1 + at] && !arg[2 + at];
}

/* `image` parses its own options: the index of the command word when the
 * first positional is "image", else 0. Global options may come before it. */
static int image_command_at(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (argv[i][0] == '-' && argv[i][1]) {
            if (option_takes_value(argv[i]))
                i++;
            continue;
        }
        return strcmp(argv[i], "image") == 0 ? i : 0;
    }
    return 0;
}

static const struct cmd *find_command(const char *name)
{
    for (size_t i = 0; i < NALIASES; i++)
        if (strcmp(aliases[i].alias, name) == 0)
            name = aliases[i].command;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* dnf5 exits 2 for an unknown command; the nearest command name helps. */
static int unknown_command(struct cli *c, const char *name)
{
    const char *names[NCOMMANDS + NALIASES + 1];
    size_t n = 0;
    for (size_t i = 0; i < NCOMMANDS; i++)
        names[n++] = commands[i].name;
    for (size_t i = 0; i < NALIASES; i++)
        names[n++] = aliases[i].alias;
    names[n] = NULL;
    const char *near = cli_suggest_command(name, names);
    if (near)
        cli_error(c, LAPIS_E_USAGE, "unknown command \"%s\". Did you mean \"%s\"? (see 'lapis "
                  "--help')", name, near);
    else
        cli_error(c, LAPIS_E_USAGE, "unknown command \"%s\"; see 'lapis --help'", name);
    return EXIT_USAGE;
}

/* help [COMMAND], and COMMAND --help: only that command's options. */
static int show_help(struct cli *c, const char *name)
{
    const struct cmd *cmd;
    if (!name) {
        usage(stdout);
        return 0;
    }
    if (!(cmd = find_command(name)))
        return unknown_command(c, name);
    return cli_command_help(cmd, name, stdout);
}

static int cmd_help(struct cli *c)
{
    if (c->nargs > 1)
        return cli_error(c, LAPIS_E_USAGE, "help takes one command");
    return show_help(c, c->nargs ? c->args[0] : NULL);
}

/* dnf5's commands with --offline. */
static bool cmd_takes_offline(const struct cmd *cmd)
{
    return cmd->run == cmd_install || cmd->run == cmd_reinstall || cmd->run == cmd_remove ||
           cmd->run == cmd_upgrade || cmd->run == cmd_downgrade || cmd->run == cmd_distro_sync;
}

/* The commands that filter by advisories; on any other an advisory filter
 * would be ignored, which is worse than an error. */
static bool cmd_takes_advisory_filters(const struct cmd *cmd)
{
    return cmd->run == cmd_updateinfo || cmd->run == cmd_upgrade ||
           cmd->run == cmd_upgrade_minimal || cmd->run == cmd_check_update;
}

/* repoquery's own options: on another command they would be ignored. */
static const char *repoquery_only_option(const struct cli *c)
{
    static const struct {
        size_t off;
        const char *name;
    } flags[] = {
        { offsetof(struct cli, q_exactdeps), "--exactdeps" },
        { offsetof(struct cli, q_recursive), "--recursive" },
        { offsetof(struct cli, q_leaves), "--leaves" },
        { offsetof(struct cli, q_unneeded), "--unneeded" },
        { offsetof(struct cli, q_duplicates), "--duplicates" },
        { offsetof(struct cli, q_installonly), "--installonly" },
        { offsetof(struct cli, q_querytags), "--querytags" },
        { offsetof(struct cli, q_depends), "--depends" },
        { offsetof(struct cli, q_requires_pre), "--requires-pre" },
        { offsetof(struct cli, q_enhances), "--enhances" },
        { offsetof(struct cli, q_supplements), "--supplements" },
        { offsetof(struct cli, q_files_attr), "--files" },
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (*(const bool *)((const char *)c + flags[i].off))
            return flags[i].name;
    for (size_t i = 0; i < sizeof(what_opts) / sizeof(what_opts[0]); i++)
        if (c->what[what_opts[i].kind])
            for (const struct option *o = long_opts; o->name; o++)
                if (o->val == what_opts[i].opt)
                    return o->name;
    if (c->q_file)
        return "--file";
    if (c->latest_limit)
        return "--latest-limit";
    return c->providers_of_given ? "--providers-of" : NULL;
}

/* The command's own checks of options that belong to other commands; 0 or an
 * exit status. upgrade --minimal becomes upgrade-minimal. */
/* Options of a few commands only: any other would ignore them. */
#define CMDS_MAX 4
static const struct {
    size_t off;
    bool is_ptr; /* a pointer set when given, else a bool */
    const char *name, *cmds;
    int (*run[CMDS_MAX])(struct cli *);
} cmd_only_opts[] = {
    { offsetof(struct cli, resolve), false, "--resolve", "download", { cmd_download } },
    { offsetof(struct cli, alldeps), false, "--alldeps", "download", { cmd_download } },
    { offsetof(struct cli, url), false, "--url", "download", { cmd_download } },
    { offsetof(struct cli, arches), true, "--arch", "download, repoquery and repoclosure",
      { cmd_download, cmd_repoquery, cmd_repoclosure } },
    { offsetof(struct cli, reverse), false, "--reverse", "history", { cmd_history } },
    { offsetof(struct cli, repo_enabled), false, "--enabled", "repo and repolist",
      { cmd_repo, cmd_repolist, cmd_repoinfo } },
    { offsetof(struct cli, repo_disabled), false, "--disabled", "repo and repolist",
      { cmd_repo, cmd_repolist, cmd_repoinfo } },
    { offsetof(struct cli, queryformat), true, "--queryformat", "list, info and repoquery",
      { cmd_list, cmd_info, cmd_repoquery } },
    { offsetof(struct cli, q_extras), false, "--extras", "list, info and repoquery",
      { cmd_list, cmd_info, cmd_repoquery } },
    { offsetof(struct cli, q_recent), false, "--recent", "list, info and repoquery",
      { cmd_list, cmd_info, cmd_repoquery } },
    { offsetof(struct cli, q_userinstalled), false, "--userinstalled", "list, info and repoquery",
      { cmd_list, cmd_info, cmd_repoquery } },
    { offsetof(struct cli, with_optional), false, "--with-optional", "group", { cmd_group } },
    { offsetof(struct cli, hidden), false, "--hidden", "group", { cmd_group } },
    { offsetof(struct cli, newest), false, "--newest", "repoclosure", { cmd_repoclosure } },
    { offsetof(struct cli, check_repos), true, "--check", "repoclosure", { cmd_repoclosure } },
};

static bool opt_given(const struct cli *c, size_t i)
{
    const char *at = (const char *)c + cmd_only_opts[i].off;
    return cmd_only_opts[i].is_ptr ? *(void *const *)at != NULL : *(const bool *)at;
}

static bool opt_taken_by(size_t i, const struct cmd *cmd)
{
    for (size_t k = 0; k < CMDS_MAX && cmd_only_opts[i].run[k]; k++)
        if (cmd_only_opts[i].run[k] == cmd->run)
            return true;
    return false;
}

/* The first option given that the command does not take, or -1. */
static int misplaced_option(const struct cli *c, const struct cmd *cmd)
{
    for (size_t i = 0; i < sizeof(cmd_only_opts) / sizeof(cmd_only_opts[0]); i++)
        if (opt_given(c, i) && !opt_taken_by(i, cmd))
            return (int)i;
    return -1;
}

static int check_command_options(struct cli *c, const struct cmd **cmd)
{
    const char *rq = repoquery_only_option(c);
    int mis = misplaced_option(c, *cmd);
    if (c->minimal && (*cmd)->run != cmd_upgrade && (*cmd)->run != cmd_upgrade_minimal)
        return usage_error(c, "--minimal works with upgrade, not", c->args[0]);
    if (c->minimal)
        *cmd = find_command("upgrade-minimal");
    if (rq && (*cmd)->run != cmd_repoquery)
        return cli_error(c, LAPIS_E_USAGE, "%s works with repoquery, not '%s'; see 'lapis "
                         "repoquery --help'", rq, c->args[0]);
    if (mis >= 0)
        return cli_error(c, LAPIS_E_USAGE, "%s works with %s, not '%s'; see 'lapis %s --help'",
                         cmd_only_opts[mis].name, cmd_only_opts[mis].cmds, c->args[0], c->args[0]);
    if (c->offline && !cmd_takes_offline(*cmd))
        return usage_error(c, "--offline works with install, reinstall, remove, upgrade, "
                           "downgrade and distro-sync, not", c->args[0]);
    if (cli_has_advisory_filter(c) && !cmd_takes_advisory_filters(*cmd))
        return usage_error(c, "advisory filters (--security, --bugfix, --enhancement, "
                           "--newpackage, --advisory, --cve, --bz, --advisory-severities, "
                           "--with-cve, --with-bz) work with advisory, updateinfo, upgrade, "
                           "upgrade-minimal and check-upgrade, not", c->args[0]);
    return 0;
}

int main(int argc, char **argv)
{
    struct cli c = { 0 };
    struct log_state ls = { 0 };
    struct cli_mdprogress md = { 0 };
    const struct cmd *cmd;
    int r;

    cli_heap_prepare();
    if (lapis_ctx_new(&c.ctx) < 0) {
        fprintf(stderr, "lapis: error: cannot create the library context (out of memory?)\n");
        return 1;
    }
    c.args = calloc(1, sizeof(char *));
    c.cmdline = join_argv(argc, argv);
    int image_at = image_command_at(argc, argv);
    r = parse_options(&c, image_at ? image_at : argc, argv);
    if (r == 0 && image_at) {
        c.image_argv = argv + image_at;
        c.image_argc = argc - image_at;
        c.args = realloc(c.args, 2 * sizeof(char *));
        c.args[c.nargs++] = argv[image_at];
        c.args[c.nargs] = NULL;
    }
    if (r != 0) {
        r = r == PARSE_DONE ? 0 : r;
        goto out;
    }
    ls.quiet = c.quiet;
    ls.verbose = c.verbose;
    lapis_ctx_set_log(c.ctx, log_cb, &ls);
    lapis_ctx_set_debug(c.ctx, c.verbose);
    c.log_fn = log_cb;
    c.log_data = &ls;
    install_signal_handlers(c.ctx);
    /* Both on the terminal: a redirected stream must not get escape sequences. */
    md.enabled = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO) && !c.quiet && !c.json;
    ls.md = c.mdprogress = &md;
    lapis_ctx_set_progress(c.ctx, cli_mdprogress_cb, &md);

    if (c.help) {
        /* "help --help" and "install --help" alike: the command's own help. */
        bool help_cmd = c.nargs > 0 && strcmp(c.args[0], "help") == 0;
        r = show_help(&c, c.nargs > (int)help_cmd ? c.args[help_cmd] : NULL);
        goto out;
    }
    if (c.nargs == 0) {
        usage(stderr);
        r = usage_error(&c, "no command given", NULL);
        goto out;
    }
    cmd = find_command(c.args[0]);
    if (!cmd) {
        r = unknown_command(&c, c.args[0]);
        goto out;
    }
    if ((r = check_command_options(&c, &cmd)) != 0)
        goto out;
    c.cmd_name = cmd->name;
    /* Commands see their own arguments only. */
    c.args++;
    c.nargs--;
    if (c.config_arg && !(cmd->flags & CMD_OWN_SETUP) &&
        (r = lapis_ctx_set_config_file(c.ctx, c.config_arg)) < 0) {
        r = cli_fail(&c, r);
        c.args--;
        goto out;
    }
    r = cmd->flags & CMD_OWN_SETUP ? 0 : lapis_ctx_setup(c.ctx);
    if (r < 0) {
        r = cli_fail(&c, r);
        c.args--;
        goto out;
    }
    set_terminal(&c);
    r = cmd->run(&c);
    c.args--;
    /* A signal that came after the last point where the command could stop:
     * it ran to its end, but the exit code still says it was interrupted. */
    if (stop_signal)
        r = cli_interrupt_note(&c, r == 0 || r == EXIT_UPDATES
                                       ? "interrupted: the command had already finished"
                                       : "interrupted: the command had already failed");
out:
    lapis_strv_free(c.adv_ids);
    lapis_strv_free(c.adv_cves);
    lapis_strv_free(c.adv_bzs);
    lapis_strv_free(c.adv_severities);
    lapis_strv_free(c.arches);
    lapis_strv_free(c.contains_pkgs);
    lapis_strv_free(c.check_repos);
    lapis_strv_free(c.q_file);
    for (size_t i = 0; i < sizeof(c.what) / sizeof(c.what[0]); i++)
        lapis_strv_free(c.what[i]);
    free(c.args);
    free(c.cmdline);
    lapis_ctx_free(c.ctx);
    cli_mdprogress_free(&md);
    return r;
}
