/* Strings and NULL-terminated string vectors (strv.c). */
#ifndef LAPIS_BASIC_STRV_H
#define LAPIS_BASIC_STRV_H

#include <stdbool.h>
#include <stddef.h>

#include "basic/macro.h"

/* A string that grows as it is appended to; s stays NUL-terminated (NULL
 * until the first append). */
struct strbuf {
    char *s;
    size_t len, cap;
};
void strbuf_add(struct strbuf *b, const char *s, size_t n);

char *strstrip(char *s);
bool str_startswith(const char *s, const char *prefix);
bool str_endswith(const char *s, const char *suffix);
/* Split on any of the separator chars, dropping empty items. */
char **strv_split(const char *s, const char *seps);
size_t strv_length(char *const *v);
int strv_push(char ***v, char *item); /* takes ownership */
char **strv_copy(char *const *v);
bool strv_contains(char *const *v, const char *s);
/* The items with sep between them ("" for an empty vector). */
char *strv_join(char *const *v, const char *sep);
/* n bytes as 2*n hex digits and a NUL into ret (2*n+1 bytes). */
void hex_encode(const void *buf, size_t n, bool upper, char *ret);
/* Also public (include/lapis/lapis.h): callers free the vectors the API returns. */
LAPIS_PUBLIC void lapis_strv_free(char **v);

static inline void strvfreep(char ***v) { lapis_strv_free(*v); }
#define _cleanup_strv_ _cleanup_(strvfreep)

#endif
