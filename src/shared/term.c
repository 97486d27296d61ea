/*
 * Terminal output: aligned text tables, hostile text made safe (for a
 * terminal, and inside JSON text), human formats for sizes and dates. Column
 * widths count characters, not bytes, so UTF-8 summaries line up. Public
 * (include/lapis/term.h) for every front end.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basic/alloc.h"
#include "basic/macro.h"
#include "lapis/term.h"
#include "shared/term.h"

struct row {
    char **cells; /* NULL for a full-width line */
    char *line;
};

struct lapis_table {
    size_t ncols;
    struct row *rows;
    size_t nrows;
    bool *right;
};

lapis_table *lapis_table_new(size_t ncols)
{
    lapis_table *t = xcalloc(1, sizeof(*t));
    t->ncols = ncols;
    t->right = xcalloc(ncols, sizeof(bool));
    return t;
}

void lapis_table_align_right(lapis_table *t, size_t col)
{
    if (col < t->ncols)
        t->right[col] = true;
}

/* ---- hostile text ---------------------------------------------------------- */

/* Decode one UTF-8 sequence at s (NUL-terminated). Returns its length and the
 * code point in *ret_cp, or -1 there for an ill-formed sequence, whose length
 * is then its maximal subpart (Unicode 3.9: one U+FFFD per maximal subpart).
 * Overlong forms, surrogates and values above U+10FFFF are ill-formed. */
static size_t utf8_next(const unsigned char *s, int32_t *ret_cp)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t need;
    int32_t cp;

    if (c < 0x80) {
        *ret_cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2, cp = c & 0x0f;
        lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3, cp = c & 0x07;
        lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        *ret_cp = -1;
        return 1;
    }
    for (size_t i = 1; i <= need; i++, lo = 0x80, hi = 0xbf) {
        if (s[i] < lo || s[i] > hi) {
            *ret_cp = -1;
            return i;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    *ret_cp = cp;
    return need + 1;
}

/* What must not reach a terminal raw: C0 and C1 controls (ESC and 8-bit CSI,
 * OSC... drive the terminal; OSC 52 writes the clipboard), DEL, and the bidi
 * overrides and isolates, which make text display in another order than it
 * is read (Trojan Source, CVE-2021-42574). */
static bool is_unsafe_char(int32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

#define REPLACEMENT_CHAR "\xef\xbf\xbd" /* U+FFFD */

/* Controls become '?', ill-formed UTF-8 becomes U+FFFD; the result is valid UTF-8. */
static char *sanitize(const char *s, bool keep_lines)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    /* Worst case: every byte becomes a 3-byte U+FFFD. */
    char *out = xmalloc(3 * strlen((const char *)p) + 1), *w = out;

    while (*p) {
        int32_t cp;
        size_t len = utf8_next(p, &cp);
        if (cp < 0)
            w = stpcpy(w, REPLACEMENT_CHAR);
        else if (is_unsafe_char(cp) && !(keep_lines && (cp == '\n' || cp == '\t')))
            *w++ = '?';
        else
            w = mempcpy(w, p, len);
        p += len;
    }
    *w = '\0';
    return out;
}

char *lapis_sanitize(const char *s)
{
    return sanitize(s, false);
}

char *lapis_sanitize_text(const char *s)
{
    return sanitize(s, true);
}

/* cJSON escapes only C0, '"' and '\\' and copies other bytes as they are.
 * Every byte >= 0x7f of its output is inside a string, so escaping there is
 * always valid JSON: controls and bidi as \uXXXX, ill-formed UTF-8 as U+FFFD
 * (a JSON text must be UTF-8, RFC 8259). */
char *lapis_term_json_escape(const char *json)
{
    const unsigned char *p = (const unsigned char *)json;
    char *out = xmalloc(6 * strlen(json) + 1), *w = out;

    while (*p) {
        int32_t cp;
        size_t len = utf8_next(p, &cp);
        if (cp < 0)
            w = stpcpy(w, REPLACEMENT_CHAR);
        else if (cp >= 0x7f && is_unsafe_char(cp))
            w += sprintf(w, "\\u%04x", (unsigned)cp);
        else
            w = mempcpy(w, p, len);
        p += len;
    }
    *w = '\0';
    return out;
}

const char *lapis_format_utc(long long t, char buf[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    buf[0] = '\0';
    if (t && gmtime_r(&tt, &tm))
        strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

void lapis_table_add(lapis_table *t, const char *const *cells)
{
    struct row r = { .cells = xcalloc(t->ncols, sizeof(char *)) };
    for (size_t i = 0; i < t->ncols; i++)
        r.cells[i] = lapis_sanitize(cells[i]);
    t->rows = xrealloc(t->rows, (t->nrows + 1) * sizeof(*t->rows));
    t->rows[t->nrows++] = r;
}

void lapis_table_add_line(lapis_table *t, const char *text)
{
    struct row r = { .line = lapis_sanitize(text) };
    t->rows = xrealloc(t->rows, (t->nrows + 1) * sizeof(*t->rows));
    t->rows[t->nrows++] = r;
}

size_t lapis_table_rows(const lapis_table *t) { return t->nrows; }

static size_t display_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

void lapis_table_print(const lapis_table *t, FILE *out)
{
    size_t *w = xcalloc(t->ncols, sizeof(size_t));

    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; t->rows[r].cells && c < t->ncols; c++) {
            size_t dw = display_width(t->rows[r].cells[c]);
            if (dw > w[c])
                w[c] = dw;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        const struct row *row = &t->rows[r];
        if (!row->cells) {
            fprintf(out, "%s\n", row->line);
            continue;
        }
        /* The last left-aligned column is not padded: no trailing blanks. */
        size_t last = t->ncols;
        while (last > 0 && !*row->cells[last - 1])
            last--;
        for (size_t c = 0; c < last; c++) {
            size_t pad = w[c] - display_width(row->cells[c]);
            if (t->right[c])
                fprintf(out, "%*s%s", (int)pad, "", row->cells[c]);
            else if (c + 1 == last)
                fputs(row->cells[c], out);
            else
                fprintf(out, "%s%*s", row->cells[c], (int)pad, "");
            if (c + 1 < last)
                fputs("  ", out);
        }
        fputc('\n', out);
    }
    free(w);
}

void lapis_table_free(lapis_table *t)
{
    if (!t)
        return;
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; t->rows[r].cells && c < t->ncols; c++)
            free(t->rows[r].cells[c]);
        free(t->rows[r].cells);
        free(t->rows[r].line);
    }
    free(t->rows);
    free(t->right);
    free(t);
}

const char *lapis_format_size(unsigned long long bytes, char buf[32])
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < ARRAY_SIZE(units)) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, 32, "%llu %s", bytes, units[0]);
    else
        snprintf(buf, 32, "%.1f %s", v, units[u]);
    return buf;
}
