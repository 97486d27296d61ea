/* libFuzzer: an image config (YAML) through lapis_image_config_load, the
 * parser a user's build starts with. Invariant: success, or one clean error
 * line naming the file; never a crash, a leak or a multi-line message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/image.h"

static char dir[] = "/tmp/lapis-fuzz-image-XXXXXX";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static bool init;
    char path[128];
    if (!init) {
        if (!mkdtemp(dir))
            __builtin_trap();
        init = true;
    }
    snprintf(path, sizeof(path), "%s/image.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        __builtin_trap();
    fwrite(data, 1, len, f);
    fclose(f);

    struct lapis_diag d = { 0 };
    struct lapis_image_config *c = NULL;
    int r = lapis_image_config_load(&d, path, &c);
    if (r < 0) {
        const char *msg = lapis_diag_error(&d);
        if (c || !*msg || strchr(msg, '\n') || !strstr(msg, "image.yaml"))
            __builtin_trap();
    } else if (!c) {
        __builtin_trap();
    }
    lapis_image_config_free(c);
    lapis_diag_clear(&d);
    return 0;
}
