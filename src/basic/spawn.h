/*
 * Running external tools (mkfs.*, sgdisk, dracut, qemu-img ...) without a
 * shell: argv as given, environment additions, stdout and stderr captured
 * (bounded) so the caller can put the tool's own words into its error
 * message. libc only.
 */
#ifndef LAPIS_BASIC_SPAWN_H
#define LAPIS_BASIC_SPAWN_H

#include <stddef.h>

struct lapis_spawn_opts {
    char *const *env;       /* "KEY=VALUE" entries added to (or replacing in) the environment */
    const char *cwd;        /* working directory of the child, NULL = ours */
    int stdin_fd;           /* fd the child reads, -1 = /dev/null */
    int stdout_fd;          /* fd the child writes stdout to when not captured, -1 = /dev/null */
    size_t max_output;      /* bytes kept of each captured stream, 0 = 64 KiB */
};

/* Run argv[0] (searched in PATH). Returns the exit status (0..255), 128+N when
 * killed by signal N, or a negative errno when it could not be started
 * (-ENOENT: no such program). ret_stdout (captured, may be NULL: then stdout
 * goes to o->stdout_fd) and ret_stderr (may be NULL) get NUL-terminated text,
 * trailing newlines removed. Output past max_output is read and dropped, so a
 * chatty tool never blocks. */
int lapis_spawn(char *const argv[], const struct lapis_spawn_opts *o,
                char **ret_stdout, char **ret_stderr);

/* The last line of captured stderr (for a one-line error), or "" ; never NULL. */
const char *lapis_spawn_last_line(const char *text);

#endif
