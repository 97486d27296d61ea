/* File digests (digest.c): whole buffers and files, and streaming hashers for
 * fetch.c, which hashes while it downloads. */
#ifndef LAPIS_SHARED_DIGEST_H
#define LAPIS_SHARED_DIGEST_H

#include <stddef.h>
#include <stdint.h>

enum lapis_chk { LAPIS_CHK_NONE, LAPIS_CHK_SHA1, LAPIS_CHK_SHA256, LAPIS_CHK_SHA512 };

enum lapis_chk lapis_chk_from_name(const char *name);
const char *lapis_chk_name(enum lapis_chk t);
int lapis_chk_file(const char *path, enum lapis_chk t, char *ret_hex, size_t hexlen);
/* The whole of a regular file (from offset 0), its holes hashed as zeros without reading them. */
int lapis_chk_fd(int fd, enum lapis_chk t, char *ret_hex, size_t hexlen);
int lapis_chk_buf(const void *buf, size_t len, enum lapis_chk t, char *ret_hex, size_t hexlen);

typedef struct lapis_hasher lapis_hasher;
lapis_hasher *lapis_hasher_new(enum lapis_chk t);
void lapis_hasher_update(lapis_hasher *h, const void *buf, size_t len);
int lapis_hasher_final_hex(lapis_hasher *h, char *ret_hex, size_t hexlen);
void lapis_hasher_free(lapis_hasher *h);

/* CRC-32C (Castagnoli, reflected, as iSCSI, ext4 and VHDX use it) of buf,
 * continuing from crc (0 to start). */
uint32_t lapis_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
