/*
 * The rpm-md XML parser seam: primary.xml and filelists.xml (decompressed,
 * already bounded by the caller) go into a libsolv repo here and nowhere
 * else, so that how they are parsed can change without the fetch,
 * verification and cache code knowing.
 *
 * primary.xml is parsed on every core (from MD_MIN_CORES up): the caller's thread reads the stream
 * once (it need not be seekable) and cuts it into chunks at <package> start
 * tags that are direct children of the root element, found by a small lexer
 * that skips comments, CDATA, processing instructions and quoted attribute
 * values. Each chunk is the document's prologue (everything before the first
 * <package>, so the root element and its namespaces), the chunk's packages
 * and a closing </metadata>. Worker threads each own a Pool (libsolv pools
 * are not thread-safe; nothing is shared but the chunk queue), parse a chunk
 * into a fresh repo and write it as .solv into memory; the caller's thread
 * loads the .solv images in chunk order into the caller's repo as each is
 * done (between reads, so the merge overlaps the parse), so the
 * solvables get the same ids, in the same order, with the same data as a
 * serial parse. filelists (REPO_EXTEND_SOLVABLES: it matches the caller's
 * solvables by pkgid) stays serial. LAPIS_MD_THREADS=N (1: serial) and
 * LAPIS_MD_CHUNK=BYTES are test and debug knobs.
 */
#include "pkg/internal.h"
#include <errno.h>
#include <pthread.h>
#include <solv/repo_rpmmd.h>
#include <solv/repo_solv.h>
#include <solv/repo_write.h>
#include <unistd.h>

#define MD_CHUNK_DEFAULT (4u << 20)
#define MD_READ_BLOCK (1u << 20)
#define MD_MAX_THREADS 16
static const char md_close[] = "\n</metadata>\n";

struct md_chunk {
    char *xml;          /* prologue + packages + md_close; freed once parsed */
    size_t len;
    char *solv;         /* the parsed chunk as .solv */
    size_t solv_len;
    char *err;          /* libsolv's error, or NULL */
    long line_delta;    /* document line = chunk line + line_delta */
    bool done;          /* parsed: solv/err are the worker's result (under the lock) */
    struct md_chunk *next_queued;
};

struct md_par {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct md_chunk **chunks; /* every chunk, in document order */
    size_t n, cap;
    size_t merged;            /* chunks[0..merged) are in the caller's repo */
    int merge_r;              /* the first error in document order, or 0 */
    struct md_chunk *queue_head, *queue_tail;
    size_t queued;            /* waiting in the queue: bounds the memory read ahead */
    size_t max_queued;
    bool eof;
    int disttype;
};

/* The splitter: where the last complete token ended, and the element depth there. */
struct md_lex {
    size_t pos;
    int depth;
    bool bad; /* input the lexer does not understand: stop cutting */
};

static size_t env_size(const char *name, size_t dflt)
{
    const char *v = getenv(name);
    char *end;
    unsigned long long n;
    if (!v || !*v)
        return dflt;
    n = strtoull(v, &end, 10);
    return *end || n == 0 ? dflt : (size_t)n;
}

/* The split costs about half a serial parse more CPU (each part's .solv is
 * written and read again), so it pays only with cores to spare: on 2 cores the
 * parallel and the serial parse took the same wall time (63k packages, 1.1 s
 * idle) and the parallel one 23 MB more memory. */
#define MD_MIN_CORES 4

static unsigned md_threads(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t dflt = cores >= MD_MIN_CORES ? (size_t)cores : 1;
    size_t n = env_size("LAPIS_MD_THREADS", dflt);
    return n > MD_MAX_THREADS ? MD_MAX_THREADS : (unsigned)n;
}

static const char *find_seq(const char *p, const char *end, const char *seq)
{
    size_t l = strlen(seq);
    for (; p && p + l <= end; p++) {
        p = memchr(p, seq[0], (size_t)(end - p));
        if (!p || p + l > end)
            return NULL;
        if (memcmp(p, seq, l) == 0)
            return p;
    }
    return NULL;
}

/* The end of a tag starting at p ('<'), honouring quoted attribute values; NULL: incomplete. */
static const char *tag_end(const char *p, const char *end)
{
    char quote = 0;
    for (p++; p < end; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '>') {
            return p;
        }
    }
    return NULL;
}

