/*
 * rpm-md metadata: decide which repos need refreshing, fetch repomd.xml (and
 * its signature and keys) for all of them in one parallel batch, verify the
 * signature before trusting a byte of it, then fetch the files it lists in a
 * second batch with size and digest checks, parse them with libsolvext and
 * only then swap the new metadata into the cache. Any failure leaves the
 * previous cache exactly as it was.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <expat.h>

#include "pkg/internal.h"
#include "pkg/mdstream.h"
#include "pkg/trust.h"
#include <solv/chksum.h>
#include <solv/repo_repomdxml.h>
#include <solv/repo_rpmmd.h>
#include <solv/repo_updateinfoxml.h>
#include <solv/repo_comps.h>
#include <solv/solv_xfopen.h>


#define REPOMD_MAX (16LL << 20)
#define STAGING_PREFIX "repodata.new-"
#define STAGING_GRACE_S 60
/* Decompression cap when repomd.xml gives no open-size (Fedora's largest,
 * filelists, opens to well under 1 GiB). */
#define OPEN_SIZE_DEFAULT_MAX (2LL << 30)

struct md_entry {
    char *type;
    char *href;
    enum lapis_chk chk;
    char hex[129];
    long long size;
    long long open_size;  /* decompressed size from repomd.xml, -1 unknown */
};

struct rstate {
    struct lapis_repo *repo;
    char *repodata;   /* <repo cache>/repodata */
    char *staging;    /* <repo cache>/repodata.new-PID-XXXXXX while refreshing */
    struct md_entry *md;
    size_t nmd;
    bool refresh;
    size_t repomd_mirror; /* which baseurl served repomd.xml */
    bool pin;         /* record the repo's key pin (LAPIS_LOAD_PIN_KEYS); else only check it */
    struct lapis_mdstream *stream; /* parsing while phase B downloads */
    bool counted;     /* the stream wrote the caches and counted the packages: */
    int offered;      /* how many it offers before excludes */
    int err;          /* first error, 0 if fine */
    char *errmsg;
    long long fetched; /* bytes of earlier batches, for progress */
};

static void md_free(struct md_entry *md, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(md[i].type);
        free(md[i].href);
    }
    free(md);
}

static const struct md_entry *md_find(const struct rstate *s, const char *type)
{
    for (size_t i = 0; i < s->nmd; i++)
        if (strcmp(s->md[i].type, type) == 0)
            return &s->md[i];
    return NULL;
}

/* The comps (groups) file: the compressed one when repomd.xml lists both. */
static const struct md_entry *md_group(const struct rstate *s)
{
    const struct md_entry *e = md_find(s, "group_gz");
    return e ? e : md_find(s, "group");
}

/* Record a repo failure; the message already names the repo. */
static void rstate_fail(struct rstate *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rstate_fail(struct rstate *s, int code, const char *fmt, ...)
{
    va_list ap;
    if (s->err)
        return;
    s->err = code < 0 ? code : -code;
    va_start(ap, fmt);
    if (vasprintf(&s->errmsg, fmt, ap) < 0)
        s->errmsg = NULL;
    va_end(ap);
}

/* Local name for a metadata file: "<type>.xml<compression suffix>", so
 * solv_xfopen picks the decompressor and hostile hrefs never name local files. */
static char *md_local_name(const struct md_entry *e)
{
    static const char *const sfx[] = { ".gz", ".xz", ".zst", ".bz2" };
    for (size_t i = 0; i < ARRAY_SIZE(sfx); i++)
        if (str_endswith(e->href, sfx[i]))
            return xasprintf("%s.xml%s", e->type, sfx[i]);
    return xasprintf("%s.xml", e->type);
}

/* libsolv's repomd parser drops <open-size>, which bounds decompression:
 * read it with expat (already linked through libsolvext). */
struct opensize_parse {
    struct rstate *s;
    char *type;
    bool in_open_size;
    char text[32];
    size_t len;
};

static void XMLCALL os_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct opensize_parse *op = ud;
    if (strcmp(name, "data") == 0) {
        free(op->type);
        op->type = NULL;
        for (size_t i = 0; attrs[i]; i += 2)
            if (strcmp(attrs[i], "type") == 0)
                op->type = xstrdup(attrs[i + 1]);
    } else if (strcmp(name, "open-size") == 0) {
        op->in_open_size = true;
        op->len = 0;
    }
}

static void XMLCALL os_text(void *ud, const XML_Char *text, int len)
{
    struct opensize_parse *op = ud;
    if (op->in_open_size && len > 0 && op->len + (size_t)len < sizeof(op->text)) {
        memcpy(op->text + op->len, text, (size_t)len);
        op->len += (size_t)len;
    }
}

static void XMLCALL os_end(void *ud, const XML_Char *name)
{
    struct opensize_parse *op = ud;
    if (strcmp(name, "open-size") != 0 || !op->in_open_size)
        return;
    op->in_open_size = false;
    op->text[op->len] = '\0';
    long long v;
    if (!op->type || lapis_parse_int(strstrip(op->text), 1, LLONG_MAX, &v) < 0)
        return;
    for (size_t i = 0; i < op->s->nmd; i++)
        if (strcmp(op->s->md[i].type, op->type) == 0)
            op->s->md[i].open_size = v;
}

static void read_open_sizes(struct rstate *s, const char *buf, size_t len)
{
    struct opensize_parse op = { .s = s };
    XML_Parser p;

    if (!(p = XML_ParserCreate(NULL)))
        return;
    XML_SetUserData(p, &op);
    XML_SetElementHandler(p, os_start, os_end);
    XML_SetCharacterDataHandler(p, os_text);
    XML_Parse(p, buf, (int)len, 1); /* already parsed by libsolv: errors were reported there */
    XML_ParserFree(p);
    free(op.type);
}

