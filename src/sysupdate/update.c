/*
 * check, update and init (docs/sysupdate.md "The agent"). The order is the
 * guarantee: index signature, expiry and anti-replay; manifest digest (from
 * the index) and signature; version policy; sizes — all before the first
 * byte is written. Then each payload frame is checked against its signed
 * digest before it is decompressed into the inactive slot, fsynced, and
 * recorded as done, so a dropped connection or a kill resumes at the next
 * frame. What was written is checked (sha256 of each payload, the verity
 * root recomputed from usr) before the UKI is put on the ESP: hashed from
 * the buffer handed to pwrite, as it is written (a read back would read
 * the same bytes from the page cache, at the cost of a second pass), and
 * read back from the slot only for frames an interrupted run wrote.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>

#include <zstd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "lapis/common.h"
#include "shared/digest.h"
#include "shared/fetch.h"
#include "shared/lock.h"
#include "shared/reboot.h"
#include "sysupdate/sysupdate.h"

#define SYNC_FRAMES 8          /* frames between two fsyncs of the data and the state */

struct run {
    struct lapis_diag *d;
    const struct su_opts *o;
    struct su_state st;
    struct su_disk disk;
    struct su_keys *keys;
    struct su_index index;
    struct su_manifest m;
    char msha[SU_HEX];
    char *bundle_url;         /* URL of the chosen bundle's directory, with a '/' */
    const char *current;      /* the booted slot's version */
    int target;               /* the inactive slot */
};

static void run_clear(struct run *r)
{
    su_state_clear(&r->st);
    su_disk_clear(&r->disk);
    su_keys_free(r->keys);
    su_index_clear(&r->index);
    su_manifest_clear(&r->m);
    free(r->bundle_url);
}

static char *url_of(const char *base, const char *rel)
{
    size_t l = strlen(base);
    return xasprintf("%s%s%s", base, l && base[l - 1] == '/' ? "" : "/", rel);
}

/* A signed small file: the text and its .sig, the signature verified. */
static int fetch_signed(struct run *r, const char *url, const char *what, char **ret, size_t *ret_len)
{
    _cleanup_free_ char *sigurl = xasprintf("%s.sig", url), *text = NULL, *sig = NULL;
    size_t len, siglen;
    int e = lapis_fetch_buffer(r->d, url, SU_MANIFEST_MAX, 30, &text, &len);
    if (e >= 0)
        e = lapis_fetch_buffer(r->d, sigurl, 4096, 30, &sig, &siglen);
    if (e >= 0)
        e = su_sig_verify(r->d, r->keys, what, text, len, sig);
    if (e < 0)
        return e;
    if (strlen(text) != len)
        return lapis_err(r->d, LAPIS_E_METADATA, "%s contains a NUL byte", what);
    *ret = TAKE_PTR(text);
    *ret_len = len;
    return 0;
}

static int load_index(struct run *r)
{
    _cleanup_free_ char *url = url_of(r->o->url, "index"), *text = NULL;
    size_t len;
    int e = fetch_signed(r, url, "index", &text, &len);
    if (e < 0 || (e = su_index_parse(r->d, text, &r->index)) < 0)
        return e;
    if (r->o->now > r->index.expires)
        return lapis_err(r->d, LAPIS_E_SIGNATURE, "index: expired %lld seconds ago (a frozen or stale "
                         "mirror?); nothing was written", r->o->now - r->index.expires);
    if (r->index.issued < r->st.index_issued)
        return lapis_err(r->d, LAPIS_E_SIGNATURE, "index: issued at %lld, older than the %lld "
                         "already accepted (a replayed index); nothing was written",
                         r->index.issued, r->st.index_issued);
    return 0;
}

static int load_manifest(struct run *r, const struct su_index_entry *e)
{
    _cleanup_free_ char *url = url_of(r->o->url, e->path), *text = NULL;
    size_t len;
    int x = fetch_signed(r, url, "manifest", &text, &len);
    if (x < 0)
        return x;
    lapis_chk_buf(text, len, LAPIS_CHK_SHA256, r->msha, sizeof(r->msha));
    if (strcmp(r->msha, e->sha) != 0)
        return lapis_err(r->d, LAPIS_E_CHECKSUM, "manifest of %s: its sha256 is not the one the "
                         "signed index lists; nothing was written", e->version);
    if ((x = su_manifest_parse(r->d, text, &r->m)) < 0)
        return x;
    if (strcmp(r->m.version, e->version) || strcmp(r->m.arch, e->arch))
        return lapis_err(r->d, LAPIS_E_METADATA, "manifest: version %s %s, the index says %s %s",
                         r->m.version, r->m.arch, e->version, e->arch);
    r->bundle_url = url_of(r->o->url, "");
    char *slash = strrchr(e->path, '/');
    char *dir = xasprintf("%s%.*s/", r->bundle_url, (int)(slash - e->path), e->path);
    free(r->bundle_url);
    r->bundle_url = dir;
    return 0;
}

