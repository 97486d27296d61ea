/*
 * Parse while downloading: a repo's primary, updateinfo and filelists go
 * through the decompressor and the XML parser as their bytes land in the
 * fetch layer's .part files, so that over a network the parse hides behind
 * the download instead of following it.
 *
 * One parse thread per refreshed repo owns a private libsolv Pool (a Pool is
 * not thread-safe; the main pool is never touched here). For each file a
 * tailer thread copies the .part file's bytes, as the fetch tap reports them
 * written, into a socket that the decompressor reads. The result is kept
 * only if every file it was parsed from was delivered whole and its size and
 * digest were verified by the fetch layer; then, and only then, the parse
 * thread writes the .solv caches into the staging dir, where the ordinary
 * load path finds them. Any other outcome (a failed or retried attempt, a
 * bomb, a parse error, an interruption) writes nothing: the serial path then
 * runs as before and reports today's error, and the staging dir is never
 * committed unless everything in it was verified.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pkg/internal.h"
#include "pkg/mdstream.h"
#include <solv/repo_updateinfoxml.h>

enum { FEED_PRIMARY, FEED_UPDATEINFO, FEED_FILELISTS, FEED_N };

/* What the fetch tap has said about one file; guarded by lock. */
struct feed {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int rfd;             /* the first attempt's .part, read-only */
    long long received;  /* bytes written to it so far */
    int begins;          /* attempts started: more than one voids the stream */
    bool verified;       /* size and digest matched */
    bool over;           /* the fetch run returned: nothing more will come */
    struct lapis_fetch_tap tap;
    const char *local;   /* "<type>.xml.gz": its suffix picks the decompressor */
    long long limit;     /* open-size bound */
};

struct lapis_mdstream {
    struct lapis_mdstream_spec spec; /* its strings are owned copies */
    struct feed feeds[FEED_N];
    bool used[FEED_N];
    pthread_t thread;
    bool ok;             /* the .solv caches were written */
    int offered;         /* count_offered() of the parsed repo */
};

/* ---- the fetch tap (fetch thread) ----------------------------------------- */