static bool starts_with_at(const char *p, const char *end, const char *s)
{
    size_t l = strlen(s);
    return (size_t)(end - p) >= l && memcmp(p, s, l) == 0;
}

/* A <package start tag (not <packages..., not </package>). */
static bool is_package_tag(const char *p, const char *end)
{
    return starts_with_at(p, end, "<package") && p + 8 < end &&
           (p[8] == ' ' || p[8] == '\t' || p[8] == '\n' || p[8] == '\r' || p[8] == '>' ||
            p[8] == '/');
}

/*
 * Advance the lexer over buf[0..len); return the offset of the first
 * depth-1 <package at or after `from` (a cut point), or (size_t)-1 when there
 * is none yet (more input is needed, or the input is not understood).
 */
static size_t lex_find_cut(struct md_lex *lx, const char *buf, size_t len, size_t from)
{
    const char *end = buf + len;
    while (!lx->bad) {
        const char *p = memchr(buf + lx->pos, '<', len - lx->pos), *q;
        if (!p)
            return lx->pos = len, (size_t)-1;
        lx->pos = (size_t)(p - buf);
        if (p + 9 > end)
            return (size_t)-1;
        if (lx->depth == 1 && (size_t)(p - buf) >= from && is_package_tag(p, end))
            return (size_t)(p - buf);
        if (starts_with_at(p, end, "<!--"))
            q = find_seq(p + 4, end, "-->"), q = q ? q + 2 : NULL;
        else if (starts_with_at(p, end, "<![CDATA["))
            q = find_seq(p + 9, end, "]]>"), q = q ? q + 2 : NULL;
        else if (p[1] == '?')
            q = find_seq(p + 2, end, "?>"), q = q ? q + 1 : NULL;
        else if (p[1] == '!')
            return lx->bad = true, (size_t)-1; /* DOCTYPE and such: not in rpm-md */
        else
            q = tag_end(p, end);
        if (!q)
            return (size_t)-1;
        if (p[1] == '/')
            lx->depth--;
        else if (p[1] != '!' && p[1] != '?' && q[-1] != '/')
            lx->depth++;
        if (lx->depth < 0)
            lx->bad = true;
        lx->pos = (size_t)(q + 1 - buf);
    }
    return (size_t)-1;
}

static char *chunk_xml(const char *prologue, size_t plen, const char *body, size_t blen,
                       bool last, size_t *len)
{
    size_t clen = last ? 0 : sizeof(md_close) - 1;
    char *x = xmalloc(plen + blen + clen + 1);
    memcpy(x, prologue, plen);
    memcpy(x + plen, body, blen);
    memcpy(x + plen + blen, md_close, clen);
    *len = plen + blen + clen;
    x[*len] = 0;
    return x;
}

static void chunk_parse(Pool *pool, struct md_chunk *c)
{
    Repo *repo = repo_create(pool, "part");
    FILE *in = fmemopen(c->xml, c->len, "r"), *out;
    int r;
    if (!in) {
        c->err = xstrdup(strerror(errno));
        repo_free(repo, 1);
        return;
    }
    r = lapis_mdfast_rpmmd(repo, in);
    fclose(in);
    if (r != 0) {
        c->err = xstrdup(pool_errstr(pool));
    } else if ((out = open_memstream(&c->solv, &c->solv_len))) {
        if (repo_write(repo, out) != 0)
            c->err = xstrdup(pool_errstr(pool));
        fclose(out);
    } else {
        c->err = xstrdup(strerror(errno));
    }
    repo_free(repo, 1);
}

static struct md_chunk *queue_take(struct md_par *mp)
{
    struct md_chunk *c;
    pthread_mutex_lock(&mp->lock);
    while (!mp->queue_head && !mp->eof)
        pthread_cond_wait(&mp->cond, &mp->lock);
    c = mp->queue_head;
    if (c) {
        mp->queue_head = c->next_queued;
        if (!mp->queue_head)
            mp->queue_tail = NULL;
        mp->queued--;
        pthread_cond_broadcast(&mp->cond);
    }
    pthread_mutex_unlock(&mp->lock);
    return c;
}

