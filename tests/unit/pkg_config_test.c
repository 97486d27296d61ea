/*
 * Unit tests for configuration: the option parsers and [main] table
 * (src/pkg/config.c), repo keys (src/pkg/repo.c), and end to end through the
 * public API (lapis_ctx_setup in src/pkg/context.c) with real lapis.conf and
 * .repo files in a temporary directory.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "pkg/internal.h"

/* ---- small helpers ------------------------------------------------------ */

static void assert_contains_(const char *hay, const char *needle, const char *file, int line)
{
    if (!hay || !strstr(hay, needle)) {
        print_error("expected \"%s\" to contain \"%s\"\n", hay ? hay : "(null)", needle);
        _fail(file, line);
    }
}
#define assert_contains(h, n) assert_contains_((h), (n), __FILE__, __LINE__)

static void assert_not_contains_(const char *hay, const char *needle, const char *file, int line)
{
    if (hay && strstr(hay, needle)) {
        print_error("expected \"%s\" not to contain \"%s\"\n", hay, needle);
        _fail(file, line);
    }
}
#define assert_not_contains(h, n) assert_not_contains_((h), (n), __FILE__, __LINE__)

static size_t strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

/* ======================================================================== */
/* lapis_parse_bool / lapis_parse_seconds / lapis_parse_int                  */
/* ======================================================================== */

static void test_parse_bool(void **state)
{
    static const char *const yes[] = { "1", "yes", "YES", "Yes", "true", "True", "TRUE",
                                       "on", "On", "ON" };
    static const char *const no[] = { "0", "no", "NO", "No", "false", "False", "FALSE",
                                      "off", "Off", "OFF" };
    static const char *const bad[] = { "", "2", "-1", "y", "n", "maybe", "yess", "tru",
                                       " yes", "yes ", "enabled", "10", "00" };
    int v;

    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        v = -7;
        assert_int_equal(lapis_parse_bool(yes[i], &v), 0);
        assert_int_equal(v, 1);
    }
    for (size_t i = 0; i < ARRAY_SIZE(no); i++) {
        v = -7;
        assert_int_equal(lapis_parse_bool(no[i], &v), 0);
        assert_int_equal(v, 0);
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        v = -7;
        if (lapis_parse_bool(bad[i], &v) != -EINVAL)
            print_error("bool \"%s\" accepted\n", bad[i]);
        assert_int_equal(lapis_parse_bool(bad[i], &v), -EINVAL);
        assert_int_equal(v, -7); /* untouched on error */
    }
}

static void check_seconds(const char *s, long long expect)
{
    long long v = 12345;
    int r = lapis_parse_seconds(s, &v);
    if (r != 0 || v != expect)
        print_error("seconds \"%s\": r=%d v=%lld, expected %lld\n", s, r, v, expect);
    assert_int_equal(r, 0);
    assert_true(v == expect);
}

static void check_seconds_bad(const char *s)
{
    long long v = 12345;
    int r = lapis_parse_seconds(s, &v);
    if (r != -EINVAL)
        print_error("seconds \"%s\" accepted as %lld\n", s, v);
    assert_int_equal(r, -EINVAL);
    assert_true(v == 12345);
}

static void test_parse_seconds(void **state)
{
    check_seconds("0", 0);
    check_seconds("90", 90);
    check_seconds("90s", 90);
    check_seconds("30m", 1800);
    check_seconds("48h", 172800);
    check_seconds("7d", 604800);
    check_seconds("0d", 0);
    check_seconds("-1", -1);
    check_seconds("never", -1);
    /* Largest value that still fits with a unit. */
    check_seconds("106751991167300d", 106751991167300LL * 86400);
    check_seconds("9223372036854775807", LLONG_MAX);
}

static void test_parse_seconds_invalid(void **state)
{
    check_seconds_bad("");
    check_seconds_bad("abc");
    check_seconds_bad("5x");
    check_seconds_bad("5mm");
    check_seconds_bad("5ms");
    check_seconds_bad("5s5");
    check_seconds_bad("m");
    check_seconds_bad("-5");
    check_seconds_bad("-2");
    check_seconds_bad("-1d");
    check_seconds_bad("+5");
    check_seconds_bad(" 5");
    check_seconds_bad("5 ");
    check_seconds_bad("1d6h");
    check_seconds_bad("1y");
    check_seconds_bad("99999999999999999999d");
    check_seconds_bad("99999999999999999999");
    check_seconds_bad("106751991167301d");   /* overflows only once multiplied */
    check_seconds_bad("153722867280912931m");
}

/* dnf's OptionSeconds takes the unit in either case (s/S, m/M, h/H, d/D). */
static void test_parse_seconds_uppercase_units_like_dnf(void **state)
{
    check_seconds("90S", 90);
    check_seconds("30M", 1800);
    check_seconds("48H", 172800);
    check_seconds("7D", 604800);
}

/* dnf's OptionSeconds parses the number with std::stod: "1.5h" is 5400 s. */
static void test_parse_seconds_fractions_like_dnf(void **state)
{
    check_seconds("1.5h", 5400);
    check_seconds("0.5d", 43200);
    check_seconds("1.5m", 90);
}

static void test_parse_int(void **state)
{
    long long v;

    assert_int_equal(lapis_parse_int("5", 0, 10, &v), 0);
    assert_true(v == 5);
    assert_int_equal(lapis_parse_int("0", 0, 10, &v), 0);
    assert_true(v == 0);
    assert_int_equal(lapis_parse_int("10", 0, 10, &v), 0); /* bounds are inclusive */
    assert_true(v == 10);
    assert_int_equal(lapis_parse_int("-3", -5, 5, &v), 0);
    assert_true(v == -3);
    assert_int_equal(lapis_parse_int("-9223372036854775808", LLONG_MIN, LLONG_MAX, &v), 0);
    assert_true(v == LLONG_MIN);
    assert_int_equal(lapis_parse_int("9223372036854775807", LLONG_MIN, LLONG_MAX, &v), 0);
    assert_true(v == LLONG_MAX);

    v = 77;
    assert_int_equal(lapis_parse_int("11", 0, 10, &v), -EINVAL);
    assert_int_equal(lapis_parse_int("-1", 0, 10, &v), -EINVAL);
    assert_int_equal(lapis_parse_int("0", 1, 64, &v), -EINVAL);
    assert_int_equal(lapis_parse_int("65", 1, 64, &v), -EINVAL);
    assert_int_equal(lapis_parse_int("", 0, 10, &v), -EINVAL);
    assert_int_equal(lapis_parse_int("abc", 0, 10, &v), -EINVAL);
    assert_int_equal(lapis_parse_int("5x", 0, 10, &v), -EINVAL);
    assert_int_equal(lapis_parse_int("5 ", 0, 10, &v), -EINVAL);
    assert_int_equal(lapis_parse_int("1.5", 0, 10, &v), -EINVAL);
    assert_int_equal(lapis_parse_int("0x5", 0, 10, &v), -EINVAL);
    assert_int_equal(lapis_parse_int("99999999999999999999", LLONG_MIN, LLONG_MAX, &v), -EINVAL);
    assert_int_equal(lapis_parse_int("-99999999999999999999", LLONG_MIN, LLONG_MAX, &v), -EINVAL);
    assert_true(v == 77);
}

/* ======================================================================== */
/* struct lapis_config: defaults and [main] keys                             */
/* ======================================================================== */

static void test_config_defaults(void **state)
{
    struct lapis_config c;

    assert_int_equal(lapis_config_defaults(&c), 0);
    assert_int_equal(c.repo.gpgcheck, 1);
    assert_int_equal(c.repo.repo_gpgcheck, 0);
    assert_int_equal(c.repo.skip_if_unavailable, 0);
    assert_int_equal(c.repo.sslverify, 1);
    assert_true(c.repo.metadata_expire == 172800);
    assert_null(c.repo.sslcacert);
    assert_non_null(c.repo.exclude);
    assert_int_equal(strv_len(c.repo.exclude), 0);
    assert_true(c.repo.net.timeout > 0);
    assert_true(c.repo.net.retries >= 0);
    assert_int_equal(c.max_parallel_downloads, 8);
    assert_int_equal(c.installonly_limit, 3);
    assert_int_equal(c.install_weak_deps, 1);
    assert_int_equal(c.keepcache, 0);
    assert_int_equal(c.best, 1);
    assert_int_equal(c.clean_requirements_on_remove, 1);

    assert_int_equal(strv_len(c.reposdir), 2);
    assert_string_equal(c.reposdir[0], "/etc/yum.repos.d");
    assert_string_equal(c.reposdir[1], "/etc/lapis/repos.d");
    assert_string_equal(c.cachedir, "/var/cache/lapis");

    assert_true(strv_contains(c.installonlypkgs, "kernel"));
    assert_true(strv_contains(c.installonlypkgs, "kernel-core"));
    assert_true(strv_contains(c.installonlypkgs, "installonlypkg(kernel)"));
    assert_true(strv_contains(c.installonlypkgs, "installonlypkg(kernel-module)"));
    assert_false(strv_contains(c.installonlypkgs, ""));

    lapis_config_clear(&c);
    /* clear leaves a state that can be cleared again */
    lapis_config_clear(&c);
    assert_null(c.cachedir);
    assert_null(c.reposdir);
}

