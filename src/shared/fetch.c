/*
 * Parallel downloads with libcurl multi: up to max_parallel transfers across
 * all jobs and mirrors, connection reuse by the multi handle, retries with
 * backoff, failover to the next mirror on each failure.
 *
 * Every byte is written to "<dest>.part" (created O_EXCL|O_NOFOLLOW, so a
 * planted symlink cannot redirect the write), hashed while it streams, and
 * size-capped by the metadata; only a file whose size and digest match is
 * renamed into place. An href that could leave the repository is refused
 * before any request is made.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <dlfcn.h>
#include <pthread.h>

#include <curl/curl.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/url.h"
#include "shared/fetch.h"

#define DEFAULT_MAX_SIZE (256LL << 20) /* when the metadata states no size */

/* ---- libcurl, loaded on first use ----------------------------------------
 * Linking libcurl maps its ~30 libraries (GnuTLS, Kerberos, LDAP, ...) and
 * runs their constructors at every start: ~7 ms of CPU that the runs which
 * never download (a warm install, a query) paid for nothing. The functions
 * are looked up once per process, under pthread_once, and only read after. */
#define CURL_SONAME "libcurl.so.4"
#define DLSYM(name) static __typeof__(name) *sym_##name
DLSYM(curl_easy_init);
DLSYM(curl_easy_setopt);
DLSYM(curl_easy_getinfo);
DLSYM(curl_easy_perform);
DLSYM(curl_easy_reset);
DLSYM(curl_easy_cleanup);
DLSYM(curl_easy_strerror);
DLSYM(curl_multi_init);
DLSYM(curl_multi_setopt);
DLSYM(curl_multi_add_handle);
DLSYM(curl_multi_remove_handle);
DLSYM(curl_multi_perform);
DLSYM(curl_multi_poll);
DLSYM(curl_multi_info_read);
DLSYM(curl_multi_strerror);
DLSYM(curl_multi_cleanup);

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static char curl_error[256]; /* why loading failed; empty when loaded */

#define SYM(name) { #name, (void **)&sym_##name }
static void curl_load_once(void)
{
    static const struct { const char *name; void **slot; } syms[] = {
        SYM(curl_easy_init), SYM(curl_easy_setopt), SYM(curl_easy_getinfo),
        SYM(curl_easy_perform), SYM(curl_easy_reset), SYM(curl_easy_cleanup),
        SYM(curl_easy_strerror), SYM(curl_multi_init), SYM(curl_multi_setopt),
        SYM(curl_multi_add_handle), SYM(curl_multi_remove_handle), SYM(curl_multi_perform),
        SYM(curl_multi_poll), SYM(curl_multi_info_read), SYM(curl_multi_strerror),
        SYM(curl_multi_cleanup),
    };
    void *h = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);

    if (!h) {
        snprintf(curl_error, sizeof(curl_error), "%s", dlerror());
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(syms); i++)
        if (!(*syms[i].slot = dlsym(h, syms[i].name))) {
            snprintf(curl_error, sizeof(curl_error), "%s has no %s", CURL_SONAME, syms[i].name);
            return; /* h stays open: a failed load is not retried */
        }
}

static int curl_load(struct lapis_diag *ctx)
{
    pthread_once(&curl_once, curl_load_once);
    if (curl_error[0])
        return lapis_err(ctx, LAPIS_E_DOWNLOAD, "cannot download: cannot load %s (%s); "
                         "install libcurl", CURL_SONAME, curl_error);
    return 0;
}

struct xfer {
    struct lapis_fetch_job *job;
    CURL *easy;
    int fd;
    char *part;
    char *url;
    long long received;
    long long cap;
    lapis_hasher *hasher;
    size_t mirror;      /* index into job->mirrors */
    int attempts;       /* failed attempts so far (all mirrors) */
    int permanent;      /* mirrors that gave a permanent error this round */
    double not_before;  /* monotonic time before which not to retry */
    bool active, done, oversize, write_err;
    long long resumed_from; /* bytes of .part kept from an earlier attempt or run */
    bool checked_status;    /* first body byte seen: resume honoured or restarted */
    long long *progress;    /* shared byte counter for progress reports */
    size_t *pending;        /* the run's count of jobs not yet ended */
    struct lapis_diag *diag; /* for -v notes (a resumed .part) */
    char errbuf[CURL_ERROR_SIZE];
    char werr[CURL_ERROR_SIZE]; /* our write error (curl overwrites errbuf with its own) */
};

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void lapis_fetch_job_clear(struct lapis_fetch_job *job)
{
    free(job->error);
    job->error = NULL;
}

