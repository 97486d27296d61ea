/*
 * Unit tests for lapis_spawn (src/basic/spawn.c): exit codes, signals, a
 * missing program, captured and bounded output, environment additions and
 * the working directory. The image composer runs every tool through it, so a
 * tool's failure must come back with its own words.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "basic/spawn.h"

static const struct lapis_spawn_opts no_io = { .stdin_fd = -1, .stdout_fd = -1 };

static void test_exit_status(void **state)
{
    char *ok[] = { "true", NULL }, *bad[] = { "sh", "-c", "exit 3", NULL };
    assert_int_equal(lapis_spawn(ok, NULL, NULL, NULL), 0);
    assert_int_equal(lapis_spawn(bad, &no_io, NULL, NULL), 3);
}

static void test_signal_and_missing(void **state)
{
    char *killed[] = { "sh", "-c", "kill -9 $$", NULL };
    char *missing[] = { "lapis-no-such-tool", NULL };
    assert_int_equal(lapis_spawn(killed, NULL, NULL, NULL), 128 + 9);
    assert_int_equal(lapis_spawn(missing, NULL, NULL, NULL), -ENOENT);
}

static void test_capture(void **state)
{
    char *argv[] = { "sh", "-c", "echo out; echo first >&2; echo 'last line' >&2", NULL };
    char *out = NULL, *err = NULL;
    assert_int_equal(lapis_spawn(argv, NULL, &out, &err), 0);
    assert_string_equal(out, "out");
    assert_string_equal(err, "first\nlast line");
    assert_string_equal(lapis_spawn_last_line(err), "last line");
    free(out);
    free(err);
}

/* A tool that writes far more than is kept must not block on a full pipe. */
static void test_bounded_output(void **state)
{
    char *argv[] = { "sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x; echo done >&2", NULL };
    struct lapis_spawn_opts o = { .stdin_fd = -1, .stdout_fd = -1, .max_output = 100 };
    char *out = NULL, *err = NULL;
    assert_int_equal(lapis_spawn(argv, &o, &out, &err), 0);
    assert_int_equal(strlen(out), 100);
    assert_string_equal(err, "done");
    free(out);
    free(err);
}

static void test_env_and_cwd(void **state)
{
    char *env[] = { "LAPIS_SPAWN_TEST=yes", "HOME=/nonexistent", NULL };
    char *argv[] = { "sh", "-c", "echo \"$LAPIS_SPAWN_TEST $HOME $(pwd)\"", NULL };
    struct lapis_spawn_opts o = { .env = env, .cwd = "/tmp", .stdin_fd = -1, .stdout_fd = -1 };
    char *out = NULL;
    assert_int_equal(lapis_spawn(argv, &o, &out, NULL), 0);
    assert_string_equal(out, "yes /nonexistent /tmp");
    free(out);
}

/* Arguments are passed as they are: no shell re-parses them. */
static void test_no_shell(void **state)
{
    char *argv[] = { "printf", "%s|", "a b", "$(id)", ";x", NULL };
    char *out = NULL;
    assert_int_equal(lapis_spawn(argv, NULL, &out, NULL), 0);
    assert_string_equal(out, "a b|$(id)|;x|");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_status),  cmocka_unit_test(test_signal_and_missing),
        cmocka_unit_test(test_capture),      cmocka_unit_test(test_bounded_output),
        cmocka_unit_test(test_env_and_cwd),  cmocka_unit_test(test_no_shell),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
