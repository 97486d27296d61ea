/*
 * Parallel downloads (fetch.c, libcurl): jobs with mirrors, size caps and
 * digests, written through .part files. No package-manager types: the caller
 * passes what it knows of the repository (TLS settings, timeouts) per job.
 */
#ifndef LAPIS_SHARED_FETCH_H
#define LAPIS_SHARED_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/diag.h"
#include "shared/digest.h"

/* A repository's own network limits, overriding the fetch opts' for its jobs. */
struct lapis_fetch_limits {
    long long timeout;         /* connect and low-speed timeout, seconds */
    int retries;
};

/* Watches one job's .part file as it is written, for a consumer that reads it
 * while it downloads (the streaming metadata parser). Called on the fetch
 * thread, so each callback must be quick and never block on the consumer.
 * begin: an attempt created the .part (a second call means the first attempt
 * failed or was rewound); data: the .part now holds `received` bytes;
 * verified: the size and digest matched and the file was renamed to dest.
 * A job that ends without `verified` (an error, an interruption) says nothing
 * more: the consumer learns it when lapis_fetch_run returns. */
struct lapis_fetch_tap {
    void (*begin)(void *ud, const char *part);
    void (*data)(void *ud, long long received);
    void (*verified)(void *ud);
    void *ud;
};

struct lapis_fetch_job {
    /* input */
    char *const *mirrors;     /* base URLs, tried in order ... */
    const char *href;         /* ... each joined with this relative href */
    const char *url;          /* or: one full URL (keys); then mirrors/href are unused */
    const char *dest;         /* final path; written via dest.part then renamed */
    long long expected_size;  /* -1 unknown */
    long long max_size;       /* hard cap on bytes accepted; 0 = default cap */
    enum lapis_chk chk_type;
    const char *chk_hex;
    bool optional;            /* 404 is not an error (e.g. repomd.xml.asc) */
    bool resume;              /* continue an existing dest.part with a range request */
    const char *what;         /* for messages: "repo main: repomd.xml" */
    bool sslverify;
    const char *sslcacert;
    const struct lapis_fetch_limits *limits; /* the repo's timeout/retries; NULL: fetch opts' */
    const struct lapis_fetch_tap *tap;       /* optional watcher of the .part file */
    /* output */
    int result;               /* 0 ok, 1 absent (optional 404), <0 error */
    size_t served_by;         /* index of the mirror that delivered the file */
    char *error;              /* message when result < 0 */
    long long received;       /* bytes so far of the current attempt, kept up to date for tick */
};

struct lapis_fetch_opts {
    int max_parallel;
    long long timeout;  /* connect and low-speed timeout, seconds */
    int retries;
    long long progress_total; /* > 0: report LAPIS_PROGRESS_DOWNLOAD against this many bytes */
    bool fsync;               /* fsync each file before it is renamed into place */
    const char *cachedir;     /* for messages: .part files kept there on interruption */
    /* Called about every 0.1 s and once at the end, with each job's received
     * current: for callers that report progress per group of jobs (per repo). */
    void (*tick)(void *ud, const struct lapis_fetch_job *jobs, size_t njobs);
    void *tick_ud;
};

/* Run every job to completion; returns 0 if all succeeded, else the first error code
 * (its message on ctx). */
int lapis_fetch_run(struct lapis_diag *ctx, struct lapis_fetch_job *jobs, size_t njobs,
                    const struct lapis_fetch_opts *opts);
void lapis_fetch_job_clear(struct lapis_fetch_job *job);
/* One URL streamed to a callback from byte offset (a range request when > 0),
 * for the host updater, which writes payloads into a partition and never into
 * a file of its own. The callback returns 0 to go on or a negative code to
 * stop (returned as is). total_size >= 0: the server's whole size must be
 * exactly that (a truncated or swapped file is refused before its first byte
 * reaches the callback). max_size caps what is accepted. timeout as in
 * lapis_fetch_limits. */
typedef int (*lapis_fetch_stream_fn)(const void *data, size_t len, void *ud);
int lapis_fetch_stream(struct lapis_diag *ctx, const char *url, long long offset,
                       long long total_size, long long max_size, long long timeout,
                       lapis_fetch_stream_fn fn, void *ud);
/* A small file into memory (index, manifest): at most max_size bytes, NUL-terminated. */
int lapis_fetch_buffer(struct lapis_diag *ctx, const char *url, long long max_size,
                       long long timeout, char **ret_buf, size_t *ret_len);
/* Largest gpgkey file accepted (a key block is a few KiB). */
#define LAPIS_KEY_MAX (1LL << 20)

#endif
