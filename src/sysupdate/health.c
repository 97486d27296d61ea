/*
 * The health-check hook (docs/sysupdate.md "Boot entries and counting"): the
 * executables in /usr/lib/lapis-sysupdate/health.d and
 * /etc/lapis-sysupdate/health.d, in name order (a name in /etc masks the same
 * name in /usr), each must exit 0; a plain file named after a unit
 * ("containerd.service") checks that the unit is active (systemctl
 * is-active), and a symlink to /dev/null masks a name. A unit ordered before
 * boot-complete.target runs them, so a failing check keeps systemd-bless-boot
 * from blessing the slot and its tries run out. A check that hangs is the
 * unit's TimeoutStartSec= to end.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/strv.h"
#include "lapis/common.h"
#include "sysupdate/sysupdate.h"

static bool unit_name(const char *name)
{
    static const char *const suffixes[] = { ".service", ".socket", ".target", ".mount", ".timer",
                                            ".path", ".device", ".swap", NULL };
    for (size_t i = 0; suffixes[i]; i++)
        if (str_endswith(name, suffixes[i]) && strlen(name) > strlen(suffixes[i]))
            return true;
    return false;
}

/* A check: an executable, or a file (any content) named after a unit that
 * must be active; a symlink to /dev/null masks the name (systemd's way). */
static const char *kind_of(const char *path, const char *name)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return NULL;
    if (S_ISCHR(st.st_mode))
        return "mask";
    if (!S_ISREG(st.st_mode))
        return NULL;
    if (access(path, X_OK) == 0)
        return "exec";
    return unit_name(name) ? "unit" : NULL;
}

/* name -> path of the checks in dirs, later dirs masking earlier ones. */
static void collect(char *const *dirs, char ***names, char ***paths)
{
    for (size_t i = 0; dirs && dirs[i]; i++) {
        DIR *dir = opendir(dirs[i]);
        for (struct dirent *e; dir && (e = readdir(dir));) {
            _cleanup_free_ char *p = path_join(dirs[i], e->d_name);
            const char *kind = e->d_name[0] == '.' ? NULL : kind_of(p, e->d_name);
            if (!kind)
                continue;
            if (strcmp(kind, "mask") == 0)
                p[0] = '\0';   /* an empty path: masked, not run */
            size_t j = 0;
            while ((*names) && (*names)[j] && strcmp((*names)[j], e->d_name) != 0)
                j++;
            if ((*names) && (*names)[j]) {
                free((*paths)[j]);
                (*paths)[j] = TAKE_PTR(p);
            } else {
                strv_push(names, xstrdup(e->d_name));
                strv_push(paths, TAKE_PTR(p));
            }
        }
        if (dir)
            closedir(dir);
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct su_check_result *)a)->name, ((const struct su_check_result *)b)->name);
}

#define UNIT_WAIT_S 300

/* A unit that is still starting is waited for: the health unit is ordered
 * only after basic.target, not after multi-user.target, so a unit ordered
 * after boot-complete.target and wanted by multi-user.target is no cycle. */
static bool starting(const char *out)
{
    return out && (strncmp(out, "activating", 10) == 0 || strncmp(out, "reloading", 9) == 0);
}

static void run_one(struct su_check_result *c, const char *path)
{
    char *exec[] = { (char *)path, NULL };
    char *unit[] = { "systemctl", "is-active", c->name, NULL };
    bool is_exec = access(path, X_OK) == 0;
    struct lapis_spawn_opts o = { .stdin_fd = -1, .stdout_fd = -1, .max_output = 4096 };
    _cleanup_free_ char *out = NULL, *err = NULL;
    c->status = lapis_spawn(is_exec ? exec : unit, &o, &out, &err);
    for (int i = 0; !is_exec && c->status != 0 && starting(out) && i < UNIT_WAIT_S; i++) {
        free(out), free(err);
        out = err = NULL;
        sleep(1);
        c->status = lapis_spawn(unit, &o, &out, &err);
    }
    const char *last = lapis_spawn_last_line(err && *err ? err : out ? out : "");
    c->output = xstrdup(last);
}

int su_health(struct lapis_diag *d, char *const *dirs, struct su_check_result **ret, size_t *ret_n)
{
    char **names = NULL, **paths = NULL;
    collect(dirs, &names, &paths);
    size_t n = strv_length(names);
    struct su_check_result *res = xcalloc(n ? n : 1, sizeof(*res));
    for (size_t i = 0; i < n; i++) {
        res[i].name = TAKE_PTR(names[i]);
        res[i].path = TAKE_PTR(paths[i]);
    }
    free(names);
    free(paths);
    qsort(res, n, sizeof(*res), by_name);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        if (!*res[i].path) {
            res[i].output = xstrdup("masked");
            continue;
        }
        run_one(&res[i], res[i].path);
        if (res[i].status != 0 && r == 0)
            r = lapis_err(d, LAPIS_E_ABORTED, "health check %s failed (%s %d)%s%s: the slot is not "
                          "blessed", res[i].name, res[i].status < 0 ? "error" : "exit status",
                          res[i].status, *res[i].output ? ": " : "", res[i].output);
    }
    *ret = res;
    *ret_n = n;
    return r;
}

void su_health_free(struct su_check_result *res, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(res[i].name);
        free(res[i].path);
        free(res[i].output);
    }
    free(res);
}
