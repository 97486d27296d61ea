/* libFuzzer: a damaged or hostile history database (ROOT/var/lib/lapis/
 * history.sqlite) read by history list/info. Invariant: an error or data,
 * never a crash. Seeds: real history databases from the functional suite. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pkg/internal.h"

static char root[] = "/tmp/lapis-fuzz-hist-XXXXXX";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static bool init;
    char path[160];
    if (!init) {
        if (!mkdtemp(root))
            __builtin_trap();
        init = true;
    }
    snprintf(path, sizeof(path), "%s/var/lib/lapis", root);
    mkdir_p(path, 0755);
    snprintf(path, sizeof(path), "%s/var/lib/lapis/history.sqlite", root);
    unlink(path);
    FILE *f = fopen(path, "w");
    if (!f)
        __builtin_trap();
    fwrite(data, 1, len, f);
    fclose(f);

    lapis_ctx *ctx;
    if (lapis_ctx_new(&ctx) < 0)
        __builtin_trap(); /* the harness's own setup: cannot fail */
    if (lapis_ctx_set_installroot(ctx, root) < 0)
        __builtin_trap();
    lapis_history_trans *t = NULL;
    size_t n = 0;
    if (lapis_history_list(ctx, &t, &n) == 0) {
        for (size_t i = 0; i < n && i < 4; i++) {
            lapis_history_item *it = NULL;
            size_t m = 0;
            if (lapis_history_items(ctx, t[i].id, &it, &m) == 0)
                lapis_history_items_free(it, m);
        }
        lapis_history_trans_free(t, n);
    }
    long long id;
    (void)lapis_history_resolve_id(ctx, "last", &id);
    lapis_ctx_free(ctx);
    return 0;
}
