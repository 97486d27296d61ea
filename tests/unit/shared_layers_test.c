/*
 * The layers below the package manager, on their own: this test links
 * lapis-basic and lapis-shared only (plus libcrypto; libcurl is dlopen'ed), as the
 * on-host updater will. Its link would fail if src/basic or src/shared used
 * librpm, libsolv, sqlite or anything from src/pkg, and ctest's
 * unit_shared_layers_deps checks that the binary needs none of them.
 * Includes only basic/ and shared/ headers, for the same reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/parse.h"
#include "basic/strv.h"
#include "shared/diag.h"
#include "shared/digest.h"
#include "shared/fetch.h"
#include "shared/lock.h"
#include "shared/reboot.h"
#include "lapis/term.h"

#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define BAD_SHA256 "0a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static char *tmpdir(void)
{
    char *d = xstrdup("/tmp/lapis-layers-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void log_into(enum lapis_log_level lvl, const char *msg, void *userdata)
{
    char **last = userdata;
    free(*last);
    *last = xasprintf("%d:%s", (int)lvl, msg);
}

/* Errors land on the caller's own diagnostics object; logs go to its callback. */
static void test_diag(void **state)
{
    _cleanup_free_ char *last = NULL;
    struct lapis_diag d = { .log_fn = log_into, .log_data = &last };

    assert_string_equal(lapis_diag_error(&d), "unknown error");
    assert_int_equal(lapis_err(&d, LAPIS_E_CONFIG, "bad %s", "thing"), -LAPIS_E_CONFIG);
    assert_string_equal(lapis_diag_error(&d), "bad thing");
    assert_int_equal(lapis_err(&d, -ENOENT, "gone"), -ENOENT);
    assert_string_equal(d.errmsg, "gone");
    lapis_log(&d, LAPIS_LOG_WARNING, "careful %d", 1);
    assert_string_equal(last, "1:careful 1");
    assert_int_equal(lapis_err((struct lapis_diag *)NULL, LAPIS_E_REPO, "nobody"), -LAPIS_E_REPO);
    lapis_diag_clear(&d);
    assert_null(d.errmsg);
}

static void test_digest(void **state)
{
    char hex[129];
    assert_int_equal(lapis_chk_buf("abc", 3, LAPIS_CHK_SHA256, hex, sizeof(hex)), 0);
    assert_string_equal(hex, ABC_SHA256);
    assert_int_equal(lapis_chk_from_name("sha256"), LAPIS_CHK_SHA256);
    assert_string_equal(lapis_chk_name(LAPIS_CHK_SHA512), "sha512");
}

/* Writes len bytes of a pattern at off into fd and into the in-memory copy. */
static void put_data(int fd, char *copy, off_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        copy[off + (off_t)i] = (char)('a' + (i * 7 + (size_t)off) % 26);
    assert_int_equal(pwrite(fd, copy + off, len, off), (ssize_t)len);
}

static void assert_same_digest(const char *path, const char *copy, size_t size)
{
    char want[65], got[65];
    assert_int_equal(lapis_chk_buf(copy, size, LAPIS_CHK_SHA256, want, sizeof(want)), 0);
    assert_int_equal(lapis_chk_file(path, LAPIS_CHK_SHA256, got, sizeof(got)), 0);
    assert_string_equal(got, want);
}

/* lapis_chk_file hashes holes from memory: the digest must be that of the
 * bytes a read gives (leading, inner and trailing holes; data runs longer
 * than its 1 MiB buffer; a file that is all hole; an empty one). */