/* Asked for a range but got the whole file (HTTP 200): start the .part over. */
static int restart_if_range_ignored(struct xfer *x)
{
    long code = 0;
    x->checked_status = true;
    if (x->resumed_from == 0)
        return 0;
    sym_curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200)
        return 0;
    if (ftruncate(x->fd, 0) < 0 || lseek(x->fd, 0, SEEK_SET) < 0)
        return -errno;
    enum lapis_chk t = x->job->chk_type;
    lapis_hasher_free(x->hasher);
    x->hasher = t != LAPIS_CHK_NONE ? lapis_hasher_new(t) : NULL;
    *x->progress -= x->received;
    x->received = 0;
    x->resumed_from = 0;
    if (x->job->tap) /* the bytes it saw are gone */
        x->job->tap->begin(x->job->tap->ud, x->part);
    return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * nmemb;

    if (!x->checked_status && restart_if_range_ignored(x) < 0) {
        x->write_err = true;
        snprintf(x->werr, sizeof(x->werr), "rewinding %s: %s", x->part, strerror(errno));
        return 0;
    }
    if (x->received + (long long)len > x->cap) {
        x->oversize = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(x->fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            x->write_err = true;
            snprintf(x->werr, sizeof(x->werr), "writing %s: %s%s", x->part, strerror(errno),
                     errno == ENOSPC || errno == EDQUOT
                         ? "; free space for the cache (cachedir) or run 'lapis clean packages'"
                         : "");
            return 0;
        }
        off += (size_t)n;
    }
    lapis_hasher_update(x->hasher, data, len);
    x->received += (long long)len;
    *x->progress += (long long)len;
    if (x->job->tap)
        x->job->tap->data(x->job->tap->ud, x->received);
    return len;
}

/* The one way a job ends, so each ends exactly once and the run's loop,
 * which waits for pending to reach zero, always terminates. */
static void end_job(struct xfer *x, int result)
{
    if (x->done)
        return;
    x->job->result = result;
    x->done = true;
    (*x->pending)--;
}

