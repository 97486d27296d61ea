/* libFuzzer: lapis-sysupdate's bundle manifest and index parsers (what a
 * hostile update server sends; the signature is checked first, but a parser
 * must not trust even signed bytes to be well formed). Invariants: no crash,
 * no leak, no undefined behaviour, and what parses is consistent: each
 * payload's frames are contiguous and cover its compressed file, their count
 * matches its size, every index entry has a version, arch and path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sysupdate/sysupdate.h"

static void check_manifest(const struct su_manifest *m)
{
    for (int k = 0; k < SU_NPAYLOADS; k++) {
        const struct su_payload *p = &m->p[k];
        long long off = 0;
        for (size_t i = 0; i < p->nchunks; i++) {
            if (p->chunks[i].zoff != off || p->chunks[i].zlen <= 0)
                __builtin_trap();
            off += p->chunks[i].zlen;
        }
        if (!p->file || off != p->zsize || p->size < 0)
            __builtin_trap();
    }
    if (!m->version || !m->arch || m->chunk_size < 4096)
        __builtin_trap();
}

static void check_index(const struct su_index *x)
{
    for (size_t i = 0; i < x->n; i++)
        if (!x->e[i].version || !x->e[i].arch || !x->e[i].path)
            __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    struct lapis_diag d = { 0 };
    char *text = malloc(len + 1);
    memcpy(text, data, len);
    text[len] = '\0';

    struct su_manifest m;
    if (su_manifest_parse(&d, text, &m) == 0) {
        check_manifest(&m);
        su_manifest_clear(&m);
    }
    struct su_index x;
    if (su_index_parse(&d, text, &x) == 0) {
        check_index(&x);
        (void)su_index_newest(&x, "x86_64");
        su_index_clear(&x);
    }
    lapis_diag_clear(&d);
    free(text);
    return 0;
}
