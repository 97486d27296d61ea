/*
 * Unit tests for the .solv cache cookie (src/pkg/cache.c): it follows the
 * repomd.xml digest and the kind, and an unreadable repomd.xml is an error
 * (it was once hashed as "", giving every such repo the same cookie).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pkg/internal.h"

static char *tmp_file(const char *text)
{
    char *path = xstrdup("/tmp/lapis-cache-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_cookie_follows_content_and_kind(void **state)
{
    lapis_ctx *ctx;
    char a[65], b[65], c[65];
    char *path = tmp_file("<repomd>1</repomd>");

    assert_int_equal(lapis_ctx_new(&ctx), 0);
    assert_int_equal(lapis_cache_solv_cookie(ctx, path, "main", a), 0);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(lapis_cache_solv_cookie(ctx, path, "details", b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(write_file_atomic(path, "<repomd>2</repomd>", 18), 0);
    assert_int_equal(lapis_cache_solv_cookie(ctx, path, "main", c), 0);
    assert_string_not_equal(a, c);
    unlink(path);
    free(path);
    lapis_ctx_free(ctx);
}

static void test_cookie_of_unreadable_repomd_is_an_error(void **state)
{
    lapis_ctx *ctx;
    char ret[65] = "untouched";

    assert_int_equal(lapis_ctx_new(&ctx), 0);
    assert_int_equal(lapis_cache_solv_cookie(ctx, "/nonexistent/repomd.xml", "main", ret),
                     -ENOENT);
    assert_string_equal(ret, "untouched");
    assert_non_null(strstr(lapis_ctx_error(ctx), "/nonexistent/repomd.xml"));
    lapis_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookie_follows_content_and_kind),
        cmocka_unit_test(test_cookie_of_unreadable_repomd_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
