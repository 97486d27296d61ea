/*
 * Signature policy: which valid OpenPGP signatures are still refused.
 *
 * librpm 4.18 checks that a signature is mathematically valid and nothing
 * else: SHA-1 digests, DSA and short RSA keys, revoked keys and signatures
 * made after a key expired all pass. This module adds those checks, and is
 * the only user of GPGME. Key facts (algorithm, size, revocation, expiry of
 * the key and each subkey) come from GnuPG itself, run by GPGME in a private
 * temporary GNUPGHOME that is removed afterwards (never the user's keyring);
 * signature facts (digest, creation time, issuer) come from librpm's packet
 * parser. The cryptographic check itself stays with librpm.
 *
 * signature_policy=default refuses all of the above (Fedora's and RHEL 9's
 * crypto policies do the same); signature_policy=legacy skips this module.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <gpgme.h>
#include <rpm/header.h>
#include <rpm/rpmpgp.h>
#include <rpm/rpmtag.h>

#include "pkg/trust.h"
#include "shared/digest.h"

struct keyfact {
    char keyid[17];     /* 16 hex digits, upper case (GPGME's form) */
    char fpr[41];       /* of the primary key */
    bool primary;
    gpgme_pubkey_algo_t algo;
    unsigned bits;
    bool revoked;       /* this subkey or its primary key */
    long long expires;  /* earliest of subkey and primary expiry; 0 = never */
};

struct lapis_keyfacts {
    struct keyfact *k;
    size_t n;
};

void lapis_sigpolicy_keys_free(lapis_keyfacts *kf)
{
    if (!kf)
        return;
    free(kf->k);
    free(kf);
}

/* ---- key facts from GnuPG ------------------------------------------------ */

#define HOME_PREFIX "lapis-sigpolicy-"

static void add_key_facts(lapis_keyfacts *kf, gpgme_key_t key)
{
    gpgme_subkey_t prim = key->subkeys;
    for (gpgme_subkey_t sk = key->subkeys; sk; sk = sk->next) {
        struct keyfact f = { .primary = sk == prim, .algo = sk->pubkey_algo,
                             .bits = sk->length, .revoked = sk->revoked || key->revoked,
                             .expires = sk->expires };
        if (prim->expires && (!f.expires || prim->expires < f.expires))
            f.expires = prim->expires;
        snprintf(f.keyid, sizeof(f.keyid), "%s", sk->keyid ? sk->keyid : "");
        snprintf(f.fpr, sizeof(f.fpr), "%s", prim->fpr ? prim->fpr : "");
        kf->k = xrealloc(kf->k, (kf->n + 1) * sizeof(*kf->k));
        kf->k[kf->n++] = f;
    }
}

static gpgme_error_t import_texts(gpgme_ctx_t g, char *const *texts)
{
    gpgme_error_t e = 0;
    for (size_t i = 0; texts && texts[i] && !e; i++) {
        gpgme_data_t d;
        if (!*texts[i])
            continue;
        if ((e = gpgme_data_new_from_mem(&d, texts[i], strlen(texts[i]), 0)))
            break;
        e = gpgme_op_import(g, d);
        gpgme_data_release(d);
    }
    return e;
}

static gpgme_error_t list_keys(gpgme_ctx_t g, lapis_keyfacts *kf)
{
    gpgme_key_t key;
    gpgme_error_t e = gpgme_op_keylist_start(g, NULL, 0);
    while (!e && !(e = gpgme_op_keylist_next(g, &key))) {
        add_key_facts(kf, key);
        gpgme_key_unref(key);
    }
    gpgme_op_keylist_end(g);
    return gpgme_err_code(e) == GPG_ERR_EOF ? 0 : e;
}

/* Once per process. gpg is found on PATH: asking gpgconf first, as GPGME
 * does by default, costs several process runs per lapis run. */
static void gpgme_init(void)
{
    static bool done;
    if (done)
        return;
    gpgme_set_global_flag("disable-gpgconf", "1");
    gpgme_check_version(NULL);
    done = true;
}

/* Import the keys into a throw-away GnuPG home and read back what gpg
 * makes of them. */
