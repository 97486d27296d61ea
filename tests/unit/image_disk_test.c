/*
 * Unit tests for the disk stage's checks (src/image/disk.c) and the helpers
 * it shares with the boot stage (bootdisk.c): impossible layouts fail before
 * any tool runs, with the size that is needed; a missing tool names its
 * Debian package; the VHD footer is deterministic and its checksum valid;
 * derived GUIDs differ per config and per use.
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
#include <unistd.h>

#include <cmocka.h>

#include "basic/strv.h"
#include "image/bootdisk.h"
#include "image/image.h"
#include "shared/digest.h"

#define MiB (1024ULL * 1024ULL)

static char tmpl[64];
static struct lapis_image_config conf;
static struct lapis_image_build build;

/* A 40 MiB file in the root, so the root needs more than 40 MiB. */
static int setup(void **state)
{
    char path[128];
    int fd;
    (void)state;
    strcpy(tmpl, "/tmp/lapis-disk-test-XXXXXX");
    assert_non_null(mkdtemp(tmpl));
    snprintf(path, sizeof(path), "%s/big", tmpl);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    char *buf = calloc(1, 40 * MiB);
    assert_int_equal(write(fd, buf, 40 * MiB), (ssize_t)(40 * MiB));
    free(buf);
    close(fd);
    memset(&conf, 0, sizeof(conf));
    memset(&build, 0, sizeof(build));
    conf.name = "t";
    conf.version = "1";
    conf.formats = LAPIS_IMAGE_RAW;
    build.conf = &conf;
    build.arch = "x86_64";
    build.epoch = 1700000000;
    build.rootdir = tmpl;
    build.workdir = tmpl;
    build.stagedir = tmpl;
    build.basename = "t-1.x86_64";
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
    assert_int_equal(system(cmd), 0);
    lapis_diag_clear(&build.diag);
    return 0;
}

static struct lapis_image_partition parts[3];

static void use_parts(unsigned long long esp, unsigned long long root, enum lapis_image_fs fs)
{
    parts[0] = (struct lapis_image_partition){ .id = "esp", .type = LAPIS_PART_ESP, .fs = LAPIS_FS_VFAT, .size = esp };
    parts[1] = (struct lapis_image_partition){ .id = "root", .type = LAPIS_PART_ROOT, .fs = fs, .size = root };
    conf.partitions = parts;
    conf.npartitions = 2;
}

static void expect_error(int code, const char *words)
{
    assert_int_equal(lapis_image_write_disk(&build), code);
    assert_non_null(build.diag.errmsg);
    if (!strstr(build.diag.errmsg, words))
        fail_msg("message \"%s\" lacks \"%s\"", build.diag.errmsg, words);
}

static void test_root_partition_too_small(void **state)
{
    (void)state;
    use_parts(128 * MiB, 16 * MiB, LAPIS_FS_EXT4);
    expect_error(-ENOSPC, "root: 16 MiB is too small for the root (it needs at least");
}

static void test_disk_too_small(void **state)
{
    (void)state;
    conf.disk_size = 100 * MiB;                  /* less than ESP + root */
    expect_error(-ENOSPC, "storage.diskSize: 100 MiB is too small (the partitions need at least");
}

static void test_impossible_sizes(void **state)
{
    (void)state;
    use_parts(128 * MiB + 5, 0, LAPIS_FS_EXT4);
    expect_error(-EINVAL, "is not a multiple of 1 MiB");
    use_parts(8 * MiB, 0, LAPIS_FS_EXT4);
    expect_error(-EINVAL, "too small for FAT32");
    use_parts(0, 0, LAPIS_FS_EXT4);
    expect_error(-EINVAL, "only one partition may have no size");
    parts[1].type = LAPIS_PART_VAR;
    parts[0].size = 128 * MiB;
    expect_error(-EINVAL, "exactly one esp and one root");
}

static void test_missing_tool(void **state)
{
    char *argv[] = { "lapis-no-such-mkfs", NULL };
    (void)state;
    assert_int_equal(lapis_image_tool(&build, "e2fsprogs", argv, NULL, NULL), -ENOENT);
    assert_string_equal(build.diag.errmsg,
                        "lapis-no-such-mkfs is not installed (install the Debian package e2fsprogs)");
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void footer_of(const char *path, unsigned char f[512], unsigned char fill)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    memset(f, fill, 512);
    memcpy(f, "conectix", 8);
    assert_int_equal(pwrite(fd, f, 512, 4096), 512);
    assert_int_equal(lapis_image_vhd_footer(&build, fd), 0);
    assert_int_equal(pread(fd, f, 512, 4096), 512);
    close(fd);
}

static void test_vhd_footer(void **state)
{
    unsigned char a[512], b[512], raw[16];
    char path[128], text[37];
    uint32_t sum = 0;
    (void)state;
    snprintf(path, sizeof(path), "%s/f.vhd", tmpl);
    footer_of(path, a, 0x11);                    /* qemu's timestamp/UUID/checksum: any */
    footer_of(path, b, 0x22);
    assert_int_equal(be32(a + 24), 1700000000 - 946684800);   /* seconds since 2000-01-01 */
    assert_memory_equal(a + 24, b + 24, 4);
    assert_memory_equal(a + 68, b + 68, 16);
    lapis_image_uuid(&build, "vhd", raw, text);
    assert_memory_equal(a + 68, raw, 16);
    for (int i = 0; i < 512; i++)
        sum += (i >= 64 && i < 68) ? 0 : a[i];
    assert_int_equal(be32(a + 64), ~sum);
}

/* The check value of the CRC-32C catalogue (reveng: CRC-32/ISCSI), whole and in parts. */
static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(lapis_crc32c(0, "123456789", 9), 0xe3069283U);
    assert_int_equal(lapis_crc32c(lapis_crc32c(0, "1234", 4), "56789", 5), 0xe3069283U);
    assert_int_equal(lapis_crc32c(0, "", 0), 0);
}

/* Anything but a vhdx is refused before a byte is written. */
static void test_vhdx_not_vhdx(void **state)
{
    char path[128], buf[256 * 1024];
    (void)state;
    snprintf(path, sizeof(path), "%s/f.vhdx", tmpl);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    memset(buf, 0x5a, sizeof(buf));
    assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    assert_int_equal(lapis_image_vhdx_fix(&build, fd), -EIO);
    assert_string_equal(build.diag.errmsg, "qemu-img wrote an unexpected vhdx (file type "
                        "identifier): cannot make it reproducible");
    char back[sizeof(buf)];
    assert_int_equal(pread(fd, back, sizeof(back), 0), (ssize_t)sizeof(back));
    assert_memory_equal(back, buf, sizeof(buf));
    close(fd);
}

static void test_uuids_differ(void **state)
{
    unsigned char r1[16], r2[16], r3[16];
    char t1[37], t2[37], t3[37];
    (void)state;
    lapis_image_uuid(&build, "disk", r1, t1);
    lapis_image_uuid(&build, "partition:root", r2, t2);
    conf.sha256[0] ^= 1;                         /* another config */
    lapis_image_uuid(&build, "disk", r3, t3);
    conf.sha256[0] ^= 1;
    assert_string_not_equal(t1, t2);
    assert_string_not_equal(t1, t3);
    assert_int_equal(strlen(t1), 36);
    assert_int_equal(t1[14], '4');               /* version 4 layout */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_root_partition_too_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_too_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_impossible_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_tool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vhd_footer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uuids_differ, setup, teardown),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test_setup_teardown(test_vhdx_not_vhdx, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