static void fail_job(struct xfer *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_job(struct xfer *x, int code, const char *fmt, ...)
{
    va_list ap;
    free(x->job->error);
    va_start(ap, fmt);
    x->job->error = xvasprintf(fmt, ap); /* never NULL: callers print it with %s */
    va_end(ap);
    end_job(x, code < 0 ? code : -code);
}

static void cleanup_attempt(struct xfer *x, bool keep_part)
{
    if (x->fd >= 0)
        close(x->fd);
    x->fd = -1;
    if (x->part && !keep_part) {
        unlink(x->part);
        *x->progress -= x->received;
    }
    lapis_hasher_free(x->hasher);
    x->hasher = NULL;
    free(x->url);
    x->url = NULL;
}

/* Reopen a partial download left by an interrupted attempt or run: its bytes
 * are hashed again and the transfer continues with a range request. Anything
 * odd about the file (a symlink, not regular, too big) means starting over. */
static bool reopen_part(struct xfer *x)
{
    struct stat st;
    char buf[65536];
    ssize_t n;
    int rfd;

    x->fd = open(x->part, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (x->fd < 0)
        return false;
    if (fstat(x->fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size >= x->cap ||
        (rfd = open(x->part, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        close(x->fd);
        x->fd = -1;
        return false;
    }
    while ((n = read(rfd, buf, sizeof(buf))) > 0)
        lapis_hasher_update(x->hasher, buf, (size_t)n);
    close(rfd);
    x->received = x->resumed_from = st.st_size;
    *x->progress += st.st_size;
    return true;
}

static int start_xfer(CURLM *multi, struct xfer *x, const struct lapis_fetch_opts *o)
{
    struct lapis_fetch_job *j = x->job;
    x->url = j->url ? xstrdup(j->url) : lapis_url_join(j->mirrors[x->mirror], j->href);
    x->received = x->resumed_from = 0;
    x->oversize = x->write_err = x->checked_status = false;
    x->errbuf[0] = '\0';
    x->hasher = j->chk_type != LAPIS_CHK_NONE ? lapis_hasher_new(j->chk_type) : NULL;
    if (j->resume && reopen_part(x))
        lapis_diag_log(x->diag, LAPIS_LOG_DEBUG, "%s: resuming the interrupted download "
                       "(%lld bytes kept in %s)", j->what, x->resumed_from, x->part);
    else {
        /* What cannot be removed (a directory, EACCES) is the error to report,
         * not the EEXIST the exclusive create then gets. */
        if (unlink(x->part) < 0 && errno != ENOENT)
            x->fd = -1;
        else
            x->fd = open(x->part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    }
    if (x->fd < 0) {
        fail_job(x, LAPIS_E_DOWNLOAD, "%s: cannot create %s: %s", j->what, x->part, strerror(errno));
        cleanup_attempt(x, true); /* not ours to unlink */
        return -1;
    }
    if (j->tap) {
        j->tap->begin(j->tap->ud, x->part);
        if (x->received > 0)
            j->tap->data(j->tap->ud, x->received);
    }

    CURL *e = x->easy;
    sym_curl_easy_reset(e);
    sym_curl_easy_setopt(e, CURLOPT_URL, x->url);
    sym_curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    sym_curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    sym_curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    sym_curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    sym_curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    sym_curl_easy_setopt(e, CURLOPT_FAILONERROR, 0L);
    sym_curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    sym_curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    sym_curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,ftp,ftps,file");
    sym_curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    sym_curl_easy_setopt(e, CURLOPT_USERAGENT, "lapis/" "0.1");
    long timeout = (long)(j->limits ? j->limits->timeout : o->timeout);
    sym_curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, timeout);
    /* A stalled or trickling server (slow-loris) fails like dnf's minrate. */
    sym_curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1000L);
    sym_curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, timeout);
    sym_curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->cap);
    sym_curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, j->sslverify ? 1L : 0L);
    sym_curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, j->sslverify ? 2L : 0L);
    if (j->sslcacert)
        sym_curl_easy_setopt(e, CURLOPT_CAINFO, j->sslcacert);
    if (x->resumed_from > 0)
        sym_curl_easy_setopt(e, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)x->resumed_from);
    CURLMcode mc = sym_curl_multi_add_handle(multi, e);
    if (mc != CURLM_OK) {
        fail_job(x, LAPIS_E_DOWNLOAD, "%s: cannot start the download: %s", j->what,
                 sym_curl_multi_strerror(mc));
        cleanup_attempt(x, true);
        return -1;
    }
    x->active = true;
    return 0;
}

/* Classify a finished attempt: 0 ok, 1 absent (404 on optional), -1 transient (retry the
 * mirror after a backoff), -2 permanent for this mirror (move on to the next), -3 transient
 * and the partial file is useless. */
static int classify(struct xfer *x, CURLcode cc, char *msg, size_t msglen)
{
    struct lapis_fetch_job *j = x->job;
    long code = 0;

    sym_curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    if (x->oversize) {
        snprintf(msg, msglen, "larger than the %lld bytes allowed", x->cap);
        return -2;
    }
    if (x->write_err) {
        snprintf(msg, msglen, "%s", x->werr);
        return -2;
    }
    /* file:// and ftp:// (550) say "no such file" through the curl code. */
    if (cc == CURLE_FILE_COULDNT_READ_FILE || cc == CURLE_REMOTE_FILE_NOT_FOUND ||
        (lapis_url_is_remote(x->url) && (code == 404 || code == 410))) {
        if (j->optional)
            return 1;
        snprintf(msg, msglen, "not found");
        return -2;
    }
    if (cc != CURLE_OK) {
        snprintf(msg, msglen, "%s", x->errbuf[0] ? x->errbuf : sym_curl_easy_strerror(cc));
        return cc == CURLE_TOO_MANY_REDIRECTS || cc == CURLE_UNSUPPORTED_PROTOCOL ||
               cc == CURLE_REMOTE_ACCESS_DENIED ? -2 : -1; /* ftp: no such directory */
    }
    if (code == 416 && x->resumed_from > 0) {
        snprintf(msg, msglen, "server refused to resume the partial download; starting over");
        return -3;
    }
    if (lapis_url_is_remote(x->url) && code != 200 && !(code == 206 && x->resumed_from > 0)) {
        snprintf(msg, msglen, "HTTP status %ld", code);
        return code >= 400 && code < 500 && code != 408 && code != 429 ? -2 : -1;
    }
    if (j->expected_size >= 0 && x->received != j->expected_size) {
        snprintf(msg, msglen, "size %lld does not match the metadata's %lld (truncated or "
                 "stale mirror)", x->received, j->expected_size);
        return -2; /* the same mirror will serve the same bytes again */
    }
    if (x->hasher) {
        char hex[129];
        lapis_hasher_final_hex(x->hasher, hex, sizeof(hex));
        if (strcasecmp(hex, j->chk_hex) != 0) {
            snprintf(msg, msglen, "%s checksum mismatch (expected %s, got %s): corrupt or "
                     "tampered file", lapis_chk_name(j->chk_type), j->chk_hex, hex);
            return -2;
        }
    }
    return 0;
}

