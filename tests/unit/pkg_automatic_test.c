/*
 * Unit tests for automatic.conf parsing (src/pkg/automatic.c): defaults,
 * every key, the shipped data/automatic.conf, and each kind of bad input
 * giving an error that names the file and line.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pkg/internal.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

static char tmpdir[] = "/tmp/lapis-automatic-test-XXXXXX";

static int setup_dir(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    rm_rf(tmpdir, NULL);
    return 0;
}

/* Parse text as automatic.conf; returns the result, the error in *err (owned by ctx). */
static int parse(const char *text, lapis_automatic_conf *conf, lapis_ctx **ctx)
{
    char *path = xasprintf("%s/automatic.conf", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(lapis_ctx_new(ctx), 0);
    lapis_automatic_conf_defaults(conf);
    int r = lapis_automatic_conf_read(*ctx, path, true, conf);
    free(path);
    return r;
}

static void test_defaults(void **state)
{
    lapis_automatic_conf c;
    (void)state;
    lapis_automatic_conf_defaults(&c);
    assert_int_equal(c.upgrade_type, LAPIS_AUTO_UPGRADE_DEFAULT);
    assert_true(c.download_updates);
    assert_false(c.apply_updates);
    assert_int_equal(c.reboot, LAPIS_AUTO_REBOOT_NEVER);
    assert_string_equal(c.reboot_command, "shutdown -r +5 'Rebooting after applying package updates'");
    assert_int_equal(c.random_sleep, 0);
    assert_string_equal(c.emit_via[0], "stdio");
    assert_null(c.emit_via[1]);
    assert_non_null(c.system_name);
    assert_null(c.base_opts[0]);
    lapis_automatic_conf_clear(&c);
}

static void test_every_key(void **state)
{
    lapis_automatic_conf c;
    lapis_ctx *ctx;
    (void)state;
    assert_int_equal(parse("[commands]\nupgrade_type = security\ndownload_updates = no\n"
                           "apply_updates = yes\nreboot = when-needed\n"
                           "reboot_command = systemctl reboot\nrandom_sleep = 5m\n"
                           "network_online_timeout = 60\n"
                           "[emitters]\nemit_via = motd, json:/var/lib/x.json stdio\n"
                           "system_name = node-7\n"
                           "[base]\nskip_if_unavailable = 1\n"
                           "[email]\nemail_to = root\n", &c, &ctx), 0);
    assert_int_equal(c.upgrade_type, LAPIS_AUTO_UPGRADE_SECURITY);
    assert_false(c.download_updates);
    assert_true(c.apply_updates);
    assert_int_equal(c.reboot, LAPIS_AUTO_REBOOT_WHEN_NEEDED);
    assert_string_equal(c.reboot_command, "systemctl reboot");
    assert_int_equal(c.random_sleep, 300);
    assert_string_equal(c.emit_via[0], "motd");
    assert_string_equal(c.emit_via[1], "json:/var/lib/x.json");
    assert_string_equal(c.emit_via[2], "stdio");
    assert_null(c.emit_via[3]);
    assert_string_equal(c.system_name, "node-7");
    assert_string_equal(c.base_opts[0], "skip_if_unavailable=1");
    assert_null(c.base_opts[1]);
    lapis_automatic_conf_clear(&c);
    lapis_ctx_free(ctx);
}

static void test_reboot_values(void **state)
{
    static const struct { const char *v; enum lapis_auto_reboot r; } cases[] = {
        { "never", LAPIS_AUTO_REBOOT_NEVER },
        { "when-changed", LAPIS_AUTO_REBOOT_WHEN_CHANGED },
        { "when-needed", LAPIS_AUTO_REBOOT_WHEN_NEEDED },
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        lapis_automatic_conf c;
        lapis_ctx *ctx;
        char *text = xasprintf("[commands]\nreboot=%s\n", cases[i].v);
        assert_int_equal(parse(text, &c, &ctx), 0);
        assert_int_equal(c.reboot, cases[i].r);
        free(text);
        lapis_automatic_conf_clear(&c);
        lapis_ctx_free(ctx);
    }
}

static void test_shipped_config(void **state)
{
    lapis_automatic_conf c;
    lapis_ctx *ctx;
    (void)state;
    assert_int_equal(lapis_ctx_new(&ctx), 0);
    lapis_automatic_conf_defaults(&c);
    assert_int_equal(lapis_automatic_conf_read(ctx, SRCDIR "/data/automatic.conf", true, &c), 0);
    assert_int_equal(c.upgrade_type, LAPIS_AUTO_UPGRADE_DEFAULT);
    assert_true(c.download_updates);
    assert_false(c.apply_updates);
    assert_int_equal(c.reboot, LAPIS_AUTO_REBOOT_NEVER);
    lapis_automatic_conf_clear(&c);
    lapis_ctx_free(ctx);
}

static void test_missing_file(void **state)
{
    lapis_automatic_conf c;
    lapis_ctx *ctx;
    (void)state;
    assert_int_equal(lapis_ctx_new(&ctx), 0);
    lapis_automatic_conf_defaults(&c);
    assert_int_equal(lapis_automatic_conf_read(ctx, "/nonexistent/automatic.conf", false, &c), 0);
    assert_int_equal(lapis_automatic_conf_read(ctx, "/nonexistent/automatic.conf", true, &c),
                     -LAPIS_E_CONFIG);
    assert_non_null(strstr(lapis_ctx_error(ctx), "/nonexistent/automatic.conf"));
    lapis_automatic_conf_clear(&c);
    lapis_ctx_free(ctx);
}

static void test_bad_input(void **state)
{
    static const struct { const char *text, *expect; } cases[] = {
        { "[commands]\nthis is not ini\n", "automatic.conf:2: garbled line" },
        { "[commands]\napply_update = yes\n", "automatic.conf:2: unknown option 'apply_update'" },
        { "[emitters]\nemit_via_ = stdio\n", "unknown option 'emit_via_' in [emitters]" },
        { "[commands]\nupgrade_type = sometimes\n", "expected default or security" },
        { "[commands]\nreboot = always\n", "expected never, when-changed or when-needed" },
        { "[commands]\napply_updates = maybe\n", "expected yes or no" },
        { "[commands]\ndownload_updates = 2\n", "expected yes or no" },
        { "[commands]\nrandom_sleep = -5\n", "random_sleep" },
        { "[commands]\nrandom_sleep = abc\n", "random_sleep" },
        { "[commands]\nreboot_command =\n", "reboot_command" },
        { "apply_updates = yes\n", "automatic.conf:1: 'apply_updates' is outside a known section" },
        { "[command_s]\napply_updates = yes\n", "outside a known section" },
        { "[emitters]\nemit_via = email\n", "lapis emits via stdio, motd and json:/PATH" },
        { "[emitters]\nemit_via = stdio,json:relative.json\n", "needs an absolute path" },
        { "[emitters]\nemit_via = json:\n", "needs an absolute path" },
        { "[commands]\n[base]\nbest = notabool\n", "automatic.conf:3: invalid value 'notabool' for 'best'" },
        { "[base]\nnosuchopt = 1\n", "automatic.conf:2: unknown option 'nosuchopt' in [base]" },
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        lapis_automatic_conf c;
        lapis_ctx *ctx;
        int r = parse(cases[i].text, &c, &ctx);
        if (r != -LAPIS_E_CONFIG || !strstr(lapis_ctx_error(ctx), cases[i].expect)) {
            print_error("case %zu: r=%d error=\"%s\", expected \"%s\"\n", i, r,
                        lapis_ctx_error(ctx) ? lapis_ctx_error(ctx) : "(null)", cases[i].expect);
            fail();
        }
        lapis_automatic_conf_clear(&c);
        lapis_ctx_free(ctx);
    }
}

static void test_binary_file(void **state)
{
    lapis_automatic_conf c;
    lapis_ctx *ctx;
    char *path = xasprintf("%s/bin.conf", tmpdir);
    FILE *f = fopen(path, "w");
    (void)state;
    fwrite("[commands]\n\0\x01\x02", 1, 14, f);
    fclose(f);
    assert_int_equal(lapis_ctx_new(&ctx), 0);
    lapis_automatic_conf_defaults(&c);
    assert_int_equal(lapis_automatic_conf_read(ctx, path, true, &c), -LAPIS_E_CONFIG);
    assert_non_null(strstr(lapis_ctx_error(ctx), "not a text file"));
    lapis_automatic_conf_clear(&c);
    lapis_ctx_free(ctx);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_reboot_values),
        cmocka_unit_test(test_shipped_config),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_binary_file),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
