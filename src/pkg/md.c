/*
 * Reading rpm-md files, shared by the loader that parses verified files from
 * the cache (metadata.c) and the one that parses them while they download
 * (mdstream.c): the size-bounded decompressing reader and the scan that
 * records packages whose location leaves the repository. Both sit below the
 * two loaders so neither depends on the other.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>

#include "pkg/internal.h"
#include <solv/solv_xfopen.h>

/* SIGINT/SIGTERM must reach the main thread, whose curl_multi_poll() they wake
 * (lapis_fetch_run checks the flag then). */
int lapis_md_start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    int r;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

/*
 * Read-ahead: a thread decompresses into a ring of blocks while the caller's
 * thread parses what came before, so that inflating (a third of the parse
 * time of primary.xml.gz) runs on the other core. The thread only ever
 * touches blocks the reader is not reading; the ring's counts are under the
 * lock.
 */
#define RA_BLOCK (64u << 10)
#define RA_SLOTS 4

struct md_ra {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    FILE *inner;
    int fd;                 /* the inner stream's descriptor, or -1 */
    char *blk[RA_SLOTS];
    size_t blen[RA_SLOTS];
    size_t head, count, off; /* reader: blk[head] from off; count blocks filled */
    bool eof, err, stop;
};

/* Wait for a free block; its index in *slot (read under the lock: the reader moves head). */
static bool ra_wait_room(struct md_ra *ra, size_t *slot)
{
    pthread_mutex_lock(&ra->lock);
    while (ra->count == RA_SLOTS && !ra->stop)
        pthread_cond_wait(&ra->cond, &ra->lock);
    bool go = !ra->stop;
    *slot = (ra->head + ra->count) % RA_SLOTS;
    pthread_mutex_unlock(&ra->lock);
    return go;
}

static void *ra_main(void *arg)
{
    struct md_ra *ra = arg;
    for (;;) {
        size_t slot, n;
        if (!ra_wait_room(ra, &slot))
            break;
        n = fread(ra->blk[slot], 1, RA_BLOCK, ra->inner); /* a free block: the reader waits */
        pthread_mutex_lock(&ra->lock);
        if (n == 0) {
            ra->eof = true;
            ra->err = ferror(ra->inner) != 0;
        } else {
            ra->blen[slot] = n;
            ra->count++;
        }
        pthread_cond_broadcast(&ra->cond);
        pthread_mutex_unlock(&ra->lock);
        if (n == 0)
            break;
    }
    return NULL;
}

static ssize_t ra_read(struct md_ra *ra, char *buf, size_t len)
{
    size_t k;
    pthread_mutex_lock(&ra->lock);
    while (ra->count == 0 && !ra->eof)
        pthread_cond_wait(&ra->cond, &ra->lock);
    if (ra->count == 0) {
        bool err = ra->err;
        pthread_mutex_unlock(&ra->lock);
        return err ? (errno = EIO, -1) : 0;
    }
    pthread_mutex_unlock(&ra->lock);
    k = ra->blen[ra->head] - ra->off; /* the thread does not write a filled block */
    k = k < len ? k : len;
    memcpy(buf, ra->blk[ra->head] + ra->off, k);
    pthread_mutex_lock(&ra->lock);
    if ((ra->off += k) == ra->blen[ra->head]) {
        ra->head = (ra->head + 1) % RA_SLOTS;
        ra->count--;
        ra->off = 0;
        pthread_cond_broadcast(&ra->cond);
    }
    pthread_mutex_unlock(&ra->lock);
    return (ssize_t)k;
}

static struct md_ra *ra_start(FILE *inner, int fd)
{
    struct md_ra *ra = xcalloc(1, sizeof(*ra));
    ra->inner = inner;
    ra->fd = fd;
    for (size_t i = 0; i < RA_SLOTS; i++)
        ra->blk[i] = xmalloc(RA_BLOCK);
    pthread_mutex_init(&ra->lock, NULL);
    pthread_cond_init(&ra->cond, NULL);
    if (lapis_md_start_thread(&ra->thread, ra_main, ra) == 0)
        return ra;
    for (size_t i = 0; i < RA_SLOTS; i++)
        free(ra->blk[i]);
    free(ra);
    return NULL; /* no thread: read on the caller's */
}

