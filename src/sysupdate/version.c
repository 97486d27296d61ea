/*
 * Version strings of the host: digits, letters, '.', '_' and '~' only, so a
 * version can sit in a UKI name (lapis_VERSION+TRIES.efi, where '+' and '-'
 * are systemd-boot's counter) and in a URL path. Compared as rpm does:
 * numeric runs by value, letter runs by byte, '~' before everything.
 */
#include <ctype.h>
#include <string.h>

#include "sysupdate/sysupdate.h"

bool su_version_valid(const char *v)
{
    if (!v || !isdigit((unsigned char)v[0]) || strlen(v) > 64)
        return false;
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._~", *p))
            return false;
    return true;
}

static int cmp_run(const char **pa, const char **pb)
{
    const char *a = *pa, *b = *pb;
    bool num = isdigit((unsigned char)*a);
    int (*is)(int) = num ? isdigit : isalpha;
    const char *ea = a, *eb = b;
    while (*ea && is((unsigned char)*ea))
        ea++;
    while (*eb && is((unsigned char)*eb))
        eb++;
    *pa = ea, *pb = eb;
    if (num) {
        while (*a == '0' && a < ea)
            a++;
        while (*b == '0' && b < eb)
            b++;
        if (ea - a != eb - b)
            return ea - a < eb - b ? -1 : 1;
    }
    size_t la = (size_t)(ea - a), lb = (size_t)(eb - b);
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? (c < 0 ? -1 : 1) : (la == lb ? 0 : la < lb ? -1 : 1);
}

int su_version_cmp(const char *a, const char *b)
{
    for (;;) {
        while (*a && !isalnum((unsigned char)*a) && *a != '~')
            a++;
        while (*b && !isalnum((unsigned char)*b) && *b != '~')
            b++;
        if (*a == '~' || *b == '~') {
            if (*a != '~')
                return 1;
            if (*b != '~')
                return -1;
            a++, b++;
            continue;
        }
        if (!*a || !*b)
            return *a ? 1 : *b ? -1 : 0;
        /* A number is newer than letters in the same place (rpm). */
        if (!!isdigit((unsigned char)*a) != !!isdigit((unsigned char)*b))
            return isdigit((unsigned char)*a) ? 1 : -1;
        int c = cmp_run(&a, &b);
        if (c)
            return c;
    }
}
