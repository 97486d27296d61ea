/*
 * Unit tests for URL handling (src/basic/url.c). lapis_href_is_safe() is a
 * security boundary: an href from (possibly hostile) repository metadata
 * must never be able to leave the repository base.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "basic/strv.h"
#include "basic/url.h"

/* ---- lapis_url_join ----------------------------------------------------- */

static void check_join(const char *base, const char *href, const char *expect)
{
    char *out = lapis_url_join(base, href);
    assert_non_null(out);
    if (strcmp(out, expect) != 0)
        print_error("join(\"%s\", \"%s\")\n", base, href);
    assert_string_equal(out, expect);
    free(out);
}

static void test_url_join(void **state)
{
    const char *want = "http://h.example.com/os/repodata/repomd.xml";
    check_join("http://h.example.com/os", "repodata/repomd.xml", want);
    check_join("http://h.example.com/os/", "repodata/repomd.xml", want);
    check_join("http://h.example.com/os///", "repodata/repomd.xml", want);
    check_join("http://h.example.com/os", "/repodata/repomd.xml", want);
    check_join("http://h.example.com/os/", "//repodata/repomd.xml", want);
    check_join("http://h.example.com/os//", "///repodata/repomd.xml", want);
    /* Only the seam is touched: slashes inside base or href stay. */
    check_join("http://h.example.com//a/b", "c//d", "http://h.example.com//a/b/c//d");
    check_join("file:///srv/repo", "Packages/a.rpm", "file:///srv/repo/Packages/a.rpm");
    check_join("file:///srv/repo/", "Packages/a.rpm", "file:///srv/repo/Packages/a.rpm");
    check_join("https://h", "x", "https://h/x");
}

/* ---- lapis_href_is_safe ------------------------------------------------- */

static void check_href(const char *href, bool expect)
{
    bool got = lapis_href_is_safe(href);
    if (got != expect)
        print_error("href \"%s\": expected %s\n", href ? href : "(null)", expect ? "safe" : "unsafe");
    assert_int_equal(got, expect);
}

static void test_href_safe_accepted(void **state)
{
    check_href("Packages/a.rpm", true);
    check_href("repodata/x-primary.xml.gz", true);
    check_href("repodata/0123abcd-primary.xml.zst", true);
    check_href("Packages/b/bash-5.2.15-1.fc39.x86_64.rpm", true);
    check_href("a.rpm", true);
    check_href("Packages/with%20space.rpm", true);
    check_href("Packages/foo+bar-1.0~rc1^git.rpm", true);
    /* Dots that are not a ".." path segment. */
    check_href("./a.rpm", true);
    check_href("a/./b.rpm", true);
    check_href("..a/x", true);
    check_href("a../x", true);
    check_href(".../x", true);
    check_href("x/.../y", true);
    check_href("Packages/..rpm", true);
    check_href("a%2e/b", true);
}

static void test_href_rejects_empty_and_absolute(void **state)
{
    check_href(NULL, false);
    check_href("", false);
    check_href("/abs", false);
    check_href("/etc/passwd", false);
    check_href("//evil.example.com/x", false);
    /* Absolute after decoding. */
    check_href("%2fetc/passwd", false);
    check_href("%2Fetc/passwd", false);
}

static void test_href_rejects_climbing(void **state)
{
    check_href("..", false);
    check_href("../x", false);
    check_href("a/..", false);
    check_href("a/../../x", false);
    check_href("a/b/../../../x", false);
    check_href("a//..//x", false);
    /* Even a climb that stays inside is refused: ".." has no business in an href. */
    check_href("a/../b", false);
}

static void test_href_rejects_encoded_climbing(void **state)
{
    check_href("%2e%2e/x", false);
    check_href("%2E%2E/x", false);
    check_href("%2e%2E/x", false);
    check_href(".%2e/x", false);
    check_href("%2e./x", false);
    check_href("a/%2e%2e/b", false);
    check_href("a/%2e%2e", false);
    check_href("..%2fx", false);
    check_href("..%2Fx", false);
    check_href("a%2f..%2f..%2fx", false);
}

static void test_href_rejects_schemes(void **state)
{
    check_href("http://evil/x", false);
    check_href("https://evil/x", false);
    check_href("file:///etc/passwd", false);
    check_href("ftp://evil/x", false);
    check_href("HTTP://evil/x", false);
    check_href("svn+ssh://evil/x", false);
    check_href("javascript:alert(1)", false);
    check_href("C:x", false);
    check_href("C:/Windows/x", false);
}