static void finish_attempt(struct lapis_diag *ctx, struct xfer *x, CURLcode cc,
                           const struct lapis_fetch_opts *o)
{
    struct lapis_fetch_job *j = x->job;
    char msg[1024];
    int k = classify(x, cc, msg, sizeof(msg));

    x->active = false;
    if (k >= 0) {
        int fd = x->fd;
        x->fd = -1;
        int synced = o->fsync ? fsync(fd) : 0;
        if (close(fd) < 0 || synced < 0) {
            snprintf(msg, sizeof(msg), "writing %s: %s", x->part, strerror(errno));
            k = -2;
        }
    }
    if (k == 0) {
        if (rename(x->part, j->dest) < 0) {
            fail_job(x, LAPIS_E_DOWNLOAD, "%s: cannot store %s: %s", j->what, j->dest,
                     strerror(errno));
            cleanup_attempt(x, false);
            return;
        }
        cleanup_attempt(x, true);
        j->served_by = x->mirror;
        if (j->tap)
            j->tap->verified(j->tap->ud);
        end_job(x, 0);
        return;
    }
    free(j->error);
    j->error = k == 1 ? NULL : xasprintf("%s: %s [%s]", j->what, msg, x->url);
    /* A transfer cut short keeps its bytes for the next attempt to resume from. */
    cleanup_attempt(x, k == -1 && j->resume);
    if (k == -3)
        k = -1;
    if (k == 1) {
        end_job(x, 1);
        return;
    }

    size_t nmirrors = j->url ? 1 : strv_length(j->mirrors);
    if (k == -2)
        x->permanent++;
    x->attempts++;
    lapis_log(ctx, LAPIS_LOG_DEBUG, "%s", j->error); /* -v: why each attempt failed */
    x->mirror = (x->mirror + 1) % nmirrors;
    int retries = j->limits ? j->limits->retries : o->retries;
    if (x->permanent >= (int)nmirrors || x->attempts > retries) {
        end_job(x, -LAPIS_E_DOWNLOAD);
        return;
    }
    /* Back off only once every mirror has been tried in this round. */
    if (x->mirror == 0) {
        double delay = 0.1 * (double)(1 << (x->attempts < 6 ? x->attempts : 6));
        x->not_before = now_mono() + (delay > 5.0 ? 5.0 : delay);
        x->permanent = 0;
    }
}

static bool validate_job(struct xfer *x)
{
    struct lapis_fetch_job *j = x->job;
    if (j->url) {
        if (lapis_url_scheme_ok(j->url))
            return true;
        fail_job(x, LAPIS_E_UNSAFE, "%s: unsupported URL scheme in '%s'", j->what, j->url);
        return false;
    }
    if (!j->mirrors || !j->mirrors[0]) {
        fail_job(x, LAPIS_E_REPO, "%s: no base URL to download from", j->what);
        return false;
    }
    if (!j->href || !lapis_href_is_safe(j->href)) {
        fail_job(x, LAPIS_E_UNSAFE, "%s: refusing location '%s': it points outside the repository",
                 j->what, j->href);
        return false;
    }
    for (size_t m = 0; j->mirrors[m]; m++)
        if (!lapis_url_scheme_ok(j->mirrors[m])) {
            fail_job(x, LAPIS_E_UNSAFE, "%s: unsupported URL scheme in '%s'", j->what, j->mirrors[m]);
            return false;
        }
    return true;
}

