/*
 * Terminal output: aligned text tables, hostile text made safe (for a
 * terminal, and inside JSON text), human formats for sizes and dates, and
 * what a terminal adds: its width (text wraps, a table's long column is cut)
 * and colours (SGR codes, only when asked for). Column widths count
 * characters, not bytes, so UTF-8 summaries line up. Public
 * (include/lapis/term.h) for every front end.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "lapis/term.h"
#include "shared/term.h"

#define NO_COLUMN ((size_t)-1)
/* A wrapped column narrower than this is not wrapped: the text would be
 * a column of single words. */
#define MIN_WRAP_WIDTH 16
/* A cut column keeps at least this much. */
#define MIN_CUT_WIDTH 8

struct row {
    char **cells; /* NULL for a full-width line */
    char *line;
    const char **sgr; /* per cell (or [0] for a line): an SGR colour, or NULL */
};

struct lapis_table {
    size_t ncols;
    struct row *rows;
    size_t nrows;
    bool *right;
    double *share;             /* per column: its share of the width when cut (0: not cut) */
    size_t width;              /* 0: no limit */
    size_t cut_col, wrap_col;  /* NO_COLUMN: none */
    size_t wrap_hang;          /* continuation lines of the wrapped column start this far in */
    bool color;
    char **highlight;          /* terms shown in highlight_sgr, case-insensitively */
    const char *highlight_sgr;
};

lapis_table *lapis_table_new(size_t ncols)
{
    lapis_table *t = xcalloc(1, sizeof(*t));
    t->ncols = ncols;
    t->right = xcalloc(ncols, sizeof(bool));
    t->share = xcalloc(ncols ? ncols : 1, sizeof(double));
    t->cut_col = t->wrap_col = NO_COLUMN;
    return t;
}

void lapis_table_set_width(lapis_table *t, size_t width) { t->width = width; }

void lapis_table_cut_column(lapis_table *t, size_t col)
{
    if (col < t->ncols)
        t->cut_col = col;
}

void lapis_table_cut_column_share(lapis_table *t, size_t col, double share)
{
    if (col < t->ncols && share > 0 && share < 1)
        t->share[col] = share;
}

void lapis_table_wrap_column(lapis_table *t, size_t col, size_t hang)
{
    if (col < t->ncols) {
        t->wrap_col = col;
        t->wrap_hang = hang;
    }
}

void lapis_table_set_color(lapis_table *t, bool color) { t->color = color; }

void lapis_table_color_cell(lapis_table *t, size_t col, const char *sgr)
{
    struct row *r = t->nrows ? &t->rows[t->nrows - 1] : NULL;
    if (!r || col >= (r->cells ? t->ncols : 1))
        return;
    if (!r->sgr)
        r->sgr = xcalloc(t->ncols ? t->ncols : 1, sizeof(char *));
    r->sgr[col] = sgr;
}

void lapis_table_highlight(lapis_table *t, const char *const *terms, const char *sgr)
{
    size_t n = 0;
    for (size_t i = 0; terms && terms[i]; i++)
        if (*terms[i] && !strpbrk(terms[i], "*?[")) { /* globs are not highlighted (dnf5) */
            t->highlight = xrealloc(t->highlight, (n + 2) * sizeof(char *));
            t->highlight[n++] = lapis_sanitize(terms[i]);
            t->highlight[n] = NULL;
        }
    t->highlight_sgr = sgr;
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

static const char *row_cell(const struct row *r, size_t col)
{
    return r->cells ? (r->cells[col] ? r->cells[col] : "") : (r->line ? r->line : "");
}

/* Insertion sort: stable, and the tables sorted are small (advisory lists). */
void lapis_table_sort(lapis_table *t, size_t col, size_t first)
{
    for (size_t i = first + 1; i < t->nrows; i++) {
        struct row r = t->rows[i];
        size_t j = i;
        for (; j > first && strcmp(row_cell(&t->rows[j - 1], col), row_cell(&r, col)) > 0; j--)
            t->rows[j] = t->rows[j - 1];
        t->rows[j] = r;
    }
}

static size_t display_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

/* Bytes of s that hold its first n characters. */
static size_t bytes_of_chars(const char *s, size_t n)
{
    size_t i = 0;
    for (; s[i]; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80 && n-- == 0)
            break;
    return i;
}

/* The next line of s in at most avail characters: its length in bytes,
 * broken after the last blank that fits, or inside a word longer than a line. */
static size_t wrap_next(const char *s, size_t avail)
{
    size_t chars = 0, brk = 0;
    for (size_t i = 0; s[i]; i++) {
        if (((unsigned char)s[i] & 0xc0) == 0x80)
            continue;
        if (s[i] == ' ')
            brk = i;
        if (chars++ == avail)
            return brk ? brk : i;
    }
    return strlen(s);
}

static const char *skip_blanks(const char *s)
{
    while (*s == ' ')
        s++;
    return s;
}

static void put_sgr(const char *sgr, FILE *out) { fprintf(out, "\033[%sm", sgr); }

/* The highlighted term that starts at s, or 0. */
static size_t highlight_at(const lapis_table *t, const char *s, size_t len)
{
    for (size_t i = 0; t->highlight && t->highlight[i]; i++) {
        size_t n = strlen(t->highlight[i]);
        if (n <= len && strncasecmp(s, t->highlight[i], n) == 0)
            return n;
    }
    return 0;
}

/* len bytes of s, in the cell's colour and with matches highlighted when colour is on. */
static void put_text(const lapis_table *t, const char *s, size_t len, const char *sgr, FILE *out)
{
    if (!t->color) {
        fwrite(s, 1, len, out);
        return;
    }
    if (sgr)
        put_sgr(sgr, out);
    for (size_t i = 0; i < len;) {
        size_t m = t->highlight_sgr ? highlight_at(t, s + i, len - i) : 0;
        if (!m) {
            fputc(s[i++], out);
            continue;
        }
        put_sgr(t->highlight_sgr, out);
        fwrite(s + i, 1, m, out);
        fputs("\033[0m", out);
        if (sgr)
            put_sgr(sgr, out);
        i += m;
    }
    if (sgr)
        fputs("\033[0m", out);
}

static void put_blanks(size_t n, FILE *out) { fprintf(out, "%*s", (int)n, ""); }

/* Whether cells of column c wider than a third of the terminal are left out
 * of its width: beside a wrapped column, one long name (of 63k) must not
 * push every summary to the right; its row goes on under it instead. */
static bool spills(const lapis_table *t, size_t c)
{
    return t->width && t->wrap_col != NO_COLUMN && c != t->wrap_col;
}

static size_t *column_widths(const lapis_table *t)
{
    size_t *w = xcalloc(t->ncols, sizeof(size_t));
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; t->rows[r].cells && c < t->ncols; c++) {
            size_t dw = display_width(t->rows[r].cells[c]);
            if (dw > w[c] && !(spills(t, c) && dw > t->width / 3))
                w[c] = dw;
        }
    return w;
}

