/* libFuzzer: the INI parser (lapis.conf, .repo files, automatic.conf) and the
 * [main] option table it feeds. Invariant: no crash, no leak, and an error
 * line number inside the input. */
#include <stdint.h>
#include <string.h>

#include "pkg/internal.h"

struct st {
    struct lapis_config conf;
    int lines;
};

static int cb(const char *section, const char *key, const char *value, int lineno, void *ud)
{
    struct st *s = ud;
    if (!section || !key || !value || lineno < 1 || lineno > s->lines)
        __builtin_trap();
    (void)lapis_config_set_main(&s->conf, key, value);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    struct st s = { .lines = 1 };
    int errline = 0;
    for (size_t i = 0; i < len; i++)
        s.lines += data[i] == '\n';
    lapis_config_defaults(&s.conf);
    int r = lapis_ini_parse((const char *)data, len, cb, &s, &errline);
    if (r == -22 && (errline < 1 || errline > s.lines))
        __builtin_trap();
    lapis_config_clear(&s.conf);
    return 0;
}
