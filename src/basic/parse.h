/* Option value parsers (parse.c): 0 or -EINVAL, *ret untouched on failure. */
#ifndef LAPIS_BASIC_PARSE_H
#define LAPIS_BASIC_PARSE_H

int lapis_parse_bool(const char *s, int *ret);
int lapis_parse_seconds(const char *s, long long *ret);
int lapis_parse_int(const char *s, long long min, long long max, long long *ret);

#endif
