/*
 * Trust: which OpenPGP keys a repository's signatures must verify against.
 *
 * A repo with gpgkey= trusts exactly those keys (a stricter rule than rpm's
 * "any key in the rpmdb"). A repo without gpgkey= trusts the keys already in
 * the root's rpm keyring, as rpm and dnf do: keys shipped in a release
 * package or imported by provisioning with `rpmkeys --import`.
 *
 * gpgkey= keys are pinned on first use: their fingerprints are recorded in
 * ROOT/var/lib/lapis/keys/<repoid>.fpr, and a later refresh that offers a
 * different key is refused until the administrator accepts it with
 * --setopt=<repoid>.pinned_key_reset=1. A key swapped on the server (with
 * repomd.xml re-signed by it) is then an error, not a silent change.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <rpm/header.h>
#include <rpm/rpmdb.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmmacro.h>
#include <rpm/rpmpgp.h>
#include <rpm/rpmts.h>

#include "pkg/trust.h"

/* rpm keeps its configuration in process-global macros; read them once and
 * point the rpmdb at ROOT/var/lib/rpm (where libsolv reads it), whatever
 * the host's %_dbpath says. */
void lapis_rpm_init(void)
{
    static bool done;
    if (done)
        return;
    rpmReadConfigFiles(NULL, NULL);
    rpmPushMacro(NULL, "_dbpath", NULL, "/var/lib/rpm", RMIL_CMDLINE);
    done = true;
}

/* ---- the root's rpm keyring ------------------------------------------------ */

/* Armored keys of the root's gpg-pubkey entries: rpm stores the armored
 * block it imported as the entry's description. */
static char **root_key_texts(lapis_ctx *ctx)
{
    const char *root = lapis_ctx_installroot(ctx);
    _cleanup_free_ char *db = path_in_root(root, "var/lib/rpm"); /* where lapis reads it */
    char **texts = xcalloc(1, sizeof(char *));
    Header h;

    if (!lapis_rpmdb_present(db))
        return texts; /* no rpmdb yet: no keys (and opening it would create one) */
    lapis_rpm_init();
    rpmts ts = rpmtsCreate();
    rpmtsSetRootDir(ts, root);
    rpmdbMatchIterator mi = rpmtsInitIterator(ts, RPMDBI_NAME, "gpg-pubkey", 0);
    while (mi && (h = rpmdbNextIterator(mi))) {
        const char *d = headerGetString(h, RPMTAG_DESCRIPTION);
        if (d && strstr(d, "-----BEGIN PGP PUBLIC KEY BLOCK-----"))
            strv_push(&texts, xstrdup(d));
    }
    rpmdbFreeIterator(mi);
    rpmtsFree(ts);
    return texts;
}

/* One text per file, "" for one that cannot be read, so texts[i] is gpgkeys[i]. */
static char **read_key_files(char *const *paths)
{
    char **texts = xcalloc(1, sizeof(char *));
    for (size_t i = 0; paths[i]; i++) {
        char *text = NULL;
        if (read_file(paths[i], LAPIS_KEY_MAX, &text, NULL) < 0)
            text = xstrdup("");
        strv_push(&texts, text);
    }
    return texts;
}

void lapis_trusted_keys_clear(struct lapis_trusted_keys *tk)
{
    lapis_strv_free(tk->texts);
    lapis_sigpolicy_keys_free(tk->facts);
    free(tk->from);
    memset(tk, 0, sizeof(*tk));
}

int lapis_trusted_keys_load(lapis_ctx *ctx, struct lapis_repo *r, char *const *key_files,
                            struct lapis_trusted_keys *ret)
{
    int policy = r ? r->opts.signature_policy : ctx->conf.repo.signature_policy;
    struct lapis_trusted_keys tk = { .own = key_files != NULL };
    int rc;

    tk.texts = key_files ? read_key_files(key_files) : root_key_texts(ctx);
    tk.from = key_files ? xstrdup("the repo's gpgkey")
                        : xasprintf("the rpm keyring of %s", lapis_ctx_installroot(ctx));
    if ((rc = lapis_sigpolicy_load_keys(ctx, policy, tk.texts, &tk.facts)) < 0) {
        lapis_trusted_keys_clear(&tk);
        return rc;
    }
    *ret = tk;
    return 0;
}

/* ---- pinning --------------------------------------------------------------- */

static char *pin_path(lapis_ctx *ctx, const struct lapis_repo *r)
{
    _cleanup_free_ char *dir = path_join(lapis_ctx_installroot(ctx), "var/lib/lapis/keys");
    _cleanup_free_ char *name = xasprintf("%s.fpr", r->id);
    return path_join(dir, name);
}

static int add_fingerprint(const uint8_t *pkt, size_t len, void *ud)
{
    uint8_t *fp = NULL;
    size_t fplen = 0;
    if (pgpPubkeyFingerprint(pkt, len, &fp, &fplen) != 0)
        return 0;
    char *hex = xcalloc(1, 2 * fplen + 1);
    for (size_t i = 0; i < fplen; i++)
        sprintf(hex + 2 * i, "%02X", fp[i]);
    free(fp);
    if (strv_contains(*(char ***)ud, hex))
        free(hex);
    else
        strv_push(ud, hex);
    return 1;
}

