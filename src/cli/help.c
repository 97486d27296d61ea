/*
 * Per-command help (`lapis help COMMAND`, `lapis COMMAND --help`): each
 * command's usage line and only the options it takes, as dnf5 shows them,
 * and the "Did you mean" suggestion for a mistyped command.
 */
#include <string.h>

#include "cli.h"

#define TX_OPTS                                                                             \
    "  --allowerasing          allow removing installed packages to resolve conflicts\n"   \
    "  --skip-broken           skip packages whose dependencies cannot be satisfied\n"     \
    "  --downloadonly          only download (and verify) the packages\n"                  \
    "  --downloaddir=DIR       with --downloadonly: where to put them (also --destdir)\n"  \
    "  --nodocs, --no-docs     do not install documentation\n"                             \
    "  --noscripts             do not run scriptlets\n"                                    \
    "  -x, --exclude=GLOB      hide matching packages (repeatable)\n"                      \
    "  --skip-unavailable      skip specs that match nothing (a note, not an error)\n"    \
    "  --best, --no-best       insist on the newest candidates (default), or fall back\n" \
    "  --allow-downgrade       let the solver downgrade dependencies (--no-allow-downgrade:\n" \
    "                          never, the default)\n"                                    \
    "  -y, --assumeyes         answer yes    --assumeno  answer no (show only)\n"         \
    "  --comment=TEXT          recorded with the transaction (history info)\n"

/* dnf5's --offline: on install, reinstall, remove, upgrade, downgrade, distro-sync. */
#define OFFLINE_OPT                                                                         \
    "  --offline               store the transaction to run at the next boot (lapis offline)\n"

#define ADV_OPTS                                                                            \
    "  --security --bugfix --enhancement --newpackage   advisory types\n"                  \
    "  --advisory=ID  --cve=CVE  --bz=ID                 named advisories\n"               \
    "  --advisory-severities=LIST (--sec-severity)       Critical,Important,Moderate,Low,None\n"

#define REPO_OPTS                                                                           \
    "  --all                   all repositories, with their status\n"                      \
    "  --enabled               enabled repositories (the default)\n"                       \
    "  --disabled              disabled repositories\n"

#define QUERY_OPTS                                                                          \
    "  --queryformat, --qf=FMT dnf5's tags: %{name} %{evr} %{full_nevra} %{repoid} ...\n"  \
    "  --installed --available --upgrades --updates --extras --recent --userinstalled\n"

struct cmd_help {
    const char *name;
    const char *usage;   /* after "lapis [global options] NAME " */
    const char *options; /* NULL: the command takes no options of its own */
};

