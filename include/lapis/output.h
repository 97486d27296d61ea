/*
 * Output helpers shared by every front end: aligned tables for people
 * (lapis/term.h), cJSON package objects for scripts. Terminal text is
 * sanitized (control and bidi characters from hostile metadata never reach
 * the terminal raw) and JSON text is valid UTF-8 with those characters escaped.
 */
#ifndef LAPIS_OUTPUT_H
#define LAPIS_OUTPUT_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "lapis/lapis.h"
#include "lapis/term.h"

#pragma GCC visibility push(default) /* exported, as in lapis.h */

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
