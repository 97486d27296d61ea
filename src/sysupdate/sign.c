/*
 * Ed25519 signatures over the exact bytes of the index and the manifest
 * (docs/sysupdate.md "Signatures"). A signature file is one line,
 * "ed25519 KEYID SIG": KEYID the first 16 bytes of sha256 of the raw public
 * key, SIG the raw 64-byte signature, both hex. The key id only picks the key
 * and words the error; trust comes from the pinned keys in keys.d (in /usr).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "lapis/common.h"
#include "shared/digest.h"
#include "sysupdate/sysupdate.h"

#define KEYID_HEX 33
#define SIG_LEN 64

struct su_keys {
    EVP_PKEY **pkey;
    char (*id)[KEYID_HEX];
    size_t n;
};

void su_keys_free(struct su_keys *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->pkey[i]);
    free(k->pkey);
    free(k->id);
    free(k);
}

static int key_id(EVP_PKEY *pk, char ret[KEYID_HEX])
{
    unsigned char raw[32];
    size_t len = sizeof(raw);
    char hex[SU_HEX];
    if (EVP_PKEY_get_raw_public_key(pk, raw, &len) != 1 || len != 32)
        return -EINVAL;
    lapis_chk_buf(raw, len, LAPIS_CHK_SHA256, hex, sizeof(hex));
    memcpy(ret, hex, KEYID_HEX - 1);
    ret[KEYID_HEX - 1] = '\0';
    return 0;
}

static int keys_add(struct lapis_diag *d, struct su_keys *k, const char *path)
{
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    if (!f)
        return lapis_err(d, -errno, "cannot read the key %s: %s", path, strerror(errno));
    EVP_PKEY *pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(pk);
        return lapis_err(d, LAPIS_E_CONFIG, "%s is not an Ed25519 public key (PEM)", path);
    }
    k->pkey = xrealloc(k->pkey, (k->n + 1) * sizeof(*k->pkey));
    k->id = xrealloc(k->id, (k->n + 1) * sizeof(*k->id));
    k->pkey[k->n] = pk;
    key_id(pk, k->id[k->n]);
    k->n++;
    return 0;
}

/* Every *.pem in dir, in name order. */
int su_keys_load(struct lapis_diag *d, const char *dir, struct su_keys **ret)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0)
        return lapis_err(d, -errno, "cannot read the trusted keys in %s: %s", dir, strerror(errno));
    struct su_keys *k = xcalloc(1, sizeof(*k));
    int r = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(ents[i]->d_name);
        if (r >= 0 && l > 4 && strcmp(ents[i]->d_name + l - 4, ".pem") == 0) {
            _cleanup_free_ char *p = path_join(dir, ents[i]->d_name);
            r = keys_add(d, k, p);
        }
        free(ents[i]);
    }
    free(ents);
    if (r >= 0 && k->n == 0)
        r = lapis_err(d, LAPIS_E_CONFIG, "no trusted keys (*.pem) in %s", dir);
    if (r < 0) {
        su_keys_free(k);
        return r;
    }
    *ret = k;
    return 0;
}

static int unhex(const char *hex, size_t hexlen, unsigned char *out)
{
    for (size_t i = 0; i < hexlen / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -EINVAL;
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* "ed25519 KEYID SIG\n": split and check the shape. */
static int sig_parse(const char *line, char id[KEYID_HEX], unsigned char sig[SIG_LEN])
{
    char sighex[2 * SIG_LEN + 2];
    int end = 0;
    if (sscanf(line, "ed25519 %32[0-9a-f] %129[0-9a-f]%n", id, sighex, &end) != 2 ||
        strlen(id) != KEYID_HEX - 1 || strlen(sighex) != 2 * SIG_LEN ||
        strspn(line + end, "\n") != strlen(line + end))
        return -EINVAL;
    return unhex(sighex, 2 * SIG_LEN, sig);
}

static bool ed25519_ok(EVP_PKEY *pk, const void *data, size_t len, const unsigned char *sig)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, pk) == 1 &&
              EVP_DigestVerify(c, sig, SIG_LEN, data, len) == 1;
    EVP_MD_CTX_free(c);
    return ok;
}

int su_sig_verify(struct lapis_diag *d, const struct su_keys *k, const char *what,
                  const void *data, size_t len, const char *sigline)
{
    char id[KEYID_HEX];
    unsigned char sig[SIG_LEN];
    if (sig_parse(sigline, id, sig) < 0)
        return lapis_err(d, LAPIS_E_SIGNATURE, "%s: the signature file is malformed "
                         "(expected \"ed25519 KEYID SIGNATURE\")", what);
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->id[i], id) != 0)
            continue;
        if (!ed25519_ok(k->pkey[i], data, len, sig))
            return lapis_err(d, LAPIS_E_SIGNATURE, "%s: BAD signature (key %s): corrupt or "
                             "tampered; nothing was written", what, id);
        return 0;
    }
    return lapis_err(d, LAPIS_E_SIGNATURE, "%s: signed by an unknown key %s (not in the "
                     "trusted keys); nothing was written", what, id);
}

int su_sig_make(struct lapis_diag *d, const char *keyfile, const void *data, size_t len,
                char **ret_line)
{
    _cleanup_fclose_ FILE *f = fopen(keyfile, "re");
    if (!f)
        return lapis_err(d, -errno, "cannot read the signing key %s: %s", keyfile, strerror(errno));
    EVP_PKEY *pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    unsigned char sig[SIG_LEN];
    size_t siglen = sizeof(sig);
    char id[KEYID_HEX];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = pk && EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519 && c &&
              EVP_DigestSignInit(c, NULL, NULL, NULL, pk) == 1 &&
              EVP_DigestSign(c, sig, &siglen, data, len) == 1 && key_id(pk, id) == 0;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(pk);
    if (!ok)
        return lapis_err(d, LAPIS_E_SIGNATURE, "%s is not a usable Ed25519 private key (PEM)", keyfile);
    char *line = xmalloc(8 + KEYID_HEX + 2 * SIG_LEN + 2);
    int n = sprintf(line, "ed25519 %s ", id);
    for (size_t i = 0; i < SIG_LEN; i++)
        n += sprintf(line + n, "%02x", sig[i]);
    strcpy(line + n, "\n");
    *ret_line = line;
    return 0;
}