static void *worker_main(void *arg)
{
    struct md_par *mp = arg;
    Pool *pool = pool_create();
    struct md_chunk *c;
    pool_setdisttype(pool, mp->disttype);
    while ((c = queue_take(mp))) {
        chunk_parse(pool, c);
        free(c->xml);
        c->xml = NULL;
        pthread_mutex_lock(&mp->lock);
        c->done = true;
        pthread_cond_broadcast(&mp->cond);
        pthread_mutex_unlock(&mp->lock);
    }
    pool_free(pool);
    return NULL;
}

/* Hand a chunk to the workers; waits while enough are queued (bounded read-ahead). */
static void queue_put(struct md_par *mp, char *xml, size_t len, long line_delta)
{
    struct md_chunk *c = xcalloc(1, sizeof(*c));
    c->xml = xml;
    c->len = len;
    c->line_delta = line_delta;
    pthread_mutex_lock(&mp->lock);
    while (mp->queued >= mp->max_queued)
        pthread_cond_wait(&mp->cond, &mp->lock);
    if (mp->n == mp->cap) {
        mp->cap = mp->cap ? 2 * mp->cap : 32;
        mp->chunks = xrealloc(mp->chunks, mp->cap * sizeof(*mp->chunks));
    }
    mp->chunks[mp->n++] = c;
    if (mp->queue_tail)
        mp->queue_tail->next_queued = c;
    else
        mp->queue_head = c;
    mp->queue_tail = c;
    mp->queued++;
    pthread_cond_broadcast(&mp->cond);
    pthread_mutex_unlock(&mp->lock);
}

static void queue_finish(struct md_par *mp)
{
    pthread_mutex_lock(&mp->lock);
    mp->eof = true;
    pthread_cond_broadcast(&mp->cond);
    pthread_mutex_unlock(&mp->lock);
}

/* The reader's buffer: bytes of the stream not yet handed to a chunk. */
struct md_buf {
    char *data;
    size_t len, cap;
};

static size_t buf_fill(struct md_buf *b, FILE *xml)
{
    size_t got;
    if (b->cap - b->len < MD_READ_BLOCK) {
        b->cap = b->len + 2 * MD_READ_BLOCK;
        b->data = xrealloc(b->data, b->cap);
    }
    got = fread(b->data + b->len, 1, MD_READ_BLOCK, xml);
    b->len += got;
    return got;
}

