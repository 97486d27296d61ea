/*
 * Runs the boot and disk stages on a root made by any means, until the
 * orchestrator (build.c) lands:
 *   image_disk_driver ROOT OUTDIR NAME VERSION ARCH EPOCH FORMATS [bls] [-- CMDLINE-ARG...]
 * FORMATS is a comma list of raw,qcow2,vhd,vhdx. The config digest is the
 * sha256 of NAME-VERSION, standing in for the config file's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/strv.h"
#include "image/image.h"
#include "shared/digest.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* A test driver fills a config and build object by hand and exits without
 * taking them apart; what it leaks is its own scaffolding. The stages' own
 * frees are checked through `lapis image build` (tests/functional/image). */
#define DRIVER_NO_LEAK_CHECK() __lsan_disable()
#else
#define DRIVER_NO_LEAK_CHECK() ((void)0)
#endif

static unsigned parse_formats(const char *s)
{
    unsigned f = 0;
    f |= strstr(s, "raw") ? LAPIS_IMAGE_RAW : 0;
    f |= strstr(s, "qcow2") ? LAPIS_IMAGE_QCOW2 : 0;
    f |= strstr(s, "vhdx") ? LAPIS_IMAGE_VHDX : 0;
    f |= strstr(s, "vhd,") || str_endswith(s, "vhd") ? LAPIS_IMAGE_VHD : 0;
    return f;
}

int main(int argc, char **argv)
{
    DRIVER_NO_LEAK_CHECK();
    struct lapis_image_config c = { 0 };
    struct lapis_image_build b = { 0 };
    char hex[65], kver[256] = "";
    int i = 8, r;

    if (argc < 8) {
        fprintf(stderr, "usage: %s ROOT OUTDIR NAME VERSION ARCH EPOCH FORMATS [bls] [-- ARGS]\n", argv[0]);
        return 2;
    }
    c.name = argv[3];
    c.version = argv[4];
    c.formats = parse_formats(argv[7]);
    c.uki = !(argc > 8 && !strcmp(argv[8], "bls"));
    c.disk_size = getenv("DISK_SIZE") ? strtoull(getenv("DISK_SIZE"), NULL, 10) : 0;
    while (i < argc && strcmp(argv[i], "--"))
        i++;
    for (i++; i < argc; i++)
        strv_push(&c.kernel_cmdline, xstrdup(argv[i]));
    _cleanup_free_ char *seed = xasprintf("%s-%s", c.name, c.version);
    lapis_chk_buf(seed, strlen(seed), LAPIS_CHK_SHA256, hex, sizeof(hex));
    for (int k = 0; k < 32; k++)
        sscanf(hex + 2 * k, "%2hhx", &c.sha256[k]);

    b.conf = &c;
    b.arch = argv[5];
    b.epoch = atoll(argv[6]);
    b.rootdir = path_resolve(argv[1]);
    b.stagedir = path_resolve(argv[2]);
    b.workdir = path_join(b.stagedir, "work");
    b.basename = xasprintf("%s-%s.%s", c.name, c.version, b.arch);
    mkdir_p(b.workdir, 0755);
    _cleanup_free_ char *mods = path_join(b.rootdir, "usr/lib/modules");
    FILE *p = NULL;
    _cleanup_free_ char *cmd = xasprintf("ls '%s' | head -1", mods);
    if ((p = popen(cmd, "r")) && fgets(kver, sizeof(kver), p))
        kver[strcspn(kver, "\n")] = 0;
    if (p)
        pclose(p);
    b.kver = *kver ? kver : NULL;

    if ((!getenv("SKIP_BOOT") && (r = lapis_image_boot_prepare(&b)) < 0) || (r = lapis_image_write_disk(&b)) < 0) {
        fprintf(stderr, "error: %s\n", b.diag.errmsg ? b.diag.errmsg : "unknown");
        return 1;
    }
    for (char **o = b.outputs; o && *o; o++)
        printf("%s\n", *o);
    return 0;
}
