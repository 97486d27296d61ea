/*
 * Authenticity: OpenPGP keys and detached signatures (librpm's pgp API, the
 * same verifier rpm uses for packages, so there is one OpenPGP implementation
 * in the process; what it does not judge, weak or revoked keys, is
 * sigpolicy.c's). File digests are in src/shared/digest.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <rpm/rpmkeyring.h>
#include <rpm/rpmpgp.h>

#include "pkg/internal.h"
#include "pkg/trust.h"

static void keyring_freep(rpmKeyring *k) { if (*k) rpmKeyringFree(*k); }
static void digparams_freep(pgpDigParams *p) { if (*p) pgpDigParamsFree(*p); }

/* Call fn for every armored public key block in text (a file may hold several). */
int lapis_foreach_key_packet(const char *text, lapis_key_pkt_fn fn, void *ud)
{
    static const char begin[] = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
    static const char end[] = "-----END PGP PUBLIC KEY BLOCK-----";
    int n = 0, r;

    for (const char *p = strstr(text, begin); p; p = strstr(p, begin)) {
        const char *e = strstr(p, end);
        if (!e)
            break;
        _cleanup_free_ char *block = xstrndup(p, (size_t)(e - p) + sizeof(end) - 1);
        uint8_t *pkt = NULL;
        size_t pktlen = 0;
        p = e;
        if (pgpParsePkts(block, &pkt, &pktlen) != PGPARMOR_PUBKEY) {
            free(pkt);
            continue;
        }
        r = fn(pkt, pktlen, ud);
        free(pkt);
        if (r < 0)
            return r;
        n += r;
    }
    return n;
}

/* Add a key and its subkeys; returns 1 if the primary key was usable. */
int lapis_keyring_add_packet(const uint8_t *pkt, size_t pktlen, void *keyring)
{
    rpmPubkey key = rpmPubkeyNew(pkt, pktlen);
    int nsub = 0, added = 0;
    if (!key)
        return 0;
    if (rpmKeyringAddKey(keyring, key) >= 0)
        added = 1;
    rpmPubkey *subs = rpmGetSubkeys(key, &nsub);
    for (int i = 0; i < nsub; i++) {
        rpmKeyringAddKey(keyring, subs[i]);
        rpmPubkeyFree(subs[i]);
    }
    free(subs);
    rpmPubkeyFree(key);
    return added;
}

static int keyring_add_text(rpmKeyring keyring, const char *text)
{
    return lapis_foreach_key_packet(text, lapis_keyring_add_packet, keyring);
}

/* rpm's pgpParsePkts() only de-armors public keys, so signatures are
 * de-armored here: the base64 body between the header block and the
 * "=CRC" line. The CRC is not checked: the signature check covers it. */
static int dearmor_signature(const char *text, uint8_t **ret, size_t *ret_len)
{
    const char *p = strstr(text, "-----BEGIN PGP SIGNATURE-----");
    const char *body, *end;
    _cleanup_free_ char *b64 = NULL;
    size_t n = 0;

    if (!p || !(body = strstr(p, "\n\n")) || !(end = strstr(body, "-----END PGP SIGNATURE-----")))
        return -EINVAL;
    b64 = xmalloc((size_t)(end - body) + 1);
    for (const char *c = body + 2; c < end; c++) {
        if (*c == '=' && (c == body + 2 || c[-1] == '\n'))
            break; /* the CRC line */
        if (*c != '\n' && *c != '\r' && *c != ' ')
            b64[n++] = *c;
    }
    b64[n] = '\0';
    if (n == 0 || n % 4 != 0)
        return -EINVAL;
    uint8_t *out = xmalloc(n / 4 * 3 + 1);
    int len = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
    if (len < 0) {
        free(out);
        return -EINVAL;
    }
    /* EVP_DecodeBlock counts padding as output bytes. */
    for (size_t k = n; k > 0 && b64[k - 1] == '='; k--)
        len--;
    *ret = out;
    *ret_len = (size_t)len;
    return 0;
}