static int parse_repomd(lapis_ctx *ctx, struct rstate *s, const char *path)
{
    Pool *pool = pool_create();
    Repo *rp = repo_create(pool, "repomd");
    Dataiterator di;
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    FILE *fp = NULL;
    int r = read_file(path, REPOMD_MAX, &buf, &len);

    /* Read once: libsolv parses it from memory, and so does read_open_sizes(). */
    if (r < 0 || !(fp = fmemopen(buf, len, "r"))) {
        r = r < 0 ? r : -errno;
        pool_free(pool);
        return lapis_err(ctx, r, "repo %s: cannot open %s: %s", s->repo->id, path, strerror(-r));
    }
    if (repo_add_repomdxml(rp, fp, 0) != 0) {
        r = lapis_err(ctx, LAPIS_E_METADATA, "repo %s: repomd.xml is malformed (%s); "
                      "the repository or mirror is broken", s->repo->id,
                      lapis_sack_errstr(pool, "unreadable XML"));
        fclose(fp);
        pool_free(pool);
        return r;
    }
    fclose(fp);
    md_free(s->md, s->nmd);
    s->md = NULL;
    s->nmd = 0;
    s->repo->timestamp = (long long)repo_lookup_num(rp, SOLVID_META, REPOSITORY_TIMESTAMP, 0);

    dataiterator_init(&di, pool, rp, SOLVID_META, REPOSITORY_REPOMD_TYPE, 0, 0);
    dataiterator_prepend_keyname(&di, REPOSITORY_REPOMD);
    while (dataiterator_step(&di) && r == 0) {
        Id chktype = 0;
        dataiterator_setpos_parent(&di);
        const char *type = pool_lookup_str(pool, SOLVID_POS, REPOSITORY_REPOMD_TYPE);
        const char *loc = pool_lookup_str(pool, SOLVID_POS, REPOSITORY_REPOMD_LOCATION);
        const unsigned char *chk = pool_lookup_bin_checksum(pool, SOLVID_POS,
                                                            REPOSITORY_REPOMD_CHECKSUM, &chktype);
        if (!type || !loc)
            continue;
        s->md = xrealloc(s->md, (s->nmd + 1) * sizeof(*s->md));
        struct md_entry *e = &s->md[s->nmd++];
        memset(e, 0, sizeof(*e));
        e->type = xstrdup(type);
        e->href = xstrdup(loc);
        e->size = (long long)pool_lookup_num(pool, SOLVID_POS, REPOSITORY_REPOMD_SIZE, 0);
        if (e->size == 0)
            e->size = -1;
        e->open_size = -1;
        e->chk = lapis_chk_from_name(chk ? solv_chksum_type2str(chktype) : NULL);
        if (chk)
            solv_bin2hex(chk, solv_chksum_len(chktype), e->hex);
    }
    dataiterator_free(&di);
    pool_free(pool);
    if (r == 0)
        read_open_sizes(s, buf, len);
    return r;
}

/* Every file we are going to fetch must carry a digest and a safe href. */
static int check_md_entry(lapis_ctx *ctx, struct rstate *s, const struct md_entry *e)
{
    if (!lapis_href_is_safe(e->href))
        return lapis_err(ctx, LAPIS_E_UNSAFE, "repo %s: repomd.xml points %s at '%s', outside the "
                         "repository; refusing it", s->repo->id, e->type, e->href);
    if (e->chk == LAPIS_CHK_NONE)
        return lapis_err(ctx, LAPIS_E_METADATA, "repo %s: repomd.xml gives no usable checksum for "
                         "%s; cannot verify it", s->repo->id, e->type);
    return 0;
}

void lapis_fetch_opts_from(lapis_ctx *ctx, struct lapis_fetch_opts *o)
{
    *o = (struct lapis_fetch_opts){
        .max_parallel = ctx->conf.max_parallel_downloads,
        .timeout = ctx->conf.repo.net.timeout,
        .retries = ctx->conf.repo.net.retries,
        .fsync = true,
        .cachedir = ctx->conf.cachedir,
    };
}

static struct lapis_fetch_job job_for(struct rstate *s, const char *href, const char *dest,
                                      const char *what)
{
    return (struct lapis_fetch_job){
        .mirrors = s->repo->baseurls,
        .href = href,
        .dest = dest,
        .expected_size = -1,
        .what = what,
        .sslverify = s->repo->opts.sslverify,
        .limits = &s->repo->opts.net,
        .sslcacert = s->repo->opts.sslcacert,
    };
}

/* ---- fetch batches ------------------------------------------------------- */

/* Jobs of one parallel batch, each owned by a repo state; failures are
 * recorded on the owner, so one bad repo never hides another's result. */
struct batch {
    struct lapis_fetch_job *jobs;
    size_t *owner;
    size_t n;
    char **owned; /* strings the jobs point into */
};

static char *batch_keep(struct batch *b, char *str)
{
    if (!b->owned)
        b->owned = xcalloc(1, sizeof(char *));
    strv_push(&b->owned, str);
    return str;
}

static struct lapis_fetch_job *batch_add(struct batch *b, size_t owner, struct lapis_fetch_job j)
{
    b->jobs = xrealloc(b->jobs, (b->n + 1) * sizeof(*b->jobs));
    b->owner = xrealloc(b->owner, (b->n + 1) * sizeof(*b->owner));
    b->jobs[b->n] = j;
    b->owner[b->n] = owner;
    return &b->jobs[b->n++];
}

struct batch_tick {
    lapis_ctx *ctx;
    struct batch *b;
    struct rstate *st;
};