/* The disk image file, or the running host's own disk. */
static int disk_open(struct lapis_diag *d, const struct su_opts *o, struct su_disk *ret)
{
    return o->image ? su_disk_open(d, o->image, o->arch, ret) : su_host_disk_open(d, o->root, o->arch, ret);
}

char **su_esp_names(const struct su_opts *o)
{
    struct lapis_diag d = { 0 };
    struct su_disk k;
    char **names = NULL;
    if (disk_open(&d, o, &k) >= 0) {
        if (su_esp_list(&d, &k, &names) < 0)
            names = NULL;
        su_disk_clear(&k);
    }
    lapis_diag_clear(&d);
    return names;
}

static int open_run(struct lapis_diag *d, const struct su_opts *o, struct run *r)
{
    *r = (struct run){ .d = d, .o = o };
    r->st.prog_slot = -1;
    int e = su_state_load(d, o->state_dir, &r->st);
    if (e < 0 || (e = disk_open(d, o, &r->disk)) < 0)
        return e;
    r->current = r->st.slot[r->st.booted].version;
    r->target = 1 - r->st.booted;
    if (!r->current)
        return lapis_err(d, LAPIS_E_CONFIG, "the state names no version for the booted slot %c",
                         'a' + r->st.booted);
    return 0;
}

static bool staged(const struct run *r, const char *version)
{
    const struct su_slot *t = &r->st.slot[r->target];
    return t->version && strcmp(t->version, version) == 0 && t->status == SU_STAGED;
}

/* The version policy: what to install, or NULL with *why set. */
static const struct su_index_entry *choose(struct run *r, char **why)
{
    const struct su_index_entry *e = su_index_newest(&r->index, r->o->arch);
    int c = e ? su_version_cmp(e->version, r->current) : 0;
    const struct su_slot *b = &r->st.slot[r->st.booted];
    if (b->status != SU_GOOD)
        /* Writing the other slot now would destroy the fallback of a
         * version that has not proved itself yet. */
        *why = xasprintf("the booted %s in slot %c is not marked good yet (boot-complete.target "
                         "not reached); the other slot is its fallback", b->version, 'a' + r->st.booted);
    else if (!e)
        *why = xasprintf("the index has no version for %s", r->o->arch);
    else if (c == 0)
        *why = xasprintf("%s is the newest version and is running", e->version);
    else if (c < 0 && !r->o->allow_downgrade)
        *why = xasprintf("refusing to downgrade from %s to %s (the newest the index lists); "
                         "--allow-downgrade to do it", r->current, e->version);
    else if (staged(r, e->version))
        *why = xasprintf("%s is staged in slot %c already; it boots next", e->version, 'a' + r->target);
    else if (su_state_failed(&r->st, e->version))
        *why = xasprintf("%s failed its boot before; waiting for a newer version", e->version);
    else
        return e;
    return NULL;
}

static int check_manifest(struct run *r)
{
    const struct su_manifest *m = &r->m;
    if (m->min_from && su_version_cmp(r->current, m->min_from) < 0)
        return lapis_err(r->d, LAPIS_E_METADATA, "%s can only update from %s or newer, this host "
                         "runs %s; nothing was written", m->version, m->min_from, r->current);
    if (m->p[SU_USR].size > r->disk.usr[r->target].size ||
        m->p[SU_VERITY].size > r->disk.verity[r->target].size)
        return lapis_err(r->d, LAPIS_E_METADATA, "%s does not fit slot %c (usr %lld bytes, "
                         "partition %lld); nothing was written", m->version, 'a' + r->target,
                         m->p[SU_USR].size, r->disk.usr[r->target].size);
    return 0;
}

/* Everything up to the first write; ret_refusal: a policy "no" (not an error). */
static int prepare(struct run *r, char **ret_refusal)
{
    int e = su_keys_load(r->d, r->o->keys_dir, &r->keys);
    if (e >= 0)
        e = load_index(r);
    if (e < 0)
        return e;
    const struct su_index_entry *x = choose(r, ret_refusal);
    if (!x)
        return 0;
    if ((e = load_manifest(r, x)) < 0)
        return e;
    return check_manifest(r);
}

int su_check(struct lapis_diag *d, const struct su_opts *o, struct su_check *ret)
{
    struct run r;
    char *why = NULL;
    int e = open_run(d, o, &r);
    if (e >= 0)
        e = prepare(&r, &why);
    if (e >= 0)
        *ret = (struct su_check){ xstrdup(r.current), why ? NULL : xstrdup(r.m.version), why };
    else
        free(why);
    run_clear(&r);
    return e;
}

void su_check_clear(struct su_check *c)
{
    free(c->current);
    free(c->available);
    free(c->reason);
}

/* ---- what the written bytes hash to ---- */

