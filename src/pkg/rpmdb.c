/*
 * Where an install root keeps its rpmdb. libsolv and lapis open
 * ROOT/var/lib/rpm; on Fedora >= 36 the root's own rpm opens
 * /usr/lib/sysimage/rpm and var/lib/rpm is a relative link to it. A new rpmdb
 * follows the root's layout, so the root's rpm can always read it:
 *   1. ROOT/var/lib/rpm exists: it is used (a directory, or a link whose
 *      target stays inside the root; when both locations exist, this one);
 *   2. else ROOT/usr/lib/sysimage/rpm is a directory, or ROOT/usr/lib/rpm/macros
 *      sets %_dbpath to .../lib/sysimage/rpm: the db goes there and
 *      var/lib/rpm becomes the link ../../usr/lib/sysimage/rpm;
 *   3. else ROOT/var/lib/rpm.
 * This file only looks; transaction.c creates.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pkg/internal.h"

#define SYSIMAGE_RPM "usr/lib/sysimage/rpm"

/* The main file of any rpmdb backend: sqlite, ndb, bdb. */
bool lapis_rpmdb_present(const char *dir)
{
    static const char *const files[] = { "rpmdb.sqlite", "Packages.db", "Packages" };
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *p = path_join(dir, files[i]);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            return true;
    }
    return false;
}

/* Does the root's rpm (its macros file, last definition wins) keep the db in sysimage? */
static bool macros_use_sysimage(const char *root)
{
    _cleanup_free_ char *path = path_in_root(root, "/usr/lib/rpm/macros");
    _cleanup_free_ char *buf = NULL;
    char *line, *save = NULL;
    bool sysimage = false;

    if (read_file(path, 1 << 20, &buf, NULL) < 0)
        return false;
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line = strstrip(line);
        if (str_startswith(line, "%_dbpath") && (line[8] == ' ' || line[8] == '\t'))
            sysimage = str_endswith(strstrip(line + 8), "/lib/sysimage/rpm");
    }
    return sysimage;
}

static bool is_dir(const char *root, const char *rel)
{
    _cleanup_free_ char *p = path_in_root(root, rel);
    struct stat st;
    return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* path relative to the root, "." and ".." applied; NULL if it climbs out of the root. */
static char *normalize_in_root(const char *path)
{
    _cleanup_strv_ char **parts = strv_split(path, "/");
    _cleanup_free_ const char **kept = xcalloc(strv_length(parts) + 1, sizeof(char *));
    size_t n = 0;
    char *out = NULL;

    for (size_t i = 0; parts[i]; i++) {
        if (strcmp(parts[i], ".") == 0)
            continue;
        if (strcmp(parts[i], "..") != 0)
            kept[n++] = parts[i];
        else if (n-- == 0)
            return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char *next = out ? xasprintf("%s/%s", out, kept[i]) : xstrdup(kept[i]);
        free(out);
        out = next;
    }
    return out;
}

static int link_target(lapis_ctx *ctx, const char *link, char **ret_dir)
{
    char target[PATH_MAX];
    ssize_t n = readlink(link, target, sizeof(target) - 1);

    if (n < 0)
        return lapis_err(ctx, -errno, "cannot read the link %s: %s", link, strerror(errno));
    target[n] = '\0';
    /* libsolv and rpm open ROOT/var/lib/rpm as a host path: an absolute link
     * would lead them to the host's files. */
    bool on_host = strcmp(lapis_ctx_installroot(ctx), "/") == 0;
    if (target[0] == '/' && !on_host)
        return lapis_err(ctx, LAPIS_E_RPM, "%s is a symlink to the absolute path %s, which "
                         "leads outside the install root; make it relative "
                         "(ln -sfn ../../usr/lib/sysimage/rpm %s)", link, target, link);
    _cleanup_free_ char *rel = target[0] == '/' ? xstrdup(target) : xasprintf("var/lib/%s", target);
    char *dir = normalize_in_root(rel);
    if (!dir)
        return lapis_err(ctx, LAPIS_E_RPM, "%s is a symlink to %s, which leads outside the "
                         "install root; point it inside the root", link, target);
    *ret_dir = dir;
    return 0;
}

int lapis_rpmdb_locate(lapis_ctx *ctx, char **ret_dir, bool *ret_link)
{
    const char *root = lapis_ctx_installroot(ctx);
    _cleanup_free_ char *varlib = path_in_root(root, "/var/lib/rpm");
    struct stat st;

    *ret_link = false;
    if (lstat(varlib, &st) == 0) {
        if (S_ISLNK(st.st_mode))
            return link_target(ctx, varlib, ret_dir);
        if (!S_ISDIR(st.st_mode))
            return lapis_err(ctx, LAPIS_E_RPM, "%s is not a directory; move it aside", varlib);
        *ret_dir = xstrdup("var/lib/rpm");
        return 0;
    }
    if (errno != ENOENT)
        return lapis_err(ctx, -errno, "cannot read %s: %s", varlib, strerror(errno));
    *ret_link = is_dir(root, "/" SYSIMAGE_RPM) || macros_use_sysimage(root);
    *ret_dir = xstrdup(*ret_link ? SYSIMAGE_RPM : "var/lib/rpm");
    return 0;
}
