/*
 * Unit tests of the library through the public API only (lapis/lapis.h),
 * against the signed fixture repos (LAPIS_FIXTURES, default the build dir's
 * fixtures/): goals resolved more than once, and lapis_load() retried after
 * a failure. Leaks show under the ASan build (detect_leaks), and under
 * valgrind --leak-check=full.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lapis/lapis.h"

#ifndef LAPIS_FIXTURES_DEFAULT
#define LAPIS_FIXTURES_DEFAULT "build/fixtures"
#endif

struct env {
    char dir[64];         /* temporary: root/, cache/, repos.d/, lapis.conf */
    const char *fixtures;
};

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, f);
    assert_true(vasprintf(&s, f, ap) >= 0);
    va_end(ap);
    return s;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int env_setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->fixtures = getenv("LAPIS_FIXTURES") ? getenv("LAPIS_FIXTURES") : LAPIS_FIXTURES_DEFAULT;
    char *stamp = fmt("%s/.stamp", e->fixtures);
    if (access(stamp, F_OK) != 0) {
        print_error("no fixtures in %s: run tests/fixtures/build-repos there (or set "
                    "LAPIS_FIXTURES)\n", e->fixtures);
        free(stamp);
        free(e);
        return -1;
    }
    free(stamp);
    strcpy(e->dir, "/tmp/lapis-api-test-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    *state = e;
    return 0;
}

static int env_teardown(void **state)
{
    struct env *e = *state;
    char *cmd = fmt("rm -rf '%s'", e->dir);
    int r = system(cmd);
    free(cmd);
    free(e);
    return r == 0 ? 0 : -1;
}

/* A context on a fresh root and cache, reading .repo files from reposd. */
static lapis_ctx *new_ctx(struct env *e, const char *reposd)
{
    lapis_ctx *ctx = NULL;
    char *conf = fmt("%s/lapis.conf", e->dir);
    char *text = fmt("[main]\nreposdir=%s\ncachedir=%s/cache\ninstall_weak_deps=0\n",
                     reposd, e->dir);
    char *root = fmt("%s/root", e->dir);
    put(conf, text);
    assert_int_equal(lapis_ctx_new(&ctx), 0);
    assert_int_equal(lapis_ctx_set_installroot(ctx, root), 0);
    assert_int_equal(lapis_ctx_set_config_file(ctx, conf), 0);
    assert_int_equal(lapis_ctx_set_releasever(ctx, "1"), 0);
    free(conf);
    free(text);
    free(root);
    return ctx;
}

static void assert_ok(lapis_ctx *ctx, int r)
{
    if (r < 0)
        print_error("failed (%d): %s\n", r, lapis_ctx_error(ctx));
    assert_true(r >= 0);
}

/* ---- package file digest and vendor from the metadata -------------------- */

static void test_pkg_checksum_is_the_files_sha256(void **state)
{
    struct env *e = *state;
    char *reposd = fmt("%s/repos.d", e->fixtures);
    lapis_ctx *ctx = new_ctx(e, reposd);
    lapis_pkglist l = { 0 };
    char *const globs[] = { "hello-1.0-1.x86_64", NULL };
    const char *type = NULL;
    char line[200] = "";

    assert_ok(ctx, lapis_load(ctx, 0));
    assert_ok(ctx, lapis_query_all_versions(ctx, globs, false, true, &l));
    assert_true(l.count >= 1);
    const char *sum = lapis_pkg_checksum(ctx, l.pkgs[0], &type);
    assert_string_equal(type, "sha256");
    char *cmd = fmt("sha256sum '%s/repos/base/%s'", e->fixtures, lapis_pkg_location(ctx, l.pkgs[0]));
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    pclose(f);
    assert_int_equal(strncmp(line, sum, 64), 0);
    assert_int_equal(strlen(sum), 64);
    assert_non_null(lapis_pkg_vendor(ctx, l.pkgs[0]));
    assert_non_null(lapis_pkg_packager(ctx, l.pkgs[0]));
    lapis_pkglist_free(&l);
    lapis_ctx_free(ctx);
    free(cmd);
    free(reposd);
}

