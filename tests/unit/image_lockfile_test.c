/*
 * Unit tests for the image lock file (src/image/lockfile.c): write → read
 * gives the same packages, a rewrite is byte-identical, the text is canonical
 * (sorted keys, two-space indent, trailing newline), and bad locks are
 * refused with one message naming the file and the field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "image/image.h"
#include "lapis/common.h"

#define HEX_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static char tmpdir[] = "/tmp/lapis-image-lock-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rm_rf(tmpdir, NULL) < 0 ? -1 : 0;
}

static struct lapis_image_pkg pkgs[] = {
    { .name = "bash", .epoch = 0, .version = "5.2.15", .release = "3.td12", .arch = "x86_64",
      .repo = "testdist", .sha256 = HEX_A, .license = "GPL-3.0-or-later", .vendor = NULL,
      .sourcerpm = "bash-5.2.15-3.td12.src.rpm", .url = "https://www.gnu.org/software/bash/",
      .installsize = 7000000, .buildtime = 1700000000 },
    { .name = "we\"ird\\pkg", .epoch = 3, .version = "1", .release = "1", .arch = "noarch",
      .repo = "extra", .sha256 = HEX_B, .license = "MIT", .vendor = "Acme\tInc\n",
      .sourcerpm = "w-1-1.src.rpm", .url = "", .installsize = 9007199254740991ull,
      .buildtime = 4102444800ull },
};

static char *path_of(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

static void assert_same_pkg(const struct lapis_image_pkg *a, const struct lapis_image_pkg *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->epoch, b->epoch);
    assert_string_equal(a->version, b->version);
    assert_string_equal(a->release, b->release);
    assert_string_equal(a->arch, b->arch);
    assert_string_equal(a->repo, b->repo);
    assert_string_equal(a->sha256, b->sha256);
    assert_string_equal(a->license, b->license);
    if (a->vendor || b->vendor)
        assert_string_equal(a->vendor, b->vendor);
    assert_string_equal(a->sourcerpm, b->sourcerpm);
    assert_string_equal(a->url, b->url);
    assert_int_equal(a->installsize, b->installsize);
    assert_int_equal(a->buildtime, b->buildtime);
}

static void test_round_trip(void **state)
{
    struct lapis_image_lock l = { .config_sha256 = HEX_B, .pkgs = pkgs, .npkgs = ARRAY_SIZE(pkgs) };
    _cleanup_free_ char *p1 = path_of("a.lock"), *p2 = path_of("b.lock");
    _cleanup_free_ char *t1 = NULL, *t2 = NULL;
    struct lapis_diag d = { 0 };
    struct lapis_image_lock *back = NULL;
    size_t n1, n2;

    (void)state;
    assert_int_equal(lapis_image_lock_write(&d, p1, &l), 0);
    assert_int_equal(lapis_image_lock_read(&d, p1, &back), 0);
    assert_string_equal(back->config_sha256, HEX_B);
    assert_int_equal(back->npkgs, ARRAY_SIZE(pkgs));
    for (size_t i = 0; i < back->npkgs; i++)
        assert_same_pkg(&back->pkgs[i], &pkgs[i]);
    assert_int_equal(lapis_image_lock_write(&d, p2, back), 0);
    assert_int_equal(read_file(p1, 1 << 20, &t1, &n1), 0);
    assert_int_equal(read_file(p2, 1 << 20, &t2, &n2), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(t1, t2, n1);
    lapis_image_lock_free(back);
}

static void test_canonical_text(void **state)
{
    struct lapis_image_lock l = { .config_sha256 = HEX_A, .pkgs = pkgs, .npkgs = 1 };
    _cleanup_free_ char *p = path_of("c.lock"), *text = NULL;
    struct lapis_diag d = { 0 };
    size_t n;
    static const char want[] =
        "{\n"
        "  \"configSha256\": \"" HEX_A "\",\n"
        "  \"lockVersion\": 1,\n"
        "  \"packages\": [\n"
        "    {\n"
        "      \"arch\": \"x86_64\",\n"
        "      \"buildtime\": 1700000000,\n"
        "      \"epoch\": 0,\n"
        "      \"installsize\": 7000000,\n"
        "      \"license\": \"GPL-3.0-or-later\",\n"
        "      \"name\": \"bash\",\n"
        "      \"release\": \"3.td12\",\n"
        "      \"repo\": \"testdist\",\n"
        "      \"sha256\": \"" HEX_A "\",\n"
        "      \"sourcerpm\": \"bash-5.2.15-3.td12.src.rpm\",\n"
        "      \"url\": \"https://www.gnu.org/software/bash/\",\n"
        "      \"vendor\": null,\n"
        "      \"version\": \"5.2.15\"\n"
        "    }\n"
        "  ]\n"
        "}\n";

    (void)state;
    assert_int_equal(lapis_image_lock_write(&d, p, &l), 0);
    assert_int_equal(read_file(p, 1 << 20, &text, &n), 0);
    assert_string_equal(text, want);
    l.npkgs = 0;
    assert_int_equal(lapis_image_lock_write(&d, p, &l), 0);
    free(text);
    assert_int_equal(read_file(p, 1 << 20, &text, &n), 0);
    assert_string_equal(text, "{\n  \"configSha256\": \"" HEX_A "\",\n  \"lockVersion\": 1,\n  \"packages\": []\n}\n");
}

static const char good_pkg[] =
    "\"arch\":\"x86_64\",\"buildtime\":1,\"epoch\":0,\"installsize\":1,\"license\":\"MIT\","
    "\"name\":\"a\",\"release\":\"1\",\"repo\":\"r\",\"sha256\":\"" HEX_A "\",\"sourcerpm\":null,"
    "\"url\":null,\"vendor\":null,\"version\":\"1\"";

/* text with "@PKG" replaced by the fields of a good package */
static char *with_pkg(const char *text)
{
    const char *at = strstr(text, "@PKG");

    if (!at)
        return xstrdup(text);
    return xasprintf("%.*s%s%s", (int)(at - text), text, good_pkg, at + 4);
}

