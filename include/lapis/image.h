/*
 * The image composer's public entry points (`lapis image build|lock|inspect`):
 * one call per command, the library never prints. Progress comes through the
 * callbacks; the result lists what was written. docs/image.md describes the
 * config.
 */
#ifndef LAPIS_IMAGE_PUBLIC_H
#define LAPIS_IMAGE_PUBLIC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "lapis/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* A stage of one arch started (seconds < 0) or ended (seconds >= 0). */
typedef void (*lapis_image_stage_fn)(const char *arch, const char *stage, double seconds,
                                     void *userdata);

struct lapis_image_opts {
    const char *config;        /* the YAML config */
    const char *outdir;        /* NULL: the current directory */
    const char *cachedir;      /* NULL: /var/cache/lapis (packages, metadata, finished images) */
    const char *formats;       /* "raw,oci": overrides the config's; NULL: the config's */
    const char *arch;          /* overrides the config's arches; NULL: the config's */
    bool locked;               /* install exactly CONFIG.lock */
    bool no_cache;             /* do not reuse (nor store) finished outputs */
    lapis_log_fn log_fn;
    void *log_data;
    lapis_image_stage_fn stage_fn;
    void *stage_data;
    const volatile sig_atomic_t *interrupt; /* non-zero: stop (-LAPIS_E_INTERRUPTED) */
};

struct lapis_image_output {
    char *name;                /* in outdir */
    unsigned long long size;   /* bytes (a directory: its files) */
    char *sha256;              /* hex; NULL for a directory */
};

struct lapis_image_stage_time {
    char *arch;
    char *stage;
    double seconds;
};

struct lapis_image_result {
    char *outdir;
    struct lapis_image_output *outputs;
    size_t noutputs;
    size_t npkgs;              /* packages installed (summed over arches) */
    long long epoch;           /* SOURCE_DATE_EPOCH used */
    bool cached;               /* the outputs came from the unchanged-rebuild cache */
    char *cache_key;
    struct lapis_image_stage_time *stages;
    size_t nstages;
};

/* Build the images a config describes into opts->outdir. On failure nothing
 * is left in outdir, *ret_error holds one line (free it). */
int lapis_image_build_run(const struct lapis_image_opts *opts, struct lapis_image_result **ret,
                          char **ret_error);
void lapis_image_result_free(struct lapis_image_result *r);

/* Resolve the config's packages (no install) and write CONFIG.lock; the path
 * written goes to *ret_path (free it). */
int lapis_image_lock_run(const struct lapis_image_opts *opts, char **ret_path, char **ret_error);

/* Describe an output (disk image, OCI layout dir or archive, ISO, SBOM) as a
 * JSON document in *ret_json (free it). */
int lapis_image_inspect(const char *path, char **ret_json, char **ret_error);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