struct written {
    struct su_verity *usr;          /* usr's verity root and sha256 */
    lapis_hasher *h[SU_NPAYLOADS];  /* usr-verity's and the UKI's sha256 */
};

static int written_init(struct run *r, struct written *w)
{
    for (int k = SU_USR + 1; k < SU_NPAYLOADS; k++)
        w->h[k] = lapis_hasher_new(LAPIS_CHK_SHA256);
    return su_verity_new(r->d, r->m.p[SU_USR].size, r->m.block_size, r->m.salt, &w->usr);
}

static void written_clear(struct written *w)
{
    su_verity_free(w->usr);
    for (int k = 0; k < SU_NPAYLOADS; k++)
        lapis_hasher_free(w->h[k]);
}

static void written_add(struct written *w, int kind, const unsigned char *buf, size_t len)
{
    if (kind == SU_USR)
        su_verity_add(w->usr, buf, len);
    else
        lapis_hasher_update(w->h[kind], buf, len);
}

/* The part of a payload an earlier run wrote: read it back from the slot. */
static int written_add_range(struct run *r, struct written *w, int kind, int fd, long long off, long long len)
{
    if (kind == SU_USR)
        return su_verity_add_range(r->d, w->usr, fd, off, len);
    return su_range_hash(r->d, w->h[kind], fd, off, len);
}

/* ---- the writer thread ---- */

/* Hashes each decoded frame and writes it to the slot, fdatasyncing every
 * SYNC_FRAMES frames, while the main thread fetches, checks and decodes the
 * next one into the other of two buffers: download and decode overlap the
 * hashing, the copy into the page cache and the syncs. It never touches the
 * diagnostics or the state: it reports an errno and how many frames are
 * durable, and the main thread records progress and errors. */
struct writer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct written *w;
    int kind, fd;
    long long base;
    size_t nchunks, done;     /* done: frames written, the writer's own */
    unsigned char *buf[2];
    size_t len[2];
    long long off[2];
    bool full[2];             /* buf[i] holds a frame to write */
    int next_in, next_out;
    size_t synced;            /* frames durable (under mu) */
    bool stop;                /* no more frames (under mu) */
    int err;                  /* errno of a failed write or sync (under mu) */
};

/* One frame: hashed, written, its write-back started; synced at the
 * SYNC_FRAMES boundaries. Returns -errno, 0, or 1 when it synced. */
static int writer_frame(struct writer *q, int i)
{
    written_add(q->w, q->kind, q->buf[i], q->len[i]);
    ssize_t n = pwrite(q->fd, q->buf[i], q->len[i], q->base + q->off[i]);
    if (n != (ssize_t)q->len[i])
        return n < 0 ? -errno : -EIO;
    /* Start the write-back now, without waiting, so that the fdatasync
     * every SYNC_FRAMES frames waits only for what is still in flight (a
     * hint: where it is not supported, the fdatasync does it all). */
    (void)sync_file_range(q->fd, q->base + q->off[i], (off_t)q->len[i], SYNC_FILE_RANGE_WRITE);
    q->done++;
    if (q->done % SYNC_FRAMES != 0 && q->done != q->nchunks)
        return 0;
    return fdatasync(q->fd) < 0 ? -errno : 1;
}

static void *writer_main(void *ud)
{
    struct writer *q = ud;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->full[q->next_out] && !q->stop)
            pthread_cond_wait(&q->cv, &q->mu);
        int i = q->next_out;
        if (!q->full[i])
            break;              /* stopped, and nothing left to write */
        pthread_mutex_unlock(&q->mu);
        int e = writer_frame(q, i);
        pthread_mutex_lock(&q->mu);
        q->full[i] = false;
        q->next_out ^= 1;
        if (e > 0)
            q->synced = q->done;
        if (e < 0)
            q->err = -e;
        pthread_cond_broadcast(&q->cv);
        if (e < 0)
            break;
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static int writer_start(struct writer *q, struct written *w, int kind, int fd, long long base,
                        size_t from, size_t nchunks, size_t chunk_size)
{
    *q = (struct writer){ .w = w, .kind = kind, .fd = fd, .base = base, .nchunks = nchunks,
                          .done = from, .synced = from };
    for (int i = 0; i < 2; i++)
        q->buf[i] = xmalloc(chunk_size);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    int e = pthread_create(&q->thread, NULL, writer_main, q);
    if (e != 0) {
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cv);
        free(q->buf[0]);
        free(q->buf[1]);
    }
    return -e;
}

/* The next buffer to decode into, once the writer is done with it; NULL
 * after a failed write (writer_stop returns its errno). */
static unsigned char *writer_slot(struct writer *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->full[q->next_in] && !q->err)
        pthread_cond_wait(&q->cv, &q->mu);
    unsigned char *b = q->err ? NULL : q->buf[q->next_in];
    pthread_mutex_unlock(&q->mu);
    return b;
}

