/*
 * URL handling for repositories. The security-relevant part is
 * lapis_href_is_safe(): metadata from a mirror names files by href, and an
 * href that is absolute, carries a scheme, or climbs with ".." (also when
 * percent-encoded) could make us fetch or write outside the repository.
 */
#include <ctype.h>
#include <string.h>

#include "basic/alloc.h"
#include "basic/macro.h"
#include "basic/url.h"

char *lapis_url_join(const char *base, const char *href)
{
    const char *sep = strstr(base, "://");
    size_t keep = sep ? (size_t)(sep - base) + 3 : 0; /* never eat into "scheme://" */
    size_t lb = strlen(base);
    while (lb > keep && base[lb - 1] == '/')
        lb--;
    while (*href == '/')
        href++;
    return xasprintf("%.*s/%s", (int)lb, base, href);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode; returns NULL on a malformed escape or an encoded NUL. */
static char *pct_decode(const char *s)
{
    char *out = xmalloc(strlen(s) + 1), *o = out;
    for (; *s; s++) {
        if (*s == '%') {
            int h = s[1] ? hexval(s[1]) : -1, l = (h >= 0 && s[2]) ? hexval(s[2]) : -1;
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                free(out);
                return NULL;
            }
            *o++ = (char)(h * 16 + l);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

static bool has_scheme(const char *s)
{
    if (!isalpha((unsigned char)*s))
        return false;
    while (isalnum((unsigned char)*s) || *s == '+' || *s == '-' || *s == '.')
        s++;
    return *s == ':';
}

static bool path_climbs(const char *p)
{
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += n;
        p += strspn(p, "/");
    }
    return false;
}

bool lapis_href_is_safe(const char *href)
{
    _cleanup_free_ char *dec = NULL;

    if (!href || !*href || href[0] == '/' || has_scheme(href))
        return false;
    for (const char *c = href; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\' || *c == '?' || *c == '#')
            return false;
    dec = pct_decode(href);
    if (!dec || dec[0] == '/' || path_climbs(href) || path_climbs(dec))
        return false;
    for (const char *c = dec; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\')
            return false;
    return true;
}

char *lapis_url_to_path(const char *url)
{
    const char *p;
    if (strncmp(url, "file://", 7) != 0)
        return NULL;
    p = url + 7;
    if (strncmp(p, "localhost/", 10) == 0)
        p += 9;
    if (*p != '/')
        return NULL;
    return pct_decode(p);
}

bool lapis_url_is_remote(const char *url)
{
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

/* What dnf takes through curl. ftp:// (like http://) has no transport
 * security: metadata and packages are trusted only through their signatures,
 * and a gpgkey fetched this way is only as good as the fingerprint check. */
bool lapis_url_scheme_ok(const char *url)
{
    static const char *const schemes[] = { "http://", "https://", "ftp://", "ftps://", "file://" };
    for (size_t i = 0; i < ARRAY_SIZE(schemes); i++)
        if (strncmp(url, schemes[i], strlen(schemes[i])) == 0)
            return true;
    return false;
}