static gpgme_error_t examine_keys(const char *home, char *const *texts, lapis_keyfacts *kf)
{
    gpgme_ctx_t g = NULL;
    gpgme_error_t e;

    gpgme_init();
    if ((e = gpgme_new(&g)))
        return e;
    if (!(e = gpgme_set_protocol(g, GPGME_PROTOCOL_OpenPGP)) &&
        !(e = gpgme_ctx_set_engine_info(g, GPGME_PROTOCOL_OpenPGP, NULL, home)) &&
        !(e = gpgme_set_keylist_mode(g, GPGME_KEYLIST_MODE_LOCAL)) &&
        !(e = import_texts(g, texts)))
        e = list_keys(g, kf);
    gpgme_release(g);
    return e;
}

static int gnupg_examine(lapis_ctx *ctx, char *const *texts, lapis_keyfacts **ret)
{
    lapis_keyfacts *kf;
    gpgme_error_t e;

    /* Short (gpg's socket paths must fit) and named by our pid, so homes of
     * runs killed while gpg worked are swept by the next one. */
    sweep_dead_owner_dirs("/tmp", HOME_PREFIX, 60);
    _cleanup_free_ char *home = xasprintf("/tmp/" HOME_PREFIX "%ld-XXXXXX", (long)getpid());
    if (!mkdtemp(home))
        return lapis_err(ctx, -errno, "cannot create a temporary GnuPG home: %s", strerror(errno));
    kf = xcalloc(1, sizeof(*kf));
    /* Importing public keys needs no gpg-agent; without this gpg starts one
     * that would outlive the home directory. */
    _cleanup_free_ char *conf = path_join(home, "gpg.conf");
    if (write_file_atomic(conf, "no-autostart\n", 13) < 0)
        e = gpgme_error(GPG_ERR_EIO);
    else
        e = examine_keys(home, texts, kf);
    rm_rf(home, NULL);
    if (e) {
        lapis_sigpolicy_keys_free(kf);
        return lapis_err(ctx, LAPIS_E_SIGNATURE, "cannot examine OpenPGP keys with GnuPG: %s "
                         "(is gpg installed? --setopt=signature_policy=legacy skips the policy)",
                         gpgme_strerror(e));
    }
    *ret = kf;
    return 0;
}

static lapis_keyfacts *keyfacts_dup(const lapis_keyfacts *kf)
{
    lapis_keyfacts *c = xcalloc(1, sizeof(*c));
    c->n = kf->n;
    c->k = xmalloc((kf->n ? kf->n : 1) * sizeof(*c->k));
    if (kf->n) /* k may be NULL when no key was found */
        memcpy(c->k, kf->k, kf->n * sizeof(*c->k));
    return c;
}

static void texts_digest(char *const *texts, char *ret_hex)
{
    lapis_hasher *h = lapis_hasher_new(LAPIS_CHK_SHA256);
    for (size_t i = 0; texts && texts[i]; i++)
        lapis_hasher_update(h, texts[i], strlen(texts[i]) + 1); /* with the NUL: a separator */
    lapis_hasher_final_hex(h, ret_hex, 65);
    lapis_hasher_free(h);
}

/* Key facts depend on the key texts alone, so they are remembered for the
 * context's life: a transaction checks signatures, then imports the same keys
 * after rpm's test run, and gpg (tens of ms a run) is asked once. */
#define MEMO_MAX 16
struct lapis_sigmemo {
    size_t n;
    struct {
        char digest[65];
        lapis_keyfacts *kf;
    } e[MEMO_MAX];
};

void lapis_sigpolicy_memo_free(struct lapis_sigmemo *m)
{
    for (size_t i = 0; m && i < m->n; i++)
        lapis_sigpolicy_keys_free(m->e[i].kf);
    free(m);
}

static void memo_add(lapis_ctx *ctx, const char *digest, const lapis_keyfacts *kf)
{
    if (!ctx->sigmemo)
        ctx->sigmemo = xcalloc(1, sizeof(*ctx->sigmemo));
    struct lapis_sigmemo *m = ctx->sigmemo;
    if (m->n == MEMO_MAX)
        return;
    memcpy(m->e[m->n].digest, digest, 65);
    m->e[m->n++].kf = keyfacts_dup(kf);
}

static const lapis_keyfacts *memo_find(lapis_ctx *ctx, const char *digest)
{
    for (size_t i = 0; ctx->sigmemo && i < ctx->sigmemo->n; i++)
        if (strcmp(ctx->sigmemo->e[i].digest, digest) == 0)
            return ctx->sigmemo->e[i].kf;
    return NULL;
}

