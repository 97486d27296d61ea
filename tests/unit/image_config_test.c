/*
 * Unit tests for the image config loader (src/image/config.c): the table of
 * bad configs in tests/data/image-config-bad.txt (each one message naming
 * file, line and key), a config using every key (every field checked), and
 * the defaults of a minimal config. Configs are written to a temporary dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "image/build.h"
#include "image/image.h"
#include "lapis/common.h"
#include "shared/digest.h"

#define BASE "name: t\nversion: \"1\"\npackages: {install: [bash]}\n"

static char tmpdir[] = "/tmp/lapis-image-config-XXXXXX";

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

static char *write_config(const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", tmpdir, name);

    assert_int_equal(write_file_atomic(path, text, strlen(text)), 0);
    return path;
}

/* Load text as a config; on failure return the message (owned), else NULL. */
static char *load_error(const char *text, struct lapis_image_config **ret)
{
    _cleanup_free_ char *path = write_config("c.yaml", text);
    struct lapis_diag d = { 0 };
    struct lapis_image_config *c = NULL;
    int r = lapis_image_config_load(&d, path, &c);
    char *msg = r < 0 ? xstrdup(lapis_diag_error(&d)) : NULL;

    if (r < 0)
        assert_int_equal(r, -LAPIS_E_CONFIG);
    if (ret)
        *ret = c;
    else
        lapis_image_config_free(c);
    lapis_diag_clear(&d);
    return msg;
}

/* ---- the table of bad configs -------------------------------------------- */

struct bad_case {
    char *expect;
    char *yaml;
};

static size_t read_cases(struct bad_case *cases, size_t max)
{
    _cleanup_free_ char *buf = NULL;
    size_t len, n = 0;
    char *save = NULL;

    assert_int_equal(read_file(SRCDIR "/tests/data/image-config-bad.txt", 1 << 20, &buf, &len), 0);
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "### ", 4)) {
            assert_true(n < max);
            line += 4;
            if (!strncmp(line, "!schema ", 8))
                line += 8;
            cases[n++] = (struct bad_case){ xstrdup(line), xstrdup("") };
        } else if (n && line[0] != '#') {
            char *old = cases[n - 1].yaml;
            cases[n - 1].yaml = xasprintf("%s%s", old, !strcmp(line, "@BASE") ? BASE : line);
            if (strcmp(line, "@BASE")) {
                free(old);
                old = cases[n - 1].yaml;
                cases[n - 1].yaml = xasprintf("%s\n", old);
            }
            free(old);
        }
    }
    return n;
}

static void test_bad_configs(void **state)
{
    struct bad_case cases[128];
    size_t n = read_cases(cases, ARRAY_SIZE(cases));

    (void)state;
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *want = xasprintf("%s/c.yaml:%s", tmpdir, cases[i].expect);
        _cleanup_free_ char *msg = load_error(cases[i].yaml, NULL);

        if (!msg || strncmp(msg, want, strlen(want))) {
            print_error("case %zu:\n%s\nwant prefix: %s\ngot: %s\n", i, cases[i].yaml, want,
                        msg ? msg : "success");
            fail();
        }
        assert_null(strchr(msg, '\n'));       /* one line */
        assert_non_null(strstr(msg, " ("));   /* says what to do */
        free(cases[i].expect);
        free(cases[i].yaml);
    }
}

/* ---- every key ----------------------------------------------------------- */

