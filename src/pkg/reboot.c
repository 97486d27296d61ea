/*
 * Does the system need a reboot or restarts after updates? (needs-restarting)
 *
 * A reboot is needed when a core package (kernel, C library, init, D-Bus,
 * OpenSSL, firmware) or a package an advisory marks "reboot suggested" was
 * installed after the last boot. Restarts are needed by processes that still
 * map files an update deleted. The reboot-required sentinel is the file
 * Debian's update-notifier and Kubernetes' kured watch.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <string.h>

#include "pkg/goal.h"
#include <solv/evr.h>
#include <solv/knownid.h>
#include <solv/repo.h>

/* Packages whose new version only takes effect after a reboot (dnf's list, plus OpenSSL
 * and the kernel's split packages). Globs. */
static const char *const core_pkgs[] = {
    "kernel", "kernel-core", "kernel-rt", "kernel-rt-core", "kernel-modules*",
    "glibc", "linux-firmware", "microcode_ctl", "systemd", "systemd-udev",
    "dbus", "dbus-broker", "dbus-daemon", "openssl", "openssl-libs",
};

#define LAST_BOOT_FILE "/var/lib/lapis/last-boot"

static bool is_host_root(lapis_ctx *ctx)
{
    const char *root = lapis_ctx_installroot(ctx);
    return strcmp(root, "/") == 0;
}

static long long host_boot_time(void)
{
    _cleanup_free_ char *buf = NULL;
    char *p;
    if (read_file("/proc/stat", 1 << 20, &buf, NULL) < 0 || !(p = strstr(buf, "\nbtime ")))
        return -1;
    return strtoll(p + 7, NULL, 10);
}

/* The host records its boot so an installroot view of the same system
 * (an A/B slot, a chroot) can later be compared with it. Best effort. */
static void record_boot(long long btime)
{
    char text[32];
    _cleanup_free_ char *old = NULL;
    int n = snprintf(text, sizeof(text), "%lld\n", btime);
    if (read_file(LAST_BOOT_FILE, 64, &old, NULL) == 0 && strcmp(old, text) == 0)
        return;
    if (mkdir_p("/var/lib/lapis", 0755) == 0)
        (void)write_file_atomic(LAST_BOOT_FILE, text, (size_t)n);
}

/* Boot time to compare with: the host's, or the root's last recorded one (0: never booted). */
static long long boot_time(lapis_ctx *ctx)
{
    if (is_host_root(ctx)) {
        long long b = host_boot_time();
        if (b > 0)
            record_boot(b);
        return b > 0 ? b : 0;
    }
    _cleanup_free_ char *path = path_in_root(lapis_ctx_installroot(ctx), LAST_BOOT_FILE);
    _cleanup_free_ char *buf = NULL;
    if (read_file(path, 64, &buf, NULL) < 0)
        return 0;
    char *end;
    long long b = strtoll(buf, &end, 10);
    if (end == buf || b < 0) {
        lapis_log(ctx, LAPIS_LOG_WARNING, "%s does not hold a boot time; treating the root as "
                  "never booted", path);
        return 0;
    }
    return b;
}

static bool is_core(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(core_pkgs); i++)
        if (fnmatch(core_pkgs[i], name, 0) == 0)
            return true;
    return false;
}

/* The flag is on the advisory or on the one package. */
static bool advises_reboot(const lapis_advisory *a, const lapis_advisory_pkg *p)
{
    return a->reboot_suggested || p->reboot_suggested;
}

/* Installed packages that advisories say need a reboot once updated. */
static char **reboot_suggested_names(lapis_ctx *ctx)
{
    lapis_advisory *advs = NULL;
    size_t n = 0;
    char **names = NULL;

    if (lapis_advisory_query(ctx, NULL, LAPIS_ADV_INSTALLED, NULL, &advs, &n) < 0)
        return NULL;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < advs[i].npkgs; j++) {
            lapis_advisory_pkg *p = &advs[i].pkgs[j];
            if (advises_reboot(&advs[i], p) &&
                p->state == LAPIS_ADVPKG_INSTALLED && !strv_contains(names, p->name))
                strv_push(&names, xstrdup(p->name));
        }
    lapis_advisories_free(advs, n);
    return names;
}


int lapis_reboot_needed(lapis_ctx *ctx, char ***ret_pkgs, long long *ret_boot_time)
{
    Pool *pool = ctx->pool;
    _cleanup_strv_ char **advised = NULL;
    char **pkgs = xcalloc(1, sizeof(char *));
    long long btime;
    Solvable *s;
    Id p;

    if (!ctx->loaded)
        return lapis_err(ctx, -EINVAL, "lapis_load() must run before lapis_reboot_needed()");
    btime = boot_time(ctx);
    advised = reboot_suggested_names(ctx);
    if (pool->installed) {
        FOR_REPO_SOLVABLES(pool->installed, p, s) {
            const char *name = pool_id2str(pool, s->name);
            long long itime = (long long)solvable_lookup_num(s, SOLVABLE_INSTALLTIME, 0);
            if (itime > btime && (is_core(name) || strv_contains(advised, name)) &&
                !strv_contains(pkgs, name))
                strv_push(&pkgs, xstrdup(name));
        }
    }
    *ret_pkgs = pkgs;
    if (ret_boot_time)
        *ret_boot_time = btime;
    return 0;
}

