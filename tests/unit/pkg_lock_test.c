/*
 * Unit tests for the installroot lock (src/shared/lock.c through
 * lapis_ctx_lock in src/pkg/context.c): two contexts on one root exclude each other (OFD locks conflict between open file
 * descriptions even inside one process), the loser names the holder's pid,
 * the lock is released with the context, and a lock file left behind by a
 * dead holder does not block anyone. The cache lock: users share it, clean
 * is alone, two readers that both want to write do not wait for each other.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "pkg/internal.h"

static char *make_root(void)
{
    char tmpl[] = "/tmp/lapis-lock-test-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return xstrdup(tmpl);
}

static lapis_ctx *ctx_for(const char *root, const char *timeout)
{
    lapis_ctx *ctx;
    _cleanup_free_ char *opt = xasprintf("lock_timeout=%s", timeout);
    _cleanup_free_ char *rd = xasprintf("reposdir=%s/none", root);
    _cleanup_free_ char *cf = xasprintf("%s/lapis.conf", root);
    assert_int_equal(write_file_atomic(cf, "[main]\n", 7), 0);
    assert_int_equal(lapis_ctx_new(&ctx), 0);
    assert_int_equal(lapis_ctx_set_installroot(ctx, root), 0);
    assert_int_equal(lapis_ctx_set_config_file(ctx, cf), 0);
    assert_int_equal(lapis_ctx_setopt(ctx, rd), 0);
    assert_int_equal(lapis_ctx_setopt(ctx, opt), 0);
    assert_int_equal(lapis_ctx_setup(ctx), 0); /* the cache lock comes after setup */
    return ctx;
}

static void test_second_context_is_refused_then_gets_it(void **state)
{
    (void)state;
    _cleanup_free_ char *root = make_root();
    lapis_ctx *a = ctx_for(root, "0"), *b = ctx_for(root, "0");

    assert_int_equal(lapis_ctx_lock(a), 0);
    assert_int_equal(lapis_ctx_lock(a), 0); /* idempotent */
    assert_int_equal(lapis_ctx_lock(b), -LAPIS_E_LOCKED);
    _cleanup_free_ char *pid = xasprintf("pid %ld", (long)getpid());
    assert_non_null(strstr(lapis_ctx_error(b), pid));
    lapis_ctx_free(a); /* releases */
    assert_int_equal(lapis_ctx_lock(b), 0);
    lapis_ctx_free(b);
    rm_rf(root, NULL);
}

static void test_dead_holder_does_not_block(void **state)
{
    (void)state;
    _cleanup_free_ char *root = make_root();
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        lapis_ctx *c = ctx_for(root, "0");
        _exit(lapis_ctx_lock(c) == 0 ? 0 : 1); /* dies holding the lock */
    }
    int status = 0;
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    _cleanup_free_ char *lock = xasprintf("%s/var/lib/lapis/lock", root);
    assert_true(path_exists(lock)); /* the file stays ... */
    lapis_ctx *b = ctx_for(root, "0");
    assert_int_equal(lapis_ctx_lock(b), 0); /* ... the lock does not */
    lapis_ctx_free(b);
    rm_rf(root, NULL);
}

static void test_planted_symlink_is_not_followed(void **state)
{
    (void)state;
    _cleanup_free_ char *root = make_root();
    _cleanup_free_ char *dir = xasprintf("%s/var/lib/lapis", root);
    _cleanup_free_ char *lock = xasprintf("%s/lock", dir);
    _cleanup_free_ char *target = xasprintf("%s/victim", root);
    assert_int_equal(mkdir_p(dir, 0755), 0);
    assert_int_equal(symlink(target, lock), 0);
    lapis_ctx *c = ctx_for(root, "0");
    assert_true(lapis_ctx_lock(c) < 0);
    assert_false(path_exists(target));
    lapis_ctx_free(c);
    rm_rf(root, NULL);
}

