/*
 * Parallel gzip (pgzip.h). The caller's thread fills chunks and writes the
 * finished ones out in order; worker threads deflate them. A slot goes
 * FREE -> FILLED (caller) -> BUSY (a worker) -> DONE -> FREE (written out).
 * Workers take the slots in sequence order, so the caller never waits for a
 * later chunk while an earlier one is still queued.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "image/pgzip.h"

#define DICT_SIZE 32768u
#define MAX_THREADS 8u

enum slot_state { SLOT_FREE, SLOT_FILLED, SLOT_BUSY, SLOT_DONE };

struct slot {
    enum slot_state state;
    unsigned long long seq;
    bool last;
    unsigned char *in, *out;
    size_t in_len, out_len, out_cap;
    unsigned char dict[DICT_SIZE];
    size_t dict_len;
    int err;
};

struct pgzip {
    int level;
    pgzip_emit_fn emit;
    void *data;
    unsigned nthreads, nslots, started;
    struct slot *slots;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t filled, done;
    bool stop, header_done;
    unsigned long long next_fill, next_take, next_write;
    struct slot *cur;                 /* the slot being filled, or NULL */
    unsigned char tail[DICT_SIZE];    /* the last bytes of the previous chunk */
    size_t tail_len;
    uLong crc;
    unsigned long long isize;
};

/* Raw deflate of one chunk: primed with the previous 32 KiB, ended by a
 * sync flush (byte-aligned, so chunks concatenate), the last by Z_FINISH. */
