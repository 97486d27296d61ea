/*
 * The finalize stage: what the packages' maintainer scripts, an installer
 * and a first-boot wizard would have done, done once at build time against
 * the composed root (issue 12 §1). Host tools run against the root
 * (systemd-sysusers --root, systemctl --root, ldconfig -r, depmod -b), never
 * the root's own binaries, so a root of another arch is finalized the same
 * way. Paths in the root are resolved inside it (open_dir_in_root), so a
 * hostile package's /etc -> / cannot make us write to the host. Last, every
 * mtime newer than SOURCE_DATE_EPOCH is clamped to it: what this stage
 * creates carries the epoch, whatever the clock says.
 *
 * This file: helpers, the tool steps, cleanup and the entry point. Users are
 * in finalize-users.c, OS identity and files in finalize-os.c, hardening in
 * finalize-harden.c, the Debian maintainer-script work in finalize-debian.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/strv.h"
#include "image/bootdisk.h"
#include "image/finalize.h"

/* ---- helpers ------------------------------------------------------------- */

static void split_path(const char *path, char **ret_dir, const char **ret_base)
{
    const char *slash = strrchr(path, '/');
    *ret_dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
    *ret_base = slash ? slash + 1 : path;
}

static int open_parent(struct lapis_image_build *b, const char *path, bool create,
                       const char **ret_base)
{
    _cleanup_free_ char *dir = NULL;
    split_path(path, &dir, ret_base);
    return open_dir_in_root(b->rootdir, dir, create);
}