static size_t start_ready(CURLM *multi, struct xfer *xs, size_t n, size_t running,
                          const struct lapis_fetch_opts *o, double *ret_wait)
{
    double t = now_mono();
    *ret_wait = 1.0;
    for (size_t i = 0; i < n && running < (size_t)o->max_parallel; i++) {
        struct xfer *x = &xs[i];
        if (x->done || x->active)
            continue;
        if (x->not_before > t) {
            if (x->not_before - t < *ret_wait)
                *ret_wait = x->not_before - t;
            continue;
        }
        if (start_xfer(multi, x, o) == 0)
            running++;
    }
    return running;
}

static void report_progress(struct lapis_diag *ctx, const struct lapis_fetch_opts *o, long long done,
                            double *last, bool force, const struct xfer *xs, size_t n)
{
    double t = now_mono();
    if ((!o->progress_total && !o->tick) || (!force && t - *last < 0.1))
        return;
    *last = t;
    if (o->tick) {
        for (size_t i = 0; i < n; i++)
            xs[i].job->received = xs[i].received;
        o->tick(o->tick_ud, xs[0].job, n);
    }
    if (!o->progress_total)
        return;
    lapis_progress(ctx, LAPIS_PROGRESS_DOWNLOAD, NULL, done < 0 ? 0 : (unsigned long long)done,
                   (unsigned long long)o->progress_total);
}

/* ---- interruption --------------------------------------------------------- */

/* Where kept .part files are, for the message: the cache, or --downloaddir. */
static char *part_dir(const char *cache, const char *part)
{
    const char *slash = strrchr(part, '/');
    size_t n = cache ? strlen(cache) : 0;
    if (cache && strncmp(part, cache, n) == 0 && part[n] == '/')
        return xstrdup(cache);
    return slash ? xstrndup(part, (size_t)(slash - part)) : xstrdup(".");
}

/* SIGINT/SIGTERM: stop every unfinished transfer. A resumable .part keeps its
 * bytes (the next run continues it with a range request); any other is removed.
 * Returns -LAPIS_E_INTERRUPTED with the message saying what was kept. */
