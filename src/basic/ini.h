/* The dnf dialect of INI (ini.c). */
#ifndef LAPIS_BASIC_INI_H
#define LAPIS_BASIC_INI_H

#include <stddef.h>

/* Called for each key; section is "" before the first [section]. Return <0 to stop. */
typedef int (*lapis_ini_cb)(const char *section, const char *key, const char *value,
                            int lineno, void *userdata);
/* Returns 0, the callback's negative value, or -EINVAL with *ret_errline set. */
int lapis_ini_parse(const char *buf, size_t len, lapis_ini_cb cb, void *userdata, int *ret_errline);

#endif