static const struct cmd_help helps[] = {
    { "repolist", "[--all|--enabled|--disabled] [REPO...]", REPO_OPTS },
    { "repo", "list|info [--all|--enabled|--disabled] [REPO...]", REPO_OPTS },
    { "repoinfo", "[--all|--enabled|--disabled] [REPO...]", REPO_OPTS },
    { "makecache", "", "  --refresh               treat cached metadata as expired\n" },
    { "clean", "all|metadata|packages", NULL },
    { "list", "[installed|available|updates] [GLOB...]",
      "  --showduplicates        every version, not only the newest\n" QUERY_OPTS },
    { "info", "[installed|available|updates] [GLOB...]",
      "  --showduplicates        every version, not only the newest\n" QUERY_OPTS },
    { "search", "TERM...", "  --all                   also search descriptions and URLs\n" },
    { "provides", "CAPABILITY|PATH...", NULL },
    { "whatprovides", "CAPABILITY|PATH...", NULL },
    { "repoquery", "[options] [GLOB...]",
      "  --installed --available --upgrades   which packages (default: available, as dnf5)\n"
      "  --whatprovides --whatrequires --whatdepends --whatrecommends --whatsuggests\n"
      "  --whatsupplements --whatenhances --whatconflicts --whatobsoletes=CAP,...\n"
      "                          packages with such a dependency on CAP\n"
      "  --exactdeps             CAP as a capability only, not a package it names\n"
      "  --recursive             with --whatrequires/--providers-of=requires: follow them\n"
      "  -f, --file=PATH,...     packages owning these files\n"
      "  --arch=ARCH,...         only these architectures\n"
      "  --latest-limit=N        the N newest versions per name.arch (-N: all but those)\n"
      "  --leaves --unneeded --duplicates --installonly   installed packages only\n"
      "  --providers-of=ATTR     the packages providing the results' ATTR (requires, ...)\n"
      "  --requires --requires-pre --provides --recommends --suggests --supplements\n"
      "  --enhances --depends --conflicts --obsoletes --files   one attribute, sorted\n"
      "  --location              where each package is downloaded from\n"
      "  --info                  details    -l, --list  each package's files\n"
      "  --querytags             the tags --queryformat knows\n" QUERY_OPTS },
    { "check-update", "[GLOB...]", ADV_OPTS },
    { "check-upgrade", "[GLOB...]", ADV_OPTS },
    { "updateinfo", "[summary|list|info] [ADVISORY|PACKAGE...]",
      "  --available (default) --installed --all   which advisories\n"
      "  --summary --list --info                  the mode\n"
      "  --with-cve --with-bz                     only advisories with CVE / bugzilla references\n"
      "  --contains-pkgs=GLOB,...                 only advisories naming these packages\n"
      ADV_OPTS },
    { "install", "PACKAGE...", TX_OPTS OFFLINE_OPT },
    { "reinstall", "PACKAGE...", TX_OPTS OFFLINE_OPT },
    { "remove", "PACKAGE...", TX_OPTS OFFLINE_OPT },
    { "upgrade", "[PACKAGE...]",
      "  --minimal               only to the versions advisories name (upgrade-minimal)\n"
      TX_OPTS OFFLINE_OPT ADV_OPTS },
    { "upgrade-minimal", "[PACKAGE...]", TX_OPTS ADV_OPTS },
    { "downgrade", "PACKAGE...", TX_OPTS OFFLINE_OPT },
    { "distro-sync", "[PACKAGE...]", TX_OPTS OFFLINE_OPT },
    { "autoremove", "[PACKAGE...]", TX_OPTS },
    { "mark", "user|dependency|weak PACKAGE... (dnf 4: install|remove)", NULL },
    { "history", "[list|info SPEC|undo N|redo N|rollback N]",
      "  -y, --assumeyes         for undo, redo, rollback\n"
      "  --reverse               list the oldest first\n"
      "  SPEC: N, N..M, last, last-N\n" },
    { "needs-restarting", "[-r]", "  -r, --reboothint        exit 1 and say why when a reboot is needed\n" },
    { "automatic", "[--timer] [-c automatic.conf]",
      "  --timer                 sleep random_sleep first (the systemd timer's run)\n"
      "  -c FILE                 automatic.conf (default /etc/lapis/automatic.conf)\n" },
    { "image", "build|lock|inspect ...", "  see 'lapis image --help'\n" },
    { "download", "PACKAGE...",
      "  --destdir=DIR           where to put the packages (default: the current directory)\n"
      "  --resolve               also what installing them would bring in\n"
      "  --alldeps               with --resolve: every dependency, installed or not\n"
      "  --arch=ARCH,...         only these architectures\n"
      "  --url                   print the URLs instead of downloading\n" },
    { "group", "list|info|install|remove|upgrade [GROUP...]",
      "  --with-optional         group install: also the optional packages\n"
      "  --hidden                group list/info: also groups not user-visible\n"
      "  --installed --available group list/info: only installed / not installed groups\n"
      TX_OPTS },
    { "environment", "list|info [ENVIRONMENT...]", NULL },
    { "repoclosure", "[--check REPO,...] [--arch ARCH,...] [--newest] [PACKAGE...]",
      "  --check=REPO,...        check only these repositories' packages (globs)\n"
      "  --arch=ARCH,...         check only packages of these architectures\n"
      "  --newest                only each repository's newest packages\n" },
    { "offline", "status|reboot|clean|_execute",
      "  status                  what --offline stored (or that nothing is)\n"
      "  reboot                  schedule it (/system-update) and reboot to apply it\n"
      "  clean                   remove it and its downloaded packages\n"
      "  _execute                apply it (run by lapis-offline-transaction.service)\n"
      "  --poweroff              reboot: power off once it is applied, not reboot\n"
      "  --no-reboot             reboot, _execute: do not run systemctl (an installroot\n"
      "                          is never rebooted)\n" },
    { "help", "[COMMAND]", NULL },
};

int cli_command_help(const struct cmd *cmd, const char *alias, FILE *out)
{
    for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
        if (strcmp(helps[i].name, cmd->name) != 0)
            continue;
        fprintf(out, "usage: lapis [global options] %s %s\n\n%s\n", alias ? alias : cmd->name,
                helps[i].usage, cmd->help);
        if (alias && strcmp(alias, cmd->name) != 0)
            fprintf(out, "(%s is an alias of %s)\n", alias, cmd->name);
        if (helps[i].options)
            fprintf(out, "\nOptions:\n%s", helps[i].options);
        fprintf(out, "\nGlobal options: see 'lapis --help'.\n");
        return 0;
    }
    fprintf(out, "usage: lapis [global options] %s ...\n\n%s\n", cmd->name, cmd->help);
    return 0;
}

/* Optimal string alignment distance (edits, with adjacent swaps), capped at 9. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t d[32][32];
    if (la > 30 || lb > 30)
        return 9;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1], v = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

const char *cli_suggest_command(const char *word, const char *const *names)
{
    const char *best = NULL;
    size_t best_d = 3, len = strlen(word);
    /* Short words get one edit: "rn" must not turn into every two-letter alias. */
    size_t limit = len <= 3 ? 1 : len <= 5 ? 2 : 3;
    for (size_t i = 0; names[i]; i++) {
        size_t d = edit_distance(word, names[i]);
        if (d <= limit && (!best || d < best_d)) {
            best = names[i];
            best_d = d;
        }
    }
    return best;
}