static void test_digest_sparse(void **state)
{
    _cleanup_free_ char *dir = tmpdir();
    _cleanup_free_ char *path = path_join(dir, "sparse");
    const size_t size = (9u << 20) + 123;
    _cleanup_free_ char *copy = xmalloc(size);
    struct stat st;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    assert_true(fd >= 0);
    memset(copy, 0, size);
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_same_digest(path, copy, 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    assert_same_digest(path, copy, size);
    put_data(fd, copy, 3 << 20, 100000);
    put_data(fd, copy, (5 << 20) + 7, (3u << 19) + 1);
    assert_int_equal(fstat(fd, &st), 0);
    assert_true((off_t)st.st_blocks * 512 < st.st_size / 2);    /* it has holes to skip */
    assert_same_digest(path, copy, size);
    close(fd);
    rm_rf(dir, NULL);
}

static int fetch_one(struct lapis_diag *d, const char *url, const char *dest, const char *sha)
{
    struct lapis_fetch_limits limits = { .timeout = 5, .retries = 0 };
    struct lapis_fetch_job job = {
        .url = url, .dest = dest, .expected_size = 3, .chk_type = LAPIS_CHK_SHA256,
        .chk_hex = sha, .what = "test file", .sslverify = true, .limits = &limits,
    };
    struct lapis_fetch_opts opts = { .max_parallel = 1, .timeout = 5, .retries = 0 };
    int r = lapis_fetch_run(d, &job, 1, &opts);
    lapis_fetch_job_clear(&job);
    return r;
}

/* A file:// download with its digest checked: renamed into place only when it matches. */
static void test_fetch(void **state)
{
    _cleanup_free_ char *dir = tmpdir();
    _cleanup_free_ char *src = path_join(dir, "src");
    _cleanup_free_ char *dest = path_join(dir, "dest");
    _cleanup_free_ char *url = xasprintf("file://%s", src);
    struct lapis_diag d = { 0 };
    char *buf = NULL;
    size_t len = 0;

    assert_int_equal(write_file_atomic(src, "abc", 3), 0);
    assert_int_equal(fetch_one(&d, url, dest, ABC_SHA256), 0);
    assert_int_equal(read_file(dest, 16, &buf, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "abc", 3);
    free(buf);

    unlink(dest);
    assert_int_equal(fetch_one(&d, url, dest, BAD_SHA256), -LAPIS_E_DOWNLOAD);
    assert_non_null(strstr(lapis_diag_error(&d), "test file: sha256 checksum mismatch"));
    assert_false(path_exists(dest));
    lapis_diag_clear(&d);
    assert_int_equal(rm_rf(dir, NULL), 0);
}

/* The lock is an OFD lock: a second open of the same file cannot take it. */
static void test_lock(void **state)
{
    _cleanup_free_ char *dir = tmpdir();
    _cleanup_free_ char *sub = path_join(dir, "var/lib/x");
    struct lapis_diag d = { 0 };
    int fd = -1, fd2 = -1;

    assert_int_equal(lapis_lock_take(&d, sub, "the test root", 0, &fd), 0);
    assert_true(fd >= 0);
    assert_int_equal(lapis_lock_take(&d, sub, "the test root", 0, &fd2), -LAPIS_E_LOCKED);
    assert_int_equal(fd2, -1);
    assert_non_null(strstr(d.errmsg, "the test root"));
    close(fd);
    assert_int_equal(lapis_lock_take(&d, sub, "the test root", 0, &fd2), 0);
    close(fd2);
    lapis_diag_clear(&d);
    assert_int_equal(rm_rf(dir, NULL), 0);
}

/* The sentinel kured watches, and the list of packages that asked for it. */
static void test_reboot_required(void **state)
{
    _cleanup_free_ char *root = tmpdir();
    _cleanup_free_ char *pkgs = path_in_root(root, "/var/run/reboot-required.pkgs");
    _cleanup_free_ char *sentinel = path_in_root(root, "/var/run/reboot-required");
    char *const names[] = { "kernel", "glibc", NULL };
    struct lapis_diag d = { 0 };
    char *buf = NULL;
    size_t len = 0;

    assert_int_equal(lapis_reboot_required_write(&d, root, names), 0);
    assert_int_equal(read_file(pkgs, 4096, &buf, &len), 0);
    assert_string_equal(buf, "kernel\nglibc\n");
    free(buf);
    assert_true(path_exists(sentinel));
    assert_int_equal(rm_rf(root, NULL), 0);
}

/* Tables line up by characters, and control characters never reach the terminal. */
static void test_term(void **state)
{
    _cleanup_free_ char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    lapis_table *t = lapis_table_new(2);
    char size[32];

    lapis_table_align_right(t, 1);
    lapis_table_add(t, (const char *[]){ "h\u00e9llo", "1" });
    lapis_table_add(t, (const char *[]){ "evil\033[31m", "22" });
    lapis_table_print(t, f);
    lapis_table_free(t);
    fclose(f);
    assert_string_equal(out, "h\u00e9llo       1\nevil?[31m  22\n");
    assert_string_equal(lapis_format_size(1536, size), "1.5 KiB");
    assert_string_equal(lapis_format_size_aligned(512, size), "512.0   B");
    assert_string_equal(lapis_format_size_aligned(1000, size), "1.0 KiB");
    assert_string_equal(lapis_format_size_aligned(1258291, size), "1.2 MiB");
}

static void test_basic(void **state)
{
    long long v;
    _cleanup_strv_ char **items = strv_split("a, b,,c", ", ");
    assert_int_equal(strv_length(items), 3);
    assert_true(strv_contains(items, "c"));
    assert_int_equal(lapis_parse_seconds("1.5h", &v), 0);
    assert_true(v == 5400);
    assert_int_equal(lapis_parse_seconds("5x", &v), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diag),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_digest_sparse),
        cmocka_unit_test(test_fetch),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_reboot_required),
        cmocka_unit_test(test_term),
        cmocka_unit_test(test_basic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