/* Stops the thread (a socket is shut down, so that a read waiting on it
 * returns at once) and closes the inner stream. */
static int ra_close(struct md_ra *ra)
{
    int r;
    pthread_mutex_lock(&ra->lock);
    ra->stop = true;
    pthread_cond_broadcast(&ra->cond);
    pthread_mutex_unlock(&ra->lock);
    if (ra->fd >= 0)
        shutdown(ra->fd, SHUT_RDWR);
    pthread_join(ra->thread, NULL);
    r = fclose(ra->inner);
    for (size_t i = 0; i < RA_SLOTS; i++)
        free(ra->blk[i]);
    pthread_mutex_destroy(&ra->lock);
    pthread_cond_destroy(&ra->cond);
    free(ra);
    return r;
}

/* A decompressing reader that refuses to produce more than limit bytes:
 * a compression bomb stops at the size repomd.xml promised. */
static ssize_t bounded_read(void *cookie, char *buf, size_t len)
{
    struct lapis_md_bounded *b = cookie;
    ssize_t n;
    if (b->ra) {
        if ((n = ra_read(b->ra, buf, len)) < 0)
            return -1;
    } else if ((n = (ssize_t)fread(buf, 1, len, b->inner)) == 0 && ferror(b->inner)) {
        errno = EIO;
        return -1;
    }
    b->done += (long long)n;
    if (b->done > b->limit) {
        b->exceeded = true;
        errno = EFBIG;
        return -1;
    }
    return n;
}

static int bounded_close(void *cookie)
{
    struct lapis_md_bounded *b = cookie;
    return b->ra ? ra_close(b->ra) : fclose(b->inner);
}

FILE *lapis_md_open_bounded(const char *name, int fd, struct lapis_md_bounded *b)
{
    static const cookie_io_functions_t io = { .read = bounded_read, .close = bounded_close };
    FILE *fp;
    b->inner = fd < 0 ? solv_xfopen(name, "r") : solv_xfopen_fd(name, fd, "r");
    if (!b->inner)
        return NULL;
    b->ra = b->readahead ? ra_start(b->inner, fd) : NULL;
    fp = fopencookie(b, "r", io);
    if (!fp)
        bounded_close(b);
    return fp;
}

/* libsolv's "... at line L:C" with L counted in the whole document, as a serial parse says it. */
int lapis_md_error_shifted(Pool *pool, const char *err, long delta)
{
    const char *at = NULL;
    unsigned line, col;
    int n = 0;
    for (const char *p = err; (p = strstr(p, " at line ")); p++)
        at = p;
    /* the checksum errors: "line L: ..." */
    if (!at && sscanf(err, "line %u:%n", &line, &n) == 1 && n > 0)
        return pool_error(pool, -1, "line %ld:%s", (long)line + delta, err + n);
    if (!at || sscanf(at, " at line %u:%u", &line, &col) != 2)
        return pool_error(pool, -1, "%s", err);
    return pool_error(pool, -1, "%.*s at line %ld:%u", (int)(at - err), err, (long)line + delta,
                      col);
}

int lapis_md_error_shift(Pool *pool, long delta)
{
    _cleanup_free_ char *err = xstrdup(pool_errstr(pool));
    return lapis_md_error_shifted(pool, err, delta);
}

/* Called once when a repo is parsed from XML (not on .solv loads): record the
 * packages whose location leaves the repository in a meta key that is saved
 * with the .solv cache, so the costly location scan is not repeated.
 * Returns how many were marked. */
int lapis_md_mark_unsafe_locations(Repo *repo)
{
    Pool *pool = repo->pool;
    Id key = pool_str2id(pool, UNSAFE_KEY, 1);
    Repodata *data = repo_last_repodata(repo);
    Solvable *s;
    Id p;
    int n = 0;

    FOR_REPO_SOLVABLES(repo, p, s) {
        const char *loc = solvable_lookup_location(s, NULL);
        if (loc && !lapis_href_is_safe(loc)) {
            repodata_add_idarray(data, SOLVID_META, key, p - repo->start + 1);
            n++;
        }
    }
    repodata_internalize(data);
    return n;
}
