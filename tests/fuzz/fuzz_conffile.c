/* libFuzzer: whole configuration files through the public API: the input is
 * used as lapis.conf, as a .repo file and as automatic.conf. Invariant: a
 * clean error or success, never a crash or leak. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pkg/internal.h"

static char dir[] = "/tmp/lapis-fuzz-conf-XXXXXX";

static void write_all(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        __builtin_trap();
    fwrite(data, 1, len, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static bool init;
    char conf[128], repo[160], reposd[128];
    if (!init) {
        if (!mkdtemp(dir))
            __builtin_trap();
        init = true;
    }
    snprintf(conf, sizeof(conf), "%s/lapis.conf", dir);
    snprintf(reposd, sizeof(reposd), "%s/repos.d", dir);
    snprintf(repo, sizeof(repo), "%s/fuzz.repo", reposd);
    mkdir_p(reposd, 0755);
    write_all(conf, data, len);
    write_all(repo, data, len);

    lapis_ctx *ctx;
    if (lapis_ctx_new(&ctx) < 0)
        __builtin_trap(); /* the harness's own setup: cannot fail */
    if (lapis_ctx_set_config_file(ctx, conf) < 0)
        __builtin_trap();
    char opt[200];
    snprintf(opt, sizeof(opt), "reposdir=%s", reposd);
    if (lapis_ctx_setopt(ctx, opt) < 0)
        __builtin_trap();
    snprintf(opt, sizeof(opt), "cachedir=%s/cache", dir);
    if (lapis_ctx_setopt(ctx, opt) < 0)
        __builtin_trap();
    if (lapis_ctx_setup(ctx) == 0)
        for (size_t i = 0; i < lapis_repo_count(ctx); i++)
            (void)lapis_repo_baseurl(lapis_repo_at(ctx, i));

    lapis_automatic_conf ac;
    lapis_automatic_conf_defaults(&ac);
    (void)lapis_automatic_conf_read(ctx, conf, true, &ac);
    lapis_automatic_conf_clear(&ac);
    lapis_ctx_free(ctx);
    return 0;
}