static void check_full_top(const struct lapis_image_config *c)
{
    _cleanup_free_ char *repo = xasprintf("%s/sub/test.repo", tmpdir);
    char hex[65];

    assert_string_equal(c->name, "full.image_1");
    assert_string_equal(c->version, "1.2.3");
    assert_string_equal(c->arches[0], "aarch64");
    assert_null(c->arches[1]);
    assert_string_equal(c->releasever, "12");
    assert_int_equal(c->nrepos, 2);
    assert_string_equal(c->repos[0].file, repo);
    assert_null(c->repos[0].id);
    assert_int_equal(c->repos[0].gpgcheck, -1);
    assert_string_equal(c->repos[1].id, "extra");
    assert_string_equal(c->repos[1].baseurls[0], "http://a/$basearch");
    assert_string_equal(c->repos[1].baseurls[1], "http://b/");
    assert_string_equal(c->repos[1].gpgkeys[0], "file:///k.asc");
    assert_int_equal(c->repos[1].gpgcheck, 0);
    assert_int_equal(c->repos[1].repo_gpgcheck, 1);
    assert_int_equal(c->repos[1].priority, 10);
    assert_string_equal(c->install[1], "coreutils");
    assert_string_equal(c->exclude[0], "docs");
    assert_true(c->install_weak_deps);
    assert_false(c->nodocs);
    assert_string_equal(c->languages[1], "de");
    assert_int_equal(lapis_chk_file(c->path, LAPIS_CHK_SHA256, hex, sizeof(hex)), 0);
    for (size_t i = 0; i < 32; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        assert_int_equal(c->sha256[i], v);
    }
}

static void check_full_os(const struct lapis_image_config *c)
{
    _cleanup_free_ char *issue = xasprintf("%s/files/issue", tmpdir);

    assert_string_equal(c->hostname, "box.example");
    assert_string_equal(c->timezone, "Europe/Berlin");
    assert_string_equal(c->locale, "de_DE.UTF-8");
    assert_string_equal(c->kernel_cmdline[0], "console=ttyS0");
    assert_string_equal(c->kernel_cmdline[1], "quiet");
    assert_null(c->kernel_cmdline[2]);
    assert_true(c->serial_console);
    assert_string_equal(c->selinux_mode, "permissive");
    assert_int_equal(c->nusers, 2);
    assert_string_equal(c->users[0].name, "admin");
    assert_int_equal(c->users[0].uid, 1000);
    assert_string_equal(c->users[0].password_hash, "$6$salt$hash");
    assert_string_equal(c->users[0].ssh_keys[0], "ssh-ed25519 AAAA admin@x");
    assert_string_equal(c->users[0].groups[1], "ops");
    assert_string_equal(c->users[0].shell, "/bin/sh");
    assert_string_equal(c->users[0].home, "/srv/admin");
    assert_string_equal(c->users[1].name, "svc");
    assert_int_equal(c->users[1].uid, -1);
    assert_null(c->users[1].password_hash);
    assert_null(c->users[1].shell);
    assert_int_equal(c->ngroups, 2);
    assert_int_equal(c->groups[0].gid, 2000);
    assert_int_equal(c->groups[1].gid, -1);
    assert_string_equal(c->services_enable[0], "sshd.service");
    assert_string_equal(c->services_disable[0], "getty@tty1.service");
    assert_int_equal(c->nfiles, 3);
    assert_string_equal(c->files[0].destination, "/etc/motd");
    assert_string_equal(c->files[0].content, "hi\n");
    assert_int_equal(c->files[0].mode, 0600);
    assert_int_equal(c->files[0].uid, 1000);
    assert_int_equal(c->files[0].gid, 2000);
    assert_false(c->files[0].is_dir);
    assert_string_equal(c->files[1].source, issue);
    assert_int_equal(c->files[1].mode, 0644);
    assert_true(c->files[2].is_dir);
    assert_int_equal(c->files[2].mode, 01777);
    assert_null(c->files[2].source);
    assert_int_equal(c->nsysctl, 2);
    assert_string_equal(c->sysctl[1].key, "kernel.kptr_restrict");
    assert_string_equal(c->sysctl[1].value, "2");
    assert_false(c->hardening);
    assert_string_equal(c->setuid_allow[0], "/usr/bin/su");
    assert_string_equal(c->keep[1], "history");
}

