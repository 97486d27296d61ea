/*
 * mdstream.c: parse a repo's metadata while the fetch layer downloads it
 * (a parse thread with a private pool, fed through fetch taps); the result
 * is the staging dir's .solv caches, written only from verified files.
 */
#ifndef LAPIS_PKG_MDSTREAM_H
#define LAPIS_PKG_MDSTREAM_H

#include <stdbool.h>

#include "shared/fetch.h"

/* Indexed primary, updateinfo, filelists; local[i] NULL: not fetched/parsed. */
struct lapis_mdstream_spec {
    const char *repo_id;
    const char *staging;          /* where the .solv caches go */
    const char *local[3];         /* "<type>.xml<suffix>" (suffix picks the decompressor) */
    long long limit[3];           /* decompressed bytes allowed */
    char cookie_main[65], cookie_details[65], cookie_filelists[65];
};

struct lapis_mdstream;
/* Start the parse thread (NULL: nothing to stream, or no thread). The spec's
 * strings are copied. */
struct lapis_mdstream *lapis_mdstream_start(const struct lapis_mdstream_spec *spec);
/* The tap for a fetch job of that type ("primary"...), or NULL. */
const struct lapis_fetch_tap *lapis_mdstream_tap(struct lapis_mdstream *m, const char *type);
/* After lapis_fetch_run returned: wait for the parse, free; true if the caches
 * were written. *offered: the packages the repo offers before excludes, or -1
 * (not known: the caches were not written, or packages are hidden for unsafe
 * locations). */
bool lapis_mdstream_finish(struct lapis_mdstream *m, int *offered);

#endif