static size_t writer_post(struct writer *q, size_t len, long long off)
{
    pthread_mutex_lock(&q->mu);
    int i = q->next_in;
    q->len[i] = len;
    q->off[i] = off;
    q->full[i] = true;
    q->next_in ^= 1;
    size_t synced = q->synced;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return synced;
}

/* Write what is queued, end the thread; returns the writer's errno or 0. */
static int writer_stop(struct writer *q, size_t *ret_synced)
{
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->buf[0]);
    free(q->buf[1]);
    *ret_synced = q->synced;
    return q->err;
}

/* ---- writing a payload, frame by frame ---- */

struct sink {
    struct run *r;
    int kind;
    size_t chunk;             /* the frame being received */
    unsigned char *zbuf;
    size_t zfill;
    ZSTD_DCtx *dctx;
    struct writer *q;
};

/* Record the frames the writer made durable as done: a kill loses at most
 * SYNC_FRAMES frames, and the state never claims a frame the disk may not
 * have. (A sync per frame made staging 3x slower than this.) */
static int save_progress(struct run *r, int kind, size_t synced)
{
    if (r->st.prog_payload == kind && r->st.prog_chunk >= synced)
        return 0;
    r->st.prog_payload = kind;
    r->st.prog_chunk = synced;
    return su_state_save(r->d, r->o->state_dir, &r->st);
}

static int sink_frame(struct sink *s)
{
    struct run *r = s->r;
    const struct su_payload *p = &r->m.p[s->kind];
    const struct su_chunk *c = &p->chunks[s->chunk];
    char hex[SU_HEX];
    lapis_chk_buf(s->zbuf, (size_t)c->zlen, LAPIS_CHK_SHA256, hex, sizeof(hex));
    if (strcmp(hex, c->sha) != 0)
        return lapis_err(r->d, LAPIS_E_CHECKSUM, "%s frame %zu does not match the signed manifest "
                         "(corrupt or tampered payload); it was not written", p->file, s->chunk);
    long long off = (long long)s->chunk * r->m.chunk_size;
    size_t want = (size_t)(p->size - off < r->m.chunk_size ? p->size - off : r->m.chunk_size);
    unsigned char *out = writer_slot(s->q);
    if (!out)
        return -EIO;            /* writer_stop has the errno */
    size_t n = ZSTD_decompressDCtx(s->dctx, out, (size_t)r->m.chunk_size, s->zbuf, (size_t)c->zlen);
    if (ZSTD_isError(n) || n != want)
        return lapis_err(r->d, LAPIS_E_CHECKSUM, "%s frame %zu: not one zstd frame of %zu bytes",
                         p->file, s->chunk, want);
    size_t synced = writer_post(s->q, n, off);
    s->zfill = 0;
    s->chunk++;
    return save_progress(r, s->kind, synced);
}

static int sink_data(const void *data, size_t len, void *ud)
{
    struct sink *s = ud;
    const struct su_payload *p = &s->r->m.p[s->kind];
    const unsigned char *b = data;
    while (len > 0) {
        if (s->chunk >= p->nchunks)
            return lapis_err(s->r->d, LAPIS_E_CHECKSUM, "%s is longer than its manifest says", p->file);
        size_t need = (size_t)p->chunks[s->chunk].zlen - s->zfill, n = len < need ? len : need;
        memcpy(s->zbuf + s->zfill, b, n);
        s->zfill += n, b += n, len -= n;
        int e = s->zfill == (size_t)p->chunks[s->chunk].zlen ? sink_frame(s) : 0;
        if (e < 0)
            return e;
    }
    return 0;
}

static long long max_zlen(const struct su_payload *p)
{
    long long m = 0;
    for (size_t i = 0; i < p->nchunks; i++)
        m = p->chunks[i].zlen > m ? p->chunks[i].zlen : m;
    return m;
}

/* Stream frames from..end through the writer; whatever happens, what it
 * made durable is recorded, so the next run resumes there. */
static int stream_payload(struct run *r, struct written *w, int kind, int fd, long long base, size_t from)
{
    const struct su_payload *p = &r->m.p[kind];
    struct writer q;
    int e = writer_start(&q, w, kind, fd, base, from, p->nchunks, (size_t)r->m.chunk_size);
    if (e < 0)
        return lapis_err(r->d, e, "cannot start the slot writer: %s", strerror(-e));
    struct sink s = { .r = r, .kind = kind, .chunk = from, .q = &q,
                      .zbuf = xmalloc((size_t)max_zlen(p)), .dctx = ZSTD_createDCtx() };
    _cleanup_free_ char *url = xasprintf("%s%s", r->bundle_url, p->file);
    e = lapis_fetch_stream(r->d, url, p->chunks[from].zoff, p->zsize, p->zsize, 30, sink_data, &s);
    size_t synced;
    int werr = writer_stop(&q, &synced);
    free(s.zbuf);
    ZSTD_freeDCtx(s.dctx);
    int se = save_progress(r, kind, synced);
    if (werr)
        return lapis_err(r->d, -werr, "cannot write slot %c: %s", 'a' + r->target, strerror(werr));
    if (e >= 0 && s.chunk != p->nchunks)
        e = lapis_err(r->d, LAPIS_E_DOWNLOAD, "%s ended before its last frame", p->file);
    if (e == -LAPIS_E_DOWNLOAD) {
        _cleanup_free_ char *why = xstrdup(lapis_diag_error(r->d));
        e = lapis_err(r->d, LAPIS_E_DOWNLOAD, "%s; %zu of %zu frames of %s are written, run again "
                      "to resume", why, synced, p->nchunks, p->file);
    }
    return e < 0 ? e : se;
}

