/*
 * Unit tests for the host mode's parsers (src/sysupdate/host.c) on sample
 * files of the kernel's formats (tests/fixtures/sysupdate): the usrhash= of
 * a kernel command line, the ESP's mount in /proc/self/mountinfo (an
 * automount with the vfat on top, /boot, none), a partition's sysfs
 * directory, and IMAGE_VERSION= of os-release; the mountinfo and cmdline of
 * a booted A/B guest; and this machine's own mountinfo and cmdline, live.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "basic/fs.h"
#include "sysupdate/sysupdate.h"

#define FIX SRCDIR "/tests/fixtures/sysupdate/"

/* noinline: GCC 12 takes the returned buffer for slurp's local (-Wdangling-pointer). */
__attribute__((noinline)) static char *slurp(const char *path)
{
    char *text = NULL;
    size_t len;
    assert_int_equal(read_file(path, 1 << 20, &text, &len), 0);
    return text;
}

static void test_cmdline_usrhash(void **state)
{
    char hash[SU_HEX];
    char *text = slurp(FIX "cmdline");
    (void)state;
    /* The last usrhash= wins, as for any kernel option. */
    assert_int_equal(su_cmdline_usrhash(text, hash), 0);
    assert_string_equal(hash, "5e2cf4d0a7b6c1e2f3a4b5c6d7e8f90112233445566778899aabbccddeeff001");
    free(text);
    assert_int_equal(su_cmdline_usrhash("ro usrhash=abc quiet", hash), -ENOENT);
    assert_int_equal(su_cmdline_usrhash("usrhash=5E2CF4D0A7B6C1E2F3A4B5C6D7E8F90112233445566778899AABBCCDDEEFF001", hash),
                     -ENOENT);   /* systemd writes lower case; refuse what it would not */
    assert_int_equal(su_cmdline_usrhash("", hash), -ENOENT);
    /* This machine's own command line (no lapis slot): no usrhash=. */
    char *own = NULL;
    size_t len;
    if (read_file("/proc/cmdline", 1 << 16, &own, &len) == 0 && !strstr(own, "usrhash="))
        assert_int_equal(su_cmdline_usrhash(own, hash), -ENOENT);
    free(own);
}

static void test_mountinfo_esp(void **state)
{
    struct su_mount m;
    char *text = slurp(FIX "mountinfo-efi-automount");
    (void)state;
    /* systemd-gpt-auto's automount, then the vfat mounted over it: the vfat counts. */
    assert_int_equal(su_mountinfo_esp(text, &m), 0);
    assert_string_equal(m.target, "/efi");
    assert_true(m.vfat);
    assert_false(m.autofs);
    assert_int_equal(m.major, 254);
    assert_int_equal(m.minor, 1);
    free(text);
    /* The automount alone (not triggered yet). */
    text = slurp(FIX "mountinfo-efi-automount");
    char *vfat_line = strstr(text, "\n58 41");
    assert_non_null(vfat_line);
    vfat_line[1] = '\0';
    assert_int_equal(su_mountinfo_esp(text, &m), 0);
    assert_true(m.autofs);
    free(text);
    /* /efi is not vfat: /boot is the ESP. */
    text = slurp(FIX "mountinfo-boot");
    assert_int_equal(su_mountinfo_esp(text, &m), 0);
    assert_string_equal(m.target, "/boot");
    assert_int_equal(m.minor, 2);
    free(text);
    text = slurp(FIX "mountinfo-no-esp");
    assert_int_equal(su_mountinfo_esp(text, &m), -ENOENT);
    free(text);
    assert_int_equal(su_mountinfo_esp("garbage\n1 2 3\n", &m), -ENOENT);
    /* This machine's own mounts parse (it has no ESP mounted: -ENOENT, or one). */
    char *own = slurp("/proc/self/mountinfo");
    int r = su_mountinfo_esp(own, &m);
    assert_true(r == 0 || r == -ENOENT);
    free(own);
}

/* Captured in the booted A/B host of tests/functional/sysupdate/test_booted.py
 * (systemd 252, gpt-auto's /efi automount already triggered). */
