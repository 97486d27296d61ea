/*
 * Careful file-system helpers: paths inside an install root that never
 * escape it (openat2 RESOLVE_IN_ROOT), atomic writes (temp file, fsync,
 * rename), recursive removal without following symlinks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <signal.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <linux/openat2.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"

char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (*b == '/')
        b++;
    if (la == 1 && a[0] == '/')
        return xasprintf("/%s", b);
    return xasprintf("%.*s/%s", (int)la, a, b);
}

char *path_in_root(const char *root, const char *path)
{
    if (!root || !*root || strcmp(root, "/") == 0)
        return xstrdup(path);
    return path_join(root, path);
}

/* realpath() of the longest existing prefix of an absolute path, the rest
 * appended: a root that does not exist yet still loses the symlinks above it. */
char *path_resolve(const char *path)
{
    _cleanup_free_ char *head = xstrdup(path);
    char *slash, *real;

    while ((real = realpath(head, NULL)) == NULL && errno == ENOENT &&
           (slash = strrchr(head, '/')) && slash != head)
        *slash = '\0';
    if (!real)
        return xstrdup(path);
    if (!path[strlen(head)])
        return real;
    char *full = path_join(real, path + strlen(head));
    free(real);
    return full;
}

bool path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int mkdir_p(const char *path, mode_t mode)
{
    _cleanup_free_ char *p = xstrdup(path);

    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Remove a tree without following symlinks (a planted link must not send us elsewhere). */
static int rm_rf_at(int parent, const char *name, int *count)
{
    struct stat st;
    int r = 0;

    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (S_ISDIR(st.st_mode)) {
        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *d;
        struct dirent *de;
        if (fd < 0)
            return -errno;
        d = fdopendir(fd);
        if (!d) {
            close(fd);
            return -errno;
        }
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            int k = rm_rf_at(dirfd(d), de->d_name, count);
            if (k < 0 && r == 0)
                r = k;
        }
        closedir(d);
        if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && r == 0)
            r = -errno;
    } else {
        if (unlinkat(parent, name, 0) < 0)
            return -errno;
        if (count)
            (*count)++;
    }
    return r;
}

int rm_rf(const char *path, int *ret_count)
{
    return rm_rf_at(AT_FDCWD, path, ret_count);
}

int read_file(const char *path, size_t max_size, char **ret_buf, size_t *ret_len)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0, cap = 0;

    if (fd < 0)
        return -errno;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max_size)
            return -EFBIG;
    }
    buf[len] = '\0';
    *ret_buf = TAKE_PTR(buf);
    if (ret_len)
        *ret_len = len;
    return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len)
{
    const char *slash = strrchr(path, '/');
    _cleanup_free_ char *dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(".");
    _cleanup_close_ int dfd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd < 0)
        return -errno;
    return write_file_at(dfd, slash ? slash + 1 : path, data, len, 0644);
}

/* openat2(RESOLVE_IN_ROOT): symlinks inside the root (an absolute /var/run ->
 * /run) resolve against the root, never the host. */