static void test_config_set_main_known_keys(void **state)
{
    struct lapis_config c;
    lapis_config_defaults(&c);

    assert_int_equal(lapis_config_set_main(&c, "gpgcheck", "0"), 0);
    assert_int_equal(c.repo.gpgcheck, 0);
    assert_int_equal(lapis_config_set_main(&c, "repo_gpgcheck", "yes"), 0);
    assert_int_equal(c.repo.repo_gpgcheck, 1);
    assert_int_equal(lapis_config_set_main(&c, "skip_if_unavailable", "True"), 0);
    assert_int_equal(c.repo.skip_if_unavailable, 1);
    assert_int_equal(lapis_config_set_main(&c, "sslverify", "off"), 0);
    assert_int_equal(c.repo.sslverify, 0);
    assert_int_equal(lapis_config_set_main(&c, "metadata_expire", "6h"), 0);
    assert_true(c.repo.metadata_expire == 21600);
    assert_int_equal(lapis_config_set_main(&c, "metadata_expire", "never"), 0);
    assert_true(c.repo.metadata_expire == -1);
    assert_int_equal(lapis_config_set_main(&c, "sslcacert", "/etc/pki/ca.pem"), 0);
    assert_string_equal(c.repo.sslcacert, "/etc/pki/ca.pem");
    assert_int_equal(lapis_config_set_main(&c, "sslcacert", "/other.pem"), 0);
    assert_string_equal(c.repo.sslcacert, "/other.pem");
    assert_int_equal(lapis_config_set_main(&c, "timeout", "2m"), 0);
    assert_true(c.repo.net.timeout == 120);
    assert_int_equal(lapis_config_set_main(&c, "retries", "0"), 0);
    assert_int_equal(c.repo.net.retries, 0);

    assert_int_equal(lapis_config_set_main(&c, "cachedir", "/srv/cache"), 0);
    assert_string_equal(c.cachedir, "/srv/cache");
    assert_int_equal(lapis_config_set_main(&c, "max_parallel_downloads", "20"), 0);
    assert_int_equal(c.max_parallel_downloads, 20);
    assert_int_equal(lapis_config_set_main(&c, "installonly_limit", "5"), 0);
    assert_int_equal(c.installonly_limit, 5);
    assert_int_equal(lapis_config_set_main(&c, "install_weak_deps", "false"), 0);
    assert_int_equal(c.install_weak_deps, 0);
    assert_int_equal(lapis_config_set_main(&c, "keepcache", "1"), 0);
    assert_int_equal(c.keepcache, 1);
    assert_int_equal(lapis_config_set_main(&c, "best", "0"), 0);
    assert_int_equal(c.best, 0);
    assert_int_equal(lapis_config_set_main(&c, "clean_requirements_on_remove", "no"), 0);
    assert_int_equal(c.clean_requirements_on_remove, 0);
    assert_int_equal(c.repo.signature_policy, LAPIS_SIGPOLICY_DEFAULT);
    assert_int_equal(lapis_config_set_main(&c, "signature_policy", "legacy"), 0);
    assert_int_equal(c.repo.signature_policy, LAPIS_SIGPOLICY_LEGACY);
    assert_int_equal(lapis_config_set_main(&c, "signature_policy", "default"), 0);
    assert_int_equal(c.repo.signature_policy, LAPIS_SIGPOLICY_DEFAULT);
    assert_int_equal(lapis_config_set_main(&c, "signature_policy", "Legacy"), -EINVAL);
    assert_int_equal(lapis_config_set_main(&c, "signature_policy", ""), -EINVAL);
    assert_int_equal(c.repo.signature_policy, LAPIS_SIGPOLICY_DEFAULT);
    assert_int_equal(lapis_config_set_main(&c, "pinned_key_reset", "1"), 0);
    assert_int_equal(c.repo.pinned_key_reset, 1);

    lapis_config_clear(&c);
}

static void test_config_set_main_unknown_key(void **state)
{
    struct lapis_config c;
    lapis_config_defaults(&c);

    assert_int_equal(lapis_config_set_main(&c, "nosuchoption", "1"), -ENOENT);
    assert_int_equal(lapis_config_set_main(&c, "", "1"), -ENOENT);
    assert_int_equal(lapis_config_set_main(&c, "GPGCHECK", "1"), -ENOENT);
    /* Keys that only make sense in a repo section. */
    assert_int_equal(lapis_config_set_main(&c, "baseurl", "http://h/"), -ENOENT);
    assert_int_equal(lapis_config_set_main(&c, "name", "x"), -ENOENT);
    assert_int_equal(lapis_config_set_main(&c, "enabled", "1"), -ENOENT);
    assert_int_equal(lapis_config_set_main(&c, "priority", "1"), -ENOENT);
    assert_int_equal(c.repo.gpgcheck, 1);

    lapis_config_clear(&c);
}

static void test_config_set_main_bad_values(void **state)
{
    struct lapis_config c;
    lapis_config_defaults(&c);

    assert_int_equal(lapis_config_set_main(&c, "gpgcheck", "maybe"), -EINVAL);
    assert_int_equal(c.repo.gpgcheck, 1);
    assert_int_equal(lapis_config_set_main(&c, "gpgcheck", ""), -EINVAL);
    assert_int_equal(c.repo.gpgcheck, 1);
    assert_int_equal(lapis_config_set_main(&c, "metadata_expire", "soon"), -EINVAL);
    assert_int_equal(lapis_config_set_main(&c, "metadata_expire", "-5"), -EINVAL);
    assert_true(c.repo.metadata_expire == 172800);
    assert_int_equal(lapis_config_set_main(&c, "max_parallel_downloads", "0"), -EINVAL);
    assert_int_equal(lapis_config_set_main(&c, "max_parallel_downloads", "65"), -EINVAL);
    assert_int_equal(lapis_config_set_main(&c, "max_parallel_downloads", "many"), -EINVAL);
    assert_int_equal(c.max_parallel_downloads, 8);
    assert_int_equal(lapis_config_set_main(&c, "installonly_limit", "-1"), -EINVAL);
    assert_int_equal(c.installonly_limit, 3);
    assert_int_equal(lapis_config_set_main(&c, "timeout", "0"), -EINVAL);
    assert_int_equal(lapis_config_set_main(&c, "timeout", "never"), -EINVAL);
    assert_int_equal(lapis_config_set_main(&c, "timeout", "2d"), -EINVAL);
    assert_int_equal(lapis_config_set_main(&c, "retries", "1001"), -EINVAL);
    assert_int_equal(lapis_config_set_main(&c, "install_weak_deps", "2"), -EINVAL);
    assert_int_equal(c.install_weak_deps, 1);

    lapis_config_clear(&c);
}

static void test_config_lists(void **state)
{
    struct lapis_config c;
    lapis_config_defaults(&c);

    assert_int_equal(lapis_config_set_main(&c, "reposdir", "/a, /b\t/c,,/d\n/e  ,"), 0);
    assert_int_equal(strv_len(c.reposdir), 5);
    assert_string_equal(c.reposdir[0], "/a");
    assert_string_equal(c.reposdir[1], "/b");
    assert_string_equal(c.reposdir[2], "/c");
    assert_string_equal(c.reposdir[3], "/d");
    assert_string_equal(c.reposdir[4], "/e");
    /* A list option is replaced, not appended to. */
    assert_int_equal(lapis_config_set_main(&c, "reposdir", "/only"), 0);
    assert_int_equal(strv_len(c.reposdir), 1);
    assert_string_equal(c.reposdir[0], "/only");
    assert_int_equal(lapis_config_set_main(&c, "reposdir", ""), 0);
    assert_non_null(c.reposdir);
    assert_int_equal(strv_len(c.reposdir), 0);

    lapis_config_clear(&c);
}