static size_t table_width(const lapis_table *t, const size_t *w)
{
    size_t total = 0;
    for (size_t c = 0; c < t->ncols; c++)
        total += w[c] + (c ? 2 : 0);
    return total;
}

/* libsmartcols' floor for a cut column: its share of the terminal less one
 * (for the separator), and never under its heading. */
static size_t share_min(const lapis_table *t, size_t c)
{
    size_t min = (size_t)(t->share[c] * (double)t->width), head = 0;
    if (min)
        min--;
    if (t->nrows && t->rows[0].cells)
        head = display_width(t->rows[0].cells[c]);
    return min > head ? min : head;
}

/* libsmartcols' first two stages of reducing a table (calculate.c): a
 * character at a time from each cut column in turn, first only from those at
 * or above their share of the terminal, then from any above its floor. */
static void fit_shares(const lapis_table *t, size_t *w)
{
    size_t total = table_width(t, w);
    for (int stage = 1; stage <= 2 && total > t->width;) {
        size_t before = total;
        for (size_t c = 0; c < t->ncols && total > t->width; c++) {
            if (!t->share[c] || w[c] <= share_min(t, c))
                continue;
            if (stage == 1 && w[c] < (size_t)(t->share[c] * (double)t->width))
                continue;
            w[c]--;
            total--;
        }
        if (total == before)
            stage++;
    }
}

static bool is_cut(const lapis_table *t, size_t c) { return c == t->cut_col || t->share[c]; }

/* A table wider than the terminal gives the cut column only what is left
 * (the history's command lines), not the width of its longest cell. */
static void fit_widths(const lapis_table *t, size_t *w)
{
    if (t->width)
        fit_shares(t, w);
    size_t total = table_width(t, w);
    if (!t->width || t->cut_col == NO_COLUMN || total <= t->width)
        return;
    size_t over = total - t->width, keep = w[t->cut_col] > MIN_CUT_WIDTH ? MIN_CUT_WIDTH
                                                                        : w[t->cut_col];
    w[t->cut_col] = w[t->cut_col] - over > keep && over < w[t->cut_col] ? w[t->cut_col] - over
                                                                        : keep;
}

/* The wrapped column's text from its start column on: the first line in
 * place, the others on lines of their own, indented. */
static void put_wrapped(const lapis_table *t, const char *s, size_t start, const char *sgr,
                        FILE *out)
{
    size_t avail = t->width > start ? t->width - start : 0;
    if (avail < MIN_WRAP_WIDTH + t->wrap_hang) {
        put_text(t, s, strlen(s), sgr, out);
        return;
    }
    for (bool first = true; *s; first = false) {
        size_t room = first ? avail : avail - t->wrap_hang, n = wrap_next(s, room);
        if (!first) {
            fputc('\n', out);
            put_blanks(start + t->wrap_hang, out);
        }
        put_text(t, s, n, sgr, out);
        s = skip_blanks(s + n);
    }
}