static int write_payload(struct run *r, struct written *w, int kind, int fd, long long base, size_t from)
{
    const struct su_payload *p = &r->m.p[kind];
    long long have = (long long)from * r->m.chunk_size;
    int e = written_add_range(r, w, kind, fd, base, have < p->size ? have : p->size);
    if (e < 0 || from >= p->nchunks)
        return e;
    r->st.prog_payload = kind;
    r->st.prog_chunk = from;
    return stream_payload(r, w, kind, fd, base, from);
}

/* ---- the update ---- */

static char *uki_part(const struct run *r)
{
    return path_join(r->o->state_dir, "uki.part");
}

/* Start a new write, or continue the one the state records for this bundle. */
static int begin(struct run *r, int *ret_kind, size_t *ret_chunk)
{
    struct su_state *st = &r->st;
    if (st->prog_slot == r->target && strcmp(st->prog_manifest, r->msha) == 0) {
        *ret_kind = st->prog_payload;
        *ret_chunk = st->prog_chunk;
        return 0;
    }
    struct su_slot *t = &st->slot[r->target];
    /* The slot stops being a boot entry before its first byte changes. */
    int e = t->version ? su_esp_remove_version(r->d, &r->disk, t->version) : 0;
    if (e < 0)
        return e;
    _cleanup_free_ char *part = uki_part(r);
    unlink(part);
    su_slot_set(t, r->m.version, SU_WRITING, NULL);
    st->prog_slot = r->target;
    strcpy(st->prog_manifest, r->msha);
    st->prog_payload = 0;
    st->prog_chunk = 0;
    *ret_kind = 0;
    *ret_chunk = 0;
    return su_state_save(r->d, r->o->state_dir, st);
}

/* Payloads before the one being resumed are read back whole (from = all
 * their frames); the rest is hashed as it streams in. */
static int write_all(struct run *r, struct written *w, int diskfd, int ukifd, int resume_kind, size_t chunk)
{
    int e = 0;
    for (int kind = 0; e >= 0 && kind < SU_NPAYLOADS; kind++) {
        int fd = kind == SU_UKI ? ukifd : diskfd;
        long long base = kind == SU_USR ? r->disk.usr[r->target].offset
                       : kind == SU_VERITY ? r->disk.verity[r->target].offset : 0;
        size_t from = kind < resume_kind ? r->m.p[kind].nchunks : kind == resume_kind ? chunk : 0;
        e = write_payload(r, w, kind, fd, base, from);
    }
    return e;
}

static int check_digest(struct run *r, int k, const char *hex)
{
    if (strcmp(hex, r->m.p[k].sha) == 0)
        return 0;
    return lapis_err(r->d, LAPIS_E_CHECKSUM, "slot %c: the written %s does not match the manifest "
                     "(sha256 %s); the slot is not offered for boot", 'a' + r->target,
                     su_payload_names[k], hex);
}

/* What was written (usr: sha256 and the dm-verity root hash recomputed
 * from its data; the verity tree and the UKI: sha256) against the manifest. */
static int check_written(struct run *r, struct written *w)
{
    const struct su_manifest *m = &r->m;
    char root[SU_HEX], hex[SU_HEX];
    int e = su_verity_final(r->d, w->usr, root, hex);
    if (e < 0 || (e = check_digest(r, SU_USR, hex)) < 0)
        return e;
    if (strcmp(root, m->roothash) != 0)
        return lapis_err(r->d, LAPIS_E_CHECKSUM, "slot %c: the dm-verity root hash of the written usr "
                         "is %s, the manifest says %s", 'a' + r->target, root, m->roothash);
    for (int k = SU_USR + 1; k < SU_NPAYLOADS; k++) {
        lapis_hasher_final_hex(w->h[k], hex, sizeof(hex));
        if ((e = check_digest(r, k, hex)) < 0)
            return e;
    }
    return 0;
}