static void test_config_installonlypkgs_appends(void **state)
{
    struct lapis_config c;
    lapis_config_defaults(&c);
    size_t n0 = strv_len(c.installonlypkgs);

    assert_int_equal(lapis_config_set_main(&c, "installonlypkgs", "kernel, foo-kmod foo-kmod,bar"), 0);
    assert_int_equal(strv_len(c.installonlypkgs), n0 + 2);
    assert_true(strv_contains(c.installonlypkgs, "kernel"));
    assert_true(strv_contains(c.installonlypkgs, "foo-kmod"));
    assert_true(strv_contains(c.installonlypkgs, "bar"));
    assert_string_equal(c.installonlypkgs[n0], "foo-kmod");
    assert_string_equal(c.installonlypkgs[n0 + 1], "bar");

    /* Again: still no duplicates, and the defaults are kept. */
    assert_int_equal(lapis_config_set_main(&c, "installonlypkgs", "bar\nbaz"), 0);
    assert_int_equal(strv_len(c.installonlypkgs), n0 + 3);
    assert_true(strv_contains(c.installonlypkgs, "kernel-core"));
    assert_true(strv_contains(c.installonlypkgs, "baz"));

    lapis_config_clear(&c);
}

static void test_config_exclude_replaced(void **state)
{
    struct lapis_config c;
    lapis_config_defaults(&c);

    assert_int_equal(lapis_config_set_main(&c, "exclude", "kernel* , firefox"), 0);
    assert_int_equal(strv_len(c.repo.exclude), 2);
    assert_string_equal(c.repo.exclude[0], "kernel*");
    assert_string_equal(c.repo.exclude[1], "firefox");
    assert_int_equal(lapis_config_set_main(&c, "exclude", "vim"), 0);
    assert_int_equal(strv_len(c.repo.exclude), 1);
    assert_string_equal(c.repo.exclude[0], "vim");
    /* excludepkgs is the same option */
    assert_int_equal(lapis_config_set_main(&c, "excludepkgs", "emacs nano"), 0);
    assert_int_equal(strv_len(c.repo.exclude), 2);
    assert_string_equal(c.repo.exclude[0], "emacs");
    assert_string_equal(c.repo.exclude[1], "nano");
    assert_int_equal(lapis_config_set_main(&c, "exclude", ""), 0);
    assert_int_equal(strv_len(c.repo.exclude), 0);

    lapis_config_clear(&c);
}

/* An empty cachedir cannot be used: it must be refused like any bad value
 * (dnf: "given path '' is not absolute"), not stored as NULL. */
static void test_config_empty_cachedir_rejected(void **state)
{
    struct lapis_config c;
    lapis_config_defaults(&c);

    int r = lapis_config_set_main(&c, "cachedir", "");
    bool kept = c.cachedir && strcmp(c.cachedir, "/var/cache/lapis") == 0;
    lapis_config_clear(&c);
    assert_int_equal(r, -EINVAL);
    assert_true(kept);
}

static void test_config_empty_sslcacert_unsets(void **state)
{
    struct lapis_config c;
    lapis_config_defaults(&c);

    assert_int_equal(lapis_config_set_main(&c, "sslcacert", "/ca.pem"), 0);
    assert_int_equal(lapis_config_set_main(&c, "sslcacert", ""), 0);
    assert_null(c.repo.sslcacert);
    lapis_config_clear(&c);
}

/* ======================================================================== */
/* repo ids and repo keys                                                    */
/* ======================================================================== */

static void test_repo_id_valid(void **state)
{
    assert_true(lapis_repo_id_valid("base"));
    assert_true(lapis_repo_id_valid("fedora-updates-testing"));
    assert_true(lapis_repo_id_valid("copr:copr.fedorainfracloud.org:user:proj"));
    assert_true(lapis_repo_id_valid("epel_9.x"));

    assert_false(lapis_repo_id_valid(""));
    assert_false(lapis_repo_id_valid("."));
    assert_false(lapis_repo_id_valid(".."));
    assert_false(lapis_repo_id_valid("bad/id"));
    assert_false(lapis_repo_id_valid("../etc"));
    assert_false(lapis_repo_id_valid("with space"));
    assert_false(lapis_repo_id_valid("tab\tid"));
    assert_false(lapis_repo_id_valid("star*"));
    assert_false(lapis_repo_id_valid("back\\slash"));
    assert_false(lapis_repo_id_valid("dollar$releasever"));

    char longid[102];
    memset(longid, 'a', 101);
    longid[101] = '\0';
    assert_false(lapis_repo_id_valid(longid));
    longid[100] = '\0';
    assert_true(lapis_repo_id_valid(longid));
}

static void test_repo_set_keys(void **state)
{
    lapis_ctx *ctx;
    struct lapis_config c;
    assert_int_equal(lapis_ctx_new(&ctx), 0);
    lapis_config_defaults(&c);
    struct lapis_repo *r = lapis_repo_new("base", &c.repo);

    /* Defaults from the repo and from [main]. */
    assert_string_equal(r->id, "base");
    assert_int_equal(r->enabled, 1);
    assert_int_equal(r->priority, 99);
    assert_int_equal(r->cost, 1000);
    assert_int_equal(r->opts.gpgcheck, 1);
    assert_string_equal(lapis_repo_name(r), "base");
    assert_string_equal(lapis_repo_baseurl(r), "");

    assert_int_equal(lapis_repo_set(ctx, r, "name", "Base OS"), 0);
    assert_string_equal(lapis_repo_name(r), "Base OS");
    assert_int_equal(lapis_repo_set(ctx, r, "baseurl", "http://a/ https://b/,file:///c/"), 0);
    assert_int_equal(strv_len(r->baseurls), 3);
    assert_string_equal(lapis_repo_baseurl(r), "http://a/\nhttps://b/\nfile:///c/");
    /* A new baseurl replaces the list and the cached text. */
    assert_int_equal(lapis_repo_set(ctx, r, "baseurl", "http://only/"), 0);
    assert_string_equal(lapis_repo_baseurl(r), "http://only/");
    /* An unsupported scheme anywhere in the list is refused and changes nothing. */
    assert_int_equal(lapis_repo_set(ctx, r, "baseurl", "http://ok/ rsync://nope/"), -EINVAL);
    assert_int_equal(lapis_repo_set(ctx, r, "baseurl", "/srv/repo"), -EINVAL);
    assert_string_equal(lapis_repo_baseurl(r), "http://only/");

    assert_int_equal(lapis_repo_set(ctx, r, "gpgkey", "file:///k1\nhttps://h/k2"), 0);
    assert_int_equal(strv_len(r->gpgkeys), 2);
    assert_int_equal(lapis_repo_set(ctx, r, "enabled", "0"), 0);
    assert_int_equal(r->enabled, 0);
    assert_int_equal(lapis_repo_set(ctx, r, "enabled", "perhaps"), -EINVAL);
    assert_int_equal(r->enabled, 0);

    assert_int_equal(lapis_repo_set(ctx, r, "priority", "1"), 0);
    assert_int_equal(r->priority, 1);
    /* Any integer, as dnf: also 0, negative and above 99. */
    static const char *const prios[] = { "0", "-5", "100", "2147483647", "-2147483647" };
    static const int prio_vals[] = { 0, -5, 100, 2147483647, -2147483647 };
    for (size_t i = 0; i < ARRAY_SIZE(prios); i++) {
        assert_int_equal(lapis_repo_set(ctx, r, "priority", prios[i]), 0);
        assert_int_equal(r->priority, prio_vals[i]);
    }
    assert_int_equal(lapis_repo_set(ctx, r, "priority", "99"), 0);
    assert_int_equal(lapis_repo_set(ctx, r, "priority", "high"), -EINVAL);
    assert_int_equal(lapis_repo_set(ctx, r, "priority", "2147483648"), -EINVAL);
    assert_int_equal(lapis_repo_set(ctx, r, "priority", "-2147483648"), -EINVAL);
    assert_int_equal(r->priority, 99);
    assert_int_equal(lapis_repo_set(ctx, r, "cost", "500"), 0);
    assert_int_equal(r->cost, 500);
    assert_int_equal(lapis_repo_set(ctx, r, "cost", "-1"), -EINVAL);

    /* Per-repo overrides of [main] options. */
    assert_int_equal(lapis_repo_set(ctx, r, "gpgcheck", "0"), 0);
    assert_int_equal(r->opts.gpgcheck, 0);
    assert_int_equal(c.repo.gpgcheck, 1); /* the defaults were copied, not shared */
    assert_int_equal(lapis_repo_set(ctx, r, "metadata_expire", "1d"), 0);
    assert_true(r->opts.metadata_expire == 86400);
    assert_int_equal(lapis_repo_set(ctx, r, "exclude", "a b"), 0);
    assert_int_equal(strv_len(r->opts.exclude), 2);
    assert_int_equal(strv_len(c.repo.exclude), 0);

    /* Keys dnf knows but lapis ignores, and keys nobody knows. */
    assert_int_equal(lapis_repo_set(ctx, r, "type", "rpm-md"), 0);
    assert_int_equal(lapis_repo_set(ctx, r, "countme", "1"), 0);
    assert_int_equal(lapis_repo_set(ctx, r, "metalink", ""), 0);
    assert_int_equal(lapis_repo_set(ctx, r, "mirrorlist", "http://h/ml"), 0);
    assert_int_equal(lapis_repo_set(ctx, r, "nosuchkey", "1"), -ENOENT);
    /* [main]-only keys are not repo keys. */
    assert_int_equal(lapis_repo_set(ctx, r, "cachedir", "/x"), -ENOENT);
    assert_int_equal(lapis_repo_set(ctx, r, "installonly_limit", "2"), -ENOENT);

    lapis_repo_free(r);
    lapis_config_clear(&c);
    lapis_ctx_free(ctx);
}