static void check_full_rest(const struct lapis_image_config *c)
{
    _cleanup_free_ char *gnupg = xasprintf("%s/gnupg", tmpdir);
    _cleanup_free_ char *pem = xasprintf("%s/keys/b.pem", tmpdir);
    _cleanup_free_ char *key = xasprintf("%s/keys/release.key", tmpdir);

    assert_string_equal(c->sysupdate_keys[1], pem);
    assert_null(c->sysupdate_keys[2]);
    assert_string_equal(c->sysupdate_url, "https://updates.example.org/full/");
    assert_string_equal(c->sysupdate_signing_key, key);
    assert_string_equal(c->sysupdate_min_from, "1.0~rc1");
    assert_int_equal(c->sysupdate_tries, 2);
    assert_false(c->ab);

    assert_string_equal(c->entrypoint[1], "-c");
    assert_string_equal(c->cmd[0], "echo hi");
    assert_null(c->cmd[1]);
    assert_int_equal(c->nenv, 2);
    assert_string_equal(c->env[0].key, "PATH");
    assert_string_equal(c->env[1].value, "C.UTF-8");
    assert_string_equal(c->user, "1000:1000");
    assert_string_equal(c->workdir, "/srv");
    assert_string_equal(c->labels[0].key, "org.opencontainers.image.title");
    assert_string_equal(c->layer_compression, "zstd");
    assert_string_equal(c->qcow2_compression, "zlib");
    assert_false(c->uki);
    assert_int_equal(c->disk_size, 4ull << 30);
    assert_int_equal(c->npartitions, 4);
    assert_int_equal(c->partitions[0].type, LAPIS_PART_ESP);
    assert_int_equal(c->partitions[0].fs, LAPIS_FS_VFAT);
    assert_int_equal(c->partitions[0].size, 512ull << 20);
    assert_int_equal(c->partitions[1].type, LAPIS_PART_XBOOTLDR);
    assert_int_equal(c->partitions[1].fs, LAPIS_FS_VFAT);
    assert_int_equal(c->partitions[1].size, 1ull << 30);
    assert_int_equal(c->partitions[2].fs, LAPIS_FS_EROFS);
    assert_string_equal(c->partitions[3].id, "var");
    assert_int_equal(c->partitions[3].fs, LAPIS_FS_EXT4);
    assert_int_equal(c->partitions[3].size, 0);
    assert_int_equal(c->formats, LAPIS_IMAGE_QCOW2 | LAPIS_IMAGE_VHD | LAPIS_IMAGE_VHDX | LAPIS_IMAGE_ISO |
                                     LAPIS_IMAGE_OCI_ARCHIVE);
    assert_string_equal(c->signing_key, "ABCDEF0123456789");
    assert_string_equal(c->signing_gnupghome, gnupg);
}

static void test_full_config(void **state)
{
    _cleanup_free_ char *sub = xasprintf("%s/sub", tmpdir), *files = xasprintf("%s/files", tmpdir);
    _cleanup_free_ char *gnupg = xasprintf("%s/gnupg", tmpdir), *keys = xasprintf("%s/keys", tmpdir);
    _cleanup_free_ char *repo = NULL, *issue = NULL, *msg = NULL, *text = NULL;
    struct lapis_image_config *c = NULL;
    size_t len;

    (void)state;
    assert_int_equal(mkdir_p(sub, 0755), 0);
    assert_int_equal(mkdir_p(files, 0755), 0);
    assert_int_equal(mkdir_p(gnupg, 0700), 0);
    repo = write_config("sub/test.repo", "[t]\nbaseurl=file:///x\n");
    issue = write_config("files/issue", "Lapis\n");
    assert_int_equal(mkdir_p(keys, 0755), 0);
    free(write_config("keys/a.pem", "a\n"));
    free(write_config("keys/b.pem", "b\n"));
    free(write_config("keys/release.key", "k\n"));
    assert_int_equal(read_file(SRCDIR "/tests/data/image-config-full.yaml", 1 << 20, &text, &len), 0);
    msg = load_error(text, &c);
    if (msg)
        print_error("%s\n", msg);
    assert_null(msg);
    assert_string_equal(c->dir, tmpdir);
    check_full_top(c);
    check_full_os(c);
    check_full_rest(c);
    lapis_image_config_free(c);
}

