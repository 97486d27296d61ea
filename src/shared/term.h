/* Text helpers of term.c that are not public API. */
#ifndef LAPIS_SHARED_TERM_H
#define LAPIS_SHARED_TERM_H

/* JSON text as cJSON prints it, with controls and bidi characters inside its
 * strings escaped as \uXXXX and ill-formed UTF-8 replaced by U+FFFD. */
char *lapis_term_json_escape(const char *json);

#endif