static int deflate_slot(int level, struct slot *s)
{
    z_stream z = { 0 };
    int r = 0;

    if (deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    if (s->dict_len && deflateSetDictionary(&z, s->dict, (uInt)s->dict_len) != Z_OK)
        r = -EIO;
    z.next_in = s->in;
    z.avail_in = (uInt)s->in_len;
    z.next_out = s->out;
    z.avail_out = (uInt)s->out_cap;
    int zr = r ? Z_STREAM_ERROR : deflate(&z, s->last ? Z_FINISH : Z_SYNC_FLUSH);
    if (!r && (s->last ? zr != Z_STREAM_END : zr != Z_OK || z.avail_in || !z.avail_out))
        r = -EIO;
    s->out_len = s->out_cap - z.avail_out;
    deflateEnd(&z);
    return r;
}

static void *worker(void *arg)
{
    struct pgzip *z = arg;
    pthread_mutex_lock(&z->mu);
    for (;;) {
        struct slot *s = &z->slots[z->next_take % z->nslots];
        while (!z->stop && !(s->state == SLOT_FILLED && s->seq == z->next_take)) {
            pthread_cond_wait(&z->filled, &z->mu);
            s = &z->slots[z->next_take % z->nslots];
        }
        if (z->stop)
            break;
        s->state = SLOT_BUSY;
        z->next_take++;
        pthread_mutex_unlock(&z->mu);
        int r = deflate_slot(z->level, s);
        pthread_mutex_lock(&z->mu);
        s->err = r;
        s->state = SLOT_DONE;
        pthread_cond_broadcast(&z->done);
    }
    pthread_mutex_unlock(&z->mu);
    return NULL;
}

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > (long)MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

struct pgzip *pgzip_new(int level, unsigned threads, pgzip_emit_fn emit, void *data)
{
    struct pgzip *z = calloc(1, sizeof(*z));
    if (!z)
        return NULL;
    z->level = level;
    z->emit = emit;
    z->data = data;
    z->nthreads = threads ? threads : default_threads();
    z->nslots = z->nthreads + 2;
    z->crc = crc32(0, NULL, 0);
    pthread_mutex_init(&z->mu, NULL);
    pthread_cond_init(&z->filled, NULL);
    pthread_cond_init(&z->done, NULL);
    z->slots = calloc(z->nslots, sizeof(*z->slots));
    z->threads = calloc(z->nthreads, sizeof(*z->threads));
    bool ok = z->slots && z->threads;
    for (unsigned i = 0; ok && i < z->nslots; i++) {
        z->slots[i].out_cap = deflateBound(NULL, PGZIP_CHUNK) + 64;
        z->slots[i].in = malloc(PGZIP_CHUNK);
        z->slots[i].out = malloc(z->slots[i].out_cap);
        ok = z->slots[i].in && z->slots[i].out;
    }
    for (; ok && z->started < z->nthreads; z->started++)
        ok = pthread_create(&z->threads[z->started], NULL, worker, z) == 0;
    if (!ok) {
        pgzip_free(z);
        return NULL;
    }
    return z;
}

/* Write out the oldest chunk once it is done. */
static int write_oldest(struct pgzip *z)
{
    struct slot *s = &z->slots[z->next_write % z->nslots];
    pthread_mutex_lock(&z->mu);
    while (s->state != SLOT_DONE)
        pthread_cond_wait(&z->done, &z->mu);
    pthread_mutex_unlock(&z->mu);
    int r = s->err ? s->err : z->emit(z->data, s->out, s->out_len);
    s->state = SLOT_FREE;
    z->next_write++;
    return r;
}

static int write_header(struct pgzip *z)
{
    /* What zlib writes for windowBits 31: no mtime, no name, XFL from the level, OS unix. */
    unsigned char h[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
    h[8] = z->level == 9 ? 2 : z->level == 1 ? 4 : 0;
    z->header_done = true;
    return z->emit(z->data, h, sizeof(h));
}

/* The next slot to fill, once what it held is written out. */
static int take_slot(struct pgzip *z)
{
    int r = 0;
    if (!z->header_done && (r = write_header(z)) < 0)
        return r;
    while (z->next_write + z->nslots <= z->next_fill)
        if ((r = write_oldest(z)) < 0)
            return r;
    z->cur = &z->slots[z->next_fill % z->nslots];
    z->cur->in_len = 0;
    z->cur->dict_len = z->tail_len;
    memcpy(z->cur->dict, z->tail, z->tail_len);
    return 0;
}

static void submit(struct pgzip *z, bool last)
{
    struct slot *s = z->cur;
    z->tail_len = s->in_len < DICT_SIZE ? s->in_len : DICT_SIZE;
    memcpy(z->tail, s->in + s->in_len - z->tail_len, z->tail_len);
    pthread_mutex_lock(&z->mu);
    s->last = last;
    s->seq = z->next_fill++;
    s->state = SLOT_FILLED;
    pthread_cond_broadcast(&z->filled);
    pthread_mutex_unlock(&z->mu);
    z->cur = NULL;
}

int pgzip_write(struct pgzip *z, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    int r;
    z->crc = crc32_z(z->crc, p, n);
    z->isize += n;
    while (n > 0) {
        if (!z->cur && (r = take_slot(z)) < 0)
            return r;
        size_t k = PGZIP_CHUNK - z->cur->in_len;
        k = k < n ? k : n;
        memcpy(z->cur->in + z->cur->in_len, p, k);
        z->cur->in_len += k;
        p += k;
        n -= k;
        if (z->cur->in_len == PGZIP_CHUNK)
            submit(z, false);
    }
    return 0;
}

int pgzip_finish(struct pgzip *z)
{
    unsigned char t[8];
    int r;
    if (!z->cur && (r = take_slot(z)) < 0)
        return r;
    submit(z, true);
    while (z->next_write < z->next_fill)
        if ((r = write_oldest(z)) < 0)
            return r;
    for (int i = 0; i < 4; i++) {
        t[i] = (unsigned char)(z->crc >> (8 * i));
        t[4 + i] = (unsigned char)(z->isize >> (8 * i));
    }
    return z->emit(z->data, t, sizeof(t));
}

void pgzip_free(struct pgzip *z)
{
    if (!z)
        return;
    pthread_mutex_lock(&z->mu);
    z->stop = true;
    pthread_cond_broadcast(&z->filled);
    pthread_mutex_unlock(&z->mu);
    for (unsigned i = 0; i < z->started; i++)
        pthread_join(z->threads[i], NULL);
    for (unsigned i = 0; z->slots && i < z->nslots; i++) {
        free(z->slots[i].in);
        free(z->slots[i].out);
    }
    free(z->slots);
    free(z->threads);
    pthread_mutex_destroy(&z->mu);
    pthread_cond_destroy(&z->filled);
    pthread_cond_destroy(&z->done);
    free(z);
}