static int finish(struct run *r)
{
    _cleanup_free_ char *part = uki_part(r);
    _cleanup_free_ char *name = xasprintf("lapis_%s+%d.efi", r->m.version, r->o->tries);
    int e = su_disk_set_uuids(r->d, &r->disk, r->target, r->m.roothash);
    if (e >= 0)
        e = su_esp_put(r->d, &r->disk, part, name);
    if (e < 0)
        return e;
    unlink(part);
    su_slot_set(&r->st.slot[r->target], r->m.version, SU_STAGED, r->m.roothash);
    r->st.prog_slot = -1;
    r->st.index_issued = r->index.issued;
    if ((e = su_state_save(r->d, r->o->state_dir, &r->st)) < 0 || r->o->image)
        return e;
    /* kured (and update-notifier) reboot the host; the .pkgs line says into
     * what. /run, not /var/run: on a host whose /var/run is a directory of
     * the persistent root (no base-files symlink), a sentinel there would
     * survive the reboot and ask for another one. */
    _cleanup_free_ char *why = xasprintf("lapis_%s", r->m.version);
    char *pkgs[] = { why, NULL };
    return lapis_reboot_required_write_in(r->d, r->o->root ? r->o->root : "/", "/run", pkgs);
}

static int stage(struct run *r)
{
    _cleanup_close_ int diskfd = open(r->disk.path, O_RDWR | O_CLOEXEC);
    _cleanup_free_ char *part = uki_part(r);
    if (diskfd < 0)
        return lapis_err(r->d, -errno, "cannot open %s for writing: %s", r->disk.path, strerror(errno));
    /* udev does not probe a disk held with a BSD lock: no scan of a half-written slot. */
    if (flock(diskfd, LOCK_EX | LOCK_NB) < 0)
        return lapis_err(r->d, -errno, "%s is locked by another program (%s); try again later",
                         r->disk.path, strerror(errno));
    int e = mkdir_p(r->o->state_dir, 0755);
    if (e < 0)
        return lapis_err(r->d, e, "cannot create %s: %s", r->o->state_dir, strerror(-e));
    int kind;
    size_t chunk;
    e = begin(r, &kind, &chunk); /* removes a stale uki.part on a fresh start */
    _cleanup_close_ int ukifd = e < 0 ? -1 : open(part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (e < 0)
        return e;
    if (ukifd < 0)
        return lapis_err(r->d, -errno, "cannot create %s: %s", part, strerror(errno));
    struct written w = { 0 };
    if ((e = written_init(r, &w)) >= 0 && (e = write_all(r, &w, diskfd, ukifd, kind, chunk)) >= 0)
        e = check_written(r, &w);
    written_clear(&w);
    return e < 0 ? e : finish(r);
}

/* One writer of a disk's state at a time: the timer's run and a manual one
 * would otherwise write the same slot. */
static int lock_state(struct lapis_diag *d, const struct su_opts *o, int *ret_fd)
{
    return lapis_lock_take(d, o->state_dir, "the sysupdate state", 0, ret_fd);
}

int su_update(struct lapis_diag *d, const struct su_opts *o, char **ret_version, int *ret_slot,
              char **ret_reason)
{
    struct run r;
    char *why = NULL;
    _cleanup_close_ int lock = -1;
    int e = lock_state(d, o, &lock);
    if (e < 0)
        return e;
    e = open_run(d, o, &r);
    if (e >= 0)
        e = prepare(&r, &why);
    if (e >= 0 && !why)
        e = stage(&r);
    if (e >= 0) {
        *ret_version = why ? NULL : xstrdup(r.m.version);
        *ret_slot = r.target;
        *ret_reason = why;
    } else
        free(why);
    run_clear(&r);
    return e;
}

/* The factory state of a disk the composer made: slot a holds version,
 * good and booted, with the root hash its verity superblock gives. */
int su_init(struct lapis_diag *d, const struct su_opts *o, const char *version)
{
    struct su_disk disk;
    struct su_state st = { .prog_slot = -1 };
    char root[SU_HEX];
    _cleanup_free_ char *path = path_join(o->state_dir, "state");
    if (!su_version_valid(version))
        return lapis_err(d, LAPIS_E_USAGE, "'%s' is not a version (digits, letters, . _ ~)", version);
    if (path_exists(path))
        return lapis_err(d, LAPIS_E_CONFIG, "%s exists already: this disk's state is recorded", path);
    int e = disk_open(d, o, &disk);
    if (e < 0)
        return e;
    _cleanup_close_ int fd = open(disk.path, O_RDONLY | O_CLOEXEC);
    e = fd < 0 ? lapis_err(d, -errno, "cannot read %s: %s", disk.path, strerror(errno))
               : su_verity_slot_root(d, fd, &disk.usr[0], &disk.verity[0], root);
    su_disk_clear(&disk);
    if (e < 0)
        return e;
    su_slot_set(&st.slot[0], version, SU_GOOD, root);
    e = su_state_save(d, o->state_dir, &st);
    su_state_clear(&st);
    return e;
}

/* ---- marking slots ---- */

/* The inactive slot's version failed its boot: systemd-boot fell back to the
 * booted slot after the tries ran out (on the host the agent sees this at
 * start; offline, the caller says so). The version is blocked until a newer
 * one is published, and its leftover UKI is removed. */
int su_mark_bad(struct lapis_diag *d, const struct su_opts *o, char **ret_version)
{
    struct run r;
    _cleanup_close_ int lock = -1;
    int e = lock_state(d, o, &lock);
    if (e < 0)
        return e;
    e = open_run(d, o, &r);
    struct su_slot *t = e >= 0 ? &r.st.slot[r.target] : NULL;
    if (e >= 0 && (!t->version || t->status == SU_EMPTY))
        e = lapis_err(d, LAPIS_E_USAGE, "slot %c holds no version to mark bad", 'a' + r.target);
    if (e >= 0)
        e = su_esp_remove_version(d, &r.disk, t->version);
    if (e >= 0) {
        if (!su_state_failed(&r.st, t->version))
            strv_push(&r.st.failed, xstrdup(t->version));
        t->status = SU_BAD;
        *ret_version = xstrdup(t->version);
        e = su_state_save(d, o->state_dir, &r.st);
    }
    run_clear(&r);
    return e;
}

/* The booted slot reached boot-complete.target (systemd-bless-boot ran). */
int su_mark_good(struct lapis_diag *d, const struct su_opts *o, char **ret_version)
{
    struct su_state st;
    int e = su_state_load(d, o->state_dir, &st);
    if (e < 0)
        return e;
    struct su_slot *b = &st.slot[st.booted];
    b->status = SU_GOOD;
    *ret_version = b->version ? xstrdup(b->version) : NULL;
    e = su_state_save(d, o->state_dir, &st);
    su_state_clear(&st);
    return e;
}

/* ---- cleanup ---- */

/* The version a lapis UKI name carries, or NULL (not ours). */
static char *uki_version(const char *name)
{
    size_t l = strlen(name);
    if (strncmp(name, "lapis_", 6) != 0 || l < 11 || strcasecmp(name + l - 4, ".efi") != 0)
        return NULL;
    char *v = strndup(name + 6, l - 10);
    v[strcspn(v, "+")] = '\0';
    return v;
}

/* Remove the UKIs of versions neither slot holds (left by an interrupted
 * run, or put there by hand) and a stale partial UKI. */
int su_cleanup(struct lapis_diag *d, const struct su_opts *o, char ***ret_removed)
{
    struct run r;
    char **names = NULL, **removed = NULL;
    _cleanup_close_ int lock = -1;
    int e = lock_state(d, o, &lock);
    if (e < 0 || (e = open_run(d, o, &r)) < 0 || (e = su_esp_list(d, &r.disk, &names)) < 0) {
        if (lock >= 0)
            run_clear(&r);
        return e;
    }
    for (size_t i = 0; e >= 0 && names && names[i]; i++) {
        _cleanup_free_ char *v = uki_version(names[i]);
        const char *a = r.st.slot[0].version, *b = r.st.slot[1].version;
        if (!v || (a && strcmp(v, a) == 0) || (b && strcmp(v, b) == 0))
            continue;
        if ((e = su_esp_remove_version(d, &r.disk, v)) >= 0)
            strv_push(&removed, xstrdup(names[i]));
    }
    _cleanup_free_ char *part = uki_part(&r);
    if (e >= 0 && r.st.prog_slot < 0 && unlink(part) == 0)
        strv_push(&removed, xstrdup(part));
    lapis_strv_free(names);
    run_clear(&r);
    if (e < 0) {
        lapis_strv_free(removed);
        return e;
    }
    *ret_removed = removed;
    return 0;
}

/* ---- at boot ---- */

/* The 64 hex digits after usrhash= on the kernel command line. */
static int read_usrhash(struct lapis_diag *d, const char *path, char ret[SU_HEX])
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    int e = read_file(path, 64 << 10, &text, &len);
    if (e < 0)
        return lapis_err(d, e, "cannot read %s: %s", path, strerror(-e));
    if (su_cmdline_usrhash(text, ret) < 0)
        return lapis_err(d, LAPIS_E_CONFIG, "%s has no usrhash=: this boot is not from a lapis A/B slot", path);
    return 0;
}