/* Two contexts on one root share its cache (the root's default cachedir). */
static void test_cache_users_share_clean_is_alone(void **state)
{
    (void)state;
    _cleanup_free_ char *root = make_root();
    lapis_ctx *a = ctx_for(root, "0"), *b = ctx_for(root, "0");
    short prev;

    assert_int_equal(lapis_lock_cache(a, false), 0);
    assert_int_equal(lapis_lock_cache(b, false), 0);   /* shared */
    assert_int_equal(lapis_lock_cache(b, true), -LAPIS_E_LOCKED);
    assert_non_null(strstr(lapis_ctx_error(b), "using the cache"));
    /* Both read the metadata; a wants to write: b's share is in the way. */
    assert_int_equal(lapis_lock_cache_area(a, LAPIS_CACHE_METADATA, F_RDLCK, &prev), 0);
    assert_int_equal(lapis_lock_cache_area(b, LAPIS_CACHE_METADATA, F_RDLCK, &prev), 0);
    assert_int_equal(lapis_lock_cache_area(a, LAPIS_CACHE_METADATA, F_WRLCK, &prev),
                     -LAPIS_E_LOCKED);
    /* a dropped its share before waiting, so b can upgrade: no deadlock. */
    assert_int_equal(lapis_lock_cache_area(b, LAPIS_CACHE_METADATA, F_WRLCK, &prev), 0);
    assert_int_equal(prev, F_RDLCK);
    _cleanup_free_ char *pid = xasprintf("pid %ld", (long)getpid());
    assert_int_equal(lapis_lock_cache_area(a, LAPIS_CACHE_METADATA, F_RDLCK, &prev),
                     -LAPIS_E_LOCKED);
    assert_non_null(strstr(lapis_ctx_error(a), pid)); /* the writer is named */
    lapis_lock_cache_area_restore(b, LAPIS_CACHE_METADATA, F_UNLCK);
    assert_int_equal(lapis_lock_cache_area(a, LAPIS_CACHE_METADATA, F_WRLCK, &prev), 0);
    lapis_ctx_free(a);
    lapis_ctx_free(b);
    lapis_ctx *c = ctx_for(root, "0");
    assert_int_equal(lapis_lock_cache(c, true), 0);    /* released with the contexts */
    lapis_ctx_free(c);
    rm_rf(root, NULL);
}

/* Interrupted while readers (who record no pid) hold the lock: the message
 * must not name a "process 0". */
static void test_interrupted_wait_behind_readers(void **state)
{
    (void)state;
    _cleanup_free_ char *root = make_root();
    _cleanup_free_ char *path = xasprintf("%s/lock", root);
    _cleanup_close_ int reader = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    _cleanup_close_ int writer = open(path, O_RDWR | O_CLOEXEC);
    static volatile sig_atomic_t stop = SIGINT;
    struct lapis_diag d = { .interrupt = &stop };
    struct lapis_lock_req rd = { .fd = reader, .type = F_RDLCK, .what = "the cache" };
    struct lapis_lock_req wr = { .fd = writer, .type = F_WRLCK, .what = "the cache" };

    assert_true(reader >= 0 && writer >= 0);
    assert_int_equal(lapis_lock_wait(NULL, &rd, 0), 0);
    assert_int_equal(lapis_lock_wait(&d, &wr, 10), -LAPIS_E_INTERRUPTED);
    assert_string_equal(lapis_diag_error(&d), "interrupted: nothing was changed (it was waiting "
                        "for other lapis runs to finish with the cache)");
    lapis_diag_clear(&d);
    rm_rf(root, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_context_is_refused_then_gets_it),
        cmocka_unit_test(test_dead_holder_does_not_block),
        cmocka_unit_test(test_planted_symlink_is_not_followed),
        cmocka_unit_test(test_cache_users_share_clean_is_alone),
        cmocka_unit_test(test_interrupted_wait_behind_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