/* ======================================================================== */
/* End to end: lapis.conf + reposdir through the public API                 */
/* ======================================================================== */

struct env {
    char *dir;      /* temporary directory, removed at teardown */
    char *reposd;   /* <dir>/repos.d */
    char *conf;     /* <dir>/lapis.conf */
    lapis_ctx *ctx;
    char *log;      /* warnings, one per line */
};

static void log_cb(enum lapis_log_level lvl, const char *msg, void *ud)
{
    struct env *e = ud;
    char *n = xasprintf("%s%s\n", e->log ? e->log : "", msg);
    free(e->log);
    e->log = n;
}

static char *env_path(struct env *e, const char *rel)
{
    return path_join(e->dir, rel);
}

/* Write <dir>/<rel>, creating parent directories. */
static void put(struct env *e, const char *rel, const char *content)
{
    char *path = env_path(e, rel);
    char *parent = xstrdup(path);
    *strrchr(parent, '/') = '\0';
    assert_int_equal(mkdir_p(parent, 0755), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    assert_int_equal(fclose(f), 0);
    free(parent);
    free(path);
}

static lapis_ctx *new_ctx(struct env *e)
{
    lapis_ctx *ctx;
    assert_int_equal(lapis_ctx_new(&ctx), 0);
    lapis_ctx_set_log(ctx, log_cb, e);
    return ctx;
}

/* The usual settings: our lapis.conf and reposdir, releasever 9, x86_64. */
static void std_opts(struct env *e, lapis_ctx *ctx)
{
    char *opt = xasprintf("reposdir=%s", e->reposd);
    assert_int_equal(lapis_ctx_set_config_file(ctx, e->conf), 0);
    assert_int_equal(lapis_ctx_setopt(ctx, opt), 0);
    assert_int_equal(lapis_ctx_set_releasever(ctx, "9"), 0);
    assert_int_equal(lapis_ctx_set_arch(ctx, "x86_64"), 0);
    free(opt);
}

static int env_setup(void **state)
{
    struct env *e = xcalloc(1, sizeof(*e));
    char tmpl[] = "/tmp/lapis-config-test-XXXXXX";

    if (!mkdtemp(tmpl))
        return -1;
    e->dir = xstrdup(tmpl);
    e->reposd = env_path(e, "repos.d");
    e->conf = env_path(e, "lapis.conf");
    if (mkdir_p(e->reposd, 0755) < 0)
        return -1;
    put(e, "lapis.conf", "[main]\n");
    e->ctx = new_ctx(e);
    *state = e;
    return 0;
}

static int env_teardown(void **state)
{
    struct env *e = *state;
    lapis_ctx_free(e->ctx);
    rm_rf(e->dir, NULL);
    free(e->dir);
    free(e->reposd);
    free(e->conf);
    free(e->log);
    free(e);
    return 0;
}

static lapis_repo *find_repo(lapis_ctx *ctx, const char *id)
{
    for (size_t i = 0; i < lapis_repo_count(ctx); i++) {
        lapis_repo *r = lapis_repo_at(ctx, i);
        if (strcmp(lapis_repo_id(r), id) == 0)
            return r;
    }
    return NULL;
}

static lapis_repo *get_repo(lapis_ctx *ctx, const char *id)
{
    lapis_repo *r = find_repo(ctx, id);
    if (!r)
        print_error("repo '%s' not found\n", id);
    assert_non_null(r);
    return r;
}

static void setup_ok(struct env *e, lapis_ctx *ctx)
{
    int r = lapis_ctx_setup(ctx);
    if (r != 0)
        print_error("setup failed (%d): %s\n", r, lapis_ctx_error(ctx));
    assert_int_equal(r, 0);
}

static const char BASE_REPO[] =
    "# Base and updates, as a distribution ships them\n"
    "[base]\n"
    "name=Base OS $releasever - $basearch\n"
    "baseurl=http://mirror.example.com/el/$releasever/BaseOS/$basearch/os/\n"
    "gpgcheck=1\n"
    "priority=10\n"
    "\n"
    "[updates]\n"
    "name=Updates\n"
    "baseurl=http://a.example.com/el/${releasever}/updates/$basearch/\n"
    "        http://b.example.com/el/${releasever}/updates/$basearch/\n"
    "        https://c.example.com/el/$releasever/updates/$arch/\n"
    "enabled=1\n"
    "\n"
    "[extras]\n"
    "name=Extras\n"
    "baseurl=file:///srv/repos/extras-$releasever/\n"
    "enabled=0\n";

static void test_e2e_basic(void **state)
{
    struct env *e = *state;
    put(e, "lapis.conf", "[main]\nmetadata_expire=6h\ninstallonly_limit=5\n");
    put(e, "repos.d/base.repo", BASE_REPO);
    std_opts(e, e->ctx);
    setup_ok(e, e->ctx);

    assert_int_equal(lapis_repo_count(e->ctx), 3);
    assert_null(lapis_repo_at(e->ctx, 3));
    /* File order is kept. */
    assert_string_equal(lapis_repo_id(lapis_repo_at(e->ctx, 0)), "base");
    assert_string_equal(lapis_repo_id(lapis_repo_at(e->ctx, 1)), "updates");
    assert_string_equal(lapis_repo_id(lapis_repo_at(e->ctx, 2)), "extras");

    lapis_repo *base = get_repo(e->ctx, "base");
    assert_string_equal(lapis_repo_baseurl(base), "http://mirror.example.com/el/9/BaseOS/x86_64/os/");
    assert_string_equal(lapis_repo_name(base), "Base OS 9 - x86_64");
    assert_true(lapis_repo_enabled(base));
    assert_int_equal(lapis_repo_priority(base), 10);

    lapis_repo *upd = get_repo(e->ctx, "updates");
    assert_string_equal(lapis_repo_baseurl(upd),
                        "http://a.example.com/el/9/updates/x86_64/\n"
                        "http://b.example.com/el/9/updates/x86_64/\n"
                        "https://c.example.com/el/9/updates/x86_64/");
    assert_int_equal(strv_len(upd->baseurls), 3);
    assert_int_equal(lapis_repo_priority(upd), 99);
    assert_true(lapis_repo_enabled(upd));

    lapis_repo *ext = get_repo(e->ctx, "extras");
    assert_false(lapis_repo_enabled(ext));
    assert_string_equal(lapis_repo_baseurl(ext), "file:///srv/repos/extras-9/");

    /* [main] values reached the config and the repos. */
    assert_int_equal(e->ctx->conf.installonly_limit, 5);
    assert_true(base->opts.metadata_expire == 21600);
    assert_true(ext->opts.metadata_expire == 21600);

    /* No installroot: the host cachedir; per-repo dirs below it. */
    assert_string_equal(lapis_ctx_installroot(e->ctx), "/");
    assert_string_equal(lapis_ctx_cachedir(e->ctx), "/var/cache/lapis");
    assert_non_null(base->cachedir);
    assert_true(str_startswith(base->cachedir, "/var/cache/lapis/base-"));
    assert_string_not_equal(base->cachedir, upd->cachedir);
    assert_non_null(base->source);
    assert_true(str_endswith(base->source, "/repos.d/base.repo"));
}

static void test_e2e_setup_is_idempotent(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/base.repo", BASE_REPO);
    std_opts(e, e->ctx);
    setup_ok(e, e->ctx);
    setup_ok(e, e->ctx);
    assert_int_equal(lapis_repo_count(e->ctx), 3);
}

static void test_e2e_basearch_mapping(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/a.repo", "[a]\nbaseurl=http://h/$basearch/$arch/\n");

    std_opts(e, e->ctx);
    assert_int_equal(lapis_ctx_set_arch(e->ctx, "i686"), 0);
    setup_ok(e, e->ctx);
    assert_string_equal(lapis_repo_baseurl(get_repo(e->ctx, "a")), "http://h/i386/i686/");

    lapis_ctx *ctx = new_ctx(e);
    std_opts(e, ctx);
    assert_int_equal(lapis_ctx_set_arch(ctx, "armv7hl"), 0);
    setup_ok(e, ctx);
    assert_string_equal(lapis_repo_baseurl(get_repo(ctx, "a")), "http://h/armhfp/armv7hl/");
    lapis_ctx_free(ctx);
}

static void test_e2e_main_section_in_repo_file_ignored(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/a.repo",
        "stray=1\n"
        "[main]\n"
        "gpgcheck=0\n"
        "baseurl=http://evil.example.com/\n"
        "[base]\n"
        "baseurl=http://h/base/\n"
        "[main]\n"
        "priority=1\n");
    std_opts(e, e->ctx);
    setup_ok(e, e->ctx);

    assert_int_equal(lapis_repo_count(e->ctx), 1);
    assert_null(find_repo(e->ctx, "main"));
    lapis_repo *base = get_repo(e->ctx, "base");
    assert_string_equal(lapis_repo_baseurl(base), "http://h/base/");
    assert_int_equal(lapis_repo_priority(base), 99);
    /* [main] in a .repo file does not change the global defaults either. */
    assert_int_equal(base->opts.gpgcheck, 1);
    assert_int_equal(e->ctx->conf.repo.gpgcheck, 1);
    assert_contains(e->log, "outside a repo section");
}

