/*
 * Parsers for option values, as dnf reads them: booleans (1/yes/true/on),
 * bounded integers, and durations in dnf's OptionSeconds syntax.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "basic/macro.h"
#include "basic/parse.h"

int lapis_parse_bool(const char *s, int *ret)
{
    static const char *const yes[] = { "1", "yes", "true", "on" };
    static const char *const no[] = { "0", "no", "false", "off" };
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) { *ret = 1; return 0; }
        if (strcasecmp(s, no[i]) == 0) { *ret = 0; return 0; }
    }
    return -EINVAL;
}

int lapis_parse_int(const char *s, long long min, long long max, long long *ret)
{
    char *end;
    long long v;

    if (!*s)
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *ret = v;
    return 0;
}

/* "90", "90s", "30m", "1.5h", "7D", "-1" or "never": dnf's OptionSeconds syntax
 * (units in either case, fractional numbers). */
int lapis_parse_seconds(const char *s, long long *ret)
{
    char *end;
    double v, mult = 1;

    if (strcasecmp(s, "never") == 0 || strcmp(s, "-1") == 0) {
        *ret = -1;
        return 0;
    }
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s)
        return -EINVAL;
    bool whole = !memchr(s, '.', (size_t)(end - s));
    switch (tolower((unsigned char)*end)) {
    case '\0': case 's': break;
    case 'm': mult = 60; break;
    case 'h': mult = 3600; break;
    case 'd': mult = 86400; break;
    default: return -EINVAL;
    }
    if (*end && end[1])
        return -EINVAL;
    if (whole) { /* exact integer arithmetic: no rounding for large values */
        errno = 0;
        long long n = strtoll(s, NULL, 10);
        if (errno == ERANGE || n > LLONG_MAX / (long long)mult)
            return -EINVAL;
        *ret = n * (long long)mult;
        return 0;
    }
    v *= mult;
    if (!(v < 9.2e18))
        return -EINVAL;
    *ret = (long long)v;
    return 0;
}