/* ---- lapis_goal_resolve() twice ----------------------------------------- */

static void test_resolve_twice_same_items(void **state)
{
    struct env *e = *state;
    char *reposd = fmt("%s/repos.d", e->fixtures);
    lapis_ctx *ctx = new_ctx(e, reposd);
    lapis_goal *goal = NULL;
    size_t n1, n2;

    assert_ok(ctx, lapis_load(ctx, 0));
    assert_ok(ctx, lapis_goal_new(ctx, &goal));
    assert_ok(ctx, lapis_goal_install(goal, "hello"));
    assert_ok(ctx, lapis_goal_resolve(goal));
    const lapis_trans_item *it = lapis_goal_items(goal, &n1);
    assert_int_equal(n1, 2); /* hello and libfoo (weak deps off) */
    lapis_trans_item *first = malloc(n1 * sizeof(*first));
    memcpy(first, it, n1 * sizeof(*first));

    /* Again, and once more after another request: the items are the new
     * transaction's, not appended to the old one's, and nothing leaks. */
    assert_ok(ctx, lapis_goal_resolve(goal));
    it = lapis_goal_items(goal, &n2);
    assert_int_equal(n2, n1);
    assert_memory_equal(it, first, n1 * sizeof(*first));
    assert_ok(ctx, lapis_goal_install(goal, "pkga"));
    assert_ok(ctx, lapis_goal_resolve(goal));
    it = lapis_goal_items(goal, &n2);
    assert_int_equal(n2, n1 + 1);
    assert_null(lapis_goal_problems(goal)[0]);

    free(first);
    lapis_goal_free(goal);
    lapis_ctx_free(ctx);
    free(reposd);
}

/* A failed resolve keeps its problems; a later resolve does not add them up. */
static void test_resolve_twice_problems_not_repeated(void **state)
{
    struct env *e = *state;
    char *reposd = fmt("%s/repos.d", e->fixtures);
    lapis_ctx *ctx = new_ctx(e, reposd);
    lapis_goal *goal = NULL;

    assert_ok(ctx, lapis_load(ctx, 0));
    assert_ok(ctx, lapis_goal_new(ctx, &goal));
    assert_ok(ctx, lapis_goal_install(goal, "hello"));
    assert_ok(ctx, lapis_goal_install(goal, "conflictor"));
    assert_int_equal(lapis_goal_resolve(goal), -LAPIS_E_SOLVE);
    size_t np = 0;
    while (lapis_goal_problems(goal)[np])
        np++;
    assert_true(np > 0);
    assert_int_equal(lapis_goal_resolve(goal), -LAPIS_E_SOLVE);
    size_t np2 = 0;
    while (lapis_goal_problems(goal)[np2])
        np2++;
    assert_int_equal(np2, np);

    lapis_goal_free(goal);
    lapis_ctx_free(ctx);
    free(reposd);
}

/* ---- results that must be checked (LAPIS_MUST_USE) ------------------------ */

/* A query before lapis_load() is refused (it read a NULL pool), and a goal
 * refuses ids that name no package instead of handing them to libsolv. */
static void test_misuse_is_reported(void **state)
{
    struct env *e = *state;
    char *reposd = fmt("%s/repos.d", e->fixtures);
    lapis_ctx *ctx = new_ctx(e, reposd);
    lapis_pkglist l = { 0 };
    lapis_goal *goal = NULL;

    assert_int_equal(lapis_query_list(ctx, LAPIS_LIST_ALL, NULL, &l), -LAPIS_E_USAGE);
    assert_int_equal(lapis_query_whatrequires(ctx, "libfoo", &l), -LAPIS_E_USAGE);
    assert_int_equal(l.count, 0);
    assert_ok(ctx, lapis_load(ctx, 0));
    assert_ok(ctx, lapis_query_list(ctx, LAPIS_LIST_AVAILABLE, NULL, &l));
    assert_true(l.count > 0);
    lapis_pkglist_free(&l);
    assert_ok(ctx, lapis_goal_new(ctx, &goal));
    assert_int_equal(lapis_goal_install_pkg(goal, 0), -LAPIS_E_USAGE);
    assert_int_equal(lapis_goal_remove_pkg(goal, 1 << 30), -LAPIS_E_USAGE);

    lapis_goal_free(goal);
    lapis_ctx_free(ctx);
    free(reposd);
}