/* ---- key facts on disk ---------------------------------------------------
 * The facts are a function of the key texts alone (expiry is a date, judged
 * against the clock at check time), so CACHEDIR/keyfacts/SHA256-OF-TEXTS keeps
 * them across runs: gpg (two process runs per key set, ~50 ms) is asked once
 * per key set, not once per repo per run. Content-addressed and written
 * atomically; a file that does not parse is ignored and rewritten. */

#define FACT_FMT "%16s %40s %d %d %u %d %lld"

static char *facts_path(lapis_ctx *ctx, const char *digest)
{
    _cleanup_free_ char *dir = path_join(ctx->conf.cachedir, "keyfacts");
    return path_join(dir, digest);
}

static bool fact_parse(const char *line, struct keyfact *f)
{
    int primary, revoked, algo;
    if (sscanf(line, FACT_FMT, f->keyid, f->fpr, &primary, &algo, &f->bits, &revoked,
               &f->expires) != 7 || strlen(f->keyid) != 16 || strlen(f->fpr) != 40)
        return false;
    f->primary = primary == 1;
    f->revoked = revoked != 0;
    f->algo = (gpgme_pubkey_algo_t)algo;
    return f->expires >= 0;
}

static lapis_keyfacts *facts_read(lapis_ctx *ctx, const char *digest)
{
    _cleanup_free_ char *path = facts_path(ctx, digest), *buf = NULL;
    lapis_keyfacts *kf;
    size_t len;

    if (read_file(path, 1 << 20, &buf, &len) < 0 || strlen(buf) != len)
        return NULL;
    kf = xcalloc(1, sizeof(*kf));
    for (char *line = buf, *nl; *line; line = nl + 1) {
        struct keyfact f = { 0 };
        if (!(nl = strchr(line, '\n')) || !fact_parse(line, &f)) {
            lapis_sigpolicy_keys_free(kf);
            return NULL;
        }
        kf->k = xrealloc(kf->k, (kf->n + 1) * sizeof(*kf->k));
        kf->k[kf->n++] = f;
    }
    return kf;
}

static void facts_write(lapis_ctx *ctx, const char *digest, const lapis_keyfacts *kf)
{
    _cleanup_free_ char *path = facts_path(ctx, digest), *dir = NULL, *text = xstrdup("");

    for (size_t i = 0; i < kf->n; i++) {
        const struct keyfact *f = &kf->k[i];
        if (strlen(f->keyid) != 16 || strlen(f->fpr) != 40)
            return; /* a key gpg reported oddly: not worth remembering */
        char *t = xasprintf("%s%s %s %d %d %u %d %lld\n", text, f->keyid, f->fpr, f->primary,
                            (int)f->algo, f->bits, f->revoked, f->expires);
        free(text);
        text = t;
    }
    dir = path_join(ctx->conf.cachedir, "keyfacts");
    if (path_exists(ctx->conf.cachedir) && mkdir_p(dir, 0755) == 0)
        (void)write_file_atomic(path, text, strlen(text)); /* a cache: failing is harmless */
}

int lapis_sigpolicy_load_keys(lapis_ctx *ctx, int policy, char *const *texts, lapis_keyfacts **ret)
{
    char digest[65];
    int r;

    *ret = NULL;
    if (policy == LAPIS_SIGPOLICY_LEGACY)
        return 0;
    texts_digest(texts, digest);
    const lapis_keyfacts *known = memo_find(ctx, digest);
    if (known) {
        *ret = keyfacts_dup(known);
        return 0;
    }
    if (!(*ret = facts_read(ctx, digest))) {
        if ((r = gnupg_examine(ctx, texts, ret)) < 0)
            return r;
        facts_write(ctx, digest, *ret);
    }
    memo_add(ctx, digest, *ret);
    return 0;
}

/* ---- the policy ----------------------------------------------------------- */

/* keyid: 16 upper-case hex digits, GPGME's form. */
static const struct keyfact *find_fact(const lapis_keyfacts *kf, const char *keyid)
{
    for (size_t i = 0; i < kf->n; i++)
        if (strcmp(kf->k[i].keyid, keyid) == 0)
            return &kf->k[i];
    return NULL;
}

static const char *weak_hash(int algo)
{
    switch (algo) {
    case PGPHASHALGO_MD5: return "MD5";
    case PGPHASHALGO_SHA1: return "SHA-1";
    case PGPHASHALGO_RIPEMD160: return "RIPEMD-160";
    default: return NULL;
    }
}

