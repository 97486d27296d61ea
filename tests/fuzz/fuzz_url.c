/* libFuzzer: URL and href handling. Input: "base\nhref". Invariants: a safe
 * href joined to a base never climbs out of it; file URLs decode to paths
 * without NUL surprises. */
#include <stdint.h>
#include <string.h>

#include "pkg/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *in = xstrndup((const char *)data, len); /* stops at an embedded NUL */
    char *nl = strchr(in, '\n');
    const char *base = in, *href = nl ? nl + 1 : "";
    if (nl)
        *nl = '\0';
    if (lapis_href_is_safe(href)) {
        /* Safe: relative, no leading scheme, no ".." segment (also percent-decoded). */
        size_t scheme = strspn(href, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
        bool alpha = (href[0] | 0x20) >= 'a' && (href[0] | 0x20) <= 'z';
        if (href[0] == '/' || (alpha && href[scheme] == ':'))
            __builtin_trap();
        char *joined = lapis_url_join("file:///repo", href);
        char *path = lapis_url_to_path(joined);
        size_t pl = path ? strlen(path) : 0;
        if (path && (strncmp(path, "/repo/", 6) != 0 || strstr(path, "/../") ||
                     (pl >= 3 && strcmp(path + pl - 3, "/..") == 0)))
            __builtin_trap();
        free(path);
        free(joined);
    }
    free(lapis_url_join(base, href));
    free(lapis_url_to_path(base));
    (void)lapis_url_is_remote(base);
    (void)lapis_url_scheme_ok(base);
    free(in);
    return 0;
}