/* One repo's bytes in this batch (plus earlier ones), and its total when every job's size is known. */
static void owner_bytes(const struct batch *b, const struct lapis_fetch_job *jobs, size_t owner,
                        long long *done, long long *total)
{
    bool known = true;
    for (size_t k = 0; k < b->n; k++) {
        if (b->owner[k] != owner)
            continue;
        *done += jobs[k].received;
        if (jobs[k].expected_size < 0)
            known = false;
        *total += jobs[k].expected_size;
    }
    if (!known)
        *total = 0;
}

/* Per repo progress: each owner of the batch once, in the batch's order. */
static void batch_tick(void *ud, const struct lapis_fetch_job *jobs, size_t n)
{
    struct batch_tick *t = ud;
    (void)n;
    for (size_t k = 0; k < t->b->n; k++) {
        size_t owner = t->b->owner[k];
        if (k > 0 && t->b->owner[k - 1] == owner)
            continue; /* batch_add puts one repo's jobs together */
        struct rstate *s = &t->st[owner];
        long long done = s->fetched, total = s->fetched;
        owner_bytes(t->b, jobs, owner, &done, &total);
        lapis_progress(t->ctx, LAPIS_PROGRESS_METADATA, s->repo->id, (unsigned long long)done,
                       total > 0 ? (unsigned long long)total : 0);
    }
}

static void batch_run(lapis_ctx *ctx, struct batch *b, struct rstate *st)
{
    struct lapis_fetch_opts o;
    struct batch_tick t = { ctx, b, st };

    lapis_fetch_opts_from(ctx, &o);
    o.tick = batch_tick;
    o.tick_ud = &t;
    if (b->n)
        lapis_fetch_run(&ctx->diag, b->jobs, b->n, &o);
    for (size_t k = 0; k < b->n; k++) {
        struct rstate *s = &st[b->owner[k]];
        s->fetched += b->jobs[k].received;
        if (b->jobs[k].result < 0)
            rstate_fail(s, b->jobs[k].result, "%s", b->jobs[k].error);
        else if (b->jobs[k].href && strcmp(b->jobs[k].href, "repodata/repomd.xml") == 0)
            s->repomd_mirror = b->jobs[k].served_by;
        lapis_fetch_job_clear(&b->jobs[k]);
    }
    free(b->jobs);
    free(b->owner);
    lapis_strv_free(b->owned);
    memset(b, 0, sizeof(*b));
}

/* ---- phase A: repomd.xml, keys, then the signature ----------------------- */

static void fetch_repomd_batch(lapis_ctx *ctx, struct rstate *st, size_t n)
{
    struct batch b = { 0 };

    for (size_t i = 0; i < n; i++) {
        struct rstate *s = &st[i];
        if (!s->refresh || s->err)
            continue;
        char *what = batch_keep(&b, xasprintf("repo %s: repomd.xml", s->repo->id));
        char *dest = batch_keep(&b, path_join(s->staging, "repomd.xml"));
        batch_add(&b, i, job_for(s, "repodata/repomd.xml", dest, what))->max_size = REPOMD_MAX;
        if (!s->repo->opts.repo_gpgcheck)
            continue;
        for (size_t k = 0; s->repo->gpgkeys[k]; k++) {
            char *kdest = batch_keep(&b, xasprintf("%s/gpgkey-%zu.asc", s->staging, k));
            char *kwhat = batch_keep(&b, xasprintf("repo %s: gpgkey %s", s->repo->id,
                                                   s->repo->gpgkeys[k]));
            struct lapis_fetch_job *j = batch_add(&b, i, job_for(s, NULL, kdest, kwhat));
            j->url = s->repo->gpgkeys[k];
            j->max_size = LAPIS_KEY_MAX;
        }
    }
    batch_run(ctx, &b, st);
}

/* The signature must come from the mirror that served repomd.xml: another
 * mirror may hold a different (older or newer) repomd.xml and signature. */
static void fetch_signatures(lapis_ctx *ctx, struct rstate *st, size_t n)
{
    struct batch b = { 0 };

    for (size_t i = 0; i < n; i++) {
        struct rstate *s = &st[i];
        if (!s->refresh || s->err || !s->repo->opts.repo_gpgcheck)
            continue;
        char *dest = batch_keep(&b, path_join(s->staging, "repomd.xml.asc"));
        char *what = batch_keep(&b, xasprintf("repo %s: repomd.xml.asc", s->repo->id));
        struct lapis_fetch_job *j = batch_add(&b, i, job_for(s, NULL, dest, what));
        j->url = batch_keep(&b, lapis_url_join(s->repo->baseurls[s->repomd_mirror],
                                               "repodata/repomd.xml.asc"));
        j->max_size = LAPIS_KEY_MAX;
        j->optional = true;
    }
    batch_run(ctx, &b, st);
}

/* Against the repo's own gpgkey (fetched with repomd.xml, pinned), or with no
 * gpgkey= against the keys already in the root's rpm keyring. Only makecache
 * records a first pin: read-only commands leave the root as it is. */