/* The first boot of a host the composer made: no state yet. The running
 * slot is the one whose PARTUUID usrhash= names, its version the
 * IMAGE_VERSION of the running /usr; it is good (the factory image), the
 * other slot empty. */
static int host_first_boot(struct lapis_diag *d, const struct su_opts *o, const char *hash)
{
    struct su_disk k;
    _cleanup_free_ char *osr = path_in_root(o->root, "/usr/lib/os-release"), *text = NULL, *v = NULL;
    size_t len;
    int e = read_file(osr, 64 << 10, &text, &len);
    if (e < 0)
        return lapis_err(d, e, "cannot read %s: %s", osr, strerror(-e));
    if (!(v = su_os_release_version(text)))
        return lapis_err(d, LAPIS_E_CONFIG, "%s has no IMAGE_VERSION=: which version runs is unknown", osr);
    if ((e = su_host_disk_open(d, o->root, o->arch, &k)) < 0)
        return e;
    int slot = su_disk_slot_of_hash(&k, hash);
    su_disk_clear(&k);
    if (slot < 0)
        return lapis_err(d, LAPIS_E_CONFIG, "usrhash=%.16s... names neither slot's PARTUUID", hash);
    struct su_state st = { .booted = slot, .prog_slot = -1 };
    su_slot_set(&st.slot[slot], v, SU_GOOD, hash);
    e = su_state_save(d, o->state_dir, &st);
    su_state_clear(&st);
    return e;
}