static int load_signature(lapis_ctx *ctx, const char *what, const char *sig_path,
                          pgpDigParams *ret_sig)
{
    _cleanup_free_ char *text = NULL;
    uint8_t *pkt = NULL;
    size_t len = 0, pktlen = 0;
    int r;

    r = read_file(sig_path, 1 << 20, &text, &len);
    if (r < 0)
        return lapis_err(ctx, LAPIS_E_SIGNATURE, "%s: cannot read signature: %s", what, strerror(-r));
    if (dearmor_signature(text, &pkt, &pktlen) < 0) {
        /* Not armored: accept a binary signature packet as gpg --detach-sign writes it. */
        pkt = xmalloc(len + 1);
        memcpy(pkt, text, len);
        pktlen = len;
    }
    r = pgpPrtParams(pkt, pktlen, PGPTAG_SIGNATURE, ret_sig);
    free(pkt);
    if (r != 0)
        return lapis_err(ctx, LAPIS_E_SIGNATURE, "%s: signature file is not an OpenPGP signature", what);
    return 0;
}

static int hash_file(lapis_ctx *ctx, const char *what, const char *path, pgpDigParams sig,
                     DIGEST_CTX *ret)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    char buf[65536];
    ssize_t n;

    if (fd < 0)
        return lapis_err(ctx, -errno, "%s: %s", what, strerror(errno));
    *ret = rpmDigestInit(pgpDigParamsAlgo(sig, PGPVAL_HASHALGO), RPMDIGEST_NONE);
    if (!*ret)
        return lapis_err(ctx, LAPIS_E_SIGNATURE, "%s: unsupported signature hash algorithm", what);
    while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            rpmDigestUpdate(*ret, buf, (size_t)n);
    if (n == 0)
        return 0;
    /* A digest of part of the file would be reported as a BAD signature. */
    int e = errno;
    rpmDigestFinal(*ret, NULL, NULL, 0);
    *ret = NULL;
    return lapis_err(ctx, -e, "%s: cannot read %s: %s", what, path, strerror(e));
}

/* The signature policy (sigpolicy.c) is applied first, so a key librpm cannot
 * even load (rpm 4.18 rejects some revoked subkeys) is refused with the reason. */
int lapis_verify_detached(lapis_ctx *ctx, const char *what, const char *data_path,
                          const char *sig_path, const struct lapis_trusted_keys *tk)
{
    _cleanup_(keyring_freep) rpmKeyring keyring = rpmKeyringNew();
    _cleanup_(digparams_freep) pgpDigParams sig = NULL;
    DIGEST_CTX dctx = NULL;
    int nkeys = 0, r;
    rpmRC rc;

    rpmInitCrypto();
    if ((r = load_signature(ctx, what, sig_path, &sig)) < 0 ||
        (r = lapis_sigpolicy_check(ctx, what, tk->facts, sig, false)) < 0)
        return r;
    for (size_t i = 0; tk->texts && tk->texts[i]; i++)
        nkeys += keyring_add_text(keyring, tk->texts[i]);
    if (nkeys == 0 && tk->own)
        return lapis_err(ctx, LAPIS_E_SIGNATURE, "%s: no usable OpenPGP public key in %s; "
                         "check the repo's gpgkey setting", what, tk->from);
    if (nkeys == 0)
        return lapis_err(ctx, LAPIS_E_SIGNATURE, "%s: no gpgkey is set and there is no key in %s; "
                         "set gpgkey= or import the repo's key with rpmkeys --root %s --import "
                         "KEYFILE", what, tk->from, lapis_ctx_installroot(ctx));
    if ((r = hash_file(ctx, what, data_path, sig, &dctx)) < 0)
        return r;
    rc = rpmKeyringVerifySig(keyring, sig, dctx);
    rpmDigestFinal(dctx, NULL, NULL, 0);

    if (rc == RPMRC_OK)
        return lapis_sigpolicy_check(ctx, what, tk->facts, sig, true);
    const uint8_t *id = pgpDigParamsSignID(sig);
    char keyid[17] = "";
    if (id)
        hex_encode(id, 8, false, keyid);
    if (rc == RPMRC_NOKEY)
        return lapis_err(ctx, LAPIS_E_SIGNATURE,
                         "%s: signed by unknown key %s, not by a key in %s; "
                         "refusing to trust it", what, keyid, tk->from);
    return lapis_err(ctx, LAPIS_E_SIGNATURE,
                     "%s: BAD signature (key %s): the file was altered or the signature is forged",
                     what, keyid);
}