static int verify_repomd(lapis_ctx *ctx, struct rstate *s)
{
    _cleanup_free_ char *repomd = path_join(s->staging, "repomd.xml");
    _cleanup_free_ char *asc = path_join(s->staging, "repomd.xml.asc");
    _cleanup_strv_ char **keys = xcalloc(1, sizeof(char *));
    _cleanup_free_ char *what = xasprintf("repo %s: repomd.xml", s->repo->id);
    struct lapis_trusted_keys tk;
    bool own = s->repo->gpgkeys[0] != NULL;
    int r;

    if (!s->repo->opts.repo_gpgcheck)
        return 0;
    if (!path_exists(asc))
        return lapis_err(ctx, LAPIS_E_SIGNATURE, "repo %s: repomd.xml is not signed (no "
                         "repomd.xml.asc) but repo_gpgcheck is on; refusing the repository",
                         s->repo->id);
    for (size_t k = 0; s->repo->gpgkeys[k]; k++)
        strv_push(&keys, xasprintf("%s/gpgkey-%zu.asc", s->staging, k));
    if ((r = lapis_trusted_keys_load(ctx, s->repo, own ? keys : NULL, &tk)) < 0)
        return r;
    if (own)
        r = lapis_trust_pin_check(ctx, s->repo, tk.texts, true);
    if (r >= 0)
        r = lapis_verify_detached(ctx, what, repomd, asc, &tk);
    if (r >= 0 && own && s->pin)
        lapis_trust_pin_record(ctx, s->repo, tk.texts);
    lapis_trusted_keys_clear(&tk);
    return r;
}

static bool same_file_digest(const char *a, const char *b)
{
    char ha[65], hb[65];
    return lapis_chk_file(a, LAPIS_CHK_SHA256, ha, sizeof(ha)) == 0 &&
           lapis_chk_file(b, LAPIS_CHK_SHA256, hb, sizeof(hb)) == 0 && strcmp(ha, hb) == 0;
}

/* After phase A: verify, and either keep the cache (unchanged) or plan phase B. */
static void examine_repomd(lapis_ctx *ctx, struct rstate *s)
{
    _cleanup_free_ char *fresh = path_join(s->staging, "repomd.xml");
    _cleanup_free_ char *cached = path_join(s->repodata, "repomd.xml");
    int r;

    if ((r = verify_repomd(ctx, s)) < 0 || (r = parse_repomd(ctx, s, fresh)) < 0) {
        rstate_fail(s, r, "%s", lapis_ctx_error(ctx));
        return;
    }
    if (!md_find(s, "primary")) {
        rstate_fail(s, LAPIS_E_METADATA, "repo %s: repomd.xml lists no primary metadata",
                    s->repo->id);
        return;
    }
    for (size_t i = 0; i < s->nmd; i++) {
        const char *t = s->md[i].type;
        if (strcmp(t, "primary") && strcmp(t, "updateinfo") && strcmp(t, "filelists") &&
            md_group(s) != &s->md[i])
            continue;
        if ((r = check_md_entry(ctx, s, &s->md[i])) < 0) {
            rstate_fail(s, r, "%s", lapis_ctx_error(ctx));
            return;
        }
    }
    if (same_file_digest(fresh, cached)) {
        /* Unchanged upstream: keep the cache, restart its expiry clock. */
        utimensat(AT_FDCWD, cached, NULL, 0);
        rm_rf(s->staging, NULL);
        free(s->staging);
        s->staging = NULL;
        s->refresh = false;
    }
}

/* ---- phase B: the metadata files ----------------------------------------- */

static const char *const wanted_types[] = { "primary", "updateinfo", "filelists", "group" };

/* LAPIS_MD_STREAM=0 (a test and debug knob) parses after the downloads, as
 * before streaming: the tests compare both caches. */
static bool stream_enabled(void)
{
    const char *v = getenv("LAPIS_MD_STREAM");
    return !v || strcmp(v, "0") != 0;
}

static void stream_spec_file(struct lapis_mdstream_spec *sp, int i, const struct md_entry *e,
                             char **local)
{
    *local = md_local_name(e);
    sp->local[i] = *local;
    sp->limit[i] = e->open_size > 0 ? e->open_size : OPEN_SIZE_DEFAULT_MAX;
}

/* Start parsing primary, updateinfo (and filelists if wanted) as they download. */
static void stream_start(lapis_ctx *ctx, struct rstate *s, unsigned flags)
{
    struct lapis_mdstream_spec sp = { .repo_id = s->repo->id, .staging = s->staging };
    _cleanup_free_ char *repomd = path_join(s->staging, "repomd.xml");
    char *local[3] = { 0 };

    if (lapis_cache_solv_cookie(ctx, repomd, "main", sp.cookie_main) < 0 ||
        lapis_cache_solv_cookie(ctx, repomd, "details", sp.cookie_details) < 0 ||
        lapis_cache_solv_cookie(ctx, repomd, "filelists", sp.cookie_filelists) < 0)
        return; /* the serial path meets (and reports) the same problem */
    for (int i = 0; i < 3; i++) {
        const struct md_entry *e = md_find(s, wanted_types[i]);
        if (e && (i != 2 || (flags & LAPIS_LOAD_FILELISTS)))
            stream_spec_file(&sp, i, e, &local[i]);
    }
    s->stream = lapis_mdstream_start(&sp);
    for (int i = 0; i < 3; i++)
        free(local[i]);
}

static void stream_finish(lapis_ctx *ctx, struct rstate *s)
{
    if (!s->stream)
        return;
    bool ok = lapis_mdstream_finish(s->stream, &s->offered);
    s->stream = NULL;
    s->counted = s->offered >= 0;
    lapis_log(ctx, LAPIS_LOG_DEBUG, "repo %s: %s", s->repo->id,
              ok ? "metadata parsed while downloading"
                 : "metadata not parsed while downloading; parsing it now");
}

