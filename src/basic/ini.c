/*
 * A small INI parser for lapis.conf and .repo files with the dialect dnf
 * accepts: '#' and ';' comment lines, [section] headers, KEY=VALUE (or
 * KEY: VALUE), and continuation lines that start with whitespace and extend
 * the previous value (how baseurl lists several mirrors). Values are passed
 * to the callback with continuation lines joined by '\n'.
 *
 * Written by hand rather than using inih so that errors carry line numbers
 * for every kind of garbled line and the dialect is exactly dnf's.
 */
#include <errno.h>
#include <string.h>

#include "basic/alloc.h"
#include "basic/ini.h"
#include "basic/macro.h"
#include "basic/strv.h"

struct pending {
    char *key;
    char *value;
    int lineno;
};

static int flush(struct pending *p, const char *section, lapis_ini_cb cb, void *ud)
{
    int r = 0;
    if (p->key)
        r = cb(section, p->key, p->value, p->lineno, ud);
    free(p->key);
    free(p->value);
    p->key = p->value = NULL;
    return r;
}

static bool is_blank_or_comment(const char *s)
{
    s += strspn(s, " \t\r");
    return *s == '\0' || *s == '#' || *s == ';';
}

int lapis_ini_parse(const char *buf, size_t len, lapis_ini_cb cb, void *ud, int *ret_errline)
{
    _cleanup_free_ char *section = xstrdup("");
    struct pending pend = {0};
    const char *p = buf, *end = buf + len;
    int lineno = 0, r = 0;

    while (p < end && r >= 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        _cleanup_free_ char *raw = xstrndup(p, n);
        char *line;

        p += n + (nl ? 1 : 0);
        lineno++;
        if (memchr(raw, '\0', n)) {
            r = -EINVAL;
            break;
        }
        if (is_blank_or_comment(raw))
            continue;

        /* Continuation: indented line following a key. */
        if ((raw[0] == ' ' || raw[0] == '\t') && pend.key) {
            char *joined = xasprintf("%s%s%s", pend.value, *pend.value ? "\n" : "", strstrip(raw));
            free(pend.value);
            pend.value = joined;
            continue;
        }

        r = flush(&pend, section, cb, ud);
        if (r < 0)
            break;

        line = strstrip(raw);
        if (line[0] == '[') {
            char *close = strchr(line, ']');
            if (!close || *strstrip(close + 1) != '\0') {
                r = -EINVAL;
                break;
            }
            *close = '\0';
            if (!*strstrip(line + 1)) { /* "[]" or "[ ]" */
                r = -EINVAL;
                break;
            }
            free(section);
            section = xstrdup(strstrip(line + 1));
            continue;
        }

        char *eq = strpbrk(line, "=:");
        if (!eq || eq == line) {
            r = -EINVAL;
            break;
        }
        *eq = '\0';
        pend.key = xstrdup(strstrip(line));
        pend.value = xstrdup(strstrip(eq + 1));
        pend.lineno = lineno;
        if (!*pend.key || strpbrk(pend.key, " \t[]")) {
            r = -EINVAL;
            break;
        }
    }
    if (r >= 0)
        r = flush(&pend, section, cb, ud);
    free(pend.key);
    free(pend.value);
    if (r == -EINVAL && ret_errline)
        *ret_errline = lineno;
    return r;
}
