/*
 * File digests (OpenSSL EVP): the checksums repomd.xml and primary.xml name,
 * computed over a buffer, a file, or a stream as it downloads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "basic/alloc.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "shared/digest.h"

enum lapis_chk lapis_chk_from_name(const char *name)
{
    if (!name) return LAPIS_CHK_NONE;
    if (strcmp(name, "sha256") == 0) return LAPIS_CHK_SHA256;
    if (strcmp(name, "sha512") == 0) return LAPIS_CHK_SHA512;
    if (strcmp(name, "sha1") == 0 || strcmp(name, "sha") == 0) return LAPIS_CHK_SHA1;
    return LAPIS_CHK_NONE;
}

const char *lapis_chk_name(enum lapis_chk t)
{
    switch (t) {
    case LAPIS_CHK_SHA1: return "sha1";
    case LAPIS_CHK_SHA256: return "sha256";
    case LAPIS_CHK_SHA512: return "sha512";
    default: return "none";
    }
}

static const EVP_MD *chk_md(enum lapis_chk t)
{
    switch (t) {
    case LAPIS_CHK_SHA1: return EVP_sha1();
    case LAPIS_CHK_SHA256: return EVP_sha256();
    case LAPIS_CHK_SHA512: return EVP_sha512();
    default: return NULL;
    }
}

struct lapis_hasher {
    EVP_MD_CTX *md;
};

lapis_hasher *lapis_hasher_new(enum lapis_chk t)
{
    const EVP_MD *md = chk_md(t);
    lapis_hasher *h;
    if (!md)
        return NULL;
    h = xcalloc(1, sizeof(*h));
    h->md = EVP_MD_CTX_new();
    if (!h->md || EVP_DigestInit_ex(h->md, md, NULL) != 1) {
        lapis_hasher_free(h);
        return NULL;
    }
    return h;
}

void lapis_hasher_update(lapis_hasher *h, const void *buf, size_t len)
{
    if (h)
        EVP_DigestUpdate(h->md, buf, len);
}

int lapis_hasher_final_hex(lapis_hasher *h, char *ret_hex, size_t hexlen)
{
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!h || EVP_DigestFinal_ex(h->md, dig, &n) != 1 || hexlen < 2 * n + 1)
        return -EINVAL;
    hex_encode(dig, n, false, ret_hex);
    return 0;
}

void lapis_hasher_free(lapis_hasher *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->md);
    free(h);
}

int lapis_chk_buf(const void *buf, size_t len, enum lapis_chk t, char *ret_hex, size_t hexlen)
{
    lapis_hasher *h = lapis_hasher_new(t);
    int r;
    if (!h)
        return -EINVAL;
    lapis_hasher_update(h, buf, len);
    r = lapis_hasher_final_hex(h, ret_hex, hexlen);
    lapis_hasher_free(h);
    return r;
}

/* Holes read as zeros: hashing zeros from memory gives the same digest
 * without the kernel zero-filling (and copying out) every page of them. A
 * sparse 2 GiB disk image is mostly hole. */
static void hash_zeros(lapis_hasher *h, off_t n)
{
    static const char zeros[65536];
    for (; n > 0; n -= (off_t)sizeof(zeros))
        lapis_hasher_update(h, zeros, n < (off_t)sizeof(zeros) ? (size_t)n : sizeof(zeros));
}

/* Bytes [pos, end) of fd into h; stops early at EOF (a file that shrank). */
static int hash_data(lapis_hasher *h, int fd, off_t pos, off_t end, char *buf, size_t len)
{
    while (pos < end) {
        ssize_t n = pread(fd, buf, end - pos < (off_t)len ? (size_t)(end - pos) : len, pos);
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        lapis_hasher_update(h, buf, (size_t)n);
        pos += n;
    }
    return 0;
}

/* The next data extent at or after pos: [*data, *hole); *data = end when
 * only a hole is left. File systems without SEEK_DATA: all of it is data. */
static void next_extent(int fd, off_t pos, off_t end, off_t *data, off_t *hole)
{
    *data = lseek(fd, pos, SEEK_DATA);
    if (*data < 0) {
        *data = errno == ENXIO ? end : pos;
        *hole = end;
        return;
    }
    *hole = lseek(fd, *data, SEEK_HOLE);
    if (*hole < 0 || *hole > end)
        *hole = end;
}

int lapis_chk_fd(int fd, enum lapis_chk t, char *ret_hex, size_t hexlen)
{
    const size_t len = 1 << 20;
    _cleanup_free_ char *buf = xmalloc(len);
    lapis_hasher *h;
    off_t pos = 0, end = lseek(fd, 0, SEEK_END), data, hole;
    int r = 0;

    if (end < 0)
        return -errno;
    if (!(h = lapis_hasher_new(t)))
        return -EINVAL;
    while (r == 0 && pos < end) {
        next_extent(fd, pos, end, &data, &hole);
        hash_zeros(h, data - pos);
        r = data < end ? hash_data(h, fd, data, hole, buf, len) : 0;
        pos = data < end ? hole : end;
    }
    if (r == 0)
        r = lapis_hasher_final_hex(h, ret_hex, hexlen);
    lapis_hasher_free(h);
    return r;
}

int lapis_chk_file(const char *path, enum lapis_chk t, char *ret_hex, size_t hexlen)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    return lapis_chk_fd(fd, t, ret_hex, hexlen);
}

/* Bitwise: its users checksum a few KiB (VHDX headers), a table is not worth it. */
uint32_t lapis_crc32c(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc >> 1 ^ (0x82f63b78U & -(crc & 1));
    }
    return ~crc;
}