static void fetch_files_batch(lapis_ctx *ctx, struct rstate *st, size_t n, unsigned flags)
{
    struct batch b = { 0 };
    bool stream = stream_enabled();

    for (size_t i = 0; i < n; i++) {
        struct rstate *s = &st[i];
        if (!s->refresh || s->err)
            continue;
        if (stream)
            stream_start(ctx, s, flags);
        for (size_t t = 0; t < ARRAY_SIZE(wanted_types); t++) {
            const struct md_entry *e = t == 3 ? md_group(s) : md_find(s, wanted_types[t]);
            if (!e || (t == 2 && !(flags & LAPIS_LOAD_FILELISTS)))
                continue;
            _cleanup_free_ char *local = md_local_name(e);
            char *dest = batch_keep(&b, path_join(s->staging, local));
            char *what = batch_keep(&b, xasprintf("repo %s: %s", s->repo->id, e->href));
            struct lapis_fetch_job *j = batch_add(&b, i, job_for(s, e->href, dest, what));
            j->expected_size = e->size;
            j->chk_type = e->chk;
            j->chk_hex = e->hex;
            j->tap = lapis_mdstream_tap(s->stream, wanted_types[t]);
        }
    }
    batch_run(ctx, &b, st);
    for (size_t i = 0; i < n; i++)
        stream_finish(ctx, &st[i]);
}

/* ---- parsing into the pool ----------------------------------------------- */

static int add_xml(lapis_ctx *ctx, struct rstate *s, Repo *repo, const char *dir,
                   const char *type, int flags)
{
    const struct md_entry *e = md_find(s, type);
    _cleanup_free_ char *local = NULL, *path = NULL;
    struct lapis_md_bounded b = { .readahead = true };
    FILE *fp;
    int r;

    if (!e)
        return 0;
    local = md_local_name(e);
    path = path_join(dir, local);
    b.limit = e->open_size > 0 ? e->open_size : OPEN_SIZE_DEFAULT_MAX;
    fp = lapis_md_open_bounded(path, -1, &b);
    if (!fp)
        return lapis_err(ctx, LAPIS_E_CACHE, "repo %s: %s metadata missing from the cache; "
                         "run 'lapis makecache'", s->repo->id, type);
    if (strcmp(type, "updateinfo") == 0)
        r = repo_add_updateinfoxml(repo, fp, flags);
    else
        r = lapis_mdparse_rpmmd(repo, fp, flags);
    fclose(fp);
    if (b.exceeded)
        return lapis_err(ctx, LAPIS_E_METADATA, "repo %s: %s metadata decompresses to more than "
                         "the %lld bytes %s; refusing it (a compression bomb or a broken mirror)",
                         s->repo->id, type, b.limit,
                         e->open_size > 0 ? "repomd.xml gives as its open-size" : "lapis allows");
    if (r != 0)
        return lapis_err(ctx, LAPIS_E_METADATA, "repo %s: %s metadata is malformed: %s; "
                         "the repository must be fixed (or left out: --disablerepo=%s)",
                         s->repo->id, type, lapis_sack_errstr(ctx->pool, "unreadable XML"),
                         s->repo->id);
    return 0;
}

int lapis_metadata_add_comps(lapis_ctx *ctx, struct lapis_repo *lr, Repo *into)
{
    struct lapis_md_bounded b = { .limit = lr->comps_open_size > 0 ? lr->comps_open_size
                                                          : OPEN_SIZE_DEFAULT_MAX };
    FILE *fp;
    int r;

    if (!lr->comps_path)
        return 0;
    if (!(fp = lapis_md_open_bounded(lr->comps_path, -1, &b)))
        return lapis_err(ctx, LAPIS_E_CACHE, "repo %s: group metadata missing from the cache; "
                         "run 'lapis makecache --refresh'", lr->id);
    r = repo_add_comps(into, fp, 0);
    fclose(fp);
    if (r != 0 || b.exceeded)
        return lapis_err(ctx, LAPIS_E_METADATA, "repo %s: group metadata (comps) is malformed or "
                         "too large; the repository must be fixed (or left out: "
                         "--disablerepo=%s)", lr->id, lr->id);
    return 0;
}

static Repo *create_solv_repo(lapis_ctx *ctx, struct lapis_repo *lr)
{
    Repo *repo = repo_create(ctx->pool, lr->id);
    repo->appdata = lr;
    /* dnf: a lower priority number wins; libsolv: a higher value wins. */
    repo->priority = -lr->priority;
    repo->subpriority = -lr->cost;
    return repo;
}

/* Where the repo's verified comps file is once the cache is committed (comps.c reads it). */
static void note_comps(struct rstate *s)
{
    const struct md_entry *e = md_group(s);
    free(s->repo->comps_path);
    s->repo->comps_path = NULL;
    if (!e)
        return;
    _cleanup_free_ char *local = md_local_name(e);
    s->repo->comps_path = path_join(s->repo->solv_dir, local);
    s->repo->comps_open_size = e->open_size;
}

/* Load a repo from dir (the cache or the staging dir), via .solv when fresh. */
static int load_repo_dir(lapis_ctx *ctx, struct rstate *s, const char *dir)
{
    _cleanup_free_ char *repomd = path_join(dir, "repomd.xml");
    _cleanup_free_ char *solv = path_join(dir, "lapis-main.solv");
    char cookie[65], dcookie[65];
    Repo *repo;
    int r;

    if (!s->md && (r = parse_repomd(ctx, s, repomd)) < 0)
        return r;
    if ((r = lapis_cache_solv_cookie(ctx, repomd, "main", cookie)) < 0)
        return r;
    repo = create_solv_repo(ctx, s->repo);
    r = lapis_cache_solv_read(ctx, repo, solv, cookie, 0);
    if (r == 0) {
        /* The details cookie only when parsing: each cookie reads repomd.xml. */
        if ((r = lapis_cache_solv_cookie(ctx, repomd, "details", dcookie)) < 0 ||
            (r = add_xml(ctx, s, repo, dir, "primary", 0)) < 0 ||
            (r = add_xml(ctx, s, repo, dir, "updateinfo", 0)) < 0) {
            repo_free(repo, 1);
            return r;
        }
        lapis_md_mark_unsafe_locations(repo);
        /* a cache we cannot write is only slower, not an error */
        _cleanup_free_ char *details = path_join(dir, "lapis-details.solv");
        if (lapis_cache_solv_write_split(repo, solv, cookie, details, dcookie) < 0)
            lapis_log(ctx, LAPIS_LOG_DEBUG, "could not write solv caches %s", solv);
        s->repo->details_loaded = true; /* parsed from XML: everything is in memory */
    }
    s->repo->solv = repo;
    free(s->repo->solv_dir);
    s->repo->solv_dir = xstrdup(dir == s->staging ? s->repodata : dir);
    note_comps(s);
    return 0;
}

