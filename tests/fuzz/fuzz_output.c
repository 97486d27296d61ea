/* libFuzzer: terminal and JSON output of hostile package text (names,
 * summaries with control characters). Invariants: sanitized text has no
 * control characters; JSON output parses back to the same string. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "lapis/output.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *in = xstrndup((const char *)data, len);
    char *clean = lapis_sanitize(in);
    for (const char *c = clean; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            __builtin_trap();
    char *text = lapis_sanitize_text(in);
    for (const char *c = text; *c; c++)
        if (((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t') || *c == 0x7f)
            __builtin_trap();

    lapis_table *t = lapis_table_new(3);
    lapis_table_add(t, (const char *[]){ in, clean, "x" });
    lapis_table_add_line(t, in);
    FILE *devnull = fopen("/dev/null", "w");
    lapis_table_print(t, devnull);
    lapis_table_free(t);

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", in);
    char *js = cJSON_PrintUnformatted(o);
    cJSON *back = js ? cJSON_Parse(js) : NULL;
    const cJSON *name = back ? cJSON_GetObjectItemCaseSensitive(back, "name") : NULL;
    if (!cJSON_IsString(name) || strcmp(name->valuestring, in) != 0)
        __builtin_trap();
    lapis_json_print(o, devnull);
    fclose(devnull);
    cJSON_Delete(back);
    cJSON_free(js);
    cJSON_Delete(o);
    free(text);
    free(clean);
    free(in);
    return 0;
}
