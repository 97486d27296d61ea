/*
 * Checks of a written slot, on the disk's byte range: its sha256, and the
 * dm-verity root hash recomputed from the data (format 1, sha256, the
 * manifest's salt and block size), the value the kernel checks at boot.
 * Recomputing it here, rather than trusting the written hash partition,
 * catches a tree that does not match its data before the slot is offered.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "basic/alloc.h"
#include "basic/macro.h"
#include "lapis/common.h"
#include "shared/digest.h"
#include "sysupdate/sysupdate.h"

#define IO_SIZE (1 << 20)

static void tohex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static int read_range(struct lapis_diag *d, int fd, unsigned char *buf, size_t len, long long off)
{
    ssize_t n = pread(fd, buf, len, off);
    if (n != (ssize_t)len)
        return lapis_err(d, n < 0 ? -errno : -EIO, "cannot read the written slot at %lld: %s",
                         off, n < 0 ? strerror(errno) : "short read");
    return 0;
}

typedef void (*range_sink)(void *sink, const unsigned char *buf, size_t len);

/* Feed [offset, offset+size) of fd to sink, IO_SIZE at a time. */
static int feed_range(struct lapis_diag *d, int fd, long long offset, long long size,
                      range_sink fn, void *sink)
{
    _cleanup_free_ unsigned char *buf = xmalloc(IO_SIZE);
    for (long long done = 0; done < size;) {
        size_t n = size - done < IO_SIZE ? (size_t)(size - done) : IO_SIZE;
        int r = read_range(d, fd, buf, n, offset + done);
        if (r < 0)
            return r;
        fn(sink, buf, n);
        done += (long long)n;
    }
    return 0;
}

static void hasher_sink(void *h, const unsigned char *buf, size_t len)
{
    lapis_hasher_update(h, buf, len);
}

int su_range_hash(struct lapis_diag *d, lapis_hasher *h, int fd, long long offset, long long size)
{
    return feed_range(d, fd, offset, size, hasher_sink, h);
}

int su_range_sha256(struct lapis_diag *d, int fd, long long offset, long long size, char ret_hex[SU_HEX])
{
    lapis_hasher *h = lapis_hasher_new(LAPIS_CHK_SHA256);
    int r = su_range_hash(d, h, fd, offset, size);
    if (r >= 0)
        lapis_hasher_final_hex(h, ret_hex, SU_HEX);
    lapis_hasher_free(h);
    return r;
}

/* sha256(salt || block), on a context reused for every block (a new one per
 * 4 KiB block was a measurable share of a 250 MB slot's check). */
static void salted(EVP_MD_CTX *c, const unsigned char *salt, const unsigned char *blk, size_t len,
                   unsigned char *out)
{
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, salt, 32);
    EVP_DigestUpdate(c, blk, len);
    EVP_DigestFinal_ex(c, out, NULL);
}

/* One level up: hash each block of in (nblocks of bs) into packed 32-byte
 * slots, zero-padded to whole blocks. Returns the new block count. */
static size_t level_up(EVP_MD_CTX *c, const unsigned char *salt, const unsigned char *in,
                       size_t nblocks, long bs, unsigned char **ret)
{
    size_t per = (size_t)bs / 32, out_blocks = (nblocks + per - 1) / per;
    unsigned char *out = xcalloc(out_blocks, (size_t)bs);
    for (size_t i = 0; i < nblocks; i++)
        salted(c, salt, in + i * (size_t)bs, (size_t)bs, out + 32 * i);
    *ret = out;
    return out_blocks;
}

/* The levels above level 0, up to the root; frees lvl. */
static void root_of(EVP_MD_CTX *c, const unsigned char *salt, unsigned char *lvl, size_t n, long bs,
                    char ret_hex[SU_HEX])
{
    unsigned char root[32];
    while (n > 1) {
        unsigned char *up;
        n = level_up(c, salt, lvl, n, bs, &up);
        free(lvl);
        lvl = up;
    }
    salted(c, salt, lvl, (size_t)bs, root);
    free(lvl);
    tohex(root, 32, ret_hex);
}

/* The accumulator: level 0 of the tree grows as data blocks arrive (from
 * the stream being written, or read back), next to the plain sha256. */
struct su_verity {
    EVP_MD_CTX *c;
    lapis_hasher *whole;
    unsigned char salt[32];
    long bs;
    size_t nblocks, done;       /* data blocks in all, hashed so far */
    unsigned char *lvl;         /* level 0, nblocks hashes packed, zero-padded to whole blocks */
    size_t lvl_blocks;
    unsigned char *part;        /* a block begun by the last su_verity_add */
    size_t part_len;
};

int su_verity_new(struct lapis_diag *d, long long size, long bs, const char *salt_hex, struct su_verity **ret)
{
    if (size <= 0 || size % bs)
        return lapis_err(d, LAPIS_E_CHECKSUM, "the usr data is not a whole number of %ld-byte blocks", bs);
    struct su_verity *v = xcalloc(1, sizeof(*v));
    for (int i = 0; i < 32; i++) {
        unsigned x;
        sscanf(salt_hex + 2 * i, "%2x", &x);
        v->salt[i] = (unsigned char)x;
    }
    size_t per = (size_t)bs / 32;
    v->bs = bs;
    v->nblocks = (size_t)(size / bs);
    v->lvl_blocks = (v->nblocks + per - 1) / per;
    v->lvl = xcalloc(v->lvl_blocks ? v->lvl_blocks : 1, (size_t)bs);
    v->part = xmalloc((size_t)bs);
    v->c = EVP_MD_CTX_new();
    v->whole = lapis_hasher_new(LAPIS_CHK_SHA256);
    *ret = v;
    return 0;
}