static int load_filelists_dir(lapis_ctx *ctx, struct rstate *s, const char *dir)
{
    _cleanup_free_ char *repomd = path_join(dir, "repomd.xml");
    _cleanup_free_ char *solv = path_join(dir, "lapis-filelists.solv");
    Repo *repo = s->repo->solv;
    char cookie[65];
    int r;

    if ((r = lapis_cache_solv_cookie(ctx, repomd, "filelists", cookie)) < 0)
        return r;
    if (lapis_cache_solv_read(ctx, repo, solv, cookie, REPO_EXTEND_SOLVABLES) > 0)
        goto done;
    if ((r = add_xml(ctx, s, repo, dir, "filelists", REPO_EXTEND_SOLVABLES)) < 0)
        return r;
    if (md_find(s, "filelists"))
        lapis_cache_solv_write(ctx, repo, repo_id2repodata(repo, repo->nrepodata - 1), solv,
                               cookie);
done:
    s->repo->filelists_loaded = true;
    return 0;
}

/* Swap staging into place; the old repodata (if any) ends up in staging and is removed. */
static int commit_staging(lapis_ctx *ctx, struct rstate *s)
{
    if (path_exists(s->repodata)) {
        if (renameat2(AT_FDCWD, s->staging, AT_FDCWD, s->repodata, RENAME_EXCHANGE) < 0)
            return lapis_err(ctx, -errno, "repo %s: cannot update cache %s: %s", s->repo->id,
                             s->repodata, strerror(errno));
    } else if (rename(s->staging, s->repodata) < 0) {
        return lapis_err(ctx, -errno, "repo %s: cannot update cache %s: %s", s->repo->id,
                         s->repodata, strerror(errno));
    }
    rm_rf(s->staging, NULL);
    free(s->staging);
    s->staging = NULL;
    return 0;
}

/* makecache needs no pool: a repo parsed while downloading, whose count no
 * filter changes, is committed and counted, not loaded again from the .solv
 * just written (63k packages: ~0.1 s). */
static bool keep_unloaded(lapis_ctx *ctx, const struct rstate *s, unsigned flags)
{
    return (flags & LAPIS_LOAD_CACHES_ONLY) && !(flags & LAPIS_LOAD_FILELISTS) && s->staging &&
           s->counted && !lapis_repo_filtered(ctx, s->repo);
}

static int commit_unloaded(lapis_ctx *ctx, struct rstate *s)
{
    int r = commit_staging(ctx, s);
    if (r < 0)
        return r;
    s->repo->npackages = s->offered;
    free(s->repo->solv_dir);
    s->repo->solv_dir = xstrdup(s->repodata);
    note_comps(s);
    lapis_log(ctx, LAPIS_LOG_DEBUG, "repo %s: %d packages, counted while parsing; not loaded",
              s->repo->id, s->offered);
    return 0;
}

static void load_one(lapis_ctx *ctx, struct rstate *s, unsigned flags)
{
    const char *dir = s->staging ? s->staging : s->repodata;
    int r;

    if (keep_unloaded(ctx, s, flags)) {
        if ((r = commit_unloaded(ctx, s)) < 0)
            rstate_fail(s, r, "%s", lapis_ctx_error(ctx));
        return;
    }
    r = load_repo_dir(ctx, s, dir);

    /* Parse filelists fetched in this refresh before committing, so a bad one keeps the old cache. */
    if (r == 0 && s->staging && (flags & LAPIS_LOAD_FILELISTS) && md_find(s, "filelists"))
        r = load_filelists_dir(ctx, s, dir);
    if (r == 0 && s->staging)
        r = commit_staging(ctx, s);
    if (r < 0) {
        if (s->repo->solv) {
            repo_free(s->repo->solv, 1);
            s->repo->solv = NULL;
        }
        rstate_fail(s, r, "%s", lapis_ctx_error(ctx));
    }
}

/* ---- orchestration ------------------------------------------------------- */

/* "3 min", "2 h", "5 d": a human age for -v. */
static void format_age(long long sec, char *buf, size_t len)
{
    if (sec < 120)
        snprintf(buf, len, "%lld s", sec);
    else if (sec < 7200)
        snprintf(buf, len, "%lld min", sec / 60);
    else if (sec < 3 * 86400)
        snprintf(buf, len, "%lld h", sec / 3600);
    else
        snprintf(buf, len, "%lld d", sec / 86400);
}

/* -v: why the cached metadata is used or fetched again. */
static void log_cache_decision(lapis_ctx *ctx, const struct lapis_repo *r, const char *repomd,
                               bool forced, bool refresh)
{
    struct stat st;
    char age[32], expire[32];

    if (!lapis_log_wants(ctx, LAPIS_LOG_DEBUG)) /* no second stat of repomd.xml without -v */
        return;
    if (r->opts.metadata_expire < 0)
        snprintf(expire, sizeof(expire), "never");
    else
        format_age(r->opts.metadata_expire, expire, sizeof(expire));
    if (stat(repomd, &st) < 0) {
        lapis_log(ctx, LAPIS_LOG_DEBUG, "repo %s: no cached metadata: fetching it", r->id);
        return;
    }
    format_age(time(NULL) - st.st_mtime, age, sizeof(age));
    lapis_log(ctx, LAPIS_LOG_DEBUG, "repo %s: cache is %s old, metadata_expire %s: %s", r->id, age,
              expire, forced ? "refreshing (--refresh)" : refresh ? "expired: refreshing"
                                                              : "using it");
}