int fin_write(struct lapis_image_build *b, const char *path, const char *data, size_t len,
              mode_t mode, uid_t uid, gid_t gid)
{
    const char *base;
    _cleanup_close_ int dfd = open_parent(b, path, true, &base);
    int r;

    if (dfd < 0)
        return lapis_err(&b->diag, dfd, "cannot create the directory of %s in the image: %s",
                         path, strerror(-dfd));
    r = write_file_at(dfd, base, data, len, 0600);
    if (r >= 0 && fchownat(dfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
        r = -errno;
    if (r >= 0 && fchmodat(dfd, base, mode, 0) < 0)
        r = -errno;
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot write %s in the image: %s", path, strerror(-r));
    return 0;
}

int fin_write_str(struct lapis_image_build *b, const char *path, const char *text)
{
    return fin_write(b, path, text, strlen(text), 0644, 0, 0);
}

int fin_read(struct lapis_image_build *b, const char *path, char **ret, size_t *ret_len)
{
    const char *base;
    _cleanup_close_ int dfd = open_parent(b, path, false, &base);
    _cleanup_close_ int fd = -1;
    struct stat st;

    if (dfd < 0)
        return dfd;
    if ((fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return -errno;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    char *buf = xmalloc((size_t)st.st_size + 1);
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
        if (k <= 0) {
            free(buf);
            return k < 0 ? -errno : -EIO;
        }
        n += (size_t)k;
    }
    buf[n] = '\0';
    *ret = buf;
    if (ret_len)
        *ret_len = n;
    return 0;
}

int fin_stat(struct lapis_image_build *b, const char *path, struct stat *st)
{
    const char *base;
    _cleanup_close_ int dfd = open_parent(b, path, false, &base);

    if (dfd < 0)
        return dfd;
    return fstatat(dfd, *base ? base : ".", st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

bool fin_exists(struct lapis_image_build *b, const char *path)
{
    struct stat st;
    return fin_stat(b, path, &st) == 0;
}

int fin_symlink(struct lapis_image_build *b, const char *path, const char *target)
{
    const char *base;
    _cleanup_close_ int dfd = open_parent(b, path, true, &base);

    if (dfd < 0)
        return lapis_err(&b->diag, dfd, "cannot create the directory of %s in the image: %s",
                         path, strerror(-dfd));
    if (unlinkat(dfd, base, 0) < 0 && errno != ENOENT)
        return lapis_err(&b->diag, -errno, "cannot replace %s in the image: %m", path);
    if (symlinkat(target, dfd, base) < 0)
        return lapis_err(&b->diag, -errno, "cannot link %s in the image: %m", path);
    return 0;
}

int fin_mkdir(struct lapis_image_build *b, const char *path, mode_t mode, uid_t uid, gid_t gid)
{
    _cleanup_close_ int fd = open_dir_in_root(b->rootdir, path, true);

    if (fd < 0)
        return lapis_err(&b->diag, fd, "cannot create %s in the image: %s", path, strerror(-fd));
    if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0)
        return lapis_err(&b->diag, -errno, "cannot set the owner and mode of %s: %m", path);
    return 0;
}

static int run_opts(struct lapis_image_build *b, const char *pkg, char *const argv[],
                    const int *ok_codes, const struct lapis_spawn_opts *o)
{
    _cleanup_free_ char *err = NULL;
    int r = lapis_spawn(argv, o, NULL, &err);

    if (r == -ENOENT)
        return lapis_err(&b->diag, r, "%s not found: install the Debian package %s", argv[0], pkg);
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot run %s: %s", argv[0], strerror(-r));
    for (const int *c = ok_codes; r && c && *c; c++)
        if (r == *c)
            return 0;
    if (r)
        return lapis_err(&b->diag, -EIO, "%s failed (exit status %d): %s", argv[0], r,
                         *lapis_spawn_last_line(err) ? lapis_spawn_last_line(err) : "no message");
    return 0;
}

int fin_run(struct lapis_image_build *b, const char *pkg, char *const argv[], const int *ok_codes)
{
    return run_opts(b, pkg, argv, ok_codes, NULL);
}

/* Debian's systemctl hands units that also have an /etc/init.d script to
 * systemd-sysv-install, which runs the root's update-rc.d (chroot: not there
 * without init-system-helpers, nor runnable for another arch). The image
 * boots systemd, which ignores the SysV links: skip them. */
static int run_systemctl(struct lapis_image_build *b, char *const argv[])
{
    static char *const env[] = { "SYSTEMCTL_SKIP_SYSV=1", NULL };
    const struct lapis_spawn_opts o = { .env = env, .stdin_fd = -1, .stdout_fd = -1 };
    return run_opts(b, "systemd", argv, NULL, &o);
}

bool fin_foreign_arch(const struct lapis_image_build *b)
{
    struct utsname u;
    return b->arch && uname(&u) == 0 && strcmp(u.machine, b->arch) != 0;
}

bool fin_keep(const struct lapis_image_build *b, const char *what)
{
    return b->conf && strv_contains(b->conf->keep, what);
}

static int walk_dir(struct lapis_image_build *b, int dfd, const char *rel, fin_walk_fn fn,
                    void *data)
{
    DIR *d = fdopendir(dfd);
    struct dirent *de;
    int r = 0;

    if (!d) {
        close(dfd);
        return -errno;
    }
    while (r >= 0 && (de = readdir(d))) {
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        _cleanup_free_ char *path = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                r = walk_dir(b, sub, path, fn, data);
        }
        /* Directories after their content: a clamped mtime stays clamped. */
        if (r >= 0)
            r = fn(b, dirfd(d), de->d_name, path, &st, data);
    }
    closedir(d);
    return r;
}

int fin_walk(struct lapis_image_build *b, const char *top, fin_walk_fn fn, void *data)
{
    int dfd = open_dir_in_root(b->rootdir, top, false);

    if (dfd == -ENOENT)
        return 0;
    if (dfd < 0)
        return lapis_err(&b->diag, dfd, "cannot open %s in the image: %s", top, strerror(-dfd));
    while (*top == '/')
        top++;
    return walk_dir(b, dfd, top, fn, data);
}

/* ---- host tools against the root ---------------------------------------- */

/* Only what is safe offline: not /dev, /proc, /run, /sys (-E), nor the temp
 * dirs (emptied below); no --boot lines, no --remove. Exit 65/73 mean some
 * lines could not apply (an owner absent, a path that needs the running
 * system): mkosi accepts those too, the booted system applies them again. */
static int fin_tmpfiles(struct lapis_image_build *b)
{
    _cleanup_free_ char *root = xasprintf("--root=%s", b->rootdir);
    char *argv[] = { "systemd-tmpfiles", root, "--create", "-E", "--exclude-prefix=/tmp",
                     "--exclude-prefix=/var/tmp", NULL };
    static const int ok[] = { 65, 73, 0 };
    return fin_run(b, "systemd", argv, ok);
}

static int systemctl_many(struct lapis_image_build *b, const char *verb, char **units)
{
    _cleanup_free_ char *root = xasprintf("--root=%s", b->rootdir);
    size_t n = strv_length(units);

    if (!n)
        return 0;
    _cleanup_free_ char **argv = xcalloc(n + 5, sizeof(char *));
    argv[0] = "systemctl";
    argv[1] = root;
    argv[2] = "--no-reload";
    argv[3] = (char *)verb;
    memcpy(argv + 4, units, n * sizeof(char *));
    int r = run_systemctl(b, argv);
    if (r < 0)
        return lapis_err(&b->diag, r, "os.services.%s: %s", verb, lapis_diag_error(&b->diag));
    return 0;
}

static void preset_lines(char **text, const char *verb, char **units)
{
    for (char **u = units; u && *u; u++) {
        char *t = xasprintf("%s%s %s\n", *text, verb, *u);
        free(*text);
        *text = t;
    }
}

/* The config's lists as the first preset file too: on first boot (an empty
 * machine-id) systemd runs preset-all again (enable-only), which would turn
 * a disabled unit back on. */
static int config_presets(struct lapis_image_build *b)
{
    _cleanup_free_ char *text = xstrdup("# os.services of the image config (written by lapis image)\n");

    if (!b->conf || (!b->conf->services_enable && !b->conf->services_disable))
        return 0;
    preset_lines(&text, "enable", b->conf->services_enable);
    preset_lines(&text, "disable", b->conf->services_disable);
    return fin_write_str(b, "/etc/systemd/system-preset/00-lapis-image.preset", text);
}

/* Presets first (what the distribution enables), then the config's lists. */
static int fin_services(struct lapis_image_build *b)
{
    _cleanup_free_ char *root = xasprintf("--root=%s", b->rootdir);
    char *argv[] = { "systemctl", root, "--no-reload", "preset-all", NULL };
    int r;

    if (!fin_exists(b, "/usr/lib/systemd/system"))
        return 0;
    if ((r = config_presets(b)) < 0 || (r = run_systemctl(b, argv)) < 0)
        return r;
    if (b->conf && (r = systemctl_many(b, "enable", b->conf->services_enable)) < 0)
        return r;
    return b->conf ? systemctl_many(b, "disable", b->conf->services_disable) : 0;
}

/* ldconfig reads the ELF headers of the root's libraries; glibc's ldconfig
 * knows only its own arch's, so a foreign root keeps no cache: ld.so still
 * searches its built-in paths and the root's ldconfig.service
 * (ConditionNeedsUpdate=/etc) writes one on first boot. */
static int fin_ldconfig(struct lapis_image_build *b)
{
    char *argv[] = { "ldconfig", "-X", "-r", b->rootdir, NULL };

    if (!fin_exists(b, "/etc/ld.so.conf") && !fin_exists(b, "/etc/ld.so.conf.d"))
        return 0;
    if (fin_foreign_arch(b)) {
        lapis_log(&b->diag, LAPIS_LOG_INFO, "ldconfig skipped: the %s root is not the host's arch",
                  b->arch);
        return 0;
    }
    return fin_run(b, "libc-bin", argv, NULL);
}

/* depmod reads only the modules and depmod.d, which the steps between its
 * start and its wait (services, ldconfig) leave alone: it runs meanwhile. */
static int fin_depmod_start(struct lapis_image_build *b)
{
    if (!b->kver)
        return 0;
    char **argv = NULL;
    strv_push(&argv, xstrdup("depmod"));
    strv_push(&argv, xstrdup("-b"));
    strv_push(&argv, xstrdup(b->rootdir));
    strv_push(&argv, xstrdup(b->kver));
    b->depmod = xcalloc(1, sizeof(*b->depmod));
    lapis_image_tool_start(b->depmod, "kmod", argv);
    return 0;
}

/* Joins depmod if it was started; its result goes on b's diag when report is set. */
static int depmod_join(struct lapis_image_build *b, bool report)
{
    if (!b->depmod)
        return 0;
    int r = lapis_image_tool_wait(report ? b : NULL, b->depmod);
    free(b->depmod);
    b->depmod = NULL;
    return r;
}

static int fin_depmod(struct lapis_image_build *b)
{
    return depmod_join(b, true);
}

/* ---- cleanup ------------------------------------------------------------- */

/* Remove the files under top; directories stay (packages own them), unless
 * all is set (temp dirs: nothing there belongs to a package). */
struct clean { bool all; };

static int clean_one(struct lapis_image_build *b, int dfd, const char *name, const char *rel,
                     const struct stat *st, void *data)
{
    const struct clean *c = data;
    (void)b, (void)rel;
    if (S_ISDIR(st->st_mode) && !c->all)
        return 0;
    unlinkat(dfd, name, S_ISDIR(st->st_mode) ? AT_REMOVEDIR : 0);
    return 0;
}

static int clean_tree(struct lapis_image_build *b, const char *top, bool all)
{
    struct clean c = { all };
    return fin_walk(b, top, clean_one, &c);
}

static void remove_in_root(struct lapis_image_build *b, const char *path)
{
    const char *base;
    _cleanup_close_ int dfd = open_parent(b, path, false, &base);
    if (dfd >= 0)
        unlinkat(dfd, base, 0);
}

/* The backups passwd-, shadow- ... that sysusers and shadow tools leave; the
 * rpmdb's transient files; state that must be unique per machine. */
static const char *const transient_files[] = {
    "/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-", "/etc/subuid-",
    "/etc/subgid-", "/etc/.pwd.lock", "/var/lib/rpm/.rpm.lock", "/var/lib/rpm/rpmdb.sqlite-shm",
    "/var/lib/rpm/rpmdb.sqlite-wal", "/usr/lib/sysimage/rpm/.rpm.lock",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite-shm", "/usr/lib/sysimage/rpm/rpmdb.sqlite-wal",
    "/var/lib/systemd/random-seed", "/var/lib/systemd/credential.secret",
    "/var/lib/dbus/machine-id", "/etc/ld.so.cache~",
};

static int remove_rpm_db_env(struct lapis_image_build *b, int dfd, const char *name,
                             const char *rel, const struct stat *st, void *data)
{
    (void)b, (void)rel, (void)data;
    if (S_ISREG(st->st_mode) && str_startswith(name, "__db."))
        unlinkat(dfd, name, 0);
    return 0;
}

/* rpm opens its sqlite db in WAL mode, and a WAL db can be read only by
 * whoever can create its -shm file next to it: with the -wal and -shm gone
 * (above), a user could not run `rpm -qa`. Header bytes 18 and 19 (the write
 * and read format versions) at 1 mean the rollback journal, what
 * "PRAGMA journal_mode=DELETE" writes; rpm turns WAL on again at its next
 * write, as root. */
static int rpmdb_rollback_journal(struct lapis_image_build *b, const char *path)
{
    const char *base;
    _cleanup_close_ int dfd = open_parent(b, path, false, &base);
    _cleanup_close_ int fd = dfd >= 0 ? openat(dfd, base, O_RDWR | O_NOFOLLOW | O_CLOEXEC) : -1;
    unsigned char hdr[20];
    static const unsigned char legacy[2] = { 1, 1 };

    if (fd < 0 || pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
        memcmp(hdr, "SQLite format 3", 16) || (hdr[18] != 2 && hdr[19] != 2))
        return 0;
    if (pwrite(fd, legacy, sizeof(legacy), 18) != (ssize_t)sizeof(legacy))
        return lapis_err(&b->diag, -errno, "cannot write %s in the image: %m", path);
    return 0;
}

int fin_cleanup(struct lapis_image_build *b)
{
    int r = 0;

    if (!fin_keep(b, "package-cache"))
        r = clean_tree(b, "/var/cache", false);
    if (r >= 0 && !fin_keep(b, "logs"))
        r = clean_tree(b, "/var/log", false);
    if (r >= 0 && !fin_keep(b, "history"))
        r = clean_tree(b, "/var/lib/lapis", true);
    if (r >= 0 && !fin_keep(b, "tmp"))
        r = clean_tree(b, "/tmp", true);
    if (r >= 0 && !fin_keep(b, "tmp"))
        r = clean_tree(b, "/var/tmp", true);
    if (r >= 0)
        r = fin_walk(b, "/var/lib/rpm", remove_rpm_db_env, NULL);
    if (r >= 0)
        r = fin_walk(b, "/usr/lib/sysimage/rpm", remove_rpm_db_env, NULL);
    for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(transient_files); i++) {
        struct stat st;
        /* A machine-id link to /etc/machine-id is fine; a copy is not. */
        if (!strcmp(transient_files[i], "/var/lib/dbus/machine-id") &&
            fin_stat(b, transient_files[i], &st) == 0 && S_ISLNK(st.st_mode))
            continue;
        remove_in_root(b, transient_files[i]);
    }
    if (r >= 0)
        r = rpmdb_rollback_journal(b, "/var/lib/rpm/rpmdb.sqlite");
    if (r >= 0)
        r = rpmdb_rollback_journal(b, "/usr/lib/sysimage/rpm/rpmdb.sqlite");
    return r;
}

/* ---- timestamps ---------------------------------------------------------- */

static int clamp_one(struct lapis_image_build *b, int dfd, const char *name, const char *rel,
                     const struct stat *st, void *data)
{
    (void)rel, (void)data;
    if (st->st_mtime <= b->epoch && st->st_atime <= b->epoch)
        return 0;
    time_t t = st->st_mtime < b->epoch ? st->st_mtime : (time_t)b->epoch;
    struct timespec ts[2] = { { .tv_sec = t }, { .tv_sec = t } };
    if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return lapis_err(&b->diag, -errno, "cannot set the time of /%s: %m", rel);
    return 0;
}

static int fin_clamp(struct lapis_image_build *b)
{
    int r = fin_walk(b, "/", clamp_one, NULL);
    struct stat st;
    if (r >= 0 && stat(b->rootdir, &st) == 0) {
        struct timespec ts[2] = { { .tv_sec = b->epoch }, { .tv_sec = b->epoch } };
        if (st.st_mtime > b->epoch)
            utimensat(AT_FDCWD, b->rootdir, ts, 0);
    }
    return r;
}

/* ---- the stage ----------------------------------------------------------- */

static const struct {
    const char *what;
    int (*fn)(struct lapis_image_build *b);
} steps[] = {
    { "maintainer-script work", fin_debian },
    { "pam", fin_pam },
    { "system users", fin_sysusers },
    { "users", fin_users },
    { "os identity", fin_os },
    /* Before services: a unit shipped in additionalFiles can be enabled. */
    { "files", fin_files },
    { "tmpfiles", fin_tmpfiles },
    { "depmod (started)", fin_depmod_start },
    { "services", fin_services },
    { "ldconfig", fin_ldconfig },
    { "depmod", fin_depmod },
    { "sysctl", fin_sysctl },
    { "hardening", fin_harden },
    { "setuid", fin_setuid },
    { "selinux", fin_selinux },
    { "cleanup", fin_cleanup },
    /* provenance.c's record; before the clamp, so its directory's mtime is the epoch too */
    { "provenance", lapis_image_write_provenance },
    { "timestamps", fin_clamp },
};

static int run_steps(struct lapis_image_build *b)
{
    for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
        if (lapis_interrupted(&b->diag)) {
            (void)depmod_join(b, false);
            return lapis_err(&b->diag, -LAPIS_E_INTERRUPTED, "interrupted");
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int r = steps[i].fn(b);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        lapis_log(&b->diag, LAPIS_LOG_DEBUG, "finalize: %s: %.2f s", steps[i].what,
                  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        if (r < 0) {
            (void)depmod_join(b, false);   /* joined, whatever it did */
            return r;
        }
    }
    return 0;
}

/* The caller's umask must not reach the image: directories made inside the
 * root and the files the tools write (systemctl's .wants dirs) would get its
 * modes. umask is per process; the stage runs in one thread, set around it. */
int lapis_image_finalize(struct lapis_image_build *b)
{
    mode_t old = umask(022);
    int r = run_steps(b);

    umask(old);
    return r;
}
