/*
 * Parallel gzip: one gzip member whose deflate stream is made of fixed-size
 * chunks compressed on all cores (pigz's layout). Each chunk is primed with
 * the 32 KiB before it and ends on a sync flush, so the output is a plain,
 * single-member gzip file, within a fraction of a percent of zlib's size,
 * and its bytes depend only on the data and the level, never on the number
 * of threads.
 */
#ifndef LAPIS_IMAGE_PGZIP_H
#define LAPIS_IMAGE_PGZIP_H

#include <stddef.h>

#define PGZIP_CHUNK (1u << 20)

/* Called in order, from the thread that calls pgzip_write/pgzip_finish. */
typedef int (*pgzip_emit_fn)(void *data, const unsigned char *buf, size_t n);

struct pgzip;

/* threads 0: one per online CPU (at most 8). NULL when out of memory. */
struct pgzip *pgzip_new(int level, unsigned threads, pgzip_emit_fn emit, void *data);
/* 0, the emit function's negative error, or -ENOMEM. */
int pgzip_write(struct pgzip *z, const void *buf, size_t n);
int pgzip_finish(struct pgzip *z);
void pgzip_free(struct pgzip *z);

#endif
