/*
 * The fast primary.xml parser (src/pkg/mdfast.c) against libsolv's own: the
 * same document into two fresh pools, then the same result code, the same
 * error text, and byte for byte the same .solv. Shared by the unit test and
 * the fuzz harness.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <solv/pool.h>
#include <solv/repo.h>
#include <solv/repo_rpmmd.h>
#include <solv/repo_write.h>

#include "pkg/internal.h"

struct md_parsed {
    int r;
    char *err;
    char *solv;
    size_t solv_len;
};

static void md_parse_with(const char *xml, size_t len, bool fast, struct md_parsed *out)
{
    Pool *pool = pool_create();
    Repo *repo = repo_create(pool, "cmp");
    FILE *in = fmemopen((void *)(len ? xml : ""), len ? len : 1, "r");
    FILE *w;

    if (!len && in) /* fmemopen cannot open an empty buffer: read nothing from a 1-byte one */
        fgetc(in);
    out->r = fast ? lapis_mdfast_rpmmd(repo, in) : repo_add_rpmmd(repo, in, NULL, 0);
    fclose(in);
    out->err = out->r ? strdup(pool_errstr(pool)) : NULL;
    out->solv = NULL;
    out->solv_len = 0;
    if (!out->r && (w = open_memstream(&out->solv, &out->solv_len))) {
        repo_write(repo, w);
        fclose(w);
    }
    pool_free(pool);
}

static void md_parsed_free(struct md_parsed *p)
{
    free(p->err);
    free(p->solv);
}

/* NULL when both parsers agree; else what differs (a static string). */
static const char *md_compare(const char *xml, size_t len)
{
    struct md_parsed a, b;
    const char *why = NULL;

    md_parse_with(xml, len, false, &a);
    md_parse_with(xml, len, true, &b);
    if ((a.r == 0) != (b.r == 0))
        why = "one parser failed, the other did not";
    else if (a.r && strcmp(a.err, b.err) != 0)
        why = "different errors";
    else if (!a.r && (a.solv_len != b.solv_len || memcmp(a.solv, b.solv, a.solv_len) != 0))
        why = "different .solv";
    if (why && getenv("MDCOMPARE_VERBOSE"))
        fprintf(stderr, "mdcompare: %s\n  libsolv: r=%d %s (%zu bytes)\n  fast:    r=%d %s (%zu bytes)\n",
                why, a.r, a.err ? a.err : "", a.solv_len, b.r, b.err ? b.err : "", b.solv_len);
    md_parsed_free(&a);
    md_parsed_free(&b);
    return why;
}
