/*
 * Unit tests for detached-signature verification (src/pkg/verify.c): a
 * genuine repomd.xml verifies, an altered one is a BAD signature, and a data
 * file that cannot be read is that error, not a BAD signature (read errors
 * were once ignored and the digest taken over whatever had been read).
 * Fixtures: LAPIS_FIXTURES (make check builds them).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pkg/trust.h"

struct fx {
    lapis_ctx *ctx;
    struct lapis_trusted_keys tk;
    char *repodata;
};

static char *fixture(const char *rel)
{
    const char *top = getenv("LAPIS_FIXTURES") ? getenv("LAPIS_FIXTURES") : LAPIS_FIXTURES_DEFAULT;
    return path_join(top, rel);
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    _cleanup_free_ char *key = fixture("keys/RPM-GPG-KEY-lapis-test");
    char *text = NULL;
    size_t len;

    if (lapis_ctx_new(&f->ctx) < 0 || read_file(key, 1 << 20, &text, &len) < 0) {
        print_error("fixtures missing (%s): run tests/fixtures/build-repos\n", key);
        return -1;
    }
    f->tk.texts = xcalloc(2, sizeof(char *));
    f->tk.texts[0] = text;
    f->tk.own = true;
    f->tk.from = xstrdup("the test key");
    f->repodata = fixture("repos/base/repodata");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lapis_trusted_keys_clear(&f->tk);
    lapis_ctx_free(f->ctx);
    free(f->repodata);
    free(f);
    return 0;
}

static int verify(struct fx *f, const char *data)
{
    _cleanup_free_ char *sig = path_join(f->repodata, "repomd.xml.asc");
    return lapis_verify_detached(f->ctx, "repomd.xml", data, sig, &f->tk);
}

static void test_genuine_verifies(void **state)
{
    struct fx *f = *state;
    _cleanup_free_ char *data = path_join(f->repodata, "repomd.xml");
    assert_int_equal(verify(f, data), 0);
}

static void test_altered_is_bad_signature(void **state)
{
    struct fx *f = *state;
    char path[] = "/tmp/lapis-verify-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "<repomd/>", 9), 9);
    close(fd);
    assert_int_equal(verify(f, path), -LAPIS_E_SIGNATURE);
    assert_non_null(strstr(lapis_ctx_error(f->ctx), "BAD signature"));
    unlink(path);
}

static void test_unreadable_data_is_a_read_error(void **state)
{
    struct fx *f = *state;
    char dir[] = "/tmp/lapis-verify-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    int r = verify(f, dir); /* open() of a directory works; read() fails */
    rmdir(dir);
    assert_int_equal(r, -EISDIR);
    assert_non_null(strstr(lapis_ctx_error(f->ctx), "cannot read"));
    assert_null(strstr(lapis_ctx_error(f->ctx), "BAD signature"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_genuine_verifies),
        cmocka_unit_test(test_altered_is_bad_signature),
        cmocka_unit_test(test_unreadable_data_is_a_read_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