/* systemd-boot renames lapis_V+N-M.efi on each try; +0-M: no tries left. */
static bool tries_exhausted(struct run *r, const char *version)
{
    char **names = NULL;
    bool out = false;
    _cleanup_free_ char *prefix = xasprintf("lapis_%s+0-", version);
    if (su_esp_list(r->d, &r->disk, &names) < 0)
        return false;
    for (size_t i = 0; names && names[i]; i++)
        out |= strncmp(names[i], prefix, strlen(prefix)) == 0;
    lapis_strv_free(names);
    return out;
}

static int fell_back(struct run *r, struct su_slot *t)
{
    int e = su_esp_remove_version(r->d, &r->disk, t->version);
    if (e < 0)
        return e;
    if (!su_state_failed(&r->st, t->version))
        strv_push(&r->st.failed, xstrdup(t->version));
    free(r->st.rolled_back);
    r->st.rolled_back = xstrdup(t->version);
    t->status = SU_BAD;
    return 0;
}

static int boot_sync(struct run *r, const char *hash)
{
    struct su_state *st = &r->st;
    int slot = strcmp(st->slot[0].roothash, hash) == 0 ? 0 : strcmp(st->slot[1].roothash, hash) == 0 ? 1 : -1;
    if (slot < 0)
        return lapis_err(r->d, LAPIS_E_CONFIG, "the running /usr (usrhash=%.16s...) is in neither "
                         "slot the state records", hash);
    struct su_slot *other = &st->slot[1 - slot];
    /* The staged slot runs (mark-good follows boot-complete.target), or the
     * other one does while the staged one has no tries left: whether it
     * was never booted or booted and failed its health checks, the boot
     * loader fell back. */
    st->booted = slot;
    if (other->status == SU_STAGED && tries_exhausted(r, other->version))
        return fell_back(r, other);
    return 0;
}

int su_boot(struct lapis_diag *d, const struct su_opts *o, const char *cmdline_path, struct su_boot *ret)
{
    struct run r;
    char hash[SU_HEX];
    _cleanup_close_ int lock = -1;
    _cleanup_free_ char *state = path_join(o->state_dir, "state");
    int e = lock_state(d, o, &lock);
    if (e < 0 || (e = read_usrhash(d, cmdline_path, hash)) < 0)
        return e;
    if (!o->image && !path_exists(state) && (e = host_first_boot(d, o, hash)) < 0)
        return e;
    e = open_run(d, o, &r);
    if (e >= 0 && (e = boot_sync(&r, hash)) >= 0)
        e = su_state_save(d, o->state_dir, &r.st);
    if (e >= 0)
        *ret = (struct su_boot){ r.st.booted, r.st.rolled_back ? xstrdup(r.st.rolled_back) : NULL };
    run_clear(&r);
    return e;
}

/* ---- rollback ---- */

int su_rollback(struct lapis_diag *d, const struct su_opts *o, char **ret_from, char **ret_to)
{
    struct run r;
    _cleanup_close_ int lock = -1;
    int e = lock_state(d, o, &lock);
    if (e < 0 || (e = open_run(d, o, &r)) < 0) {
        if (lock >= 0)
            run_clear(&r);
        return e;
    }
    struct su_slot *cur = &r.st.slot[r.st.booted], *other = &r.st.slot[r.target];
    if (other->status != SU_GOOD)
        e = lapis_err(d, LAPIS_E_USAGE, "slot %c holds no good version to roll back to (it is %s)",
                      'a' + r.target, su_status_names[other->status]);
    if (e >= 0)
        e = su_esp_retire_version(d, &r.disk, cur->version);
    if (e >= 0) {
        if (!su_state_failed(&r.st, cur->version))
            strv_push(&r.st.failed, xstrdup(cur->version));
        free(r.st.rolled_back);
        r.st.rolled_back = xstrdup(cur->version);
        cur->status = SU_BAD;
        *ret_from = xstrdup(cur->version);
        *ret_to = xstrdup(other->version);
        e = su_state_save(d, o->state_dir, &r.st);
    }
    run_clear(&r);
    return e;
}
