/* libFuzzer: repomd.xml handling. The input is served (file://) as a
 * repository's repomd.xml with signature checks off, and lapis_load() runs
 * over it: libsolv's repomd parser, our open-size reader (expat), the href
 * safety and checksum checks, fetching what it lists, and the metadata
 * parsers behind it. Invariant: a clean error or success, no crash or leak,
 * and nothing written outside the cache. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pkg/internal.h"

static char dir[] = "/tmp/lapis-fuzz-repomd-XXXXXX";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static bool init;
    char path[256], opt[300];
    if (!init) {
        if (!mkdtemp(dir))
            __builtin_trap();
        snprintf(path, sizeof(path), "%s/repo/repodata", dir);
        mkdir_p(path, 0755);
        snprintf(path, sizeof(path), "%s/repos.d", dir);
        mkdir_p(path, 0755);
        snprintf(path, sizeof(path), "%s/repos.d/f.repo", dir);
        FILE *f = fopen(path, "w");
        fprintf(f, "[f]\nbaseurl=file://%s/repo\ngpgcheck=0\nrepo_gpgcheck=0\n", dir);
        fclose(f);
        init = true;
    }
    snprintf(path, sizeof(path), "%s/repo/repodata/repomd.xml", dir);
    FILE *f = fopen(path, "w");
    fwrite(data, 1, len, f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/cache", dir);
    rm_rf(path, NULL);

    lapis_ctx *ctx;
    if (lapis_ctx_new(&ctx) < 0)
        __builtin_trap(); /* the harness's own setup: cannot fail */
    snprintf(opt, sizeof(opt), "reposdir=%s/repos.d", dir);
    if (lapis_ctx_setopt(ctx, opt) < 0)
        __builtin_trap();
    snprintf(opt, sizeof(opt), "cachedir=%s/cache", dir);
    if (lapis_ctx_setopt(ctx, opt) < 0)
        __builtin_trap();
    if (lapis_ctx_setopt(ctx, "retries=0") < 0)
        __builtin_trap();
    if (lapis_ctx_setup(ctx) == 0)
        (void)lapis_load(ctx, LAPIS_LOAD_NO_SYSTEM | LAPIS_LOAD_REFRESH);
    lapis_ctx_free(ctx);
    return 0;
}