static void test_e2e_sorted_order_and_duplicates(void **state)
{
    struct env *e = *state;
    /* Created in reverse order so directory order is unlikely to be sorted order. */
    put(e, "repos.d/30-c.repo", "[from-c]\nbaseurl=http://c/\n");
    put(e, "repos.d/20-b.repo",
        "[dup]\nbaseurl=http://b/\npriority=5\nenabled=0\n"
        "[from-b]\nbaseurl=http://b2/\n");
    put(e, "repos.d/10-a.repo",
        "[dup]\nbaseurl=http://a/\n"
        "[from-a]\nbaseurl=http://a2/\n");
    /* Not .repo files, or hidden: ignored. */
    put(e, "repos.d/40-d.repo.rpmnew", "[rpmnew]\nbaseurl=http://x/\n");
    put(e, "repos.d/.hidden.repo", "[hidden]\nbaseurl=http://x/\n");
    put(e, "repos.d/notes.txt", "this is not an ini file\n");
    std_opts(e, e->ctx);
    setup_ok(e, e->ctx);

    assert_int_equal(lapis_repo_count(e->ctx), 4);
    assert_string_equal(lapis_repo_id(lapis_repo_at(e->ctx, 0)), "dup");
    assert_string_equal(lapis_repo_id(lapis_repo_at(e->ctx, 1)), "from-a");
    assert_string_equal(lapis_repo_id(lapis_repo_at(e->ctx, 2)), "from-b");
    assert_string_equal(lapis_repo_id(lapis_repo_at(e->ctx, 3)), "from-c");

    /* The first definition wins entirely; the later one does not leak keys into it. */
    lapis_repo *dup = get_repo(e->ctx, "dup");
    assert_string_equal(lapis_repo_baseurl(dup), "http://a/");
    assert_int_equal(lapis_repo_priority(dup), 99);
    assert_true(lapis_repo_enabled(dup));
    assert_true(str_endswith(dup->source, "10-a.repo"));
    assert_contains(e->log, "more than once");
}

static void test_e2e_several_reposdirs(void **state)
{
    struct env *e = *state;
    put(e, "one.d/x.repo", "[one]\nbaseurl=http://1/\n");
    put(e, "two.d/x.repo", "[two]\nbaseurl=http://2/\n[one]\nbaseurl=http://dup/\n");
    char *opt = xasprintf("reposdir=%s/one.d, %s/missing.d %s/two.d", e->dir, e->dir, e->dir);
    std_opts(e, e->ctx);
    assert_int_equal(lapis_ctx_setopt(e->ctx, opt), 0); /* the later setopt wins */
    free(opt);
    setup_ok(e, e->ctx);

    assert_int_equal(lapis_repo_count(e->ctx), 2);
    assert_string_equal(lapis_repo_id(lapis_repo_at(e->ctx, 0)), "one");
    assert_string_equal(lapis_repo_id(lapis_repo_at(e->ctx, 1)), "two");
    assert_string_equal(lapis_repo_baseurl(get_repo(e->ctx, "one")), "http://1/");
}

static void test_e2e_setopt_repo(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/base.repo", BASE_REPO);
    put(e, "repos.d/z.repo", "[my.repo]\nbaseurl=http://m/\n");
    std_opts(e, e->ctx);
    assert_int_equal(lapis_ctx_setopt(e->ctx, "updates.enabled=0"), 0);
    assert_int_equal(lapis_ctx_setopt(e->ctx, "*.priority=5"), 0);
    assert_int_equal(lapis_ctx_setopt(e->ctx, "ext*.priority=7"), 0);
    assert_int_equal(lapis_ctx_setopt(e->ctx, "extras.enabled=1"), 0);
    /* A repo id containing dots: the key is after the last dot. */
    assert_int_equal(lapis_ctx_setopt(e->ctx, "my.repo.priority=3"), 0);
    assert_int_equal(lapis_ctx_setopt(e->ctx, "base.gpgcheck=0"), 0);
    assert_int_equal(lapis_ctx_setopt(e->ctx, "nosuchrepo.enabled=0"), 0);
    setup_ok(e, e->ctx);

    lapis_repo *base = get_repo(e->ctx, "base");
    lapis_repo *upd = get_repo(e->ctx, "updates");
    lapis_repo *ext = get_repo(e->ctx, "extras");
    assert_int_equal(lapis_repo_priority(base), 5);   /* overrides the file's 10 */
    assert_int_equal(lapis_repo_priority(upd), 5);
    assert_int_equal(lapis_repo_priority(ext), 7);
    assert_int_equal(lapis_repo_priority(get_repo(e->ctx, "my.repo")), 3);
    assert_true(lapis_repo_enabled(base));
    assert_false(lapis_repo_enabled(upd));
    assert_true(lapis_repo_enabled(ext));
    assert_int_equal(base->opts.gpgcheck, 0);
    assert_int_equal(upd->opts.gpgcheck, 1);
    /* A glob matching nothing is only worth a warning. */
    assert_contains(e->log, "nosuchrepo");
}

static void test_e2e_setopt_main(void **state)
{
    struct env *e = *state;
    put(e, "lapis.conf", "[main]\ngpgcheck=1\nmax_parallel_downloads=4\n");
    put(e, "repos.d/r.repo",
        "[plain]\nbaseurl=http://p/\n"
        "[strict]\nbaseurl=http://s/\ngpgcheck=1\n");
    std_opts(e, e->ctx);
    assert_int_equal(lapis_ctx_setopt(e->ctx, "gpgcheck=0"), 0);
    assert_int_equal(lapis_ctx_setopt(e->ctx, " max_parallel_downloads = 2 "), 0);
    setup_ok(e, e->ctx);

    /* --setopt beats lapis.conf; repos inherit it unless they set the key themselves. */
    assert_int_equal(e->ctx->conf.repo.gpgcheck, 0);
    assert_int_equal(e->ctx->conf.max_parallel_downloads, 2);
    assert_int_equal(get_repo(e->ctx, "plain")->opts.gpgcheck, 0);
    assert_int_equal(get_repo(e->ctx, "strict")->opts.gpgcheck, 1);
}

