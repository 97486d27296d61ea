/* Which OpenPGP keys a repository's signatures must verify against (trust.c),
 * and the signature policy applied on top of librpm's check (sigpolicy.c). */
#ifndef LAPIS_TRUST_H
#define LAPIS_TRUST_H
#include <rpm/rpmpgp.h>
#include <rpm/rpmtypes.h>

#include "pkg/internal.h"

/* ---- sigpolicy.c ---------------------------------------------------------- */

typedef struct lapis_keyfacts lapis_keyfacts;
/* What GnuPG says about the keys in these armored texts; *ret is NULL (and
 * every check passes) under signature_policy=legacy. */
int lapis_sigpolicy_load_keys(lapis_ctx *ctx, int policy, char *const *texts, lapis_keyfacts **ret);
void lapis_sigpolicy_keys_free(lapis_keyfacts *kf);
/* The context's remembered key facts (lapis_ctx.sigmemo). */
struct lapis_sigmemo;
void lapis_sigpolicy_memo_free(struct lapis_sigmemo *m);
/* Refuse (LAPIS_E_SIGNATURE, message naming WHAT and the override) a signature
 * the policy does not accept; kf NULL accepts everything. Before librpm has
 * verified it (verified false), a signature by none of the keys passes here:
 * the verification reports it; after, such a key is refused (gpg rejected it). */
int lapis_sigpolicy_check(lapis_ctx *ctx, const char *what, const lapis_keyfacts *kf,
                          pgpDigParams sig, bool verified);
/* The same for every signature in a package header. */
int lapis_sigpolicy_check_header(lapis_ctx *ctx, const char *what, const lapis_keyfacts *kf,
                                 Header h, bool verified);
/* How many keys and subkeys GnuPG found (0 under legacy). */
size_t lapis_sigpolicy_nkeys(const lapis_keyfacts *kf);
/* May the key with this primary fingerprint be imported into the root's keyring? */
bool lapis_sigpolicy_key_ok(const lapis_keyfacts *kf, const char *fpr);

/* ---- trust.c -------------------------------------------------------------- */

/* The keys one repository's signatures are checked against. */
struct lapis_trusted_keys {
    char **texts;           /* armored public key blocks */
    lapis_keyfacts *facts;  /* for the policy; NULL under legacy */
    bool own;               /* the repo's gpgkey= (else: the root's rpm keyring) */
    char *from;             /* for messages: "the repo's gpgkey", "the rpm keyring of /r" */
};
void lapis_trusted_keys_clear(struct lapis_trusted_keys *tk);
/* r NULL: command-line packages (localpkg_gpgcheck). key_files: the repo's
 * downloaded gpgkey files, or NULL to use the root's rpm keyring. */
int lapis_trusted_keys_load(lapis_ctx *ctx, struct lapis_repo *r, char *const *key_files,
                            struct lapis_trusted_keys *ret);

/* The repo's key pin (ROOT/var/lib/lapis/keys/ID.fpr): refuse keys other than
 * the pinned ones; warn about keys fetched over plain http or ftp (fetched:
 * they were downloaded just now). */
int lapis_trust_pin_check(lapis_ctx *ctx, struct lapis_repo *r, char *const *texts, bool fetched);
/* Record the pin once the keys have been used successfully (first use or reset). */
void lapis_trust_pin_record(lapis_ctx *ctx, struct lapis_repo *r, char *const *texts);

/* rpm's global configuration, once: the rpmdb is ROOT/var/lib/rpm. */
void lapis_rpm_init(void);
#endif