static int stop_all(struct lapis_diag *ctx, const char *cachedir, CURLM *multi, struct xfer *xs,
                    size_t n)
{
    _cleanup_free_ char *dir = NULL, *msg = NULL;
    size_t kept = 0;
    long long kept_bytes = 0;
    struct stat st;

    for (size_t i = 0; i < n; i++) {
        struct xfer *x = &xs[i];
        if (x->done)
            continue;
        if (x->active)
            sym_curl_multi_remove_handle(multi, x->easy);
        x->active = false;
        if (x->fd >= 0) /* an attempt in flight; between attempts it is already cleaned up */
            cleanup_attempt(x, x->job->resume);
        if (x->job->resume && lstat(x->part, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
            kept_bytes += st.st_size;
            if (kept++ == 0)
                dir = part_dir(cachedir, x->part);
        }
        end_job(x, -LAPIS_E_INTERRUPTED);
    }
    if (kept)
        msg = xasprintf("interrupted: nothing was changed; %zu partial download%s (%lld bytes) "
                        "kept in %s, the next run resumes %s", kept, kept == 1 ? "" : "s",
                        kept_bytes, dir, kept == 1 ? "it" : "them");
    else
        msg = xstrdup("interrupted: nothing was changed");
    for (size_t i = 0; i < n; i++)
        if (xs[i].job->result == -LAPIS_E_INTERRUPTED) {
            free(xs[i].job->error);
            xs[i].job->error = xstrdup(msg);
        }
    return lapis_err(ctx, LAPIS_E_INTERRUPTED, "%s", msg);
}

int lapis_fetch_run(struct lapis_diag *ctx, struct lapis_fetch_job *jobs, size_t njobs,
                    const struct lapis_fetch_opts *opts)
{
    struct lapis_fetch_opts o = *opts;
    CURLM *multi;
    struct xfer *xs;
    size_t pending = njobs, running = 0;
    int first_err = 0, interrupted = 0, r;
    long long done_bytes = 0;
    double last_report = 0;

    if ((r = curl_load(ctx)) < 0)
        return r;
    multi = sym_curl_multi_init();
    xs = xcalloc(njobs, sizeof(*xs));
    if (o.max_parallel < 1)
        o.max_parallel = 1;
    sym_curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)o.max_parallel);
    for (size_t i = 0; i < njobs; i++) {
        struct xfer *x = &xs[i];
        x->job = &jobs[i];
        x->fd = -1;
        x->progress = &done_bytes;
        x->pending = &pending;
        x->diag = ctx;
        jobs[i].result = 0;
        x->part = xasprintf("%s.part", jobs[i].dest);
        x->cap = jobs[i].expected_size >= 0 ? jobs[i].expected_size
                 : jobs[i].max_size > 0   ? jobs[i].max_size
                                          : DEFAULT_MAX_SIZE;
        if (validate_job(x) && !(x->easy = sym_curl_easy_init()))
            fail_job(x, LAPIS_E_DOWNLOAD, "%s: cannot set up a download (out of memory)",
                     jobs[i].what);
    }

    while (pending > 0) {
        double wait;
        int still = 0, nmsg;
        bool finished_any = false;
        CURLMsg *m;

        /* sym_curl_multi_poll() wakes on the signal (EINTR), so this is soon seen. */
        if (lapis_interrupted(ctx) &&
            (interrupted = stop_all(ctx, o.cachedir, multi, xs, njobs)) < 0)
            break;
        running = start_ready(multi, xs, njobs, running, &o, &wait);
        sym_curl_multi_perform(multi, &still);
        while ((m = sym_curl_multi_info_read(multi, &nmsg))) {
            struct xfer *x;
            if (m->msg != CURLMSG_DONE)
                continue;
            sym_curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            CURLcode cc = m->data.result;
            sym_curl_multi_remove_handle(multi, m->easy_handle);
            running--;
            finish_attempt(ctx, x, cc, &o);
            finished_any = true;
        }
        report_progress(ctx, &o, done_bytes, &last_report, false, xs, njobs);
        /* A finished transfer frees a slot: start the next one now, not after a poll. */
        if (pending > 0 && !finished_any)
            sym_curl_multi_poll(multi, NULL, 0, (int)(wait * 1000) + 1, NULL);
    }

    if (njobs)
        report_progress(ctx, &o, done_bytes, &last_report, true, xs, njobs);
    for (size_t i = 0; i < njobs; i++) {
        if (xs[i].easy)
            sym_curl_easy_cleanup(xs[i].easy);
        if (xs[i].fd >= 0)
            close(xs[i].fd);
        free(xs[i].part);
        free(xs[i].url);
        lapis_hasher_free(xs[i].hasher);
        if (jobs[i].result < 0 && !first_err)
            first_err = jobs[i].result;
    }
    free(xs);
    sym_curl_multi_cleanup(multi);
    for (size_t i = 0; i < njobs && first_err && !interrupted; i++)
        if (jobs[i].result < 0 && jobs[i].error) {
            lapis_err(ctx, first_err, "%s", jobs[i].error);
            break;
        }
    return interrupted ? interrupted : first_err;
}

/* ---- Streaming one URL to a callback (the host updater) ---- */

struct stream {
    struct lapis_diag *ctx;
    CURL *easy;
    const char *url;
    long long offset, total, cap, received, skip;
    bool checked;
    int stop;                 /* the callback's or our own refusal */
    lapis_fetch_stream_fn fn;
    void *ud;
};

/* On the first body byte: the status and the announced length say whether this
 * is the file the caller expects, before the callback sees any of it. */