static void test_guest_samples(void **state)
{
    struct su_mount m;
    char hash[SU_HEX];
    char *mi = slurp(FIX "mountinfo-guest"), *cmd = slurp(FIX "cmdline-guest");
    (void)state;
    assert_int_equal(su_mountinfo_esp(mi, &m), 0);
    assert_string_equal(m.target, "/efi");
    assert_true(m.vfat);
    assert_int_equal(m.major, 254);
    assert_int_equal(m.minor, 1);
    assert_int_equal(su_cmdline_usrhash(cmd, hash), 0);
    assert_string_equal(hash, "ab55a8ebdd1f869ca9f1d05a194cdb1d052ca278efc3851db9fde9e989fc4439");
    free(mi);
    free(cmd);
}

static void test_sysfs_partition(void **state)
{
    struct su_blockdev b;
    (void)state;
    assert_int_equal(su_sysfs_partition(FIX "sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda3", &b), 0);
    assert_string_equal(b.disk, "vda");
    assert_int_equal(b.partno, 3);
    assert_int_equal(b.start, 1054720LL * 512);
    assert_int_equal(b.size, 2097152LL * 512);
    free(b.disk);
    /* A whole disk has no "partition" file. */
    assert_true(su_sysfs_partition(FIX "sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda", &b) < 0);
    assert_true(su_sysfs_partition(FIX "nonexistent", &b) < 0);
}

static void test_os_release_version(void **state)
{
    char *text = slurp(FIX "os-release"), *v = su_os_release_version(text);
    (void)state;
    assert_string_equal(v, "2.0");
    free(v);
    free(text);
    assert_null(su_os_release_version("ID=lapis\nVERSION_ID=12\n"));
    assert_null(su_os_release_version("IMAGE_VERSION=2.0+3\n"));   /* not a version: + is the counter */
    v = su_os_release_version("IMAGE_VERSION=3.1\n");
    assert_string_equal(v, "3.1");
    free(v);
}

static void test_slot_of_hash(void **state)
{
    struct su_disk k = { 0 };
    (void)state;
    strcpy(k.usr[0].uuid, "11111111-2222-3333-4444-555555555555");
    strcpy(k.usr[1].uuid, "5E2CF4D0-A7B6-C1E2-F3A4-B5C6D7E8F901");   /* libfdisk's upper case */
    assert_int_equal(su_disk_slot_of_hash(&k, "5e2cf4d0a7b6c1e2f3a4b5c6d7e8f90112233445566778899aabbccddeeff001"), 1);
    assert_int_equal(su_disk_slot_of_hash(&k, "1111111122223333444455555555555500000000000000000000000000000000"), 0);
    assert_int_equal(su_disk_slot_of_hash(&k, "ffffffff22223333444455555555555500000000000000000000000000000000"), -1);
}

/* systemd-boot's counter in a UKI name (Automatic Boot Assessment). */
static void test_uki_tries(void **state)
{
    static const struct { const char *name; int want; } cases[] = {
        { "lapis_2.0+3.efi", 3 }, { "lapis_2.0+2-1.efi", 2 }, { "lapis_2.0+0-3.efi", 0 },
        { "lapis_2.0.efi", -1 }, { "lapis_2.0+.efi", -1 }, { "lapis_2.0+x.efi", -1 },
    };
    char *names[] = { "lapis_1.0.efi", "lapis_2.0+1-2.efi", "lapis_2.0.1.efi", NULL };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(su_uki_tries_left(cases[i].name), cases[i].want);
    assert_string_equal(su_uki_find(names, "2.0"), "lapis_2.0+1-2.efi");
    assert_string_equal(su_uki_find(names, "2.0.1"), "lapis_2.0.1.efi");
    assert_null(su_uki_find(names, "3.0"));
    assert_null(su_uki_find(NULL, "1.0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmdline_usrhash),
        cmocka_unit_test(test_mountinfo_esp),
        cmocka_unit_test(test_guest_samples),
        cmocka_unit_test(test_sysfs_partition),
        cmocka_unit_test(test_os_release_version),
        cmocka_unit_test(test_slot_of_hash),
        cmocka_unit_test(test_uki_tries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