static void test_bad_locks(void **state)
{
    static const struct { const char *text, *want; } cases[] = {
        { "not json", "not valid JSON" },
        { "[]", ": expected a JSON object" },
        { "{\"configSha256\":\"" HEX_A "\",\"packages\":[]}", "lockVersion: missing" },
        { "{\"lockVersion\":2,\"configSha256\":\"" HEX_A "\",\"packages\":[]}", "lockVersion: unsupported" },
        { "{\"lockVersion\":1,\"configSha256\":\"xyz\",\"packages\":[]}", "configSha256: expected 64" },
        { "{\"lockVersion\":1,\"configSha256\":\"" HEX_A "\",\"packages\":{}}", "packages: expected a list" },
        { "{\"lockVersion\":1,\"configSha256\":\"" HEX_A "\",\"packages\":[], \"x\":1}", "x: unknown key" },
        { "{\"lockVersion\":1,\"configSha256\":\"" HEX_A "\",\"packages\":[{\"name\":1}]}",
          "packages[0].name: expected a string" },
        { "{\"lockVersion\":1,\"configSha256\":\"" HEX_A "\",\"packages\":[{@PKG,\"extra\":1}]}",
          "packages[0].extra: unknown key" },
        { "{\"lockVersion\":1,\"configSha256\":\"" HEX_A "\",\"packages\":[{@PKG},{\"name\":\"b\"}]}",
          "packages[1].epoch: missing" },
    };
    _cleanup_free_ char *p = path_of("bad.lock");

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *text = with_pkg(cases[i].text);
        _cleanup_free_ char *want = xasprintf("%s: ", p);
        struct lapis_diag d = { 0 };
        struct lapis_image_lock *l = NULL;

        assert_int_equal(write_file_atomic(p, text, strlen(text)), 0);
        assert_int_equal(lapis_image_lock_read(&d, p, &l), -LAPIS_E_CONFIG);
        assert_null(l);
        if (strncmp(lapis_diag_error(&d), want, strlen(want)) || !strstr(lapis_diag_error(&d), cases[i].want)) {
            print_error("case %zu: want \"%s\", got \"%s\"\n", i, cases[i].want, lapis_diag_error(&d));
            fail();
        }
        lapis_diag_clear(&d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_canonical_text),
        cmocka_unit_test(test_bad_locks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
