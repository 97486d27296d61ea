/*
 * $releasever / $basearch / $arch substitution in .repo values, as dnf does:
 * $name and ${name}; a name is [A-Za-z0-9_]+; unknown variables stay literal
 * so a typo is visible in the resulting URL rather than silently dropped.
 */
#include <ctype.h>
#include <string.h>

#include "basic/alloc.h"
#include "basic/vars.h"

static const char *lookup(const lapis_var *vars, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(vars[i].name) == len && strncmp(vars[i].name, name, len) == 0)
            return vars[i].value;
    return NULL;
}

static size_t var_name_len(const char *s)
{
    size_t n = 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '_')
        n++;
    return n;
}

char *lapis_vars_subst(const char *s, const lapis_var *vars, size_t nvars)
{
    size_t cap = strlen(s) + 64, len = 0;
    char *out = xmalloc(cap);

    while (*s) {
        const char *val = NULL;
        size_t consumed = 1;

        if (s[0] == '$' && s[1] == '{') {
            const char *close = strchr(s + 2, '}');
            size_t n = close ? var_name_len(s + 2) : 0;
            if (close && n == (size_t)(close - (s + 2)) && n > 0) {
                val = lookup(vars, nvars, s + 2, n);
                if (val)
                    consumed = n + 3;
            }
        } else if (s[0] == '$') {
            size_t n = var_name_len(s + 1);
            if (n > 0) {
                val = lookup(vars, nvars, s + 1, n);
                if (val)
                    consumed = n + 1;
            }
        }
        const char *piece = val ? val : s;
        size_t plen = val ? strlen(val) : 1;
        if (len + plen + 1 > cap) {
            cap = (len + plen + 1) * 2;
            out = xrealloc(out, cap);
        }
        memcpy(out + len, piece, plen);
        len += plen;
        s += consumed;
    }
    out[len] = '\0';
    return out;
}
