/*
 * Making qemu-img's vhdx deterministic ([MS-VHDX] 2.2). `qemu-img convert
 * -O vhdx` writes, at random: both headers' SequenceNumber, FileWriteGuid
 * and DataWriteGuid (their CRC-32C changes with them), the metadata's Page
 * 83 data (the virtual disk id), and a log entry whose LogGuid is random
 * although the headers' LogGuid is zero (the log is empty: nothing to
 * replay). Two conversions of one raw differ in exactly these bytes.
 *
 * We set the GUIDs to ones derived from the build (lapis_image_uuid), the
 * sequence numbers to 1 and 2 (keeping which header is current), recompute
 * both header checksums, and zero the log region. The region table and the
 * metadata table carry no random bytes; the metadata has no checksum.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "image/bootdisk.h"
#include "shared/digest.h"

#define KiB 1024ULL
#define VHDX_HEADER1 (64 * KiB)
#define VHDX_HEADER2 (128 * KiB)
#define VHDX_HEADER_LEN (4 * KiB)
#define VHDX_REGIONS (192 * KiB)
#define VHDX_REGIONS_LEN (64 * KiB)
#define VHDX_LOG_MAX (64 * 1024 * KiB)

/* 8B7CA206-4790-4B9A-B8FE-575F050F886E and BECA12AB-B2E6-4523-93EF-C309E000C746,
 * in the on-disk (little-endian) GUID layout. */
static const unsigned char metadata_region[16] = {
    0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
    0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
static const unsigned char page83_item[16] = {
    0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45,
    0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46 };

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

/* A derived GUID, in the on-disk layout (first three fields little-endian). */
static void vhdx_guid(const struct lapis_image_build *b, const char *what, unsigned char out[16])
{
    unsigned char raw[16];
    char text[37];
    static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
    lapis_image_uuid(b, what, raw, text);
    for (int i = 0; i < 16; i++)
        out[i] = raw[order[i]];
}

/* A block whose CRC-32C is at +4 (computed with that field zero). */
static bool crc_ok(const unsigned char *p, size_t len)
{
    unsigned char zero[4] = { 0 };
    uint32_t c = lapis_crc32c(0, p, 4);
    c = lapis_crc32c(c, zero, 4);
    return lapis_crc32c(c, p + 8, len - 8) == (uint32_t)le(p + 4, 4);
}

static void crc_set(unsigned char *p, size_t len)
{
    memset(p + 4, 0, 4);
    put_le(p + 4, lapis_crc32c(0, p, len), 4);
}

static int bad(struct lapis_image_build *b, const char *what)
{
    return lapis_err(&b->diag, -EIO, "qemu-img wrote an unexpected vhdx (%s): cannot make it "
                     "reproducible", what);
}

static int io_err(struct lapis_image_build *b)
{
    return lapis_err(&b->diag, -errno, "cannot rewrite the vhdx: %s", strerror(errno));
}

static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
    return pread(fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

/* Both headers; the log's offset and length from the current one. */
static int fix_headers(struct lapis_image_build *b, int fd, uint64_t *log_off, uint64_t *log_len)
{
    unsigned char h[2][VHDX_HEADER_LEN];
    static const uint64_t at[2] = { VHDX_HEADER1, VHDX_HEADER2 };
    static const unsigned char zero[16];
    unsigned char fw[16], dw[16];

    for (int i = 0; i < 2; i++) {
        if (read_at(fd, h[i], sizeof h[i], at[i]) < 0)
            return io_err(b);
        if (memcmp(h[i], "head", 4) || !crc_ok(h[i], sizeof h[i]))
            return bad(b, "header signature or checksum");
        if (memcmp(h[i] + 48, zero, 16))
            return bad(b, "a log to replay");
    }
    int cur = le(h[1] + 8, 8) > le(h[0] + 8, 8);
    vhdx_guid(b, "vhdx-file-write", fw);
    vhdx_guid(b, "vhdx-data-write", dw);
    for (int i = 0; i < 2; i++) {
        put_le(h[i] + 8, i == cur ? 2 : 1, 8);
        memcpy(h[i] + 16, fw, 16);
        memcpy(h[i] + 32, dw, 16);
        crc_set(h[i], sizeof h[i]);
        if (pwrite(fd, h[i], sizeof h[i], (off_t)at[i]) != (ssize_t)sizeof h[i])
            return io_err(b);
    }
    *log_len = le(h[cur] + 68, 4);
    *log_off = le(h[cur] + 72, 8);
    return 0;
}

/* The log is empty (LogGuid zero): qemu-img's stale entry goes. */
static int zero_log(struct lapis_image_build *b, int fd, uint64_t off, uint64_t len)
{
    static const unsigned char zero[64 * KiB];
    if (off < 1024 * KiB || len > VHDX_LOG_MAX || len % sizeof zero)
        return bad(b, "log region");
    for (uint64_t done = 0; done < len; done += sizeof zero)
        if (pwrite(fd, zero, sizeof zero, (off_t)(off + done)) != (ssize_t)sizeof zero)
            return io_err(b);
    return 0;
}

/* The metadata region's file offset, from the region table. */
static int metadata_offset(struct lapis_image_build *b, int fd, uint64_t *ret)
{
    unsigned char t[VHDX_REGIONS_LEN];
    if (read_at(fd, t, sizeof t, VHDX_REGIONS) < 0)
        return io_err(b);
    if (memcmp(t, "regi", 4) || !crc_ok(t, sizeof t))
        return bad(b, "region table");
    uint64_t n = le(t + 8, 4);
    for (uint64_t i = 0; i < n && 16 + 32 * (i + 1) <= sizeof t; i++) {
        const unsigned char *e = t + 16 + 32 * i;
        if (!memcmp(e, metadata_region, 16)) {
            *ret = le(e + 16, 8);
            return 0;
        }
    }
    return bad(b, "no metadata region");
}

static int fix_page83(struct lapis_image_build *b, int fd)
{
    unsigned char t[64 * KiB], id[16];
    uint64_t md = 0;
    int r = metadata_offset(b, fd, &md);
    if (r < 0)
        return r;
    if (read_at(fd, t, sizeof t, md) < 0)
        return io_err(b);
    if (memcmp(t, "metadata", 8))
        return bad(b, "metadata table");
    uint64_t n = le(t + 10, 2);
    for (uint64_t i = 0; i < n && 32 + 32 * (i + 1) <= sizeof t; i++) {
        const unsigned char *e = t + 32 + 32 * i;
        if (memcmp(e, page83_item, 16) || le(e + 20, 4) != 16)
            continue;
        vhdx_guid(b, "vhdx-page83", id);
        if (pwrite(fd, id, 16, (off_t)(md + le(e + 16, 4))) != 16)
            return io_err(b);
        return 0;
    }
    return bad(b, "no Page 83 data");
}

int lapis_image_vhdx_fix(struct lapis_image_build *b, int fd)
{
    unsigned char ident[8];
    uint64_t log_off, log_len;
    int r;

    if (read_at(fd, ident, sizeof ident, 0) < 0 || memcmp(ident, "vhdxfile", 8))
        return bad(b, "file type identifier");
    if ((r = fix_headers(b, fd, &log_off, &log_len)) < 0 ||
        (r = zero_log(b, fd, log_off, log_len)) < 0 || (r = fix_page83(b, fd)) < 0)
        return r;
    if (fsync(fd) < 0)
        return io_err(b);
    return 0;
}