static void buf_drop(struct md_buf *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/*
 * Read the prologue (up to the first depth-1 <package). Returns its length,
 * or 0 when the stream has no such element (read to its end into b).
 */
static size_t read_prologue(FILE *xml, struct md_buf *b, struct md_lex *lx)
{
    size_t cut;
    while ((cut = lex_find_cut(lx, b->data ? b->data : "", b->len, 0)) == (size_t)-1) {
        if (lx->bad || buf_fill(b, xml) == 0)
            return 0;
    }
    return cut;
}

static long count_lines(const char *p, size_t n)
{
    const char *end = p + n;
    long lines = 0;
    while ((p = memchr(p, '\n', (size_t)(end - p)))) {
        lines++;
        p++;
    }
    return lines;
}

static int parse_serial_buffer(Repo *repo, const char *data, size_t len)
{
    FILE *fp = fmemopen((void *)(data ? data : ""), len ? len : 1, "r");
    int r;
    if (!fp)
        return pool_error(repo->pool, -1, "%s", strerror(errno));
    r = lapis_mdfast_rpmmd(repo, fp);
    fclose(fp);
    return r;
}

static int chunk_error(Pool *pool, const struct md_chunk *c)
{
    return lapis_md_error_shifted(pool, c->err, c->line_delta);
}

static int merge_chunk(Repo *repo, struct md_chunk *c)
{
    FILE *fp;
    int r;
    if (c->err)
        return chunk_error(repo->pool, c);
    if (!(fp = fmemopen(c->solv, c->solv_len, "r")))
        return pool_error(repo->pool, -1, "%s", strerror(errno));
    r = repo_add_solv(repo, fp, 0) ? -1 : 0;
    fclose(fp);
    return r;
}

/*
 * Load the parsed chunks into the caller's repo in document order, as soon as
 * each is done (while later ones are still being read or parsed), and free
 * their .solv images. The first error in document order wins, as it would
 * serially; later chunks are then only freed. wait: block until all are in.
 */
static void merge_ready(Repo *repo, struct md_par *mp, bool wait)
{
    for (;;) {
        struct md_chunk *c = NULL;
        pthread_mutex_lock(&mp->lock);
        while (wait && mp->merged < mp->n && !mp->chunks[mp->merged]->done)
            pthread_cond_wait(&mp->cond, &mp->lock);
        if (mp->merged < mp->n && mp->chunks[mp->merged]->done)
            c = mp->chunks[mp->merged];
        pthread_mutex_unlock(&mp->lock);
        if (!c)
            return;
        if (mp->merge_r == 0)
            mp->merge_r = merge_chunk(repo, c);
        free(c->solv);
        c->solv = NULL;
        mp->merged++; /* only this thread reads or writes merged */
    }
}

/* Cut the rest of the stream into chunks of about chunk_size bytes. */
static void read_chunks(Repo *repo, FILE *xml, struct md_par *mp, struct md_buf *b,
                        struct md_lex *lx, const char *prologue, size_t plen, size_t chunk_size)
{
    bool more = true;
    size_t cut, len;
    long delta = 0; /* newlines of the bodies before this chunk's */
    char *x;
    while (more) {
        while (b->len < chunk_size && (more = buf_fill(b, xml) > 0))
            ;
        while (more && !lx->bad && (cut = lex_find_cut(lx, b->data, b->len, chunk_size)) ==
                                       (size_t)-1)
            more = buf_fill(b, xml) > 0;
        if (!more || lx->bad)
            break;
        x = chunk_xml(prologue, plen, b->data, cut, false, &len);
        queue_put(mp, x, len, delta);
        merge_ready(repo, mp, false);
        delta += count_lines(b->data, cut);
        buf_drop(b, cut);
        lx->pos -= cut;
    }
    /* The rest of the stream, with the document's own end (or its garbage). */
    while (buf_fill(b, xml) > 0)
        ;
    x = chunk_xml(prologue, plen, b->data ? b->data : "", b->len, true, &len);
    queue_put(mp, x, len, delta);
    b->len = 0;
}

static void par_free(struct md_par *mp)
{
    for (size_t i = 0; i < mp->n; i++) {
        free(mp->chunks[i]->xml);
        free(mp->chunks[i]->solv);
        free(mp->chunks[i]->err);
        free(mp->chunks[i]);
    }
    free(mp->chunks);
    pthread_mutex_destroy(&mp->lock);
    pthread_cond_destroy(&mp->cond);
}

static int parse_parallel(Repo *repo, FILE *xml, unsigned nthreads)
{
    struct md_par mp = { .max_queued = 2 * nthreads, .disttype = repo->pool->disttype };
    struct md_buf b = { 0 };
    struct md_lex lx = { 0 };
    pthread_t tids[MD_MAX_THREADS];
    unsigned started = 0;
    _cleanup_free_ char *prologue = NULL;
    size_t plen = read_prologue(xml, &b, &lx);
    int r;

    if (plen == 0 || lx.bad) { /* no packages, or not rpm-md as the lexer knows it */
        while (buf_fill(&b, xml) > 0)
            ;
        r = parse_serial_buffer(repo, b.data, b.len);
        free(b.data);
        return r;
    }
    prologue = xmalloc(plen);
    memcpy(prologue, b.data, plen);
    buf_drop(&b, plen);
    lx.pos = 0;
    pthread_mutex_init(&mp.lock, NULL);
    pthread_cond_init(&mp.cond, NULL);
    for (; started < nthreads; started++)
        if (lapis_md_start_thread(&tids[started], worker_main, &mp) != 0)
            break;
    if (started == 0)
        mp.max_queued = (size_t)-1; /* no thread: parse on this one after reading */
    read_chunks(repo, xml, &mp, &b, &lx, prologue, plen, env_size("LAPIS_MD_CHUNK", MD_CHUNK_DEFAULT));
    queue_finish(&mp);
    if (started == 0)
        worker_main(&mp);
    merge_ready(repo, &mp, true);
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    free(b.data);
    r = mp.merge_r;
    par_free(&mp);
    return r;
}

int lapis_mdparse_rpmmd(Repo *repo, FILE *xml, int flags)
{
    unsigned n = md_threads();
    if (flags != 0) /* filelists (REPO_EXTEND_SOLVABLES): libsolv's, serial */
        return repo_add_rpmmd(repo, xml, NULL, flags);
    if (n <= 1)
        return lapis_mdfast_rpmmd(repo, xml);
    return parse_parallel(repo, xml, n);
}