static char *fmt_day(long long t)
{
    char buf[32];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
    return xstrdup(buf);
}

/* Why nothing signed by this key or subkey is accepted, or NULL. */
static char *key_reason(const struct keyfact *f)
{
    const char *kind = f->primary ? "key" : "subkey";
    if (f->revoked)
        return xasprintf("signed by %s %s, which is revoked", kind, f->keyid);
    if (f->algo == GPGME_PK_DSA)
        return xasprintf("signed by DSA %s %s; DSA keys are no longer accepted", kind, f->keyid);
    if ((f->algo == GPGME_PK_RSA || f->algo == GPGME_PK_RSA_S) && f->bits < 2048)
        return xasprintf("signed by %u-bit RSA %s %s, under the 2048 bits required", f->bits,
                         kind, f->keyid);
    return NULL;
}

/* Why the signature is refused, or NULL when it is acceptable. */
static char *policy_reason(const lapis_keyfacts *kf, pgpDigParams sig, bool verified)
{
    const uint8_t *id = pgpDigParamsSignID(sig);
    char keyid[17] = "";
    if (id)
        hex_encode(id, 8, true, keyid);
    const struct keyfact *f = find_fact(kf, keyid);
    const char *hash = weak_hash(pgpDigParamsAlgo(sig, PGPVAL_HASHALGO));
    long long made = pgpDigParamsCreationTime(sig);

    if (hash)
        return xasprintf("signature uses %s", hash);
    if (!f && verified) /* librpm knows the key, gpg did not take it: nothing to judge by */
        return xasprintf("signed by key %s, which GnuPG cannot examine", keyid);
    if (!f)
        return NULL; /* not one of these keys: the signature check reports it */
    char *why = key_reason(f);
    if (why || !f->expires || made <= f->expires)
        return why;
    _cleanup_free_ char *d1 = fmt_day(made);
    _cleanup_free_ char *d2 = fmt_day(f->expires);
    return xasprintf("signature made on %s, after %s %s expired on %s", d1,
                     f->primary ? "key" : "subkey", f->keyid, d2);
}

int lapis_sigpolicy_check(lapis_ctx *ctx, const char *what, const lapis_keyfacts *kf,
                          pgpDigParams sig, bool verified)
{
    if (!kf || !sig)
        return 0;
    _cleanup_free_ char *why = policy_reason(kf, sig, verified);
    if (!why)
        return 0;
    return lapis_err(ctx, LAPIS_E_SIGNATURE, "%s: %s, refused by signature_policy=default "
                     "(use --setopt=signature_policy=legacy to accept)", what, why);
}

/* rpm keeps a package's signatures in these header tags (merged into the
 * main header by rpmReadPackageFile). */
static const rpmTagVal sig_tags[] = { RPMTAG_RSAHEADER, RPMTAG_DSAHEADER, RPMTAG_SIGPGP,
                                      RPMTAG_SIGGPG };

int lapis_sigpolicy_check_header(lapis_ctx *ctx, const char *what, const lapis_keyfacts *kf,
                                 Header h, bool verified)
{
    int r = 0;
    for (size_t i = 0; kf && h && i < ARRAY_SIZE(sig_tags) && r == 0; i++) {
        struct rpmtd_s td;
        pgpDigParams sig = NULL;
        if (!headerGet(h, sig_tags[i], &td, HEADERGET_MINMEM))
            continue;
        if (pgpPrtParams(td.data, td.count, PGPTAG_SIGNATURE, &sig) == 0)
            r = lapis_sigpolicy_check(ctx, what, kf, sig, verified);
        pgpDigParamsFree(sig);
        rpmtdFreeData(&td);
    }
    return r;
}

size_t lapis_sigpolicy_nkeys(const lapis_keyfacts *kf)
{
    return kf ? kf->n : 0;
}

/* Whether a key may go into the root's rpm keyring at all: not when its
 * primary key is revoked, DSA or short RSA (rpm itself would trust it). */
bool lapis_sigpolicy_key_ok(const lapis_keyfacts *kf, const char *fpr)
{
    for (size_t i = 0; kf && i < kf->n; i++) {
        const struct keyfact *f = &kf->k[i];
        if (!f->primary || strcasecmp(f->fpr, fpr) != 0)
            continue;
        _cleanup_free_ char *why = key_reason(f);
        return !why;
    }
    return true;
}
