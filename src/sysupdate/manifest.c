/*
 * The bundle manifest and the index (docs/sysupdate.md "Bundle format"):
 * line-oriented text, signed as exact bytes, parsed strictly. Every field is
 * checked for shape here (hex digests, sizes, names that cannot leave the
 * bundle directory) so the rest of the agent works on trusted values only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "basic/alloc.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "lapis/common.h"
#include "sysupdate/sysupdate.h"

const char *const su_payload_names[SU_NPAYLOADS] = { "usr", "usr-verity", "uki" };

static bool is_hex64(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static bool is_name(const char *s)
{
    return *s && *s != '.' && strlen(s) < 128 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == strlen(s);
}

static bool parse_size(const char *s, long long *ret)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0 || s[0] == '+' || s[0] == '-')
        return false;
    *ret = v;
    return true;
}

/* Split a line into at most max words on single spaces; returns the count. */
static size_t words(char *line, char **w, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (n++ < max)
            w[n - 1] = tok;
    return n;
}

static int bad(struct lapis_diag *d, const char *what, size_t lineno, const char *why)
{
    return lapis_err(d, LAPIS_E_METADATA, "%s line %zu: %s", what, lineno, why);
}

/* ---- manifest ---- */

static int kind_of(const char *name)
{
    for (int k = 0; k < SU_NPAYLOADS; k++)
        if (strcmp(name, su_payload_names[k]) == 0)
            return k;
    return -1;
}

static int m_payload(struct su_manifest *m, char **w, size_t n)
{
    int k = n == 7 ? kind_of(w[1]) : -1;
    if (k < 0 || m->p[k].file || !is_name(w[2]) || !parse_size(w[3], &m->p[k].size) ||
        !is_hex64(w[4]) || !parse_size(w[5], &m->p[k].zsize) || !is_hex64(w[6]))
        return -1;
    m->p[k].file = xstrdup(w[2]);
    strcpy(m->p[k].sha, w[4]);
    strcpy(m->p[k].zsha, w[6]);
    return 0;
}

static int m_chunk(struct su_manifest *m, char **w, size_t n)
{
    int k = n == 4 ? kind_of(w[1]) : -1;
    long long zlen;
    if (k < 0 || !m->p[k].file || !parse_size(w[2], &zlen) || zlen == 0 || !is_hex64(w[3]))
        return -1;
    struct su_payload *p = &m->p[k];
    long long zoff = p->nchunks ? p->chunks[p->nchunks - 1].zoff + p->chunks[p->nchunks - 1].zlen : 0;
    if (zlen > p->zsize - zoff)   /* not zoff + zlen: it may overflow */
        return -1;
    p->chunks = xrealloc(p->chunks, (p->nchunks + 1) * sizeof(*p->chunks));
    p->chunks[p->nchunks] = (struct su_chunk){ .zoff = zoff, .zlen = zlen };
    strcpy(p->chunks[p->nchunks++].sha, w[3]);
    return 0;
}

static int m_scalar(struct su_manifest *m, char **w, size_t n)
{
    long long v;
    if (n != 2)
        return -1;
    if (strcmp(w[0], "version") == 0 && !m->version && su_version_valid(w[1]))
        m->version = xstrdup(w[1]);
    else if (strcmp(w[0], "arch") == 0 && !m->arch && is_name(w[1]))
        m->arch = xstrdup(w[1]);
    else if (strcmp(w[0], "min-from-version") == 0 && !m->min_from && su_version_valid(w[1]))
        m->min_from = xstrdup(w[1]);
    else if (strcmp(w[0], "verity-root-hash") == 0 && !m->roothash[0] && is_hex64(w[1]))
        strcpy(m->roothash, w[1]);
    else if (strcmp(w[0], "verity-salt") == 0 && !m->salt[0] && is_hex64(w[1]))
        strcpy(m->salt, w[1]);
    else if (strcmp(w[0], "verity-block-size") == 0 && !m->block_size && parse_size(w[1], &v) && v == 4096)
        m->block_size = (long)v;
    else if (strcmp(w[0], "chunk-size") == 0 && !m->chunk_size && parse_size(w[1], &v) &&
             v >= 4096 && v <= (64 << 20))
        m->chunk_size = v;
    else
        return -1;
    return 0;
}

static int m_line(struct su_manifest *m, char *line)
{
    char *w[8];
    size_t n = words(line, w, ARRAY_SIZE(w));
    if (n == 0 || n > ARRAY_SIZE(w))
        return -1;
    if (strcmp(w[0], "payload") == 0)
        return m_payload(m, w, n);
    if (strcmp(w[0], "chunk") == 0)
        return m_chunk(m, w, n);
    return m_scalar(m, w, n);
}