static void test_e2e_enable_disable_order(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/base.repo", BASE_REPO);

    /* --disablerepo='*' --enablerepo=base */
    std_opts(e, e->ctx);
    assert_int_equal(lapis_ctx_disable_repos(e->ctx, "*"), 0);
    assert_int_equal(lapis_ctx_enable_repos(e->ctx, "base"), 0);
    setup_ok(e, e->ctx);
    assert_true(lapis_repo_enabled(get_repo(e->ctx, "base")));
    assert_false(lapis_repo_enabled(get_repo(e->ctx, "updates")));
    assert_false(lapis_repo_enabled(get_repo(e->ctx, "extras")));

    /* The other way round: the later --disablerepo='*' wins. */
    lapis_ctx *ctx = new_ctx(e);
    std_opts(e, ctx);
    assert_int_equal(lapis_ctx_enable_repos(ctx, "extras"), 0);
    assert_int_equal(lapis_ctx_disable_repos(ctx, "*"), 0);
    setup_ok(e, ctx);
    for (size_t i = 0; i < lapis_repo_count(ctx); i++)
        assert_false(lapis_repo_enabled(lapis_repo_at(ctx, i)));
    lapis_ctx_free(ctx);

    /* Lists and globs; toggles come after --setopt=REPO.enabled. */
    ctx = new_ctx(e);
    std_opts(e, ctx);
    assert_int_equal(lapis_ctx_setopt(ctx, "base.enabled=0"), 0);
    assert_int_equal(lapis_ctx_enable_repos(ctx, "extras, base"), 0);
    assert_int_equal(lapis_ctx_disable_repos(ctx, "upd*"), 0);
    setup_ok(e, ctx);
    assert_true(lapis_repo_enabled(get_repo(ctx, "base")));
    assert_false(lapis_repo_enabled(get_repo(ctx, "updates")));
    assert_true(lapis_repo_enabled(get_repo(ctx, "extras")));
    lapis_ctx_free(ctx);

    /* An empty list is a usage error right away. */
    ctx = new_ctx(e);
    assert_int_equal(lapis_ctx_enable_repos(ctx, ""), -LAPIS_E_USAGE);
    assert_int_equal(lapis_ctx_disable_repos(ctx, " , "), -LAPIS_E_USAGE);
    lapis_ctx_free(ctx);
}

static void test_e2e_enable_unknown_repo(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/base.repo", BASE_REPO);
    std_opts(e, e->ctx);
    assert_int_equal(lapis_ctx_enable_repos(e->ctx, "nosuch-repo"), 0);
    assert_int_equal(lapis_ctx_setup(e->ctx), -LAPIS_E_CONFIG);
    assert_contains(lapis_ctx_error(e->ctx), "nosuch-repo");

    /* A glob that matches nothing, or disabling an unknown id, is not an error. */
    lapis_ctx *ctx = new_ctx(e);
    std_opts(e, ctx);
    assert_int_equal(lapis_ctx_enable_repos(ctx, "nosuch*"), 0);
    assert_int_equal(lapis_ctx_disable_repos(ctx, "nosuch-either"), 0);
    setup_ok(e, ctx);
    lapis_ctx_free(ctx);
}

static void expect_setup_error(struct env *e, lapis_ctx *ctx, int code)
{
    int r = lapis_ctx_setup(ctx);
    if (r != code)
        print_error("setup returned %d (%s), expected %d\n", r, lapis_ctx_error(ctx), code);
    assert_int_equal(r, code);
}

static void test_e2e_garbled_repo_file(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/base.repo", BASE_REPO);
    put(e, "repos.d/broken.repo",
        "[broken]\n"
        "baseurl=http://h/\n"
        "\n"
        "this line is garbage\n"
        "enabled=1\n");
    std_opts(e, e->ctx);
    expect_setup_error(e, e->ctx, -LAPIS_E_CONFIG);
    char *where = xasprintf("%s/broken.repo:4", e->reposd);
    assert_contains(lapis_ctx_error(e->ctx), where);
    free(where);
}

static void test_e2e_bad_value_in_repo_file(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/base.repo",
        "[base]\n"
        "name=Base\n"
        "baseurl=http://h/\n"
        "gpgcheck=maybe\n");
    std_opts(e, e->ctx);
    expect_setup_error(e, e->ctx, -LAPIS_E_CONFIG);
    char *where = xasprintf("%s/base.repo:4", e->reposd);
    assert_contains(lapis_ctx_error(e->ctx), where);
    assert_contains(lapis_ctx_error(e->ctx), "gpgcheck");
    assert_contains(lapis_ctx_error(e->ctx), "maybe");
    free(where);
}

static void test_e2e_bad_baseurl_scheme(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/base.repo",
        "[base]\n"
        "baseurl=http://ok.example.com/\n"
        "  rsync://old.example.com/\n");
    std_opts(e, e->ctx);
    expect_setup_error(e, e->ctx, -LAPIS_E_CONFIG);
    char *where = xasprintf("%s/base.repo:2", e->reposd);
    assert_contains(lapis_ctx_error(e->ctx), where);
    assert_contains(lapis_ctx_error(e->ctx), "baseurl");
    free(where);
}

static void test_e2e_bad_repo_id(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/base.repo",
        "[bad/id]\n"
        "baseurl=http://h/\n");
    std_opts(e, e->ctx);
    expect_setup_error(e, e->ctx, -LAPIS_E_CONFIG);
    assert_contains(lapis_ctx_error(e->ctx), "bad/id");
    assert_contains(lapis_ctx_error(e->ctx), "base.repo");

    lapis_ctx *ctx = new_ctx(e);
    put(e, "repos.d/base.repo", "[..]\nbaseurl=http://h/\n");
    std_opts(e, ctx);
    expect_setup_error(e, ctx, -LAPIS_E_CONFIG);
    lapis_ctx_free(ctx);
}

static void test_e2e_unknown_repo_key_is_a_warning(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/base.repo",
        "[base]\n"
        "baseurl=http://h/\n"
        "fancy_new_option=1\n"
        "type=rpm-md\n");
    std_opts(e, e->ctx);
    setup_ok(e, e->ctx);
    assert_contains(e->log, "fancy_new_option");
    assert_not_contains(e->log, "'type'");
}

static void test_e2e_bad_setopt(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/base.repo", BASE_REPO);

    /* Malformed assignments are refused immediately. */
    assert_int_equal(lapis_ctx_setopt(e->ctx, "gpgcheck"), -LAPIS_E_USAGE);
    assert_int_equal(lapis_ctx_setopt(e->ctx, "=1"), -LAPIS_E_USAGE);

    static const char *const bad[] = {
        "nosuchoption=1",
        "gpgcheck=maybe",
        "max_parallel_downloads=0",
        "base.nosuchoption=1",
        "base.priority=1.5",
        "*.enabled=perhaps",
        "base.baseurl=rsync://h/",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        lapis_ctx *ctx = new_ctx(e);
        std_opts(e, ctx);
        assert_int_equal(lapis_ctx_setopt(ctx, bad[i]), 0);
        int r = lapis_ctx_setup(ctx);
        if (r != -LAPIS_E_USAGE)
            print_error("--setopt=%s: setup returned %d (%s)\n", bad[i], r, lapis_ctx_error(ctx));
        assert_int_equal(r, -LAPIS_E_USAGE);
        lapis_ctx_free(ctx);
    }

    lapis_ctx *ctx = new_ctx(e);
    std_opts(e, ctx);
    assert_int_equal(lapis_ctx_setopt(ctx, "nosuchoption=1"), 0);
    assert_int_equal(lapis_ctx_setup(ctx), -LAPIS_E_USAGE);
    assert_contains(lapis_ctx_error(ctx), "nosuchoption");
    lapis_ctx_free(ctx);
}

static void test_e2e_missing_config_file(void **state)
{
    struct env *e = *state;
    char *missing = env_path(e, "does-not-exist.conf");
    std_opts(e, e->ctx);
    assert_int_equal(lapis_ctx_set_config_file(e->ctx, missing), 0);
    expect_setup_error(e, e->ctx, -LAPIS_E_CONFIG);
    assert_contains(lapis_ctx_error(e->ctx), missing);
    free(missing);
}

