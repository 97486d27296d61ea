/* libFuzzer: terminal and JSON output of hostile package text (names,
 * summaries with control characters, bidi overrides, ill-formed UTF-8).
 * Invariants: sanitized text is well-formed UTF-8 without C0/C1 controls,
 * DEL or bidi overrides/isolates; JSON text is well-formed UTF-8 without
 * them either, parses, and gives back the input when that was valid UTF-8.
 * The UTF-8 check here is written apart from output.c's decoder on purpose. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pkg/internal.h"
#include "lapis/output.h"

/* Length of the well-formed sequence at s (Unicode Table 3-7), 0 if ill-formed;
 * the code point in *cp. */
static size_t wellformed(const unsigned char *s, uint32_t *cp)
{
    static const struct { unsigned char lead_lo, lead_hi, lo, hi; size_t len; } t[] = {
        { 0xc2, 0xdf, 0x80, 0xbf, 2 }, { 0xe0, 0xe0, 0xa0, 0xbf, 3 },
        { 0xe1, 0xec, 0x80, 0xbf, 3 }, { 0xed, 0xed, 0x80, 0x9f, 3 },
        { 0xee, 0xef, 0x80, 0xbf, 3 }, { 0xf0, 0xf0, 0x90, 0xbf, 4 },
        { 0xf1, 0xf3, 0x80, 0xbf, 4 }, { 0xf4, 0xf4, 0x80, 0x8f, 4 },
    };
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
        if (s[0] < t[k].lead_lo || s[0] > t[k].lead_hi)
            continue;
        if (s[1] < t[k].lo || s[1] > t[k].hi)
            return 0;
        *cp = s[0] & (0xff >> (t[k].len + 1));
        for (size_t i = 1; i < t[k].len; i++) {
            if (i > 1 && (s[i] < 0x80 || s[i] > 0xbf))
                return 0;
            *cp = *cp << 6 | (s[i] & 0x3f);
        }
        return t[k].len;
    }
    return 0;
}

static bool terminal_control(uint32_t c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069);
}

/* Well-formed UTF-8; with check_controls, also free of terminal controls
 * (except the newline and tab keep_lines allows). */
static bool utf8_ok(const char *str, bool check_controls, bool keep_lines)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        uint32_t c;
        size_t n = wellformed(s, &c);
        if (n == 0)
            return false;
        if (check_controls && terminal_control(c) && !(keep_lines && (c == '\n' || c == '\t')))
            return false;
        s += n;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *in = xstrndup((const char *)data, len);
    char *clean = lapis_sanitize(in);
    if (!utf8_ok(clean, true, false))
        __builtin_trap();
    char *text = lapis_sanitize_text(in);
    if (!utf8_ok(text, true, true))
        __builtin_trap();
    /* Valid, harmless text is kept as it is. */
    if (utf8_ok(in, true, false) && strcmp(clean, in) != 0)
        __builtin_trap();

    lapis_table *t = lapis_table_new(3);
    lapis_table_add(t, (const char *[]){ in, clean, "x" });
    lapis_table_add_line(t, in);
    FILE *devnull = fopen("/dev/null", "w");
    lapis_table_print(t, devnull);
    lapis_table_free(t);

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", in);
    char *js = lapis_json_text(o, false);
    if (!js || !utf8_ok(js, true, false))
        __builtin_trap();
    cJSON *back = cJSON_Parse(js);
    const cJSON *name = back ? cJSON_GetObjectItemCaseSensitive(back, "name") : NULL;
    if (!cJSON_IsString(name) || !utf8_ok(name->valuestring, false, false))
        __builtin_trap();
    if (utf8_ok(in, false, false) && strcmp(name->valuestring, in) != 0)
        __builtin_trap();
    lapis_json_print(o, devnull);
    fclose(devnull);
    cJSON_Delete(back);
    free(js);
    cJSON_Delete(o);
    free(text);
    free(clean);
    free(in);
    return 0;
}
