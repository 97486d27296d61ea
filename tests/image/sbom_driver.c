/*
 * Test driver for the SBOM and provenance stages until `lapis image build`
 * composes: fills b->pkgs from `rpm --root ROOT -qa` (the sha256 is that of
 * PKGDIR/N-V-R.A.rpm, the file the root was installed from) and runs
 * lapis_image_write_sbom into OUTDIR and lapis_image_write_provenance into
 * ROOT. The epoch is SOURCE_DATE_EPOCH, else the newest buildtime.
 *
 *   sbom_driver ROOT PKGDIR OUTDIR CONFIG NAME VERSION ARCH [oci]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/alloc.h"
#include "basic/spawn.h"
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

void lapis_image_add_output(struct lapis_image_build *b, const char *name)
{
    printf("output %s\n", name);
}

#define QF "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{LICENSE}\\t" \
           "%{VENDOR}\\t%{SOURCERPM}\\t%{URL}\\t%{SIZE}\\t%{BUILDTIME}\\n"

static char *field(char *s)
{
    return strcmp(s, "(none)") == 0 ? NULL : xstrdup(s);
}

static int parse_line(char *line, const char *pkgdir, struct lapis_image_pkg *p)
{
    char **f = strv_split(line, "\t");
    char hex[65];
    char *path;
    int r;

    if (strv_length(f) != 11) {
        fprintf(stderr, "bad rpm -qa line: %s\n", line);
        return -1;
    }
    *p = (struct lapis_image_pkg){ .name = field(f[0]), .epoch = (unsigned)atoi(f[1]),
        .version = field(f[2]), .release = field(f[3]), .arch = field(f[4]),
        .license = field(f[5]), .vendor = field(f[6]), .sourcerpm = field(f[7]),
        .url = field(f[8]), .installsize = strtoull(f[9], NULL, 10),
        .buildtime = strtoull(f[10], NULL, 10), .repo = xstrdup("testdist") };
    path = xasprintf("%s/%s-%s-%s.%s.rpm", pkgdir, p->name, p->version, p->release, p->arch);
    r = lapis_chk_file(path, LAPIS_CHK_SHA256, hex, sizeof(hex));
    if (r < 0)
        fprintf(stderr, "cannot hash %s\n", path);
    p->sha256 = xstrdup(hex);
    free(path);
    lapis_strv_free(f);
    return r;
}

static int cmp_pkg(const void *a, const void *b)
{
    return strcmp(((const struct lapis_image_pkg *)a)->name, ((const struct lapis_image_pkg *)b)->name);
}

static int load_pkgs(struct lapis_image_build *b, const char *pkgdir)
{
    /* lapis's rpmdb is ROOT/var/lib/rpm (or a link from there, src/pkg/rpmdb.c);
     * the host rpm's own %_dbpath may be elsewhere */
    char *argv[] = { "rpm", "--root", b->rootdir, "--dbpath", "/var/lib/rpm", "-qa", "--qf", QF, NULL };
    char *out = NULL, *err = NULL, *save = NULL;
    int r = lapis_spawn(argv, &(struct lapis_spawn_opts){ .max_output = 16 << 20 }, &out, &err);

    if (r != 0) {
        fprintf(stderr, "rpm -qa failed (%d): %s\n", r, err ? err : "");
        return -1;
    }
    b->pkgs = xcalloc(4096, sizeof(*b->pkgs));
    for (char *l = strtok_r(out, "\n", &save); l && r == 0; l = strtok_r(NULL, "\n", &save))
        if (strncmp(l, "gpg-pubkey\t", 11) != 0)  /* imported keys, not packages */
            r = parse_line(l, pkgdir, &b->pkgs[b->npkgs++]);
    qsort(b->pkgs, b->npkgs, sizeof(*b->pkgs), cmp_pkg);
    free(out);
    free(err);
    return r;
}

static void pick_epoch(struct lapis_image_build *b)
{
    const char *e = getenv("SOURCE_DATE_EPOCH");

    b->epoch = 0;
    if (e && *e) {
        b->epoch = atoll(e);
        return;
    }
    for (size_t i = 0; i < b->npkgs; i++)
        if ((long long)b->pkgs[i].buildtime > b->epoch)
            b->epoch = (long long)b->pkgs[i].buildtime;
}

static int config_digest(struct lapis_image_config *c, const char *path)
{
    char hex[65];

    if (lapis_chk_file(path, LAPIS_CHK_SHA256, hex, sizeof(hex)) < 0)
        return -1;
    for (int i = 0; i < 32; i++)
        sscanf(hex + 2 * i, "%2hhx", &c->sha256[i]);
    return 0;
}

int main(int argc, char **argv)
{
    DRIVER_NO_LEAK_CHECK();
    struct lapis_image_config conf = { 0 };
    struct lapis_image_build b = { .conf = &conf };

    if (argc < 8) {
        fprintf(stderr, "usage: %s ROOT PKGDIR OUTDIR CONFIG NAME VERSION ARCH [oci]\n", argv[0]);
        return 2;
    }
    conf.name = argv[5], conf.version = argv[6];
    conf.formats = argc > 8 && strcmp(argv[8], "oci") == 0 ? LAPIS_IMAGE_OCI : LAPIS_IMAGE_RAW;
    b.rootdir = argv[1], b.stagedir = argv[3], b.arch = argv[7];
    b.basename = xasprintf("%s-%s.%s", conf.name, conf.version, b.arch);
    if (config_digest(&conf, argv[4]) < 0 || load_pkgs(&b, argv[2]) < 0)
        return 1;
    pick_epoch(&b);
    if (lapis_image_write_sbom(&b) < 0 || lapis_image_write_provenance(&b) < 0) {
        fprintf(stderr, "error: %s\n", lapis_diag_error(&b.diag));
        return 1;
    }
    return 0;
}