static int prepare_state(lapis_ctx *ctx, struct rstate *s, unsigned flags)
{
    struct lapis_repo *r = s->repo;
    _cleanup_free_ char *repomd = NULL;
    int k;

    s->repodata = path_join(r->cachedir, "repodata");
    repomd = path_join(s->repodata, "repomd.xml");
    if (!r->baseurls[0])
        return lapis_err(ctx, LAPIS_E_CONFIG, "repo %s has no baseurl; set one in %s",
                         r->id, r->source ? r->source : "its .repo file");
    if (ctx->cacheonly) {
        lapis_log(ctx, LAPIS_LOG_DEBUG, "repo %s: --cacheonly: using the cached metadata", r->id);
        if (!path_exists(repomd))
            return lapis_err(ctx, LAPIS_E_CACHE, "Cache-only enabled but no cache for repository "
                             "\"%s\"; run 'lapis makecache' first", r->id);
        return 0;
    }
    s->pin = flags & LAPIS_LOAD_PIN_KEYS;
    s->refresh = (flags & LAPIS_LOAD_REFRESH) || lapis_cache_expired(repomd, r->opts.metadata_expire);
    log_cache_decision(ctx, r, repomd, flags & LAPIS_LOAD_REFRESH, s->refresh);
    if (!s->refresh)
        return 0;
    if ((k = mkdir_p(r->cachedir, 0755)) < 0)
        return lapis_err(ctx, k, "cannot create cache directory %s: %s", r->cachedir, strerror(-k));
    /* A run killed mid-refresh leaves its staging dir behind. */
    if (sweep_dead_owner_dirs(r->cachedir, STAGING_PREFIX, STAGING_GRACE_S) > 0)
        lapis_log(ctx, LAPIS_LOG_DEBUG, "repo %s: removed staging left by an interrupted refresh",
                  r->id);
    s->staging = xasprintf("%s/" STAGING_PREFIX "%d-XXXXXX", r->cachedir, (int)getpid());
    if (!mkdtemp(s->staging))
        return lapis_err(ctx, -errno, "cannot create %s: %s", s->staging, strerror(errno));
    chmod(s->staging, 0755); /* mkdtemp makes it 0700; the cache is world-readable like dnf's */
    return 0;
}

static int finish_states(lapis_ctx *ctx, struct rstate *st, size_t n)
{
    int first = 0;
    char *first_msg = NULL;

    for (size_t i = 0; i < n; i++) {
        struct rstate *s = &st[i];
        if (s->staging) {
            rm_rf(s->staging, NULL);
            free(s->staging);
        }
        /* An interrupted run stops; it does not skip the repo. */
        if (s->err && s->repo->opts.skip_if_unavailable && s->err != -LAPIS_E_INTERRUPTED) {
            lapis_log(ctx, LAPIS_LOG_WARNING, "%s; skipping it (skip_if_unavailable=1)",
                      s->errmsg ? s->errmsg : s->repo->id);
            s->repo->skipped = true;
        } else if (s->err && !first) {
            first = s->err;
            first_msg = s->errmsg;
            s->errmsg = NULL;
        }
        free(s->errmsg);
        free(s->repodata);
        md_free(s->md, s->nmd);
    }
    if (first) {
        lapis_err(ctx, first, "%s", first_msg ? first_msg : "repository failure");
        free(first_msg);
    }
    return first;
}

static int load_all_locked(lapis_ctx *ctx, unsigned flags)
{
    struct rstate *st = xcalloc(ctx->nrepos, sizeof(*st));
    size_t n = 0;
    int r;

    for (size_t i = 0; i < ctx->nrepos; i++) {
        lapis_log(ctx, LAPIS_LOG_DEBUG, "repo %s: %s, baseurl %s", ctx->repos[i]->id,
                  ctx->repos[i]->enabled ? "enabled" : "disabled",
                  ctx->repos[i]->baseurls[0] ? ctx->repos[i]->baseurls[0] : "(none)");
        if (!ctx->repos[i]->enabled)
            continue;
        struct rstate *s = &st[n++];
        s->repo = ctx->repos[i];
        if ((r = prepare_state(ctx, s, flags)) < 0)
            rstate_fail(s, r, "%s", lapis_ctx_error(ctx));
    }
    fetch_repomd_batch(ctx, st, n);
    fetch_signatures(ctx, st, n);
    for (size_t i = 0; i < n; i++)
        if (st[i].refresh && !st[i].err)
            examine_repomd(ctx, &st[i]);
    fetch_files_batch(ctx, st, n, flags);
    for (size_t i = 0; i < n; i++)
        if (!st[i].err)
            load_one(ctx, &st[i], flags);
    r = finish_states(ctx, st, n);
    lapis_progress(ctx, LAPIS_PROGRESS_METADATA_DONE, NULL, 0, 0);
    free(st);
    if (r < 0 && lapis_interrupted(ctx))
        r = lapis_err(ctx, LAPIS_E_INTERRUPTED, "interrupted: nothing was changed "
                      "(metadata not yet refreshed stays as it was)");
    if (r == 0 && (flags & LAPIS_LOAD_FILELISTS))
        r = lapis_metadata_load_filelists(ctx); /* repos whose cache was fresh */
    return r;
}