static void test_href_rejects_odd_characters(void **state)
{
    check_href("a\\b", false);
    check_href("..\\x", false);
    check_href("a?b", false);
    check_href("a#b", false);
    check_href("Packages/a.rpm?x=1", false);
    check_href("a\tb", false);
    check_href("a\nb", false);
    check_href("a\rb", false);
    check_href("\x01" "a", false);
    check_href("a\x1f", false);
    check_href("a\x7f", false);
    /* Control characters and backslashes smuggled in percent-encoded. */
    check_href("a%0ab", false);
    check_href("a%0Db", false);
    check_href("a%01b", false);
    check_href("a%5cb", false);
    check_href("..%5cx", false);
}

static void test_href_rejects_bad_escapes(void **state)
{
    check_href("%00", false);
    check_href("a%00.rpm", false);
    check_href("%zz", false);
    check_href("a%zzb", false);
    check_href("%4", false);
    check_href("a%4", false);
    check_href("%", false);
    check_href("a%", false);
    check_href("%g0", false);
    check_href("%0g", false);
}

/* ---- lapis_url_to_path -------------------------------------------------- */

static void check_path(const char *url, const char *expect)
{
    char *out = lapis_url_to_path(url);
    if (!expect) {
        bool is_null = out == NULL;
        if (out)
            print_error("url_to_path(\"%s\") = \"%s\", expected NULL\n", url, out);
        free(out);
        assert_true(is_null);
        return;
    }
    if (!out || strcmp(out, expect) != 0)
        print_error("url_to_path(\"%s\")\n", url);
    assert_non_null(out);
    assert_string_equal(out, expect);
    free(out);
}

static void test_url_to_path(void **state)
{
    check_path("file:///a/b", "/a/b");
    check_path("file:///", "/");
    check_path("file:///srv/repo/repodata/repomd.xml", "/srv/repo/repodata/repomd.xml");
    check_path("file://localhost/a", "/a");
    check_path("file://localhost/srv/repo/", "/srv/repo/");
    check_path("file:///a%20b/c%2Bd", "/a b/c+d");
    check_path("file:///%7Euser", "/~user");
}

static void test_url_to_path_rejects(void **state)
{
    check_path("http://h/a", NULL);
    check_path("https://h/a", NULL);
    check_path("ftp://h/a", NULL);
    check_path("/a/b", NULL);
    check_path("", NULL);
    check_path("file://relative", NULL);
    check_path("file://relative/path", NULL);
    check_path("file://localhost", NULL);
    check_path("file://localhostx/a", NULL);
    check_path("file://", NULL);
    /* Malformed or NUL escapes. */
    check_path("file:///a%00b", NULL);
    check_path("file:///a%zz", NULL);
    check_path("file:///a%4", NULL);
}

/* ---- lapis_url_scheme_ok / lapis_url_is_remote -------------------------- */

static void test_url_scheme_ok(void **state)
{
    assert_true(lapis_url_scheme_ok("http://h/x"));
    assert_true(lapis_url_scheme_ok("https://h/x"));
    assert_true(lapis_url_scheme_ok("file:///srv/repo"));
    assert_true(lapis_url_scheme_ok("ftp://h/x"));   /* as dnf: curl fetches it */
    assert_true(lapis_url_scheme_ok("ftps://h/x"));
    assert_false(lapis_url_scheme_ok("ftp:/h/x"));
    assert_false(lapis_url_scheme_ok("rsync://h/x"));
    assert_false(lapis_url_scheme_ok("/srv/repo"));
    assert_false(lapis_url_scheme_ok("srv/repo"));
    assert_false(lapis_url_scheme_ok(""));
    assert_false(lapis_url_scheme_ok("http:/h/x"));
    assert_false(lapis_url_scheme_ok("httpx://h/x"));
    assert_false(lapis_url_scheme_ok("file:/srv/repo"));
    assert_false(lapis_url_scheme_ok(" http://h/x"));
}

static void test_url_is_remote(void **state)
{
    assert_true(lapis_url_is_remote("http://h/x"));
    assert_true(lapis_url_is_remote("https://h/x"));
    assert_false(lapis_url_is_remote("file:///srv/repo"));
    assert_false(lapis_url_is_remote("ftp://h/x"));
    assert_false(lapis_url_is_remote(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_join),
        cmocka_unit_test(test_href_safe_accepted),
        cmocka_unit_test(test_href_rejects_empty_and_absolute),
        cmocka_unit_test(test_href_rejects_climbing),
        cmocka_unit_test(test_href_rejects_encoded_climbing),
        cmocka_unit_test(test_href_rejects_schemes),
        cmocka_unit_test(test_href_rejects_odd_characters),
        cmocka_unit_test(test_href_rejects_bad_escapes),
        cmocka_unit_test(test_url_to_path),
        cmocka_unit_test(test_url_to_path_rejects),
        cmocka_unit_test(test_url_scheme_ok),
        cmocka_unit_test(test_url_is_remote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