/* ---- lapis_load() after a failure ---------------------------------------- */

/* base from the fixtures plus "gone", whose baseurl is a missing directory. */
static char *reposd_with_missing_repo(struct env *e)
{
    char *reposd = fmt("%s/repos.d", e->dir);
    char *base_src = fmt("%s/repos.d/base.repo", e->fixtures);
    char *base_dst = fmt("%s/base.repo", reposd);
    char *gone = fmt("%s/gone.repo", reposd);
    char *gone_text = fmt("[gone]\nbaseurl=file://%s/no-such-dir\ngpgcheck=0\nrepo_gpgcheck=0\n"
                          "skip_if_unavailable=0\n", e->dir);
    char *cmd = fmt("mkdir -p '%s' && cp '%s' '%s'", reposd, base_src, base_dst);
    assert_int_equal(system(cmd), 0);
    put(gone, gone_text);
    free(base_src);
    free(base_dst);
    free(gone);
    free(gone_text);
    free(cmd);
    return reposd;
}

static lapis_repo *find_repo(lapis_ctx *ctx, const char *id)
{
    for (size_t i = 0; i < lapis_repo_count(ctx); i++)
        if (strcmp(lapis_repo_id(lapis_repo_at(ctx, i)), id) == 0)
            return lapis_repo_at(ctx, i);
    fail_msg("no repo %s", id);
    return NULL;
}

static void test_load_retry_fails_again(void **state)
{
    struct env *e = *state;
    char *reposd = reposd_with_missing_repo(e);
    lapis_ctx *ctx = new_ctx(e, reposd);
    lapis_goal *goal = NULL;

    assert_true(lapis_load(ctx, 0) < 0);
    assert_non_null(strstr(lapis_ctx_error(ctx), "gone"));
    /* The retry meets the same broken repo: the same failure, never a
     * success with the repo silently missing. */
    int r = lapis_load(ctx, 0);
    if (r >= 0)
        print_error("retried lapis_load returned %d; repo gone skipped=%d npackages=%d\n", r,
                    lapis_repo_skipped(find_repo(ctx, "gone")),
                    lapis_repo_npackages(find_repo(ctx, "gone")));
    assert_true(r < 0);
    assert_non_null(strstr(lapis_ctx_error(ctx), "gone"));
    assert_false(lapis_repo_skipped(find_repo(ctx, "gone")));
    /* Nothing may be built on a failed load. */
    assert_int_equal(lapis_goal_new(ctx, &goal), -LAPIS_E_USAGE);
    assert_int_equal(lapis_load(ctx, 0), r);

    lapis_ctx_free(ctx);
    free(reposd);
}

/* After a failed load the caller may allow skipping the repo (or disable
 * it): the retry then succeeds and says what it skipped. */