/* Whether loading may write the metadata cache (refresh, or fetch file lists). */
static bool load_may_write(lapis_ctx *ctx, unsigned flags)
{
    if (ctx->cacheonly)
        return false;
    if (flags & (LAPIS_LOAD_REFRESH | LAPIS_LOAD_FILELISTS))
        return true;
    for (size_t i = 0; i < ctx->nrepos; i++) {
        struct lapis_repo *r = ctx->repos[i];
        _cleanup_free_ char *repomd = path_join(r->cachedir, "repodata/repomd.xml");
        if (r->enabled && lapis_cache_expired(repomd, r->opts.metadata_expire))
            return true;
    }
    return false;
}

/* Readers of repodata/ share the metadata lock; a refresh holds it alone, so a
 * reader never sees half of one repodata/ and half of the next, and a run that
 * waited for another's refresh finds the cache fresh and fetches nothing. */
int lapis_metadata_load_all(lapis_ctx *ctx, unsigned flags)
{
    short type = load_may_write(ctx, flags) ? F_WRLCK : F_RDLCK, prev;
    int r = lapis_lock_cache_area(ctx, LAPIS_CACHE_METADATA, type, &prev);
    if (r < 0)
        return r;
    r = load_all_locked(ctx, flags);
    lapis_lock_cache_area_restore(ctx, LAPIS_CACHE_METADATA, prev);
    return r;
}

static int load_filelists_locked(lapis_ctx *ctx);

/* Load the display-only attributes of every repo loaded from .solv caches.
 * Missing or stale details only cost information, never correctness, so
 * failures are logged rather than returned. */
void lapis_metadata_load_details(lapis_ctx *ctx)
{
    short prev;
    if (ctx->details_loaded)
        return;
    ctx->details_loaded = true;
    if (lapis_lock_cache_area(ctx, LAPIS_CACHE_METADATA, F_RDLCK, &prev) < 0) {
        lapis_log(ctx, LAPIS_LOG_WARNING, "%s; package details are not shown", lapis_ctx_error(ctx));
        return;
    }
    for (size_t i = 0; i < ctx->nrepos; i++) {
        struct lapis_repo *lr = ctx->repos[i];
        if (!lr->solv || lr->details_loaded || !lr->solv_dir)
            continue;
        _cleanup_free_ char *repomd = path_join(lr->solv_dir, "repomd.xml");
        _cleanup_free_ char *path = path_join(lr->solv_dir, "lapis-details.solv");
        char cookie[65];
        lr->details_loaded = true;
        if (lapis_cache_solv_cookie(ctx, repomd, "details", cookie) < 0)
            lapis_log(ctx, LAPIS_LOG_WARNING, "%s", lapis_ctx_error(ctx));
        else if (lapis_cache_solv_read(ctx, lr->solv, path, cookie, REPO_EXTEND_SOLVABLES) <= 0)
            lapis_log(ctx, LAPIS_LOG_WARNING, "repo %s: package details cache is missing; "
                      "'lapis makecache --refresh' rebuilds it", lr->id);
    }
    lapis_lock_cache_area_restore(ctx, LAPIS_CACHE_METADATA, prev);
}

/* Load filelists for every loaded repo, fetching them into the cache as needed. */
int lapis_metadata_load_filelists(lapis_ctx *ctx)
{
    short prev;
    int r = lapis_lock_cache_area(ctx, LAPIS_CACHE_METADATA, ctx->cacheonly ? F_RDLCK : F_WRLCK,
                                  &prev);
    if (r < 0)
        return r;
    r = load_filelists_locked(ctx);
    lapis_lock_cache_area_restore(ctx, LAPIS_CACHE_METADATA, prev);
    return r;
}

static int load_filelists_locked(lapis_ctx *ctx)
{
    int first = 0;

    for (size_t i = 0; i < ctx->nrepos; i++) {
        struct lapis_repo *lr = ctx->repos[i];
        struct rstate s = { .repo = lr };
        _cleanup_free_ char *repomd = NULL, *local = NULL, *dest = NULL, *what = NULL;
        const struct md_entry *e;
        int r;

        if (!lr->solv || lr->filelists_loaded)
            continue;
        s.repodata = path_join(lr->cachedir, "repodata");
        repomd = path_join(s.repodata, "repomd.xml");
        r = parse_repomd(ctx, &s, repomd);
        e = r == 0 ? md_find(&s, "filelists") : NULL;
        if (e && (r = check_md_entry(ctx, &s, e)) == 0) {
            local = md_local_name(e);
            dest = path_join(s.repodata, local);
            what = xasprintf("repo %s: %s", lr->id, e->href);
            if (!path_exists(dest) && ctx->cacheonly)
                r = lapis_err(ctx, LAPIS_E_CACHE, "Cache-only enabled but no cache for repository "
                              "\"%s\" (its file lists); run 'lapis makecache' first", lr->id);
            else if (!path_exists(dest)) {
                struct lapis_fetch_job j = job_for(&s, e->href, dest, what);
                struct lapis_fetch_opts o;
                j.expected_size = e->size;
                j.chk_type = e->chk;
                j.chk_hex = e->hex;
                lapis_fetch_opts_from(ctx, &o);
                r = lapis_fetch_run(&ctx->diag, &j, 1, &o);
                if (r < 0 && r != -LAPIS_E_INTERRUPTED)
                    r = lapis_err(ctx, r, "%s; the cached metadata may be older than the "
                                  "repository: run 'lapis makecache --refresh'", j.error);
                lapis_fetch_job_clear(&j);
            }
        }
        if (r == 0 && e)
            r = load_filelists_dir(ctx, &s, s.repodata);
        free(s.repodata);
        md_free(s.md, s.nmd);
        if (r == -LAPIS_E_INTERRUPTED)
            return r;
        if (r < 0 && !first)
            first = r;
    }
    return first;
}
