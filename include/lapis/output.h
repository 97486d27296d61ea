/*
 * Output helpers shared by every front end: aligned tables for people,
 * cJSON package objects for scripts. Terminal text is sanitized (control
 * and bidi characters from hostile metadata never reach the terminal raw)
 * and JSON text is valid UTF-8 with those characters escaped.
 */
#ifndef LAPIS_OUTPUT_H
#define LAPIS_OUTPUT_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "lapis/lapis.h"

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

/* {name, epoch, version, release, arch, repo} */
cJSON *lapis_json_pkg(lapis_ctx *ctx, lapis_pkg p);
cJSON *lapis_json_strv(char *const *v);
/* The automatic run's report (docs/json.md, "automatic"). */
cJSON *lapis_automatic_report_json(const lapis_automatic_conf *conf,
                                   const lapis_automatic_report *report);
/* An advisory as {id, type, severity, title, issued, cves, packages, ...}. */
cJSON *lapis_json_advisory(const lapis_advisory *a);
/* A document as JSON text (free() it): C1 controls, DEL and bidi characters
 * escaped as \uXXXX, ill-formed UTF-8 replaced by U+FFFD. */
char *lapis_json_text(const cJSON *doc, bool pretty);
/* Print exactly one JSON document (as lapis_json_text) followed by a newline. */
void lapis_json_print(cJSON *doc, FILE *out);

#pragma GCC visibility pop

#endif
