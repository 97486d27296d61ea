/* libFuzzer: $var / ${var} substitution in repo files. */
#include <stdint.h>
#include <string.h>

#include "pkg/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static const lapis_var vars[] = {
        { "releasever", "42" }, { "basearch", "x86_64" }, { "arch", "x86_64" },
        { "empty", "" }, { "long", "0123456789012345678901234567890123456789" },
    };
    char *in = xstrndup((const char *)data, len);
    char *out = lapis_vars_subst(in, vars, sizeof(vars) / sizeof(vars[0]));
    if (!out)
        __builtin_trap();
    free(out);
    free(in);
    return 0;
}