static int stream_check(struct stream *s)
{
    long code = 0;
    curl_off_t len = -1;
    sym_curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    sym_curl_easy_getinfo(s->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
    bool remote = lapis_url_is_remote(s->url);
    if (remote && code != 200 && code != 206)
        return lapis_err(s->ctx, LAPIS_E_DOWNLOAD, "%s: HTTP status %ld", s->url, code);
    if (s->offset > 0 && (!remote || code == 200))
        s->skip = s->offset; /* the range was ignored: the whole file comes */
    long long whole = len < 0 ? -1 : (long long)len + s->offset - s->skip;
    if (s->total >= 0 && whole >= 0 && whole != s->total)
        return lapis_err(s->ctx, LAPIS_E_CHECKSUM, "%s: the server has %lld bytes, the signed "
                         "manifest says %lld (truncated or replaced file)", s->url, whole, s->total);
    return 0;
}

static size_t stream_write(char *data, size_t size, size_t nmemb, void *ud)
{
    struct stream *s = ud;
    size_t n = size * nmemb;
    if (!s->checked) {
        s->checked = true;
        if ((s->stop = stream_check(s)) < 0)
            return 0;
    }
    size_t skip = s->skip > (long long)n ? n : (size_t)s->skip;
    s->skip -= (long long)skip;
    s->received += (long long)(n - skip);
    if (s->received > s->cap) {
        s->stop = lapis_err(s->ctx, LAPIS_E_CHECKSUM, "%s: larger than the %lld bytes allowed",
                            s->url, s->cap);
        return 0;
    }
    if (n > skip && (s->stop = s->fn(data + skip, n - skip, s->ud)) < 0)
        return 0;
    return n;
}

static void stream_setopt(struct stream *s, long long timeout)
{
    CURL *e = s->easy;
    sym_curl_easy_setopt(e, CURLOPT_URL, s->url);
    sym_curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, stream_write);
    sym_curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    sym_curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    sym_curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    sym_curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    sym_curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,file");
    sym_curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    sym_curl_easy_setopt(e, CURLOPT_USERAGENT, "lapis-sysupdate/" "0.1");
    sym_curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)timeout);
    sym_curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1000L);
    sym_curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)timeout);
    if (s->offset > 0)
        sym_curl_easy_setopt(e, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)s->offset);
}

int lapis_fetch_stream(struct lapis_diag *ctx, const char *url, long long offset,
                       long long total_size, long long max_size, long long timeout,
                       lapis_fetch_stream_fn fn, void *ud)
{
    struct stream s = { .ctx = ctx, .url = url, .offset = offset, .total = total_size,
                        .cap = max_size > 0 ? max_size : DEFAULT_MAX_SIZE, .fn = fn, .ud = ud };
    char errbuf[CURL_ERROR_SIZE] = "";
    int r;
    if ((r = curl_load(ctx)) < 0)
        return r;
    if (!(s.easy = sym_curl_easy_init()))
        return LAPIS_OOM(ctx);
    stream_setopt(&s, timeout > 0 ? timeout : 30);
    sym_curl_easy_setopt(s.easy, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode cc = sym_curl_easy_perform(s.easy);
    long code = 0;
    sym_curl_easy_getinfo(s.easy, CURLINFO_RESPONSE_CODE, &code);
    sym_curl_easy_cleanup(s.easy);
    if (s.stop < 0)
        return s.stop;
    if (cc != CURLE_OK)
        return lapis_err(ctx, LAPIS_E_DOWNLOAD, "%s: %s", url, errbuf[0] ? errbuf : sym_curl_easy_strerror(cc));
    if (!s.checked && lapis_url_is_remote(url) && code != 200 && code != 206)
        return lapis_err(ctx, LAPIS_E_DOWNLOAD, "%s: HTTP status %ld", url, code);
    if (total_size >= 0 && s.received + offset != total_size)
        return lapis_err(ctx, LAPIS_E_DOWNLOAD, "%s: the connection ended after %lld of %lld "
                         "bytes (run again to resume)", url, s.received + offset, total_size);
    return 0;
}

struct membuf { char *buf; size_t len; };

static int membuf_add(const void *data, size_t len, void *ud)
{
    struct membuf *m = ud;
    m->buf = xrealloc(m->buf, m->len + len + 1);
    memcpy(m->buf + m->len, data, len);
    m->len += len;
    m->buf[m->len] = '\0';
    return 0;
}

int lapis_fetch_buffer(struct lapis_diag *ctx, const char *url, long long max_size,
                       long long timeout, char **ret_buf, size_t *ret_len)
{
    struct membuf m = { xstrdup(""), 0 };
    int r = lapis_fetch_stream(ctx, url, 0, -1, max_size, timeout, membuf_add, &m);
    if (r < 0) {
        free(m.buf);
        return r;
    }
    *ret_buf = m.buf;
    *ret_len = m.len;
    return 0;
}
