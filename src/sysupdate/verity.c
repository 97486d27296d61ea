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

int su_range_sha256(struct lapis_diag *d, int fd, long long offset, long long size, char ret_hex[SU_HEX])
{
    _cleanup_free_ unsigned char *buf = xmalloc(IO_SIZE);
    lapis_hasher *h = lapis_hasher_new(LAPIS_CHK_SHA256);
    for (long long done = 0; done < size;) {
        size_t n = size - done < IO_SIZE ? (size_t)(size - done) : IO_SIZE;
        int r = read_range(d, fd, buf, n, offset + done);
        if (r < 0) {
            lapis_hasher_free(h);
            return r;
        }
        lapis_hasher_update(h, buf, n);
        done += (long long)n;
    }
    lapis_hasher_final_hex(h, ret_hex, SU_HEX);
    lapis_hasher_free(h);
    return 0;
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

/* The first level of the tree, and the sha256 of the whole range, in one read. */
static int data_level(struct lapis_diag *d, EVP_MD_CTX *c, int fd, long long offset, long long size,
                      long bs, const unsigned char *salt, lapis_hasher *whole, unsigned char **ret,
                      size_t *ret_blocks)
{
    size_t nblocks = (size_t)(size / bs), per = (size_t)bs / 32;
    size_t out_blocks = (nblocks + per - 1) / per;
    unsigned char *out = xcalloc(out_blocks ? out_blocks : 1, (size_t)bs);
    _cleanup_free_ unsigned char *buf = xmalloc(IO_SIZE);
    size_t per_io = IO_SIZE / (size_t)bs;
    for (size_t i = 0; i < nblocks; i += per_io) {
        size_t n = nblocks - i < per_io ? nblocks - i : per_io;
        int r = read_range(d, fd, buf, n * (size_t)bs, offset + (long long)i * bs);
        if (r < 0) {
            free(out);
            return r;
        }
        lapis_hasher_update(whole, buf, n * (size_t)bs);
        for (size_t j = 0; j < n; j++)
            salted(c, salt, buf + j * (size_t)bs, (size_t)bs, out + 32 * (i + j));
    }
    *ret = out;
    *ret_blocks = out_blocks;
    return 0;
}

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

int su_verity_root(struct lapis_diag *d, int fd, long long offset, long long size, long bs,
                   const char *salt_hex, char ret_root[SU_HEX], char ret_sha[SU_HEX])
{
    unsigned char salt[32], *lvl;
    size_t n;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(salt_hex + 2 * i, "%2x", &v);
        salt[i] = (unsigned char)v;
    }
    if (size <= 0 || size % bs)
        return lapis_err(d, LAPIS_E_CHECKSUM, "the usr data is not a whole number of %ld-byte blocks", bs);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    lapis_hasher *whole = lapis_hasher_new(LAPIS_CHK_SHA256);
    int r = data_level(d, c, fd, offset, size, bs, salt, whole, &lvl, &n);
    if (r >= 0 && size == bs) { /* one block: the root is that block's own hash */
        unsigned char root[32];
        memcpy(root, lvl, 32);
        free(lvl);
        tohex(root, 32, ret_root);
    } else if (r >= 0)
        root_of(c, salt, lvl, n, bs, ret_root);
    lapis_hasher_final_hex(whole, ret_sha, SU_HEX);
    lapis_hasher_free(whole);
    EVP_MD_CTX_free(c);
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
