/* Streaming digests, shared by fetch.c (hash while downloading) and verify.c. */
#ifndef LAPIS_VERIFY_H
#define LAPIS_VERIFY_H
#include "internal.h"

typedef struct lapis_hasher lapis_hasher;
lapis_hasher *lapis_hasher_new(enum lapis_chk t);
void lapis_hasher_update(lapis_hasher *h, const void *buf, size_t len);
int lapis_hasher_final_hex(lapis_hasher *h, char *ret_hex, size_t hexlen);
void lapis_hasher_free(lapis_hasher *h);
#endif