static void add_blocks(struct su_verity *v, const unsigned char *buf, size_t n)
{
    if (n > v->nblocks - v->done)
        n = v->nblocks - v->done;
    lapis_hasher_update(v->whole, buf, n * (size_t)v->bs);
    for (size_t j = 0; j < n; j++)
        salted(v->c, v->salt, buf + j * (size_t)v->bs, (size_t)v->bs, v->lvl + 32 * (v->done + j));
    v->done += n;
}

/* Any lengths: a frame size that is not a multiple of the block size leaves
 * a part block, completed by the next call. */
void su_verity_add(struct su_verity *v, const unsigned char *buf, size_t len)
{
    size_t bs = (size_t)v->bs;
    if (v->part_len) {
        size_t n = bs - v->part_len < len ? bs - v->part_len : len;
        memcpy(v->part + v->part_len, buf, n);
        v->part_len += n, buf += n, len -= n;
        if (v->part_len < bs)
            return;
        add_blocks(v, v->part, 1);
        v->part_len = 0;
    }
    add_blocks(v, buf, len / bs);
    v->part_len = len % bs;
    memcpy(v->part, buf + len - v->part_len, v->part_len);
}

void su_verity_free(struct su_verity *v)
{
    if (!v)
        return;
    EVP_MD_CTX_free(v->c);
    lapis_hasher_free(v->whole);
    free(v->lvl);
    free(v->part);
    free(v);
}

int su_verity_final(struct lapis_diag *d, struct su_verity *v, char ret_root[SU_HEX], char ret_sha[SU_HEX])
{
    if (v->done != v->nblocks || v->part_len)
        return lapis_err(d, LAPIS_E_CHECKSUM, "the usr data ended after %zu of %zu blocks", v->done, v->nblocks);
    lapis_hasher_final_hex(v->whole, ret_sha, SU_HEX);
    if (v->nblocks == 1) /* one block: the root is that block's own hash */
        tohex(v->lvl, 32, ret_root);
    else {
        root_of(v->c, v->salt, v->lvl, v->lvl_blocks, v->bs, ret_root);
        v->lvl = NULL;  /* root_of consumed it */
    }
    return 0;
}

static void verity_sink(void *v, const unsigned char *buf, size_t len)
{
    su_verity_add(v, buf, len);
}

/* Feed len bytes of fd from off to the accumulator. */
int su_verity_add_range(struct lapis_diag *d, struct su_verity *v, int fd, long long off, long long len)
{
    return feed_range(d, fd, off, len, verity_sink, v);
}

int su_verity_root(struct lapis_diag *d, int fd, long long offset, long long size, long bs,
                   const char *salt_hex, char ret_root[SU_HEX], char ret_sha[SU_HEX])
{
    struct su_verity *v;
    int r = su_verity_new(d, size, bs, salt_hex, &v);
    if (r < 0)
        return r;
    r = su_verity_add_range(d, v, fd, offset, size);
    if (r >= 0)
        r = su_verity_final(d, v, ret_root, ret_sha);
    su_verity_free(v);
    return r;
}

/* The veritysetup superblock (format 1), as cryptsetup writes it. */
struct verity_sb {
    char signature[8];          /* "verity\0\0" */
    uint32_t version, hash_type;
    uint8_t uuid[16];
    char algorithm[32];
    uint32_t data_block_size, hash_block_size;
    uint64_t data_blocks;
    uint16_t salt_size;
    uint8_t pad1[6];
    uint8_t salt[256];
} __attribute__((packed));

int su_verity_slot_root(struct lapis_diag *d, int fd, const struct su_range *data,
                        const struct su_range *hash, char ret_root[SU_HEX])
{
    struct verity_sb sb;
    char salt[SU_HEX], sha[SU_HEX];
    int r = read_range(d, fd, (unsigned char *)&sb, sizeof(sb), hash->offset);
    if (r < 0)
        return r;
    if (memcmp(sb.signature, "verity\0\0", 8) != 0 || le32toh(sb.hash_type) != 1 ||
        strcmp(sb.algorithm, "sha256") != 0 || le16toh(sb.salt_size) != 32 ||
        le32toh(sb.data_block_size) != 4096 || le32toh(sb.hash_block_size) != 4096)
        return lapis_err(d, LAPIS_E_CONFIG, "the slot's verity partition has no sha256/4096 "
                         "veritysetup superblock with a 32-byte salt");
    long long size = (long long)le64toh(sb.data_blocks) * 4096;
    if (size > data->size)
        return lapis_err(d, LAPIS_E_CONFIG, "the verity superblock claims more data than the slot holds");
    tohex(sb.salt, 32, salt);
    return su_verity_root(d, fd, data->offset, size, 4096, salt, ret_root, sha);
}
