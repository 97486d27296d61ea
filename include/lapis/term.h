/*
 * Terminal output for every Lapis front end: aligned tables, text with its
 * control characters replaced, sizes and dates. libc only (no package
 * manager types), so tools on src/shared alone use it too.
 */
#ifndef LAPIS_TERM_H
#define LAPIS_TERM_H

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
void lapis_table_print(const lapis_table *t, FILE *out);
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

#pragma GCC visibility pop

#endif
