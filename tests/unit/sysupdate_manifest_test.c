/*
 * Unit tests for the host updater's parsers (src/sysupdate): version order
 * (rpm's rules, what downgrade refusal rests on), version shape (a version
 * sits in a UKI name and a URL), and the strict manifest, index and state
 * parsers: each malformed input refused, with its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sysupdate/sysupdate.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_version_cmp(void **state)
{
    static const struct { const char *a, *b; int want; } cases[] = {
        { "1.0", "1.0", 0 }, { "2.0", "1.0", 1 }, { "1.10", "1.9", 1 }, { "1.0", "1.0.1", -1 },
        { "1.01", "1.1", 0 }, { "1.0~rc1", "1.0", -1 }, { "1.0a", "1.0", 1 }, { "1.0", "1a", 1 },
        { "10", "9", 1 }, { "2.0_1", "2.0.1", 0 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(su_version_cmp(cases[i].a, cases[i].b), cases[i].want);
        assert_int_equal(su_version_cmp(cases[i].b, cases[i].a), -cases[i].want);
    }
}

static void test_version_valid(void **state)
{
    (void)state;
    assert_true(su_version_valid("2.0"));
    assert_true(su_version_valid("2024.12.1~rc1"));
    assert_false(su_version_valid("2.0+3"));      /* systemd-boot's counter separator */
    assert_false(su_version_valid("2.0-1"));
    assert_false(su_version_valid("../etc"));
    assert_false(su_version_valid("v2"));
    assert_false(su_version_valid(""));
}

static const char *const MANIFEST =
    "lapis-bundle 1\nversion 2.0\narch x86_64\nmin-from-version 1.0\n"
    "verity-root-hash " H64 "\nverity-salt " H64 "\nverity-block-size 4096\nchunk-size 8192\n"
    "payload usr usr.zst 16384 " H64 " 300 " H64 "\nchunk usr 100 " H64 "\nchunk usr 200 " H64 "\n"
    "payload usr-verity usr-verity.zst 4096 " H64 " 50 " H64 "\nchunk usr-verity 50 " H64 "\n"
    "payload uki uki.zst 10 " H64 " 20 " H64 "\nchunk uki 20 " H64 "\n";

static void test_manifest_ok(void **state)
{
    struct su_manifest m;
    (void)state;
    assert_int_equal(su_manifest_parse(NULL, MANIFEST, &m), 0);
    assert_string_equal(m.version, "2.0");
    assert_string_equal(m.min_from, "1.0");
    assert_int_equal(m.p[SU_USR].nchunks, 2);
    assert_int_equal(m.p[SU_USR].chunks[1].zoff, 100);
    assert_int_equal(m.p[SU_UKI].size, 10);
    su_manifest_clear(&m);
}

/* One edit of the good manifest each, every one refused. */
static void test_manifest_refused(void **state)
{
    static const struct { const char *from, *to; } edits[] = {
        { "lapis-bundle 1", "lapis-bundle 2" },
        { "version 2.0", "version 2.0+1" },
        { "arch x86_64\n", "arch x86_64\narch aarch64\n" },           /* repeated */
        { "chunk-size 8192", "chunk-size 100" },
        { "verity-block-size 4096", "verity-block-size 512" },
        { "payload usr usr.zst", "payload usr ../usr.zst" },          /* leaves the bundle */
        { "chunk usr 200", "chunk usr 201" },                        /* chunks overrun zsize */
        { "chunk usr 200 " H64 "\n", "" },                           /* chunks do not cover it */
        { "16384", "16385" },                                        /* not whole verity blocks */
        { "payload uki uki.zst 10", "payload uki uki.zst -10" },
        { "min-from-version 1.0\n", "min-from-version 1.0\nsurprise yes\n" },
        { " 20 " H64 "\nchunk uki 20 ", " 20000 " H64 "\nchunk uki 20000 " }, /* frame > zstd bound */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char buf[4096];
        const char *at = strstr(MANIFEST, edits[i].from);
        assert_non_null(at);
        snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - MANIFEST), MANIFEST, edits[i].to,
                 at + strlen(edits[i].from));
        struct su_manifest m;
        struct lapis_diag d = { 0 };
        if (su_manifest_parse(&d, buf, &m) >= 0)
            fail_msg("edit %zu (%s -> %s) was accepted", i, edits[i].from, edits[i].to);
        lapis_diag_clear(&d);
    }
}

static void test_index(void **state)
{
    struct su_index x;
    (void)state;
    const char *good = "lapis-index 1\nissued 100\nexpires 200\n"
                       "bundle 1.0 x86_64 1.0/manifest " H64 "\nbundle 2.0 x86_64 2.0/manifest " H64 "\n"
                       "bundle 9.0 aarch64 9.0/manifest " H64 "\n";
    assert_int_equal(su_index_parse(NULL, good, &x), 0);
    assert_string_equal(su_index_newest(&x, "x86_64")->version, "2.0");
    assert_null(su_index_newest(&x, "riscv64"));
    su_index_clear(&x);
    assert_true(su_index_parse(NULL, "lapis-index 1\nissued 100\n", &x) < 0);   /* no expiry */
    assert_true(su_index_parse(NULL, "lapis-index 1\nissued 1\nexpires 2\n"
                               "bundle 1.0 x86_64 ../manifest " H64 "\n", &x) < 0);
    assert_true(su_index_parse(NULL, "lapis-index 1\nissued 1\nexpires 2\n"
                               "bundle 1.0 x86_64 1.0/other " H64 "\n", &x) < 0);
}

static void test_state_roundtrip(void **state)
{
    char dir[] = "/tmp/lapis-sustate-XXXXXX";
    struct su_state s = { .booted = 1, .prog_slot = 0, .prog_payload = 1, .prog_chunk = 7,
                          .index_issued = 1234 }, t;
    (void)state;
    assert_non_null(mkdtemp(dir));
    su_slot_set(&s.slot[0], "2.0", SU_WRITING, NULL);
    su_slot_set(&s.slot[1], "1.0", SU_GOOD, H64);
    strcpy(s.prog_manifest, H64);
    assert_int_equal(su_state_save(NULL, dir, &s), 0);
    assert_int_equal(su_state_load(NULL, dir, &t), 0);
    assert_int_equal(t.booted, 1);
    assert_string_equal(t.slot[0].version, "2.0");
    assert_int_equal(t.slot[0].status, SU_WRITING);
    assert_string_equal(t.slot[1].roothash, H64);
    assert_int_equal(t.prog_slot, 0);
    assert_int_equal(t.prog_chunk, 7);
    assert_int_equal(t.index_issued, 1234);
    su_state_clear(&s);
    su_state_clear(&t);
    char path[64];
    snprintf(path, sizeof(path), "%s/state", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_cmp),
        cmocka_unit_test(test_version_valid),
        cmocka_unit_test(test_manifest_ok),
        cmocka_unit_test(test_manifest_refused),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_state_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