static void test_load_retry_after_allowing_skip(void **state)
{
    struct env *e = *state;
    char *reposd = reposd_with_missing_repo(e);
    lapis_ctx *ctx = new_ctx(e, reposd);

    assert_true(lapis_load(ctx, 0) < 0);
    /* [main] options are read once, at setup: too late now, and said so. */
    assert_int_equal(lapis_ctx_setopt(ctx, "skip_if_unavailable=1"), -LAPIS_E_USAGE);
    assert_int_equal(lapis_ctx_setopt(ctx, "gone.skip_if_unavailable=1"), 0);
    assert_ok(ctx, lapis_load(ctx, 0));
    assert_true(lapis_repo_skipped(find_repo(ctx, "gone")));
    assert_false(lapis_repo_skipped(find_repo(ctx, "base")));
    assert_true(lapis_repo_npackages(find_repo(ctx, "base")) > 0);
    /* Loaded: repo settings can no longer take effect either. */
    assert_int_equal(lapis_ctx_setopt(ctx, "base.priority=1"), -LAPIS_E_USAGE);
    assert_int_equal(lapis_ctx_disable_repos(ctx, "base"), -LAPIS_E_USAGE);
    lapis_ctx_free(ctx);

    ctx = new_ctx(e, reposd);
    assert_true(lapis_load(ctx, 0) < 0);
    assert_int_equal(lapis_ctx_disable_repos(ctx, "gone"), 0);
    assert_ok(ctx, lapis_load(ctx, 0));
    assert_false(lapis_repo_enabled(find_repo(ctx, "gone")));
    assert_true(lapis_repo_npackages(find_repo(ctx, "base")) > 0);
    lapis_ctx_free(ctx);
    free(reposd);
}

/* ---- offline transactions ------------------------------------------------ */

static bool yes(const char *question, void *ud)
{
    (void)question;
    (void)ud;
    return true;
}

/* Store, refuse to apply it unscheduled, schedule, apply; nothing left. */
static void test_offline_store_schedule_execute(void **state)
{
    struct env *e = *state;
    char *reposd = fmt("%s/repos.d", e->fixtures);
    lapis_ctx *ctx = new_ctx(e, reposd);
    lapis_goal *goal = NULL;
    lapis_offline_info info = { 0 };
    size_t n = 0;

    lapis_ctx_set_confirm(ctx, yes, NULL); /* the repo key's import */
    assert_ok(ctx, lapis_load(ctx, 0));
    assert_int_equal(lapis_offline_status(ctx, &info), 0);
    assert_ok(ctx, lapis_goal_new(ctx, &goal));
    assert_ok(ctx, lapis_goal_install(goal, "hello"));
    assert_ok(ctx, lapis_goal_resolve(goal));
    assert_ok(ctx, lapis_offline_store(goal, &(lapis_run_opts){ .cmdline = "api", .script_fd = -1 }));
    lapis_goal_free(goal);
    assert_int_equal(lapis_offline_status(ctx, &info), 1);
    assert_string_equal(info.cmdline, "api");
    assert_false(info.scheduled);
    assert_string_equal(info.items[0], "install hello-2.1-1.x86_64");
    assert_string_equal(info.items[1], "install-dep libfoo-1.1-1.x86_64");
    assert_null(info.items[2]);
    lapis_offline_info_free(&info);
    /* The same context applies it: a second one loading the populated rpmdb in
     * this process trips a 33-byte leak inside libsolvext's repo_add_rpmdb
     * (the CLI applies it in a process of its own, clean under ASan). */
    assert_int_equal(lapis_offline_execute(ctx, &(lapis_run_opts){ .script_fd = -1 }, &goal),
                     -LAPIS_E_OFFLINE); /* not scheduled */
    lapis_goal_free(goal);
    assert_ok(ctx, lapis_offline_schedule(ctx, true));
    assert_int_equal(lapis_offline_status(ctx, &info), 1);
    assert_true(info.scheduled && info.poweroff);
    lapis_offline_info_free(&info);
    assert_ok(ctx, lapis_offline_execute(ctx, &(lapis_run_opts){ .script_fd = -1 }, &goal));
    lapis_goal_items(goal, &n);
    assert_int_equal(n, 2);
    assert_true(lapis_goal_history_id(goal) > 0);
    lapis_goal_free(goal);
    assert_int_equal(lapis_offline_status(ctx, &info), 0);
    assert_ok(ctx, lapis_offline_clean(ctx)); /* nothing stored: still fine */
    lapis_ctx_free(ctx);
    free(reposd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resolve_twice_same_items, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_resolve_twice_problems_not_repeated, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_misuse_is_reported, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_pkg_checksum_is_the_files_sha256, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_load_retry_fails_again, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_load_retry_after_allowing_skip, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_offline_store_schedule_execute, env_setup,
                                        env_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