static void print_cells(const lapis_table *t, const struct row *row, const size_t *w, FILE *out)
{
    /* The last left-aligned column is not padded: no trailing blanks. */
    size_t last = t->ncols, at = 0;
    while (last > 0 && !*row->cells[last - 1])
        last--;
    for (size_t c = 0; c < last; c++) {
        const char *cell = row->cells[c], *sgr = row->sgr ? row->sgr[c] : NULL;
        size_t dw = display_width(cell), len = strlen(cell);
        if (is_cut(t, c) && dw > w[c]) {
            len = bytes_of_chars(cell, w[c]);
            dw = w[c];
        }
        size_t pad = w[c] > dw ? w[c] - dw : 0;
        if (t->right[c])
            put_blanks(pad, out);
        if (c == t->wrap_col && c + 1 == last && t->width)
            put_wrapped(t, cell, at, sgr, out);
        else
            put_text(t, cell, len, sgr, out);
        if (spills(t, c) && dw > w[c] && c + 1 < last) {
            fputc('\n', out);
            put_blanks(at + w[c], out);
        }
        if (!t->right[c] && c + 1 < last)
            put_blanks(pad, out);
        if (c + 1 < last)
            fputs("  ", out);
        at += w[c] + 2;
    }
    fputc('\n', out);
}

void lapis_table_print(const lapis_table *t, FILE *out)
{
    size_t *w = column_widths(t);

    fit_widths(t, w);
    for (size_t r = 0; r < t->nrows; r++) {
        const struct row *row = &t->rows[r];
        if (row->cells) {
            print_cells(t, row, w, out);
            continue;
        }
        put_text(t, row->line, strlen(row->line), row->sgr ? row->sgr[0] : NULL, out);
        fputc('\n', out);
    }
    free(w);
}

void lapis_term_print_wrapped(FILE *out, const char *prefix, const char *indent,
                              const char *text, size_t width)
{
    char *clean = lapis_sanitize(text);
    size_t start = display_width(prefix), avail = width > start ? width - start : 0;
    const char *s = clean;

    fputs(prefix, out);
    if (!width || avail < MIN_WRAP_WIDTH || display_width(indent) != start) {
        fputs(clean, out);
        s = "";
    }
    for (bool first = true; *s; first = false) {
        size_t n = wrap_next(s, avail);
        if (!first)
            fputs(indent, out);
        fwrite(s, 1, n, out);
        s = skip_blanks(s + n);
        if (*s)
            fputc('\n', out);
    }
    fputc('\n', out);
    free(clean);
}

/* ---- the terminal ---------------------------------------------------------- */

/* util-linux's rule (libsmartcols, so dnf5's tables): COLUMNS first, then the
 * window. Output that is not a terminal is never wrapped: scripts read it. */
size_t lapis_term_width(void)
{
    struct winsize ws;
    const char *env = getenv("COLUMNS");
    char *end;

    if (!isatty(STDOUT_FILENO))
        return 0;
    if (env && *env) {
        long v = strtol(env, &end, 10);
        if (!*end && v > 0 && v < 100000)
            return (size_t)v;
    }
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* dnf 4's values of color= (and --color): always/yes/on/force, never/no/off, auto/tty/if-tty. */
int lapis_color_parse(const char *s, enum lapis_color *ret)
{
    static const struct {
        const char *name;
        enum lapis_color mode;
    } names[] = {
        { "auto", LAPIS_COLOR_AUTO },     { "tty", LAPIS_COLOR_AUTO },
        { "if-tty", LAPIS_COLOR_AUTO },   { "always", LAPIS_COLOR_ALWAYS },
        { "yes", LAPIS_COLOR_ALWAYS },    { "on", LAPIS_COLOR_ALWAYS },
        { "force", LAPIS_COLOR_ALWAYS },  { "never", LAPIS_COLOR_NEVER },
        { "no", LAPIS_COLOR_NEVER },      { "off", LAPIS_COLOR_NEVER },
    };
    for (size_t i = 0; s && i < ARRAY_SIZE(names); i++)
        if (strcasecmp(s, names[i].name) == 0) {
            *ret = names[i].mode;
            return 0;
        }
    return -EINVAL;
}

/* NO_COLOR (no-color.org): any non-empty value turns auto off; an explicit
 * "always" still wins, as that convention asks. */
bool lapis_color_wanted(enum lapis_color mode, int fd)
{
    const char *no = getenv("NO_COLOR");
    if (mode != LAPIS_COLOR_AUTO)
        return mode == LAPIS_COLOR_ALWAYS;
    return isatty(fd) && !(no && *no);
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
        free(t->rows[r].sgr);
    }
    lapis_strv_free(t->highlight);
    free(t->rows);
    free(t->right);
    free(t->share);
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

const char *lapis_format_size_aligned(unsigned long long bytes, char buf[32])
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double v = (double)bytes;
    size_t u = 0;
    while (v > 999.0 && u + 1 < ARRAY_SIZE(units)) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, 32, "%.1f %3s", v, units[u]);
    return buf;
}