static void test_e2e_config_file_values(void **state)
{
    struct env *e = *state;
    put(e, "lapis.conf",
        "# lapis.conf\n"
        "[main]\n"
        "gpgcheck=0\n"
        "exclude=firefox thunderbird\n"
        "installonlypkgs=my-kmod\n"
        "max_parallel_downloads: 3\n"
        "some_future_option=1\n"
        "[other]\n"
        "best=0\n");
    put(e, "repos.d/r.repo",
        "[inherits]\nbaseurl=http://i/\n"
        "[own]\nbaseurl=http://o/\nexclude=kernel*\ngpgcheck=1\n");
    std_opts(e, e->ctx);
    setup_ok(e, e->ctx);

    struct lapis_config *c = &e->ctx->conf;
    assert_int_equal(c->repo.gpgcheck, 0);
    assert_int_equal(c->max_parallel_downloads, 3);
    assert_true(strv_contains(c->installonlypkgs, "my-kmod"));
    assert_true(strv_contains(c->installonlypkgs, "kernel"));
    assert_int_equal(c->best, 1); /* [other] is not [main] */
    assert_contains(e->log, "some_future_option");

    lapis_repo *inh = get_repo(e->ctx, "inherits");
    lapis_repo *own = get_repo(e->ctx, "own");
    assert_int_equal(inh->opts.gpgcheck, 0);
    assert_int_equal(strv_len(inh->opts.exclude), 2);
    assert_string_equal(inh->opts.exclude[0], "firefox");
    assert_int_equal(own->opts.gpgcheck, 1);
    assert_int_equal(strv_len(own->opts.exclude), 1);
    assert_string_equal(own->opts.exclude[0], "kernel*");
}

static void test_e2e_config_file_errors(void **state)
{
    struct env *e = *state;
    put(e, "lapis.conf", "[main]\ngpgcheck=1\nthis is not ini\n");
    std_opts(e, e->ctx);
    expect_setup_error(e, e->ctx, -LAPIS_E_CONFIG);
    char *where = xasprintf("%s:3", e->conf);
    assert_contains(lapis_ctx_error(e->ctx), where);
    free(where);

    put(e, "lapis.conf", "[main]\n\ninstallonly_limit=lots\n");
    lapis_ctx *ctx = new_ctx(e);
    std_opts(e, ctx);
    expect_setup_error(e, ctx, -LAPIS_E_CONFIG);
    where = xasprintf("%s:3", e->conf);
    assert_contains(lapis_ctx_error(ctx), where);
    assert_contains(lapis_ctx_error(ctx), "installonly_limit");
    free(where);
    lapis_ctx_free(ctx);
}

static void test_e2e_nogpgcheck(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/r.repo", "[r]\nbaseurl=http://r/\ngpgcheck=1\nrepo_gpgcheck=1\n");
    std_opts(e, e->ctx);
    lapis_ctx_set_nogpgcheck(e->ctx, true);
    setup_ok(e, e->ctx);
    lapis_repo *r = get_repo(e->ctx, "r");
    assert_int_equal(r->opts.gpgcheck, 0);
    assert_int_equal(r->opts.repo_gpgcheck, 0);

    lapis_ctx *ctx = new_ctx(e);
    std_opts(e, ctx);
    setup_ok(e, ctx);
    r = get_repo(ctx, "r");
    assert_int_equal(r->opts.gpgcheck, 1);
    assert_int_equal(r->opts.repo_gpgcheck, 1);
    lapis_ctx_free(ctx);
}

/* dnf substitutes $releasever/$basearch/$arch in [main] values too (the
 * classic "cachedir=/var/cache/yum/$basearch/$releasever"), not only in repos. */
static void test_e2e_vars_in_main_config(void **state)
{
    struct env *e = *state;
    put(e, "lapis.conf", "[main]\ncachedir=/srv/cache/$basearch/${releasever}\n");
    std_opts(e, e->ctx);
    setup_ok(e, e->ctx);
    assert_string_equal(lapis_ctx_cachedir(e->ctx), "/srv/cache/x86_64/9");
}

/* lapis_load() and lapis_clean() call lapis_ctx_setup() again, so a failed
 * setup can be re-run: it must fail the same way, without leaking (ASan)
 * and without applying the installroot to cachedir a second time. */
static void test_e2e_setup_retry_after_failure(void **state)
{
    struct env *e = *state;
    char *root = env_path(e, "root");
    assert_int_equal(mkdir_p(root, 0755), 0);
    put(e, "repos.d/base.repo", BASE_REPO);
    std_opts(e, e->ctx);
    assert_int_equal(lapis_ctx_set_installroot(e->ctx, root), 0);
    assert_int_equal(lapis_ctx_enable_repos(e->ctx, "nosuch"), 0);

    assert_int_equal(lapis_ctx_setup(e->ctx), -LAPIS_E_CONFIG);
    assert_int_equal(lapis_ctx_setup(e->ctx), -LAPIS_E_CONFIG);
    assert_contains(lapis_ctx_error(e->ctx), "nosuch");
    assert_int_equal(lapis_repo_count(e->ctx), 3);
    assert_int_equal(lapis_load(e->ctx, LAPIS_LOAD_NO_SYSTEM | LAPIS_LOAD_NO_REPOS), -LAPIS_E_CONFIG);

    char *want = xasprintf("%s/var/cache/lapis", root);
    bool same = strcmp(lapis_ctx_cachedir(e->ctx), want) == 0;
    if (!same)
        print_error("cachedir after retries: %s\n", lapis_ctx_cachedir(e->ctx));
    free(want);
    free(root);
    assert_true(same);
}

/* ---- --installroot ------------------------------------------------------ */

static void test_e2e_installroot_cachedir(void **state)
{
    struct env *e = *state;
    char *root = env_path(e, "root");
    assert_int_equal(mkdir_p(root, 0755), 0);
    put(e, "repos.d/r.repo", "[r]\nbaseurl=http://r/\n");

    std_opts(e, e->ctx);
    assert_int_equal(lapis_ctx_set_installroot(e->ctx, root), 0);
    setup_ok(e, e->ctx);
    char *want = xasprintf("%s/var/cache/lapis", root);
    assert_string_equal(lapis_ctx_installroot(e->ctx), root);
    assert_string_equal(lapis_ctx_cachedir(e->ctx), want);
    char *want_repo = xasprintf("%s/r-", want);
    assert_true(str_startswith(get_repo(e->ctx, "r")->cachedir, want_repo));
    free(want_repo);

    /* An explicit --setopt=cachedir is a host path and stays as given. */
    lapis_ctx *ctx = new_ctx(e);
    std_opts(e, ctx);
    assert_int_equal(lapis_ctx_set_installroot(ctx, root), 0);
    assert_int_equal(lapis_ctx_setopt(ctx, "cachedir=/x"), 0);
    setup_ok(e, ctx);
    assert_string_equal(lapis_ctx_cachedir(ctx), "/x");
    lapis_ctx_free(ctx);

    /* A cachedir from lapis.conf is inside the root like the default. */
    put(e, "lapis.conf", "[main]\ncachedir=/srv/lapis-cache\n");
    ctx = new_ctx(e);
    std_opts(e, ctx);
    assert_int_equal(lapis_ctx_set_installroot(ctx, root), 0);
    setup_ok(e, ctx);
    free(want);
    want = xasprintf("%s/srv/lapis-cache", root);
    assert_string_equal(lapis_ctx_cachedir(ctx), want);
    lapis_ctx_free(ctx);

    free(want);
    free(root);
}

static void test_e2e_installroot_reposdir(void **state)
{
    struct env *e = *state;
    char *root = env_path(e, "root");
    put(e, "root/etc/yum.repos.d/in-root.repo",
        "[rootrepo]\nbaseurl=http://root.example.com/$releasever/$basearch/\n");
    put(e, "root/etc/lapis/repos.d/lapis.repo", "[rootrepo2]\nbaseurl=http://root2/\n");
    put(e, "root/etc/lapis/lapis.conf", "[main]\nmax_parallel_downloads=3\n");
    put(e, "repos.d/host.repo", "[hostrepo]\nbaseurl=http://host/\n");

    /* No -c and no --setopt=reposdir: the root's config and reposdirs are used. */
    assert_int_equal(lapis_ctx_set_releasever(e->ctx, "9"), 0);
    assert_int_equal(lapis_ctx_set_arch(e->ctx, "x86_64"), 0);
    assert_int_equal(lapis_ctx_set_installroot(e->ctx, root), 0);
    setup_ok(e, e->ctx);
    assert_int_equal(e->ctx->conf.max_parallel_downloads, 3);
    assert_int_equal(lapis_repo_count(e->ctx), 2);
    assert_string_equal(lapis_repo_id(lapis_repo_at(e->ctx, 0)), "rootrepo");
    assert_string_equal(lapis_repo_id(lapis_repo_at(e->ctx, 1)), "rootrepo2");
    assert_string_equal(lapis_repo_baseurl(get_repo(e->ctx, "rootrepo")),
                        "http://root.example.com/9/x86_64/");
    assert_null(find_repo(e->ctx, "hostrepo"));

    /* An explicit --setopt=reposdir is a host path, even with an installroot. */
    lapis_ctx *ctx = new_ctx(e);
    std_opts(e, ctx);
    assert_int_equal(lapis_ctx_set_installroot(ctx, root), 0);
    setup_ok(e, ctx);
    assert_int_equal(lapis_repo_count(ctx), 1);
    assert_non_null(find_repo(ctx, "hostrepo"));
    lapis_ctx_free(ctx);

    free(root);
}

