/*
 * Terminal output for every Lapis front end: aligned tables, text with its
 * control characters replaced, sizes and dates. libc only (no package
 * manager types), so tools on src/shared alone use it too.
 */
#ifndef LAPIS_TERM_H
#define LAPIS_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#pragma GCC visibility push(default) /* exported, as in lapis.h */

typedef struct lapis_table lapis_table;

lapis_table *lapis_table_new(size_t ncols);
/* Right-align column col (sizes, counts). */
void lapis_table_align_right(lapis_table *t, size_t col);
/* Copies ncols cells; NULL cells print as empty. */
void lapis_table_add(lapis_table *t, const char *const *cells);
/* A full-width line inside the table (section headers like "Installing:"). */
void lapis_table_add_line(lapis_table *t, const char *text);
size_t lapis_table_rows(const lapis_table *t);
/* Sort the rows from row first on by column col (strcmp, stable: equal
 * cells keep the order they were added in), as libsmartcols sorts dnf5's. */
void lapis_table_sort(lapis_table *t, size_t col, size_t first);
void lapis_table_print(const lapis_table *t, FILE *out);
/* Fit the table into width columns (0, the default: no limit): the cut
 * column loses what the table is too wide by (dnf5's history command line);
 * the wrap column, which must be the last, wraps at blanks, its further lines
 * hang indent characters into it; beside it, a cell wider than a third of
 * the width does not widen its column: the rest of its row goes under it. */
void lapis_table_set_width(lapis_table *t, size_t width);
void lapis_table_cut_column(lapis_table *t, size_t col);
/* A column cut as libsmartcols cuts dnf5's SCOLS_FL_TRUNC ones (the
 * transaction table's Version and Repository): when the table is too wide,
 * one character at a time from each such column in turn, first from those
 * wider than share of the width, then from all; never narrower than share of
 * the width less one, nor than its first row (the heading). */
void lapis_table_cut_column_share(lapis_table *t, size_t col, double share);
void lapis_table_wrap_column(lapis_table *t, size_t col, size_t hang);
/* Colours (SGR parameters such as LAPIS_SGR_GREEN) are written only after
 * lapis_table_set_color(t, true). color_cell colours a cell of the row added
 * last (col 0 of a full-width line); highlight shows each term in every cell
 * in sgr, case-insensitively (glob terms are left out). */
void lapis_table_set_color(lapis_table *t, bool color);
void lapis_table_color_cell(lapis_table *t, size_t col, const char *sgr);
void lapis_table_highlight(lapis_table *t, const char *const *terms, const char *sgr);

#define LAPIS_SGR_BOLD "1"
#define LAPIS_SGR_DIM "2"
#define LAPIS_SGR_RED "31"
#define LAPIS_SGR_GREEN "32"
#define LAPIS_SGR_MAGENTA "35"

/* The terminal's width on stdout: COLUMNS when it is a positive number, else
 * the window's (80 when unknown); 0 when stdout is not a terminal, so
 * output that scripts read is never wrapped. */
size_t lapis_term_width(void);
/* prefix, then text (sanitized) wrapped at blanks to width (0: not wrapped),
 * each further line after indent, which must be as wide as prefix. */
void lapis_term_print_wrapped(FILE *out, const char *prefix, const char *indent,
                              const char *text, size_t width);

enum lapis_color { LAPIS_COLOR_AUTO, LAPIS_COLOR_ALWAYS, LAPIS_COLOR_NEVER };
/* "auto" (tty, if-tty), "always" (yes, on, force), "never" (no, off); -EINVAL otherwise. */
int lapis_color_parse(const char *s, enum lapis_color *ret);
/* Whether to colour output on fd: always, never, or (auto) when fd is a
 * terminal and NO_COLOR is unset or empty. */
bool lapis_color_wanted(enum lapis_color mode, int fd);
void lapis_table_free(lapis_table *t);

/* Text from packages and repos made safe for a terminal: C0/C1 controls, DEL and
 * bidi overrides/isolates (U+202A-U+202E, U+2066-U+2069) become '?', ill-formed
 * UTF-8 becomes U+FFFD; valid text is kept. Returns a new string. */
char *lapis_sanitize(const char *s);
/* Like lapis_sanitize, but keeps newlines and tabs (multi-line messages). */
char *lapis_sanitize_text(const char *s);
/* "2026-01-01 00:00:00" (UTC), as updateinfo writes dates; "" for 0. */
const char *lapis_format_utc(long long t, char buf[32]);
/* "1.2 MiB"; buf must hold 32 bytes. */
const char *lapis_format_size(unsigned long long bytes, char buf[32]);
/* dnf5's format_size_aligned ("512.0   B", "1.2 KiB": above 999 the next
 * unit, the unit right-aligned in 3), as its info shows sizes. */
const char *lapis_format_size_aligned(unsigned long long bytes, char buf[32]);

#pragma GCC visibility pop

#endif
