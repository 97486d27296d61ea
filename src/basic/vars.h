/* $variable substitution (vars.c). */
#ifndef LAPIS_BASIC_VARS_H
#define LAPIS_BASIC_VARS_H

#include <stddef.h>

typedef struct {
    const char *name;
    const char *value;
} lapis_var;
/* Substitute $name and ${name}; unknown variables are left as they are. */
char *lapis_vars_subst(const char *s, const lapis_var *vars, size_t nvars);

#endif
