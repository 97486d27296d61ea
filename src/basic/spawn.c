/*
 * lapis_spawn: posix_spawnp with pipes for stdout/stderr, read with poll()
 * until both close, then waitpid. No shell is involved, so no argument is ever
 * re-parsed; the environment is ours plus the caller's additions.
 */
#include "basic/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/macro.h"

extern char **environ;

#define SPAWN_DEFAULT_MAX (64 * 1024)

struct spawn_buf {
    char *data;
    size_t len;
    size_t max;
};

static bool env_overridden(char *const *add, const char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t n = eq ? (size_t)(eq - entry) : strlen(entry);
    for (; add && *add; add++)
        if (strncmp(*add, entry, n) == 0 && (*add)[n] == '=')
            return true;
    return false;
}

/* environ without the keys in add, then add: a NULL-terminated array of borrowed strings. */
static char **spawn_env(char *const *add)
{
    size_t n = 0, m = 0, k = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    for (char *const *a = add; a && *a; a++)
        m++;
    char **env = xcalloc(n + m + 1, sizeof(char *));
    for (char **e = environ; e && *e; e++)
        if (!env_overridden(add, *e))
            env[k++] = *e;
    for (char *const *a = add; a && *a; a++)
        env[k++] = *a;
    return env;
}

static void buf_append(struct spawn_buf *b, const char *data, size_t n)
{
    if (b->len >= b->max)
        return;
    if (n > b->max - b->len)
        n = b->max - b->len;
    b->data = xrealloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Read one ready pipe; returns false once it is closed. */
static bool pipe_drain(int fd, struct spawn_buf *b)
{
    char chunk[8192];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    buf_append(b, chunk, (size_t)n);
    return true;
}

static void read_pipes(int out_fd, int err_fd, struct spawn_buf *out, struct spawn_buf *err)
{
    struct pollfd p[2] = { { .fd = out_fd, .events = POLLIN }, { .fd = err_fd, .events = POLLIN } };
    struct spawn_buf *bufs[2] = { out, err };
    while (p[0].fd >= 0 || p[1].fd >= 0) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++)
            if (p[i].fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                !pipe_drain(p[i].fd, bufs[i]))
                p[i].fd = -1;
    }
}

static int wait_child(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

static char *buf_take(struct spawn_buf *b)
{
    char *s = b->data ? b->data : xstrdup("");
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    b->data = NULL;
    return s;
}

/* Wire the child's stdin/stdout/stderr: the caller's fds, a pipe, or /dev/null. */
static int spawn_actions(posix_spawn_file_actions_t *fa, const struct lapis_spawn_opts *o,
                         int out_w, int err_w)
{
    int r = 0;
    if (o->stdin_fd >= 0)
        r = r ?: posix_spawn_file_actions_adddup2(fa, o->stdin_fd, 0);
    else
        r = r ?: posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    if (out_w >= 0)
        r = r ?: posix_spawn_file_actions_adddup2(fa, out_w, 1);
    else if (o->stdout_fd >= 0)
        r = r ?: posix_spawn_file_actions_adddup2(fa, o->stdout_fd, 1);
    else
        r = r ?: posix_spawn_file_actions_addopen(fa, 1, "/dev/null", O_WRONLY, 0);
    r = r ?: posix_spawn_file_actions_adddup2(fa, err_w, 2);
    if (o->cwd)
        r = r ?: posix_spawn_file_actions_addchdir_np(fa, o->cwd);
    return -r;
}

static int open_pipe(int p[2])
{
    return pipe2(p, O_CLOEXEC) < 0 ? -errno : 0;
}

int lapis_spawn(char *const argv[], const struct lapis_spawn_opts *opts,
                char **ret_stdout, char **ret_stderr)
{
    static const struct lapis_spawn_opts defaults = { .stdin_fd = -1, .stdout_fd = -1 };
    const struct lapis_spawn_opts *o = opts ? opts : &defaults;
    size_t max = o->max_output ? o->max_output : SPAWN_DEFAULT_MAX;
    struct spawn_buf out = { .max = max }, err = { .max = max };
    int outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
    int r = open_pipe(errp);
    if (r == 0 && ret_stdout)
        r = open_pipe(outp);
    if (r < 0) {
        for (int i = 0; i < 2; i++) {
            if (errp[i] >= 0)
                close(errp[i]);
        }
        return r;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    r = spawn_actions(&fa, o, outp[1], errp[1]);
    _cleanup_free_ char **env = spawn_env(o->env);
    pid_t pid = -1;
    if (r == 0)
        r = -posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    close(errp[1]);
    if (outp[1] >= 0)
        close(outp[1]);
    if (r == 0)
        read_pipes(outp[0], errp[0], &out, &err);
    close(errp[0]);
    if (outp[0] >= 0)
        close(outp[0]);
    if (r == 0)
        r = wait_child(pid);
    if (r >= 0 && ret_stdout)
        *ret_stdout = buf_take(&out);
    if (r >= 0 && ret_stderr)
        *ret_stderr = buf_take(&err);
    free(out.data);
    free(err.data);
    return r;
}

const char *lapis_spawn_last_line(const char *text)
{
    if (!text)
        return "";
    const char *nl = strrchr(text, '\n');
    return nl ? nl + 1 : text;
}
