/*
 * Helpers of the boot and disk stages: tools, in-root reads, derived UUIDs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/strv.h"
#include "image/bootdisk.h"
#include "shared/digest.h"

static int tool_result(struct lapis_image_build *b, const char *pkg, char *const argv[],
                       int r, const char *err)
{
    if (r == -ENOENT)
        return lapis_err(&b->diag, -ENOENT, "%s is not installed (install the Debian package %s)",
                         argv[0], pkg);
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot run %s: %s", argv[0], strerror(-r));
    if (r > 0)
        return lapis_err(&b->diag, -EIO, "%s failed (exit status %d): %s", argv[0], r,
                         *lapis_spawn_last_line(err) ? lapis_spawn_last_line(err) : "no message");
    return 0;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int lapis_image_tool(struct lapis_image_build *b, const char *pkg, char *const argv[],
                     char *const env[], const char *cwd)
{
    struct lapis_spawn_opts o = { .env = env, .cwd = cwd, .stdin_fd = -1, .stdout_fd = -1 };
    _cleanup_free_ char *err = NULL;
    double t0 = mono_s();
    int r = lapis_spawn(argv, &o, NULL, &err);
    /* -v: where a stage's time goes */
    lapis_log(&b->diag, LAPIS_LOG_DEBUG, "%s %s: %.2f s", b->arch, argv[0], mono_s() - t0);
    return tool_result(b, pkg, argv, r, err);
}

static void *bg_run(void *arg)
{
    struct lapis_image_bg *j = arg;
    struct lapis_spawn_opts o = { .stdin_fd = -1, .stdout_fd = -1 };
    j->status = lapis_spawn(j->argv, &o, NULL, &j->err);
    return NULL;
}

void lapis_image_tool_start(struct lapis_image_bg *j, const char *pkg, char **argv)
{
    *j = (struct lapis_image_bg){ .argv = argv, .pkg = pkg };
    j->running = pthread_create(&j->thread, NULL, bg_run, j) == 0;
    if (!j->running)
        bg_run(j);
}

int lapis_image_tool_wait(struct lapis_image_build *b, struct lapis_image_bg *j)
{
    int r;
    if (!j->argv)
        return 0;
    if (j->running)
        pthread_join(j->thread, NULL);
    r = b ? tool_result(b, j->pkg, j->argv, j->status, j->err) : 0;
    lapis_strv_free(j->argv);
    free(j->err);
    *j = (struct lapis_image_bg){ 0 };
    return r;
}

int lapis_image_tool_out(struct lapis_image_build *b, const char *pkg, char *const argv[],
                         char **ret_out)
{
    struct lapis_spawn_opts o = { .stdin_fd = -1, .stdout_fd = -1, .max_output = 1 << 20 };
    _cleanup_free_ char *err = NULL;
    int r = lapis_spawn(argv, &o, ret_out, &err);
    return tool_result(b, pkg, argv, r, err);
}

int lapis_image_open_in_root(struct lapis_image_build *b, const char *path)
{
    struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
    _cleanup_close_ int rootfd = open(b->rootdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return -errno;
    int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
    return fd < 0 ? -errno : fd;
}

int lapis_image_copy_fd(struct lapis_image_build *b, int fd, const char *dst, mode_t mode)
{
    _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    char buf[1 << 16];
    ssize_t n;

    if (out < 0 || lseek(fd, 0, SEEK_SET) < 0)
        return lapis_err(&b->diag, -errno, "cannot write %s: %s", dst, strerror(errno));
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            return lapis_err(&b->diag, -EIO, "cannot write %s: %s", dst, strerror(errno));
    if (n < 0)
        return lapis_err(&b->diag, -errno, "cannot read the source of %s: %s", dst, strerror(errno));
    return 0;
}

static int clamp_one(const char *path, const struct stat *st, void *data)
{
    const long long *epoch = data;
    struct timespec ts[2] = { { *epoch, 0 }, { *epoch, 0 } };
    (void)st;
    return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

int lapis_image_clamp_tree(struct lapis_image_build *b, const char *dir)
{
    long long epoch = b->epoch;
    int r = tree_walk(dir, true, clamp_one, &epoch);
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot set the times under %s: %s", dir, strerror(-r));
    return 0;
}

static unsigned hexval(char c)
{
    return (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
}

void lapis_image_uuid(const struct lapis_image_build *b, const char *what,
                      unsigned char raw[16], char text[37])
{
    _cleanup_free_ char *seed = NULL;
    char hex[65];
    size_t len;

    seed = xasprintf("lapis-image\n%lld\n%s\n%s\n", b->epoch, b->arch ? b->arch : "", what);
    len = strlen(seed);
    seed = xrealloc(seed, len + 32);
    memcpy(seed + len, b->conf->sha256, 32);
    lapis_chk_buf(seed, len + 32, LAPIS_CHK_SHA256, hex, sizeof(hex));
    for (int i = 0; i < 16; i++)
        raw[i] = (unsigned char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
    raw[6] = (raw[6] & 0x0f) | 0x40;   /* version 4 layout: tools accept it as random */
    raw[8] = (raw[8] & 0x3f) | 0x80;
    snprintf(text, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8], raw[9],
             raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]);
}
