/*
 * Test driver for the OCI stage (tests/functional/image/test_oci.py): writes
 * the OCI outputs of a root made by any means, as the orchestrator would.
 *
 *   oci_driver [-z] [-e ENTRYPOINT]... [-c CMD]... [-E K=V]... [-u USER]
 *              [-w WORKDIR] [-l K=V]... [-a ARCH]... ROOT STAGEDIR NAME VERSION EPOCH
 *
 * Several -a: one layout per arch, then the multi-arch index. Prints the outputs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The orchestrator's (build.c); weak so the real one wins once it is linked. */
__attribute__((weak)) void lapis_image_add_output(struct lapis_image_build *b, const char *name)
{
    size_t n = 0;
    while (b->outputs && b->outputs[n])
        n++;
    b->outputs = realloc(b->outputs, (n + 2) * sizeof(char *));
    b->outputs[n] = strdup(name);
    b->outputs[n + 1] = NULL;
}

static void push(char ***v, const char *s)
{
    size_t n = 0;
    while (*v && (*v)[n])
        n++;
    *v = realloc(*v, (n + 2) * sizeof(char *));
    (*v)[n] = strdup(s);
    (*v)[n + 1] = NULL;
}

static void push_kv(struct lapis_image_kv **v, size_t *n, const char *s)
{
    const char *eq = strchr(s, '=');
    *v = realloc(*v, (*n + 1) * sizeof(**v));
    (*v)[*n].key = strndup(s, eq ? (size_t)(eq - s) : strlen(s));
    (*v)[*n].value = strdup(eq ? eq + 1 : "");
    (*n)++;
}

int main(int argc, char **argv)
{
    DRIVER_NO_LEAK_CHECK();
    struct lapis_image_config c = { .formats = LAPIS_IMAGE_OCI | LAPIS_IMAGE_OCI_ARCHIVE };
    char **arches = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "ze:c:E:u:w:l:a:")) != -1) {
        switch (opt) {
        case 'z': c.layer_compression = "zstd"; break;
        case 'e': push(&c.entrypoint, optarg); break;
        case 'c': push(&c.cmd, optarg); break;
        case 'E': push_kv(&c.env, &c.nenv, optarg); break;
        case 'u': c.user = optarg; break;
        case 'w': c.workdir = optarg; break;
        case 'l': push_kv(&c.labels, &c.nlabels, optarg); break;
        case 'a': push(&arches, optarg); break;
        default: return 2;
        }
    }
    if (argc - optind != 5) {
        fprintf(stderr, "usage: oci_driver [options] ROOT STAGEDIR NAME VERSION EPOCH\n");
        return 2;
    }
    if (!arches)
        push(&arches, "x86_64");
    c.name = argv[optind + 2];
    c.version = argv[optind + 3];
    size_t n = 0;
    while (arches[n])
        n++;
    struct lapis_image_build *builds = calloc(n, sizeof(*builds));
    for (size_t i = 0; i < n; i++) {
        struct lapis_image_build *b = &builds[i];
        b->conf = &c;
        b->arch = arches[i];
        b->rootdir = argv[optind];
        b->stagedir = argv[optind + 1];
        b->epoch = atoll(argv[optind + 4]);
        if (asprintf(&b->basename, "%s-%s.%s", c.name, c.version, b->arch) < 0)
            return 1;
        if (lapis_image_write_oci(b) < 0) {
            fprintf(stderr, "oci_driver: %s\n", lapis_diag_error(&b->diag));
            return 1;
        }
    }
    if (n > 1 && lapis_image_write_oci_index(builds, n) < 0) {
        fprintf(stderr, "oci_driver: %s\n", lapis_diag_error(&builds[n - 1].diag));
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; builds[i].outputs && builds[i].outputs[j]; j++)
            printf("%s\n", builds[i].outputs[j]);
    }
    return 0;
}
