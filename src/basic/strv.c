/*
 * Strings and NULL-terminated string vectors (strv), systemd's model: a strv
 * owns its strings, and NULL is the empty vector.
 */
#include <string.h>

#include "basic/alloc.h"
#include "basic/strv.h"

void strbuf_add(struct strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

char *strstrip(char *s)
{
    char *e;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

bool str_startswith(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_endswith(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

size_t strv_length(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

int strv_push(char ***v, char *item)
{
    size_t n = strv_length(*v);
    *v = xrealloc(*v, (n + 2) * sizeof(char *));
    (*v)[n] = item;
    (*v)[n + 1] = NULL;
    return 0;
}

char **strv_split(const char *s, const char *seps)
{
    char **v = xcalloc(1, sizeof(char *));
    const char *p = s;

    while (p && *p) {
        size_t n = strcspn(p, seps);
        if (n > 0)
            strv_push(&v, xstrndup(p, n));
        p += n;
        p += strspn(p, seps);
    }
    return v;
}

char **strv_copy(char *const *v)
{
    char **r = xcalloc(1, sizeof(char *));
    for (size_t i = 0; v && v[i]; i++)
        strv_push(&r, xstrdup(v[i]));
    return r;
}

bool strv_contains(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

void lapis_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

char *strv_join(char *const *v, const char *sep)
{
    size_t n = 1, lsep = strlen(sep);
    for (size_t i = 0; v && v[i]; i++)
        n += strlen(v[i]) + lsep;
    char *s = xcalloc(1, n);
    for (size_t i = 0; v && v[i]; i++) {
        if (i)
            strcat(s, sep);
        strcat(s, v[i]);
    }
    return s;
}

void hex_encode(const void *buf, size_t n, bool upper, char *ret)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    const unsigned char *b = buf;
    for (size_t i = 0; i < n; i++) {
        ret[2 * i] = digits[b[i] >> 4];
        ret[2 * i + 1] = digits[b[i] & 0xf];
    }
    ret[2 * n] = '\0';
}
