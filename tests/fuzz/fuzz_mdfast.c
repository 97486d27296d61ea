/* libFuzzer: the fast primary.xml parser (src/pkg/mdfast.c) against
 * libsolv's repo_add_rpmmd() on the same input. Invariant: the same result,
 * the same error text, byte for byte the same .solv; and no crash or leak. */
#include <stdint.h>

#include "../unit/pkg_mdcompare.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    const char *why = md_compare((const char *)data, len);
    if (why) {
        fprintf(stderr, "fuzz_mdfast: %s\n", why);
        __builtin_trap();
    }
    return 0;
}