static void test_e2e_installroot_reposdir_from_root_config(void **state)
{
    struct env *e = *state;
    char *root = env_path(e, "root");
    /* reposdir set in the root's lapis.conf is looked up inside the root. */
    put(e, "root/etc/lapis/lapis.conf", "[main]\nreposdir=/etc/custom.repos.d\n");
    put(e, "root/etc/custom.repos.d/c.repo", "[custom]\nbaseurl=http://c/\n");
    assert_int_equal(lapis_ctx_set_releasever(e->ctx, "9"), 0);
    assert_int_equal(lapis_ctx_set_arch(e->ctx, "x86_64"), 0);
    assert_int_equal(lapis_ctx_set_installroot(e->ctx, root), 0);
    setup_ok(e, e->ctx);
    assert_int_equal(lapis_repo_count(e->ctx), 1);
    assert_non_null(find_repo(e->ctx, "custom"));
    free(root);
}

static void test_e2e_installroot_args(void **state)
{
    struct env *e = *state;
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));

    assert_string_equal(lapis_ctx_installroot(e->ctx), "/");
    assert_int_equal(lapis_ctx_set_installroot(e->ctx, ""), -LAPIS_E_USAGE);
    assert_int_equal(lapis_ctx_set_installroot(e->ctx, NULL), -LAPIS_E_USAGE);
    assert_int_equal(lapis_ctx_set_installroot(e->ctx, "some/rel/root"), 0);
    const char *got = lapis_ctx_installroot(e->ctx);
    assert_true(got[0] == '/');
    assert_true(str_startswith(got, cwd));
    assert_true(str_endswith(got, "/some/rel/root"));
}

/* ---- empty cachedir (see test_config_empty_cachedir_rejected) ------------ */

enum { CHILD_OK = 10, CHILD_SETUP_SUCCEEDED = 11, CHILD_WRONG_CODE = 12 };

/* Run fn in a child process so that a crash fails only this test.
 * Returns the child's exit status, or 128 + signal. */
static int run_in_child(int (*fn)(struct env *), struct env *e)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka's handlers would longjmp back into the test runner: crash for real. */
        static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS };
        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
            signal(sigs[i], SIG_DFL);
        _exit(fn(e));
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const char *child_status(int st)
{
    switch (st) {
    case CHILD_OK: return "ok";
    case CHILD_SETUP_SUCCEEDED: return "setup accepted an empty cachedir";
    case CHILD_WRONG_CODE: return "setup failed with an unexpected code";
    default: return "crashed";
    }
}

static int child_empty_cachedir_setopt(struct env *e)
{
    lapis_ctx *ctx;
    char *opt = xasprintf("reposdir=%s", e->reposd);
    assert_int_equal(lapis_ctx_new(&ctx), 0);
    assert_int_equal(lapis_ctx_set_config_file(ctx, e->conf), 0);
    assert_int_equal(lapis_ctx_setopt(ctx, opt), 0);
    assert_int_equal(lapis_ctx_set_releasever(ctx, "9"), 0);
    assert_int_equal(lapis_ctx_set_arch(ctx, "x86_64"), 0);
    assert_int_equal(lapis_ctx_setopt(ctx, "cachedir="), 0);
    int r = lapis_ctx_setup(ctx);
    return r == 0 ? CHILD_SETUP_SUCCEEDED : r == -LAPIS_E_USAGE ? CHILD_OK : CHILD_WRONG_CODE;
}

static int child_empty_cachedir_conf_installroot(struct env *e)
{
    lapis_ctx *ctx;
    char *opt = xasprintf("reposdir=%s", e->reposd);
    char *root = path_join(e->dir, "root");
    assert_int_equal(lapis_ctx_new(&ctx), 0);
    assert_int_equal(lapis_ctx_set_config_file(ctx, e->conf), 0);
    assert_int_equal(lapis_ctx_setopt(ctx, opt), 0);
    assert_int_equal(lapis_ctx_set_releasever(ctx, "9"), 0);
    assert_int_equal(lapis_ctx_set_arch(ctx, "x86_64"), 0);
    assert_int_equal(lapis_ctx_set_installroot(ctx, root), 0);
    int r = lapis_ctx_setup(ctx);
    return r == 0 ? CHILD_SETUP_SUCCEEDED : r == -LAPIS_E_CONFIG ? CHILD_OK : CHILD_WRONG_CODE;
}

/* --setopt=cachedir= must be refused as a bad value (LAPIS_E_USAGE). */
static void test_e2e_empty_cachedir_setopt(void **state)
{
    struct env *e = *state;
    put(e, "repos.d/r.repo", "[r]\nbaseurl=http://r/\n");
    int st = run_in_child(child_empty_cachedir_setopt, e);
    if (st != CHILD_OK)
        print_error("--setopt=cachedir=: %s (status %d)\n", child_status(st), st);
    assert_int_equal(st, CHILD_OK);
}

/* "cachedir=" in lapis.conf with --installroot must be a config error, not a crash. */
static void test_e2e_empty_cachedir_conf_installroot(void **state)
{
    struct env *e = *state;
    put(e, "lapis.conf", "[main]\ncachedir=\n");
    put(e, "repos.d/r.repo", "[r]\nbaseurl=http://r/\n");
    put(e, "root/.keep", "");
    int st = run_in_child(child_empty_cachedir_conf_installroot, e);
    if (st != CHILD_OK)
        print_error("cachedir= in lapis.conf + installroot: %s (status %d)\n", child_status(st), st);
    assert_int_equal(st, CHILD_OK);
}

#define E2E(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_parse_seconds),
        cmocka_unit_test(test_parse_seconds_invalid),
        cmocka_unit_test(test_parse_seconds_uppercase_units_like_dnf),
        cmocka_unit_test(test_parse_seconds_fractions_like_dnf),
        cmocka_unit_test(test_parse_int),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_set_main_known_keys),
        cmocka_unit_test(test_config_set_main_unknown_key),
        cmocka_unit_test(test_config_set_main_bad_values),
        cmocka_unit_test(test_config_lists),
        cmocka_unit_test(test_config_installonlypkgs_appends),
        cmocka_unit_test(test_config_exclude_replaced),
        cmocka_unit_test(test_config_empty_cachedir_rejected),
        cmocka_unit_test(test_config_empty_sslcacert_unsets),
        cmocka_unit_test(test_repo_id_valid),
        cmocka_unit_test(test_repo_set_keys),
        E2E(test_e2e_basic),
        E2E(test_e2e_setup_is_idempotent),
        E2E(test_e2e_basearch_mapping),
        E2E(test_e2e_main_section_in_repo_file_ignored),
        E2E(test_e2e_sorted_order_and_duplicates),
        E2E(test_e2e_several_reposdirs),
        E2E(test_e2e_setopt_repo),
        E2E(test_e2e_setopt_main),
        E2E(test_e2e_enable_disable_order),
        E2E(test_e2e_enable_unknown_repo),
        E2E(test_e2e_garbled_repo_file),
        E2E(test_e2e_bad_value_in_repo_file),
        E2E(test_e2e_bad_baseurl_scheme),
        E2E(test_e2e_bad_repo_id),
        E2E(test_e2e_unknown_repo_key_is_a_warning),
        E2E(test_e2e_bad_setopt),
        E2E(test_e2e_missing_config_file),
        E2E(test_e2e_config_file_values),
        E2E(test_e2e_config_file_errors),
        E2E(test_e2e_nogpgcheck),
        E2E(test_e2e_vars_in_main_config),
        E2E(test_e2e_setup_retry_after_failure),
        E2E(test_e2e_installroot_cachedir),
        E2E(test_e2e_installroot_reposdir),
        E2E(test_e2e_installroot_reposdir_from_root_config),
        E2E(test_e2e_installroot_args),
        E2E(test_e2e_empty_cachedir_setopt),
        E2E(test_e2e_empty_cachedir_conf_installroot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