/* Each payload's chunks must cover its compressed file exactly. */
static const char *m_complete(const struct su_manifest *m)
{
    if (!m->version || !m->arch || !m->roothash[0] || !m->salt[0] || !m->block_size || !m->chunk_size)
        return "a required field is missing";
    for (int k = 0; k < SU_NPAYLOADS; k++) {
        const struct su_payload *p = &m->p[k];
        if (!p->file)
            return "a payload is missing";
        /* The agent buffers one frame: no frame larger than zstd's bound. */
        for (size_t i = 0; i < p->nchunks; i++)
            if ((unsigned long long)p->chunks[i].zlen > ZSTD_compressBound((size_t)m->chunk_size))
                return "a frame is larger than its chunk size can compress to";
        const struct su_chunk *last = p->nchunks ? &p->chunks[p->nchunks - 1] : NULL;
        if (!last || last->zoff + last->zlen != p->zsize)
            return "the chunks do not cover a payload";
        if ((long long)p->nchunks != p->size / m->chunk_size + (p->size % m->chunk_size != 0))
            return "a payload's chunk count does not match its size";
    }
    if (m->p[SU_USR].size % m->block_size)
        return "the usr payload is not a whole number of verity blocks";
    if (m->p[SU_UKI].size > SU_UKI_MAX)
        return "the UKI is larger than the ESP can take";
    return NULL;
}

int su_manifest_parse(struct lapis_diag *d, const char *text, struct su_manifest *ret)
{
    _cleanup_free_ char *copy = xstrdup(text);
    struct su_manifest m = { 0 };
    size_t lineno = 0;
    char *save = NULL;
    if (strncmp(text, "lapis-bundle 1\n", 15) != 0)
        return lapis_err(d, LAPIS_E_METADATA, "manifest: not a lapis bundle manifest (format 1)");
    for (char *line = strtok_r(copy + 15, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (m_line(&m, line) < 0) {
            su_manifest_clear(&m);
            return bad(d, "manifest", lineno + 1, "malformed, unknown or repeated field");
        }
    }
    const char *why = m_complete(&m);
    if (why) {
        su_manifest_clear(&m);
        return lapis_err(d, LAPIS_E_METADATA, "manifest: %s", why);
    }
    *ret = m;
    return 0;
}

void su_manifest_clear(struct su_manifest *m)
{
    free(m->version);
    free(m->arch);
    free(m->min_from);
    for (int k = 0; k < SU_NPAYLOADS; k++) {
        free(m->p[k].file);
        free(m->p[k].chunks);
    }
    *m = (struct su_manifest){ 0 };
}

/* ---- index ---- */

static bool is_manifest_path(const char *p)
{
    const char *slash = strchr(p, '/');
    if (!slash || strcmp(slash, "/manifest") != 0)
        return false;
    _cleanup_free_ char *dir = strndup(p, (size_t)(slash - p));
    return dir && is_name(dir);
}

static int x_line(struct su_index *x, char *line)
{
    char *w[6];
    size_t n = words(line, w, ARRAY_SIZE(w));
    long long v;
    if (n == 2 && strcmp(w[0], "issued") == 0 && !x->issued && parse_size(w[1], &v))
        x->issued = v;
    else if (n == 2 && strcmp(w[0], "expires") == 0 && !x->expires && parse_size(w[1], &v))
        x->expires = v;
    else if (n == 5 && strcmp(w[0], "bundle") == 0 && su_version_valid(w[1]) && is_name(w[2]) &&
             is_manifest_path(w[3]) && is_hex64(w[4])) {
        x->e = xrealloc(x->e, (x->n + 1) * sizeof(*x->e));
        struct su_index_entry *e = &x->e[x->n++];
        *e = (struct su_index_entry){ xstrdup(w[1]), xstrdup(w[2]), xstrdup(w[3]), "" };
        strcpy(e->sha, w[4]);
    } else
        return -1;
    return 0;
}

int su_index_parse(struct lapis_diag *d, const char *text, struct su_index *ret)
{
    _cleanup_free_ char *copy = xstrdup(text);
    struct su_index x = { 0 };
    size_t lineno = 1;
    char *save = NULL;
    if (strncmp(text, "lapis-index 1\n", 14) != 0)
        return lapis_err(d, LAPIS_E_METADATA, "index: not a lapis update index (format 1)");
    for (char *line = strtok_r(copy + 14, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (x_line(&x, line) < 0) {
            su_index_clear(&x);
            return bad(d, "index", lineno, "malformed, unknown or repeated field");
        }
    }
    if (!x.issued || !x.expires) {
        su_index_clear(&x);
        return lapis_err(d, LAPIS_E_METADATA, "index: issued or expires is missing");
    }
    *ret = x;
    return 0;
}

void su_index_clear(struct su_index *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->e[i].version);
        free(x->e[i].arch);
        free(x->e[i].path);
    }
    free(x->e);
    *x = (struct su_index){ 0 };
}

const struct su_index_entry *su_index_newest(const struct su_index *x, const char *arch)
{
    const struct su_index_entry *best = NULL;
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->e[i].arch, arch) == 0 &&
            (!best || su_version_cmp(x->e[i].version, best->version) > 0))
            best = &x->e[i];
    return best;
}
