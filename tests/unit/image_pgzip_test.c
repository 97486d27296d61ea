/*
 * Unit tests for the parallel gzip writer (src/image/pgzip.c): the bytes do
 * not depend on the number of threads, the output is one gzip member that
 * zlib inflates back to the input (across chunk boundaries and for empty
 * input), and an error of the writer comes back to the caller.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "image/pgzip.h"

struct sink {
    unsigned char *buf;
    size_t len, cap;
    int fail_after;              /* calls before an error; -1: never */
};

static int sink_emit(void *data, const unsigned char *p, size_t n)
{
    struct sink *s = data;
    if (s->fail_after == 0)
        return -ENOSPC;
    if (s->fail_after > 0)
        s->fail_after--;
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->buf = realloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

/* Compressible but not trivial: text-like words from an LCG. */
static unsigned char *sample(size_t n)
{
    static const char *const words[] = { "usr", "lib", "systemd", "bin", " ", "\n", "x86_64" };
    unsigned char *p = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n;) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % 7];
        for (; *w && i < n; w++)
            p[i++] = (unsigned char)(*w ^ ((x >> 8) & 1));
    }
    return p;
}

/* Writes data in uneven pieces so chunks fill across several calls. */
static struct sink compress_with(const unsigned char *data, size_t n, unsigned threads)
{
    struct sink s = { .fail_after = -1 };
    struct pgzip *z = pgzip_new(6, threads, sink_emit, &s);
    assert_non_null(z);
    for (size_t off = 0, step = 70001; off < n; off += step)
        assert_int_equal(pgzip_write(z, data + off, off + step > n ? n - off : step), 0);
    assert_int_equal(pgzip_finish(z), 0);
    pgzip_free(z);
    return s;
}

static void assert_inflates_to(const struct sink *s, const unsigned char *data, size_t n)
{
    unsigned char *out = malloc(n + 1);
    z_stream z = { 0 };
    assert_int_equal(inflateInit2(&z, 31), Z_OK);
    z.next_in = s->buf;
    z.avail_in = (uInt)s->len;
    z.next_out = out;
    z.avail_out = (uInt)n + 1;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.avail_in, 0);                  /* one member, nothing after it */
    assert_int_equal(z.total_out, n);
    assert_memory_equal(out, data, n);
    inflateEnd(&z);
    free(out);
}

static void test_same_bytes_for_any_thread_count(void **state)
{
    (void)state;
    size_t n = 3 * PGZIP_CHUNK + 12345;
    unsigned char *data = sample(n);
    struct sink one = compress_with(data, n, 1), two = compress_with(data, n, 2),
                five = compress_with(data, n, 5);
    assert_int_equal(one.len, two.len);
    assert_int_equal(one.len, five.len);
    assert_memory_equal(one.buf, two.buf, one.len);
    assert_memory_equal(one.buf, five.buf, one.len);
    assert_true(one.len < n / 3);
    assert_inflates_to(&one, data, n);
    free(one.buf), free(two.buf), free(five.buf), free(data);
}

static void test_exact_chunk_and_empty_input(void **state)
{
    (void)state;
    unsigned char *data = sample(PGZIP_CHUNK);
    struct sink s = compress_with(data, PGZIP_CHUNK, 2), e = compress_with(data, 0, 2);
    assert_inflates_to(&s, data, PGZIP_CHUNK);
    assert_inflates_to(&e, data, 0);
    free(s.buf), free(e.buf), free(data);
}

static void test_writer_error_comes_back(void **state)
{
    (void)state;
    size_t n = 4 * PGZIP_CHUNK;
    unsigned char *data = sample(n);
    struct sink s = { .fail_after = 2 };            /* header, first chunk, then ENOSPC */
    struct pgzip *z = pgzip_new(6, 2, sink_emit, &s);
    int r = pgzip_write(z, data, n);
    if (r == 0)
        r = pgzip_finish(z);
    assert_int_equal(r, -ENOSPC);
    pgzip_free(z);
    free(s.buf), free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes_for_any_thread_count),
        cmocka_unit_test(test_exact_chunk_and_empty_input),
        cmocka_unit_test(test_writer_error_comes_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