int lapis_write_reboot_required(lapis_ctx *ctx, char *const *pkgs)
{
    return lapis_reboot_required_write(&ctx->diag, lapis_ctx_installroot(ctx), pkgs);
}

/* ---- processes using deleted files ---------------------------------------- */

static bool owned_by_installed(Pool *pool, const char *path)
{
    Dataiterator di;
    bool found;
    if (!pool->installed)
        return false;
    dataiterator_init(&di, pool, pool->installed, 0, SOLVABLE_FILELIST, path,
                      SEARCH_STRING | SEARCH_FILES | SEARCH_COMPLETE_FILELIST);
    found = dataiterator_step(&di);
    dataiterator_free(&di);
    return found;
}

static char *read_cmdline(int pid)
{
    char path[64];
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    if (read_file(path, 1 << 16, &buf, &len) < 0 || len == 0)
        return xstrdup("?");
    for (size_t i = 0; i + 1 < len; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    return TAKE_PTR(buf);
}

/* Deleted, package-owned files mapped by pid (host paths under root). */
static char **stale_files(Pool *pool, int pid, const char *root)
{
    static const char deleted[] = " (deleted)";
    char path[64];
    _cleanup_free_ char *maps = NULL;
    char **files = NULL;
    size_t rootlen = strcmp(root, "/") ? strlen(root) : 0;

    snprintf(path, sizeof(path), "/proc/%d/maps", pid);
    if (read_file(path, 64 << 20, &maps, NULL) < 0)
        return NULL;
    for (char *line = strtok(maps, "\n"); line; line = strtok(NULL, "\n")) {
        char *file = strchr(line, '/');
        size_t n;
        if (!file || (n = strlen(file)) <= sizeof(deleted) - 1 ||
            strcmp(file + n - (sizeof(deleted) - 1), deleted) != 0)
            continue;
        file[n - (sizeof(deleted) - 1)] = '\0';
        if (rootlen && (strncmp(file, root, rootlen) != 0 || file[rootlen] != '/'))
            continue;
        const char *inroot = file + rootlen;
        if (!strv_contains(files, inroot) && owned_by_installed(pool, inroot))
            strv_push(&files, xstrdup(inroot));
    }
    return files;
}

int lapis_stale_processes(lapis_ctx *ctx, lapis_stale_process **ret, size_t *ret_n)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    lapis_stale_process *list = NULL;
    size_t n = 0;
    _cleanup_free_ char *root = NULL;

    *ret = NULL;
    *ret_n = 0;
    if (!ctx->loaded)
        return lapis_err(ctx, -EINVAL, "lapis_load() must run before lapis_stale_processes()");
    if (!d)
        return lapis_err(ctx, -errno, "cannot read /proc: %s", strerror(errno));
    root = realpath(lapis_ctx_installroot(ctx), NULL);
    if (!root)
        root = xstrdup(lapis_ctx_installroot(ctx));
    while ((de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        int pid = atoi(de->d_name);
        char **files = stale_files(ctx->pool, pid, root);
        if (!files)
            continue;
        list = xrealloc(list, (n + 1) * sizeof(*list));
        list[n++] = (lapis_stale_process){ .pid = pid, .cmdline = read_cmdline(pid), .files = files };
    }
    closedir(d);
    *ret = list;
    *ret_n = n;
    return 0;
}

void lapis_stale_processes_free(lapis_stale_process *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].cmdline);
        lapis_strv_free(p[i].files);
    }
    free(p);
}

char **lapis_goal_reboot_pkgs(lapis_ctx *ctx, struct lapis_goal *g)
{
    lapis_advisory *advs = NULL;
    size_t nadv = 0, n;
    const lapis_trans_item *items = lapis_goal_items(g, &n);
    char **names = xcalloc(1, sizeof(char *));

    /* Without advisories the core-package rule still applies: warn, do not fail. */
    if (lapis_advisory_query(ctx, NULL, LAPIS_ADV_ALL, NULL, &advs, &nadv) < 0)
        lapis_log(ctx, LAPIS_LOG_WARNING, "cannot read advisories (%s); only core packages are "
                  "checked for a needed reboot", lapis_ctx_error(ctx));
    for (size_t i = 0; i < n; i++) {
        const char *name = lapis_pkg_name(ctx, items[i].pkg);
        if (!lapis_action_installs(items[i].action))
            continue;
        bool needs = is_core(name);
        for (size_t k = 0; k < nadv && !needs; k++)
            for (size_t j = 0; j < advs[k].npkgs && !needs; j++) {
                lapis_advisory_pkg *ap = &advs[k].pkgs[j];
                needs = advises_reboot(&advs[k], ap) &&
                        lapis_pkg_fixes(ctx, items[i].pkg, ap->name, ap->arch, ap->evr);
            }
        if (needs && !strv_contains(names, name))
            strv_push(&names, xstrdup(name));
    }
    lapis_advisories_free(advs, nadv);
    return names;
}