/* Primary key fingerprints in the texts, upper-case hex. */
static char **fingerprints(char *const *texts)
{
    char **fprs = xcalloc(1, sizeof(char *));
    for (size_t i = 0; texts && texts[i]; i++)
        lapis_foreach_key_packet(texts[i], add_fingerprint, &fprs);
    return fprs;
}

static char **read_pin(lapis_ctx *ctx, const struct lapis_repo *r)
{
    _cleanup_free_ char *path = pin_path(ctx, r);
    _cleanup_free_ char *text = NULL;
    if (read_file(path, 1 << 16, &text, NULL) < 0)
        return NULL;
    return strv_split(text, " \t\n");
}

static char *joined(char *const *v)
{
    size_t n = 1;
    for (size_t i = 0; v[i]; i++)
        n += strlen(v[i]) + 2;
    char *s = xcalloc(1, n);
    for (size_t i = 0; v[i]; i++) {
        if (i)
            strcat(s, ", ");
        strcat(s, v[i]);
    }
    return s;
}

/* http:// and ftp:// have no transport security (https://, ftps://, file:// do). */
static const char *plain_scheme(const char *url)
{
    if (strncasecmp(url, "http://", 7) == 0)
        return "http";
    if (strncasecmp(url, "ftp://", 6) == 0)
        return "ftp";
    return NULL;
}

static void warn_plain_transport(lapis_ctx *ctx, const struct lapis_repo *r, char *const *pinned)
{
    _cleanup_free_ char *pins = pinned ? joined(pinned) : NULL;
    for (size_t i = 0; r->gpgkeys && r->gpgkeys[i]; i++) {
        const char *scheme = plain_scheme(r->gpgkeys[i]);
        if (!scheme)
            continue;
        if (pins)
            lapis_log(ctx, LAPIS_LOG_WARNING, "repo %s: gpgkey %s was fetched over plain %s "
                      "(unencrypted); harmless here, the key is pinned (%s) and a different "
                      "key would be refused", r->id, r->gpgkeys[i], scheme, pins);
        else
            lapis_log(ctx, LAPIS_LOG_WARNING, "repo %s: gpgkey %s was fetched over plain %s "
                      "(unencrypted): anyone on the network path could have replaced it, and "
                      "no pin guards it yet (makecache or the first install pins the key as "
                      "received); use https or a file:// key", r->id, r->gpgkeys[i], scheme);
    }
}

int lapis_trust_pin_check(lapis_ctx *ctx, struct lapis_repo *r, char *const *texts, bool fetched)
{
    _cleanup_strv_ char **pinned = read_pin(ctx, r);
    _cleanup_strv_ char **now = fingerprints(texts);

    if (fetched)
        warn_plain_transport(ctx, r, r->opts.pinned_key_reset ? NULL : pinned);
    if (!pinned || !pinned[0] || r->opts.pinned_key_reset)
        return 0;
    for (size_t i = 0; now[i]; i++) {
        if (strv_contains(pinned, now[i]))
            continue;
        _cleanup_free_ char *was = joined(pinned);
        _cleanup_free_ char *is = joined(now);
        return lapis_err(ctx, LAPIS_E_SIGNATURE, "repo %s: its gpgkey changed: pinned key %s, "
                         "now offered %s; refusing the repository. If the new key is genuine, "
                         "accept it with: lapis --setopt=%s.pinned_key_reset=1 makecache --refresh",
                         r->id, was, is, r->id);
    }
    return 0;
}

void lapis_trust_pin_record(lapis_ctx *ctx, struct lapis_repo *r, char *const *texts)
{
    _cleanup_strv_ char **pinned = read_pin(ctx, r);
    _cleanup_strv_ char **now = fingerprints(texts);
    _cleanup_free_ char *path = pin_path(ctx, r);
    _cleanup_free_ char *dir = path_join(lapis_ctx_installroot(ctx), "var/lib/lapis/keys");
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int rc;

    if (!now[0] || (pinned && pinned[0] && !r->opts.pinned_key_reset))
        return;
    for (size_t i = 0; now[i]; i++)
        len += strlen(now[i]) + 1;
    text = xcalloc(1, len + 1);
    for (size_t i = 0; now[i]; i++)
        strcat(strcat(text, now[i]), "\n");
    if ((rc = mkdir_p(dir, 0755)) < 0 || (rc = write_file_atomic(path, text, len)) < 0) {
        /* An unprivileged run on a root it cannot write: the next run pins. */
        lapis_log(ctx, LAPIS_LOG_DEBUG, "repo %s: cannot record the key pin %s: %s", r->id, path,
                  strerror(-rc));
        return;
    }
    _cleanup_free_ char *all = joined(now);
    lapis_log(ctx, r->opts.pinned_key_reset ? LAPIS_LOG_INFO : LAPIS_LOG_DEBUG,
              "repo %s: gpgkey pinned to %s", r->id, all);
}