static void tap_begin(void *ud, const char *part)
{
    struct feed *f = ud;
    pthread_mutex_lock(&f->lock);
    if (++f->begins == 1 && (f->rfd = open(part, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        f->begins++; /* unreadable: the stream is void */
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static void tap_data(void *ud, long long received)
{
    struct feed *f = ud;
    pthread_mutex_lock(&f->lock);
    f->received = received;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static void tap_verified(void *ud)
{
    struct feed *f = ud;
    pthread_mutex_lock(&f->lock);
    f->verified = true;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

/* ---- the tailer: .part file -> socket -------------------------------------- */

struct tailer {
    struct feed *f;
    int wfd;
    bool whole;          /* every byte of the verified file was delivered */
    pthread_t thread;
};

/* Wait until there is something to do; returns the bytes readable at pos,
 * 0 at the verified end, -1 when the stream is void. */
static long long feed_wait(struct feed *f, long long pos)
{
    long long avail;
    pthread_mutex_lock(&f->lock);
    while (!f->over && (f->begins == 0 || (f->begins == 1 && !f->verified && pos >= f->received)))
        pthread_cond_wait(&f->cond, &f->lock);
    if (f->begins != 1)
        avail = -1;
    else if (pos < f->received)
        avail = f->received - pos;
    else
        avail = f->verified ? 0 : -1;
    pthread_mutex_unlock(&f->lock);
    return avail;
}

static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false; /* the parser stopped reading */
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static void *tailer_main(void *arg)
{
    struct tailer *t = arg;
    char buf[65536];
    long long pos = 0, avail;

    while ((avail = feed_wait(t->f, pos)) > 0) {
        size_t want = avail < (long long)sizeof(buf) ? (size_t)avail : sizeof(buf);
        ssize_t n = pread(t->f->rfd, buf, want, pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || !send_all(t->wfd, buf, (size_t)n))
            break;
        pos += n;
    }
    t->whole = avail == 0;
    close(t->wfd); /* the decompressor sees the end */
    return NULL;
}

/* ---- the parse thread (private pool) -------------------------------------- */

/* Parse one file as it downloads; true only if it parsed cleanly from the
 * whole, verified file. */
static bool parse_feed(struct feed *f, Repo *repo, bool updateinfo, int flags)
{
    struct lapis_md_bounded b = { .limit = f->limit, .readahead = true };
    struct tailer t = { .f = f };
    int sv[2], r = -1;
    FILE *fp;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return false;
    t.wfd = sv[1];
    if (lapis_md_start_thread(&t.thread, tailer_main, &t) != 0) {
        close(sv[0]);
        close(sv[1]);
        return false;
    }
    if ((fp = lapis_md_open_bounded(f->local, sv[0], &b))) {
        r = updateinfo ? repo_add_updateinfoxml(repo, fp, flags)
                       : lapis_mdparse_rpmmd(repo, fp, flags);
        fclose(fp); /* closes sv[0]: a tailer still sending stops */
    } else {
        close(sv[0]);
    }
    pthread_join(t.thread, NULL);
    return r == 0 && !b.exceeded && t.whole;
}

static bool write_main(const struct lapis_mdstream_spec *sp, Repo *repo)
{
    _cleanup_free_ char *details = path_join(sp->staging, "lapis-details.solv");
    _cleanup_free_ char *main_solv = path_join(sp->staging, "lapis-main.solv");
    /* The writers add no strings and this pool is freed after them: its
     * string and relation hashes (~3 MB for 63k packages) go before the
     * writers' peak. */
    pool_freeidhashes(repo->pool);
    return lapis_cache_solv_write_split(repo, main_solv, sp->cookie_main, details,
                                        sp->cookie_details) == 0;
}

static bool write_filelists(const struct lapis_mdstream_spec *sp, Repo *repo)
{
    _cleanup_free_ char *path = path_join(sp->staging, "lapis-filelists.solv");
    return lapis_cache_solv_write_file(repo, repo_id2repodata(repo, repo->nrepodata - 1),
                                       LAPIS_SOLV_ALL, path, sp->cookie_filelists) == 0;
}

/* The packages the repo offers (not advisories), as the load counts them when
 * no exclude applies; -1 when some are hidden for unsafe locations (the load
 * warns of them). */
static int count_offered(Repo *repo, int unsafe)
{
    Solvable *s;
    Id p;
    int n = 0;

    if (unsafe > 0)
        return -1;
    FOR_REPO_SOLVABLES(repo, p, s)
        n += !lapis_is_advisory(repo->pool, s);
    return n;
}

/* The same steps as the serial load: primary, updateinfo, the unsafe-location
 * scan, main and details caches; then filelists into their own repodata. */
static bool parse_all(struct lapis_mdstream *m, Repo *repo)
{
    if (!parse_feed(&m->feeds[FEED_PRIMARY], repo, false, 0))
        return false;
    if (m->used[FEED_UPDATEINFO] && !parse_feed(&m->feeds[FEED_UPDATEINFO], repo, true, 0))
        return false;
    m->offered = count_offered(repo, lapis_md_mark_unsafe_locations(repo));
    if (!write_main(&m->spec, repo))
        return false;
    if (!m->used[FEED_FILELISTS])
        return true;
    /* A failure here leaves the main caches, made from verified files: the
     * serial path parses the file lists alone and says what is wrong. */
    return parse_feed(&m->feeds[FEED_FILELISTS], repo, false, REPO_EXTEND_SOLVABLES) &&
           write_filelists(&m->spec, repo);
}

static void *parse_main(void *arg)
{
    struct lapis_mdstream *m = arg;
    Pool *pool = pool_create();
    pool_setdisttype(pool, DISTTYPE_RPM);
    m->ok = parse_all(m, repo_create(pool, m->spec.repo_id));
    pool_free(pool);
    return NULL;
}

/* ---- the main thread's side ----------------------------------------------- */

static void feed_init(struct feed *f, const char *local, long long limit)
{
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    f->rfd = -1;
    f->local = local;
    f->limit = limit;
    f->tap = (struct lapis_fetch_tap){ tap_begin, tap_data, tap_verified, f };
}

static void mdstream_free(struct lapis_mdstream *m)
{
    for (int i = 0; i < FEED_N; i++) {
        if (m->feeds[i].rfd >= 0)
            close(m->feeds[i].rfd);
        pthread_mutex_destroy(&m->feeds[i].lock);
        pthread_cond_destroy(&m->feeds[i].cond);
        free((char *)m->spec.local[i]);
    }
    free((char *)m->spec.repo_id);
    free((char *)m->spec.staging);
    free(m);
}

struct lapis_mdstream *lapis_mdstream_start(const struct lapis_mdstream_spec *spec)
{
    struct lapis_mdstream *m;

    if (!spec->local[FEED_PRIMARY])
        return NULL;
    m = xcalloc(1, sizeof(*m));
    m->spec = *spec;
    m->spec.repo_id = xstrdup(spec->repo_id);
    m->spec.staging = xstrdup(spec->staging);
    for (int i = 0; i < FEED_N; i++) {
        m->used[i] = spec->local[i] != NULL;
        m->spec.local[i] = spec->local[i] ? xstrdup(spec->local[i]) : NULL;
        feed_init(&m->feeds[i], m->spec.local[i], spec->limit[i]);
    }
    if (lapis_md_start_thread(&m->thread, parse_main, m) != 0) {
        mdstream_free(m);
        return NULL;
    }
    return m;
}

const struct lapis_fetch_tap *lapis_mdstream_tap(struct lapis_mdstream *m, const char *type)
{
    static const char *const types[FEED_N] = { "primary", "updateinfo", "filelists" };
    for (int i = 0; m && i < FEED_N; i++)
        if (m->used[i] && strcmp(type, types[i]) == 0)
            return &m->feeds[i].tap;
    return NULL;
}

bool lapis_mdstream_finish(struct lapis_mdstream *m, int *offered)
{
    bool ok;
    *offered = -1;
    if (!m)
        return false;
    for (int i = 0; i < FEED_N; i++) {
        struct feed *f = &m->feeds[i];
        pthread_mutex_lock(&f->lock);
        f->over = true;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
    }
    pthread_join(m->thread, NULL);
    ok = m->ok;
    if (ok)
        *offered = m->offered;
    mdstream_free(m);
    return ok;
}