/* ---- the shipped examples ----------------------------------------------- */

/* data/images/NAME.yaml, copied into a checkout-like tree whose
 * build/testdist/testdist.repo exists: the examples find the test
 * distribution relative to themselves. */
static void load_example(const char *name)
{
    _cleanup_free_ char *src = xasprintf("%s/data/images/%s", SRCDIR, name);
    _cleanup_free_ char *dir = xasprintf("%s/ex/data/images", tmpdir);
    _cleanup_free_ char *repodir = xasprintf("%s/ex/build/testdist", tmpdir);
    _cleanup_free_ char *dst = xasprintf("%s/%s", dir, name);
    _cleanup_free_ char *repo = xasprintf("%s/testdist.repo", repodir);
    _cleanup_free_ char *text = NULL;
    struct lapis_diag d = { 0 };
    struct lapis_image_config *c = NULL;
    size_t len;

    assert_int_equal(read_file(src, 1 << 20, &text, &len), 0);
    assert_int_equal(mkdir_p(dir, 0755), 0);
    assert_int_equal(mkdir_p(repodir, 0755), 0);
    assert_int_equal(write_file_atomic(repo, "[testdist]\n", 11), 0);
    assert_int_equal(write_file_atomic(dst, text, len), 0);
    if (lapis_image_config_load(&d, dst, &c) < 0)
        print_error("%s\n", lapis_diag_error(&d));
    assert_non_null(c);
    assert_int_equal(c->nrepos, 1);
    assert_string_equal(c->repos[0].file, repo);
    assert_non_null(c->install);
    lapis_image_config_free(c);
}

static void test_examples(void **state)
{
    (void)state;
    load_example("minimal-server.yaml");
    load_example("container.yaml");
    load_example("container-host.yaml");
}

/* ---- kernel arguments ------------------------------------------------------ */

/* serialConsole names the arch's port, after the config's own arguments. */
static void test_kernel_args(void **state)
{
    struct lapis_image_config *c = NULL;
    _cleanup_free_ char *msg = load_error(BASE "os:\n  kernelCommandLine:\n"
                                          "    extraCommandLine: quiet\n"
                                          "    serialConsole: true\n", &c);
    (void)state;
    assert_null(msg);
    _cleanup_free_ char *x86 = lapis_image_kernel_args(c, "x86_64", "rw");
    _cleanup_free_ char *arm = lapis_image_kernel_args(c, "aarch64", "rw");
    _cleanup_free_ char *none = lapis_image_kernel_args(NULL, "aarch64", "rw");
    assert_string_equal(x86, "rw quiet console=ttyS0");
    assert_string_equal(arm, "rw quiet console=ttyAMA0");
    assert_string_equal(none, "rw");
    lapis_image_config_free(c);
}

/* ---- defaults ------------------------------------------------------------ */

static void test_defaults(void **state)
{
    struct lapis_image_config *c = NULL;
    _cleanup_free_ char *msg = load_error(BASE, &c);
    struct utsname u;

    (void)state;
    assert_null(msg);
    assert_int_equal(uname(&u), 0);
    assert_string_equal(c->arches[0], u.machine);
    assert_null(c->arches[1]);
    assert_null(c->releasever);
    assert_int_equal(c->nrepos, 0);
    assert_false(c->install_weak_deps);
    assert_true(c->nodocs);
    assert_null(c->languages);
    assert_null(c->hostname);
    assert_string_equal(c->timezone, "UTC");
    assert_string_equal(c->locale, "C.UTF-8");
    assert_null(c->selinux_mode);
    assert_false(c->serial_console);
    assert_true(c->hardening);
    assert_null(c->setuid_allow);
    assert_null(c->keep);
    assert_string_equal(c->layer_compression, "gzip");
    assert_string_equal(c->qcow2_compression, "zstd");
    assert_int_equal(c->disk_size, 0);
    assert_true(c->uki);
    assert_int_equal(c->npartitions, 2);
    assert_string_equal(c->partitions[0].id, "esp");
    assert_int_equal(c->partitions[0].size, 256ull << 20);
    assert_int_equal(c->partitions[0].fs, LAPIS_FS_VFAT);
    assert_int_equal(c->partitions[1].type, LAPIS_PART_ROOT);
    assert_int_equal(c->partitions[1].fs, LAPIS_FS_EXT4);
    assert_int_equal(c->partitions[1].size, 0);
    assert_int_equal(c->formats, LAPIS_IMAGE_RAW | LAPIS_IMAGE_OCI);
    assert_null(c->signing_key);
    lapis_image_config_free(c);
}

