/*
 * Test driver for the ISO stage (tests/functional/image/test_iso.py): runs
 * lapis_image_write_iso on a root prepared by the test, the way build.c
 * will once the orchestrator drives it.
 *
 *   lapis-iso-driver ROOT STAGEDIR NAME VERSION ARCH KVER [CMDLINE-ARG...]
 *
 * SOURCE_DATE_EPOCH (required) is the epoch; the ISO is written as
 * STAGEDIR/NAME-VERSION.ARCH.iso, scratch space is STAGEDIR/work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "basic/alloc.h"
#include "basic/strv.h"
#include "image/image.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* A test driver fills a config and build object by hand and exits without
 * taking them apart; what it leaks is its own scaffolding. The stages' own
 * frees are checked through `lapis image build` (tests/functional/image). */
#define DRIVER_NO_LEAK_CHECK() __lsan_disable()
#else
#define DRIVER_NO_LEAK_CHECK() ((void)0)
#endif

/* build.c's, once the orchestrator is linked in. */
__attribute__((weak)) void lapis_image_add_output(struct lapis_image_build *b, const char *name)
{
    strv_push(&b->outputs, xstrdup(name));
}

int main(int argc, char **argv)
{
    DRIVER_NO_LEAK_CHECK();
    const char *epoch = getenv("SOURCE_DATE_EPOCH");
    if (argc < 7 || !epoch) {
        fprintf(stderr, "usage: SOURCE_DATE_EPOCH=N %s ROOT STAGEDIR NAME VERSION ARCH KVER "
                        "[CMDLINE-ARG...]\n", argv[0]);
        return 2;
    }
    struct lapis_image_config conf = { .name = argv[3], .version = argv[4],
                                       .kernel_cmdline = argv + 7 };
    struct lapis_image_build b = { .conf = &conf, .arch = argv[5], .rootdir = argv[1],
                                   .stagedir = argv[2], .kver = argv[6],
                                   .epoch = atoll(epoch) };
    b.basename = xasprintf("%s-%s.%s", argv[3], argv[4], argv[5]);
    b.workdir = xasprintf("%s/work", argv[2]);
    mkdir(b.workdir, 0755);
    if (lapis_image_write_iso(&b) < 0) {
        fprintf(stderr, "error: %s\n", lapis_diag_error(&b.diag));
        return 1;
    }
    for (char **o = b.outputs; o && *o; o++)
        printf("%s\n", *o);
    return 0;
}