static int openat_in_root(int rootfd, const char *rel, int flags)
{
    struct open_how how = { .flags = (unsigned long long)(flags | O_CLOEXEC),
                            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
    long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

static int mkdirs_in_root(int rootfd, const char *dir, int depth);

/* Create the missing target of a dangling symlink at rel (e.g. var/run -> /run
 * in a fresh root), resolved inside the root. */
static int create_link_target(int rootfd, const char *parent, const char *rel, int depth)
{
    char target[PATH_MAX];
    ssize_t n = readlinkat(rootfd, rel, target, sizeof(target) - 1);
    if (n < 0)
        return -errno;
    target[n] = '\0';
    _cleanup_free_ char *full = target[0] == '/' ? xstrdup(target)
                                                 : xasprintf("%s/%s", parent, target);
    return mkdirs_in_root(rootfd, full, depth + 1);
}

/* mkdir -p of dir inside the root, every component resolved within it. */
static int mkdirs_in_root(int rootfd, const char *dir, int depth)
{
    _cleanup_free_ char *rel = NULL;
    if (depth > 8)
        return -ELOOP;
    while (*dir == '/')
        dir++;
    rel = xstrdup(*dir ? dir : ".");
    for (char *s = rel;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        char *slash = strrchr(rel, '/');
        _cleanup_free_ char *parent = slash ? xstrndup(rel, (size_t)(slash - rel)) : xstrdup(".");
        int pfd = openat_in_root(rootfd, parent, O_RDONLY | O_DIRECTORY);
        if (pfd < 0)
            return pfd;
        int k = mkdirat(pfd, slash ? slash + 1 : rel, 0755), e = errno;
        close(pfd);
        if (k < 0 && e != EEXIST)
            return -e;
        if (k < 0) {
            /* It exists: as a directory, or as a symlink whose target may not yet. */
            int fd = openat_in_root(rootfd, rel, O_RDONLY | O_DIRECTORY);
            if (fd >= 0)
                close(fd);
            else if (fd == -ENOENT && (k = create_link_target(rootfd, parent, rel, depth)) < 0)
                return k;
            else if (fd != -ENOENT)
                return fd;
        }
        *s = saved;
        if (!saved)
            break;
    }
    return 0;
}

int open_dir_in_root(const char *root, const char *dir, bool create)
{
    _cleanup_close_ int rootfd = open(root && *root ? root : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int fd, r;

    if (rootfd < 0)
        return -errno;
    while (*dir == '/')
        dir++;
    fd = openat_in_root(rootfd, *dir ? dir : ".", O_RDONLY | O_DIRECTORY);
    if (fd != -ENOENT || !create)
        return fd;
    if ((r = mkdirs_in_root(rootfd, dir, 0)) < 0)
        return r;
    return openat_in_root(rootfd, *dir ? dir : ".", O_RDONLY | O_DIRECTORY);
}

int write_file_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
    _cleanup_free_ char *tmp = xasprintf(".%s.tmp.%d", name, (int)getpid());
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
    const char *p = data;
    int e = 0;

    if (fd < 0)
        return -errno;
    while (len > 0 && !e) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno != EINTR)
            e = -errno;
        else if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
    if (!e && fsync(fd) < 0)
        e = -errno;
    if (close(fd) < 0 && !e)
        e = -errno;
    if (!e && renameat(dirfd, tmp, dirfd, name) < 0)
        e = -errno;
    if (e)
        unlinkat(dirfd, tmp, 0);
    return e;
}

/* Directories named PREFIX<pid>-... are work in progress of process <pid>
 * (staging for a refresh, a new rpmdb). Remove those whose owner is gone and
 * that nobody touched for grace_s seconds (against pid reuse and other pid
 * namespaces sharing the directory). Symlinks are never followed. */
int sweep_dead_owner_dirs(const char *parent, const char *prefix, long grace_s)
{
    DIR *d = opendir(parent);
    struct dirent *de;
    size_t plen = strlen(prefix);
    time_t now = time(NULL);
    int removed = 0;

    if (!d)
        return 0;
    while ((de = readdir(d))) {
        struct stat st;
        char *end;
        if (!str_startswith(de->d_name, prefix) ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            continue;
        long pid = strtol(de->d_name + plen, &end, 10);
        bool owner_alive = end != de->d_name + plen && *end == '-' && pid > 0 &&
                           (kill((pid_t)pid, 0) == 0 || errno == EPERM);
        if (owner_alive || now - st.st_mtime < grace_s)
            continue;
        _cleanup_free_ char *path = path_join(parent, de->d_name);
        if (rm_rf(path, NULL) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

/* Whether tree_walk() calls fn for this entry: once per entry, in the order asked. */
static bool tree_walk_visits(const FTSENT *e, bool post_order)
{
    switch (e->fts_info) {
    case FTS_D:
        return !post_order;
    case FTS_DP:
        return post_order;
    default:
        return true;
    }
}

static int tree_walk_error(const FTSENT *e)
{
    return e->fts_info == FTS_DNR || e->fts_info == FTS_ERR || e->fts_info == FTS_NS
           ? -(e->fts_errno ? e->fts_errno : EIO) : 0;
}

int tree_walk(const char *top, bool post_order, tree_walk_fn fn, void *data)
{
    char *paths[] = { (char *)top, NULL };
    FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    FTSENT *e;
    int r = 0;

    if (!fts)
        return -errno;
    while (r == 0) {
        errno = 0;
        if (!(e = fts_read(fts))) {
            r = -errno;                        /* 0 at the end */
            break;
        }
        if ((r = tree_walk_error(e)) < 0 || !tree_walk_visits(e, post_order))
            continue;
        r = fn(e->fts_path, e->fts_statp, data);
        if (r == TREE_WALK_SKIP) {
            r = 0;
            if (e->fts_info == FTS_D)
                fts_set(fts, e, FTS_SKIP);
        }
    }
    fts_close(fts);
    return r;
}