static void test_format_names(void **state)
{
    static const char *const names[] = { "raw", "qcow2", "vhd", "vhdx", "iso", "oci", "oci-archive",
                                         "bundle" };

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        int bit = lapis_image_format_from_name(names[i]);
        assert_int_equal(bit, 1 << i);
        assert_string_equal(lapis_image_format_name((unsigned)bit), names[i]);
    }
    assert_int_equal(lapis_image_format_from_name("tar"), -1);
    assert_null(lapis_image_format_name(1u << 20));
}

/* The A/B host's keys: usr/usr-verity types and defaults, sysupdate paths
 * resolved against the config; a rotated key (same path, new bytes) gives
 * another image cache key, so no stale image keeps the old key. */
static void test_sysupdate(void **state)
{
    static const char pem1[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    static const char pem2[] = "-----BEGIN PUBLIC KEY-----\nBBBB\n-----END PUBLIC KEY-----\n";
    _cleanup_free_ char *pem = write_config("release.pem", pem1), *k1 = NULL, *k2 = NULL;
    _cleanup_free_ char *real = realpath(pem, NULL);
    struct lapis_image_config *c = NULL;

    (void)state;
    assert_null(load_error("name: t\nversion: \"1\"\npackages: {install: [bash]}\n"
                           "storage: {disks: [{partitions: [{id: esp, type: esp, size: 256M}, "
                           "{id: usr-a, type: usr, size: 1G}, {id: usr-a-verity, type: usr-verity, "
                           "size: 64M}, {id: root, type: root, size: grow}]}]}\n"
                           "sysupdate: {publicKeys: release.pem, url: \"https://u.example/h/\", "
                           "minFromVersion: \"1.0\"}\n", &c));
    assert_true(c->ab);
    assert_int_equal(c->partitions[1].type, LAPIS_PART_USR);
    assert_int_equal(c->partitions[1].fs, LAPIS_FS_EROFS);
    assert_int_equal(c->partitions[2].type, LAPIS_PART_USR_VERITY);
    assert_int_equal(c->partitions[2].fs, LAPIS_FS_NONE);
    assert_string_equal(c->sysupdate_keys[0], real);
    assert_null(c->sysupdate_keys[1]);
    assert_string_equal(c->sysupdate_url, "https://u.example/h/");
    assert_string_equal(c->sysupdate_min_from, "1.0");
    assert_null(c->sysupdate_signing_key);
    assert_int_equal(lapis_image_cache_key(c, NULL, 0, 1, LAPIS_IMAGE_RAW, &k1), 0);
    free(write_config("release.pem", pem2));
    assert_int_equal(lapis_image_cache_key(c, NULL, 0, 1, LAPIS_IMAGE_RAW, &k2), 0);
    assert_string_not_equal(k1, k2);
    lapis_image_config_free(c);
}

static void test_missing_file(void **state)
{
    struct lapis_diag d = { 0 };
    struct lapis_image_config *c = NULL;

    (void)state;
    assert_int_equal(lapis_image_config_load(&d, "/nonexistent/x.yaml", &c), -LAPIS_E_CONFIG);
    assert_non_null(strstr(lapis_diag_error(&d), "/nonexistent/x.yaml"));
    assert_null(c);
    lapis_diag_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_kernel_args),
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_format_names),
        cmocka_unit_test(test_sysupdate),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
