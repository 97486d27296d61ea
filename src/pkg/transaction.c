/*
 * Running a resolved goal: download, verify, then one librpm transaction
 * into the installroot, recorded in history.
 *
 * Order matters for "all or nothing": every package is downloaded and
 * checked (size, digest, OpenPGP signature against *its own repo's* keys,
 * a stricter rule than rpm's "any key in the rpmdb", or with no gpgkey= the
 * root's rpm keyring, then the signature policy) before rpm is handed
 * anything, then rpm runs a test transaction (conflicts, disk space), and
 * only then the real one.
 *
 * rpm's own pre-install verification still runs in the real transaction.
 * When a package's payload is already covered by a checksum from
 * signature-verified metadata, rpm is told to skip re-hashing payloads
 * (header signatures are still checked): the one digest pass that is
 * redundant is dropped, no signature check is.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include <rpm/header.h>
#include <rpm/rpmdb.h>
#include <rpm/rpmkeyring.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmlog.h>
#include <rpm/rpmmacro.h>
#include <rpm/rpmpgp.h>
#include <rpm/rpmps.h>
#include <rpm/rpmts.h>
#include <rpm/rpmtypes.h>

#include "pkg/internal.h"
#include "pkg/goal.h"
#include "pkg/pkgfile.h"
#include "pkg/trust.h"

/* ---- librpm setup ------------------------------------------------------- */

struct rpmlog_state {
    lapis_ctx *ctx;
    char *last_error;
};

/* rpm's messages go through our log callback instead of straight to stderr;
 * the last error is kept to explain a failure. */
static int rpmlog_cb(rpmlogRec rec, rpmlogCallbackData data)
{
    struct rpmlog_state *st = data;
    rpmlogLvl lvl = rpmlogRecPriority(rec);
    _cleanup_free_ char *msg = xstrdup(rpmlogRecMessage(rec));
    strstrip(msg);
    if (lvl <= RPMLOG_ERR) {
        free(st->last_error);
        st->last_error = xstrdup(msg);
        lapis_log(st->ctx, LAPIS_LOG_WARNING, "rpm: %s", msg);
    } else if (lvl <= RPMLOG_WARNING) {
        lapis_log(st->ctx, LAPIS_LOG_WARNING, "rpm: %s", msg);
    } else {
        lapis_log(st->ctx, LAPIS_LOG_DEBUG, "rpm: %s", msg);
    }
    return 0;
}

static void tsfreep(rpmts *ts) { if (*ts) rpmtsFree(*ts); }
#define _cleanup_ts_ _cleanup_(tsfreep)

static rpmts ts_for_root(lapis_ctx *ctx)
{
    rpmts ts = rpmtsCreate();
    rpmtsSetRootDir(ts, lapis_ctx_installroot(ctx));
    return ts;
}

/* ---- keys --------------------------------------------------------------- */

/* The repo's gpgkey files: from the metadata cache when repo_gpgcheck fetched
 * them with repomd.xml, else fetched now next to it. */
static int repo_key_files(lapis_ctx *ctx, struct lapis_repo *r, char ***ret, bool *ret_fetched)
{
    _cleanup_free_ char *dir = lapis_cache_repo_dir(ctx, r);
    char **paths = xcalloc(1, sizeof(char *));
    struct lapis_fetch_job *jobs = xcalloc(strv_length(r->gpgkeys) + 1, sizeof(*jobs));
    size_t njobs = 0;
    int rc = 0;

    for (size_t k = 0; r->gpgkeys && r->gpgkeys[k]; k++) {
        char *meta = r->solv_dir ? xasprintf("%s/gpgkey-%zu.asc", r->solv_dir, k) : NULL;
        if (meta && r->opts.repo_gpgcheck && path_exists(meta)) {
            strv_push(&paths, meta);
            continue;
        }
        free(meta);
        char *dest = xasprintf("%s/gpgkey-%zu.asc", dir, k);
        strv_push(&paths, dest);
        if (r->gpgkeys_fetched)
            continue; /* the import uses the bytes the packages were verified with */
        jobs[njobs++] = (struct lapis_fetch_job){
            .url = r->gpgkeys[k], .dest = dest, .expected_size = -1, .max_size = LAPIS_KEY_MAX,
            .what = "gpgkey",
            .sslverify = r->opts.sslverify, .sslcacert = r->opts.sslcacert,
        };
    }
    if (njobs) {
        struct lapis_fetch_opts o;
        lapis_fetch_opts_from(ctx, &o);
        if ((rc = mkdir_p(dir, 0755)) < 0)
            rc = lapis_err(ctx, rc, "cannot create %s: %s", dir, strerror(-rc));
        else if ((rc = lapis_fetch_run(&ctx->diag, jobs, njobs, &o)) < 0 && rc != -LAPIS_E_INTERRUPTED)
            rc = lapis_err(ctx, LAPIS_E_SIGNATURE, "repo %s: cannot fetch its gpgkey: %s", r->id,
                           lapis_ctx_error(ctx));
        for (size_t i = 0; i < njobs; i++)
            lapis_fetch_job_clear(&jobs[i]);
        r->gpgkeys_fetched = rc >= 0;
    }
    free(jobs);
    if (rc < 0) {
        lapis_strv_free(paths);
        return rc;
    }
    *ret = paths;
    *ret_fetched = njobs > 0;
    return 0;
}

struct keyimport {
    lapis_ctx *ctx;
    rpmts ts;           /* the root's */
    rpmKeyring keyring; /* this repo's, for our own signature checks */
    struct lapis_repo *repo;
    const char *source;
    bool import;        /* false for --downloadonly: the root is not touched */
    const lapis_keyfacts *facts;
    int rc;
};

static bool key_in_rpmdb(rpmts ts, const char *keyid8)
{
    rpmdbMatchIterator mi = rpmtsInitIterator(ts, RPMDBI_NAME, "gpg-pubkey", 0);
    Header h;
    bool found = false;
    while (mi && (h = rpmdbNextIterator(mi)) && !found)
        found = strcasecmp(headerGetString(h, RPMTAG_VERSION), keyid8) == 0;
    rpmdbFreeIterator(mi);
    return found;
}

/* One public key: into this repo's keyring, and into the root's rpmdb if it is
 * not there yet, after asking (the fingerprint is shown so it can be checked). */
static int import_key_packet(const uint8_t *pkt, size_t len, void *ud)
{
    struct keyimport *ki = ud;
    pgpKeyID_t keyid;
    char keyid8[9];
    pgpDigParams params = NULL;

    if (lapis_keyring_add_packet(pkt, len, ki->keyring) == 0 || pgpPubkeyKeyID(pkt, len, keyid) != 0)
        return 0;
    hex_encode(keyid + 4, 4, false, keyid8); /* rpm's gpg-pubkey version */
    if (!ki->import || key_in_rpmdb(ki->ts, keyid8))
        return 1;
    _cleanup_free_ char *fpr = lapis_key_fingerprint(pkt, len);
    const char *fphex = fpr ? fpr : "";
    if (!lapis_sigpolicy_key_ok(ki->facts, fphex)) {
        /* rpm would trust it for every package; its signatures are refused anyway. */
        lapis_log(ki->ctx, LAPIS_LOG_WARNING, "repo %s: key 0x%s is revoked, DSA or under 2048 "
                  "bits; not importing it into the rpm keyring (signature_policy=default)",
                  ki->repo->id, keyid8);
        return 1;
    }
    pgpPrtParams(pkt, len, PGPTAG_PUBLIC_KEY, &params);
    const char *uid = params ? pgpDigParamsUserID(params) : NULL;
    bool yes = lapis_confirm(ki->ctx, "Importing OpenPGP key 0x%s:\n Userid     : \"%s\"\n "
                             "Fingerprint: %s\n From       : %s\n Into       : the rpm keyring of %s",
                             keyid8, uid ? uid : "?", fphex, ki->source,
                             lapis_ctx_installroot(ki->ctx));
    pgpDigParamsFree(params);
    if (!yes) {
        ki->rc = lapis_err(ki->ctx, LAPIS_E_ABORTED, "repo %s: key 0x%s was not imported, so its "
                           "packages cannot be verified; answer yes (or use -y) to import it",
                           ki->repo->id, keyid8);
        return ki->rc;
    }
    if (rpmtsImportPubkey(ki->ts, pkt, len) != RPMRC_OK) {
        ki->rc = lapis_err(ki->ctx, LAPIS_E_SIGNATURE, "repo %s: cannot import key 0x%s into the "
                           "rpm database of %s", ki->repo->id, keyid8, lapis_ctx_installroot(ki->ctx));
        return ki->rc;
    }
    lapis_log(ki->ctx, LAPIS_LOG_INFO, "Imported OpenPGP key 0x%s (%s)", keyid8, fphex);
    return 1;
}

/* The keys packages from one repo (NULL: the command line) are checked
 * against, as an rpm keyring plus what the signature policy needs. */
struct pkg_keys {
    struct lapis_repo *repo;
    rpmKeyring keyring;
    struct lapis_trusted_keys tk;
};

static void pkg_keys_clear(struct pkg_keys *pk)
{
    if (pk->keyring)
        rpmKeyringFree(pk->keyring);
    lapis_trusted_keys_clear(&pk->tk);
}

/* With gpgkey=: fetch, check the pin, import into the root after asking. */
static int own_keys(lapis_ctx *ctx, rpmts root_ts, struct lapis_repo *r, bool import,
                    struct pkg_keys *pk)
{
    _cleanup_strv_ char **files = NULL;
    bool fetched = false;
    int n = 0, rc;

    if ((rc = repo_key_files(ctx, r, &files, &fetched)) < 0 ||
        (rc = lapis_trusted_keys_load(ctx, r, files, &pk->tk)) < 0 ||
        (rc = lapis_trust_pin_check(ctx, r, pk->tk.texts, fetched)) < 0)
        return rc;
    for (size_t i = 0; pk->tk.texts[i]; i++) {
        struct keyimport ki = { ctx, root_ts, pk->keyring, r, r->gpgkeys[i], import,
                                pk->tk.facts, 0 };
        rc = lapis_foreach_key_packet(pk->tk.texts[i], import_key_packet, &ki);
        if (ki.rc < 0 || rc < 0)
            return ki.rc < 0 ? ki.rc : rc;
        n += rc;
    }
    /* rpm 4.18 cannot load some keys (a revoked subkey); the policy says why. */
    if (n == 0 && lapis_sigpolicy_nkeys(pk->tk.facts) == 0)
        return lapis_err(ctx, LAPIS_E_SIGNATURE, "repo %s: no usable OpenPGP public key in its "
                         "gpgkey; check the repo's gpgkey setting", r->id);
    if (import)
        lapis_trust_pin_record(ctx, r, pk->tk.texts);
    return 0;
}

/* Without gpgkey= (or for command-line packages): the root's rpm keyring. */
static int root_keys(lapis_ctx *ctx, struct lapis_repo *r, struct pkg_keys *pk)
{
    int n = 0, rc;

    if ((rc = lapis_trusted_keys_load(ctx, r, NULL, &pk->tk)) < 0)
        return rc;
    for (size_t i = 0; pk->tk.texts[i]; i++)
        n += lapis_foreach_key_packet(pk->tk.texts[i], lapis_keyring_add_packet, pk->keyring);
    if (n > 0 || pk->tk.texts[0])
        return 0;
    const char *root = lapis_ctx_installroot(ctx);
    if (!r)
        return lapis_err(ctx, LAPIS_E_SIGNATURE, "localpkg_gpgcheck is on but the rpm keyring of "
                         "%s holds no key; import the vendor's key with rpmkeys --root %s "
                         "--import KEYFILE", root, root);
    return lapis_err(ctx, LAPIS_E_SIGNATURE, "repo %s: gpgcheck is on, no gpgkey is set and the "
                     "rpm keyring of %s holds no key; add gpgkey= to the repo or import its key "
                     "with rpmkeys --root %s --import KEYFILE (--nogpgcheck skips checks)",
                     r->id, root, root);
}

static int prepare_keys(lapis_ctx *ctx, rpmts root_ts, struct lapis_repo *r, bool import,
                        struct pkg_keys *pk)
{
    *pk = (struct pkg_keys){ .repo = r, .keyring = rpmKeyringNew() };
    if (r && r->gpgkeys && r->gpgkeys[0])
        return own_keys(ctx, root_ts, r, import, pk);
    return root_keys(ctx, r, pk);
}

/* ---- reading and verifying packages ------------------------------------ */

static bool pkg_needs_signature(lapis_ctx *ctx, const struct lapis_pkgfile *pf)
{
    if (ctx->nogpgcheck)
        return false;
    return pf->repo ? pf->repo->opts.gpgcheck : ctx->conf.localpkg_gpgcheck;
}

static bool header_is_signed(Header h)
{
    return headerIsEntry(h, RPMTAG_RSAHEADER) || headerIsEntry(h, RPMTAG_DSAHEADER);
}

/* Read the header (kept for the transaction); with keys, demand a valid
 * signature by one of them that the signature policy accepts. */
static int read_package(lapis_ctx *ctx, struct lapis_pkgfile *pf, const struct pkg_keys *pk,
                        struct rpmlog_state *ls)
{
    _cleanup_ts_ rpmts ts = rpmtsCreate();
    const char *nevra = pool_solvable2str(ctx->pool, pool_id2solvable(ctx->pool, pf->pkg));
    FD_t fd;
    rpmRC rc;

    if (pk)
        rpmtsSetKeyring(ts, pk->keyring);
    else
        rpmtsSetVSFlags(ts, rpmtsVSFlags(ts) | RPMVSF_MASK_NOSIGNATURES);
    fd = Fopen(pf->path, "r.ufdio");
    if (!fd || Ferror(fd)) {
        if (fd)
            Fclose(fd);
        return lapis_err(ctx, -EIO, "%s: cannot open %s", nevra, pf->path);
    }
    free(ls->last_error);
    ls->last_error = NULL;
    rc = rpmReadPackageFile(ts, fd, pf->path, &pf->hdr);
    Fclose(fd);
    const char *repo = pf->repo ? pf->repo->id : "command line";
    _cleanup_free_ char *what = xasprintf("package %s (repo %s)", nevra, repo);
    int r = pk ? lapis_sigpolicy_check_header(ctx, what, pk->tk.facts, pf->hdr, rc == RPMRC_OK) : 0;
    if (r < 0)
        return r;
    if (rc == RPMRC_NOKEY)
        return lapis_err(ctx, LAPIS_E_SIGNATURE, "%s (repo %s): signed by a key that is not %s%s; "
                         "refusing it (nothing was installed)", nevra, repo,
                         pk->tk.own ? "" : "in ", pk->tk.from);
    if (rc != RPMRC_OK && rc != RPMRC_NOTTRUSTED)
        return lapis_err(ctx, LAPIS_E_SIGNATURE, "%s (repo %s): BAD signature or digest (%s); the "
                         "package was altered, refusing it (nothing was installed)", nevra, repo,
                         ls->last_error ? ls->last_error : "rpm could not read it");
    if (pk && !header_is_signed(pf->hdr))
        return lapis_err(ctx, LAPIS_E_SIGNATURE, "%s (repo %s): package is not signed but %s "
                         "is on; refusing it (nothing was installed; --nogpgcheck overrides)",
                         nevra, repo, pf->repo ? "gpgcheck" : "localpkg_gpgcheck");
    return 0;
}

/* Each repo's keys, prepared once, on first use (a repo none of the packages
 * comes from is never asked for its key). */
static int keys_for(lapis_ctx *ctx, rpmts root_ts, struct lapis_repo *r,
                    struct pkg_keys **keys, size_t *nkeys, const struct pkg_keys **ret)
{
    for (size_t k = 0; k < *nkeys; k++)
        if ((*keys)[k].repo == r) {
            *ret = &(*keys)[k];
            return 0;
        }
    *keys = xrealloc(*keys, (*nkeys + 1) * sizeof(**keys));
    struct pkg_keys *pk = &(*keys)[(*nkeys)++];
    *ret = pk;
    if (r)
        r->gpgkeys_fetched = false; /* each run fetches afresh; its import reuses the files */
    return prepare_keys(ctx, root_ts, r, false, pk);
}

/* Signatures are checked against each repo's own keys (or the root's keyring),
 * built here; the keys go into the root only later (import_repo_keys). */
static int verify_packages(lapis_ctx *ctx, rpmts root_ts, struct lapis_pkgfile *f, size_t n,
                           struct rpmlog_state *ls, bool *ret_payload_covered)
{
    struct pkg_keys *keys = NULL;
    size_t nkeys = 0;
    int r = 0;
    bool covered = true;

    for (size_t i = 0; i < n && r >= 0; i++) {
        struct lapis_pkgfile *pf = &f[i];
        const struct pkg_keys *pk = NULL;
        lapis_progress(ctx, LAPIS_PROGRESS_VERIFY, pf->path, i, n);
        if (pkg_needs_signature(ctx, pf) &&
            (r = keys_for(ctx, root_ts, pf->repo, &keys, &nkeys, &pk)) < 0)
            break;
        r = read_package(ctx, pf, pk, ls);
        /* Payload re-hashing is redundant only for repo packages whose checksum came
         * from signature-verified metadata and whose header signature was checked. */
        covered &= !pf->local && pk && pf->repo->opts.repo_gpgcheck;
    }
    lapis_progress(ctx, LAPIS_PROGRESS_VERIFY, NULL, n, n);
    for (size_t k = 0; k < nkeys; k++)
        pkg_keys_clear(&keys[k]);
    free(keys);
    *ret_payload_covered = covered;
    return r;
}

/* Import the keys of every repo whose packages are checked into the root's
 * rpmdb, where rpm's real transaction looks for them. Done after rpm's test
 * transaction, so a run that fails its checks leaves no key behind. */
static int import_repo_keys(lapis_ctx *ctx, rpmts root_ts, struct lapis_pkgfile *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct pkg_keys pk;
        size_t k = 0;
        int r;
        while (k < i && f[k].repo != f[i].repo)
            k++;
        if (k < i || !f[i].repo || !f[i].repo->gpgkeys[0] || !pkg_needs_signature(ctx, &f[i]))
            continue; /* without gpgkey= the keys are in the root already */
        r = prepare_keys(ctx, root_ts, f[i].repo, true, &pk);
        pkg_keys_clear(&pk);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ---- the rpm transaction ------------------------------------------------ */

struct notify_state {
    lapis_ctx *ctx;
    FD_t fd;
    size_t done, total;
};

static const char *script_name(rpmTagVal tag)
{
    switch (tag) {
    case RPMTAG_PREIN: return "%pre";
    case RPMTAG_POSTIN: return "%post";
    case RPMTAG_PREUN: return "%preun";
    case RPMTAG_POSTUN: return "%postun";
    case RPMTAG_PRETRANS: return "%pretrans";
    case RPMTAG_POSTTRANS: return "%posttrans";
    case RPMTAG_VERIFYSCRIPT: return "%verifyscript";
    default: return "a trigger scriptlet";
    }
}

static void *notify_cb(const void *arg, const rpmCallbackType what, const rpm_loff_t amount,
                       const rpm_loff_t total, fnpyKey key, rpmCallbackData data)
{
    struct notify_state *ns = data;
    Header h = (Header)arg;
    const char *name = h ? headerGetString(h, RPMTAG_NAME) : NULL;

    switch (what) {
    case RPMCALLBACK_INST_OPEN_FILE:
        ns->fd = Fopen((const char *)key, "r.ufdio");
        return ns->fd;
    case RPMCALLBACK_INST_CLOSE_FILE:
        if (ns->fd)
            Fclose(ns->fd);
        ns->fd = NULL;
        break;
    case RPMCALLBACK_INST_START:
    case RPMCALLBACK_UNINST_START: {
        /* The full NEVRA (dnf5's form): "Removing hello" after an upgrade to hello
         * read as if hello had gone; "Removing hello-0:1.0-1.x86_64" does not. */
        _cleanup_free_ char *nevra = h ? headerFormat(h, "%{NAME}-%{EPOCHNUM}:%{VERSION}-"
                                                      "%{RELEASE}.%{ARCH}", NULL) : NULL;
        lapis_progress(ns->ctx, what == RPMCALLBACK_INST_START ? LAPIS_PROGRESS_INSTALL
                                                               : LAPIS_PROGRESS_REMOVE,
                       nevra ? nevra : name, ++ns->done, ns->total);
        break;
    }
    case RPMCALLBACK_SCRIPT_ERROR: {
        /* amount is the scriptlet's tag; rpm has already logged the exit status.
         * NEVRA is a formatted tag: headerGetString() gives NULL for it. */
        _cleanup_free_ char *nevra = h ? headerGetAsString(h, RPMTAG_NEVRA) : NULL;
        _cleanup_free_ char *label = xasprintf("%s of %s", script_name((rpmTagVal)amount),
                                              nevra ? nevra : name ? name : "a package");
        lapis_progress(ns->ctx, LAPIS_PROGRESS_SCRIPT_ERROR, label, (unsigned long long)amount,
                       (unsigned long long)total);
        break;
    }
    default:
        break;
    }
    return NULL;
}

static struct lapis_pkgfile *file_of(struct lapis_pkgfile *f, size_t n, Id p)
{
    for (size_t i = 0; i < n; i++)
        if (f[i].pkg == p)
            return &f[i];
    return NULL;
}

static Header installed_header(rpmts ts, lapis_ctx *ctx, Id p)
{
    Repo *inst = ctx->pool->installed;
    unsigned int dbid;
    rpmdbMatchIterator mi;
    Header h = NULL;

    if (!inst->rpmdbid)
        return NULL;
    dbid = (unsigned int)inst->rpmdbid[p - inst->start];
    mi = rpmtsInitIterator(ts, RPMDBI_PACKAGES, &dbid, sizeof(dbid));
    if (mi && (h = rpmdbNextIterator(mi)))
        h = headerLink(h);
    rpmdbFreeIterator(mi);
    return h;
}

static enum lapis_action item_action(lapis_goal *g, Id p)
{
    for (size_t i = 0; i < g->nitems; i++)
        if (g->items[i].pkg == p)
            return g->items[i].action;
    return LAPIS_ACT_INSTALL;
}

static int add_elements(lapis_goal *g, rpmts ts, struct lapis_pkgfile *f, size_t n)
{
    lapis_ctx *ctx = g->ctx;
    Pool *pool = ctx->pool;
    Transaction *t = g->trans;

    for (int i = 0; i < t->steps.count; i++) {
        Id p = t->steps.elements[i];
        Id type = transaction_type(t, p, SOLVER_TRANSACTION_RPM_ONLY);
        const char *nevra = pool_solvable2str(pool, pool_id2solvable(pool, p));
        int rc = 0;

        if (type == SOLVER_TRANSACTION_IGNORE)
            continue;
        if (type == SOLVER_TRANSACTION_ERASE) {
            Header h = installed_header(ts, ctx, p);
            if (!h)
                return lapis_err(ctx, LAPIS_E_RPM, "%s is not in the rpm database any more; "
                                 "another tool changed it, run lapis again", nevra);
            rc = rpmtsAddEraseElement(ts, h, -1);
            headerFree(h);
        } else {
            struct lapis_pkgfile *pf = file_of(f, n, p);
            if (!pf || !pf->hdr)
                return lapis_err(ctx, LAPIS_E_RPM, "internal: no package file for %s", nevra);
            /* RPM_ONLY mode reports INSTALL for rpm -U and MULTIINSTALL for rpm -i
             * (installonly packages); reinstalls need rpm's own element type. */
            enum lapis_action act = item_action(g, p);
            if (act == LAPIS_ACT_REINSTALL)
                rc = rpmtsAddReinstallElement(ts, pf->hdr, pf->path);
            else
                /* rpm -U only where libsolv replaces something: a fresh install
                 * (a second arch of a multilib package) must not erase its namesake. */
                rc = rpmtsAddInstallElement(ts, pf->hdr, pf->path,
                                            type == SOLVER_TRANSACTION_INSTALL &&
                                                (act == LAPIS_ACT_UPGRADE ||
                                                 act == LAPIS_ACT_DOWNGRADE),
                                            NULL);
        }
        if (rc != 0)
            return lapis_err(ctx, LAPIS_E_RPM, "rpm refused %s", nevra);
    }
    return 0;
}

/* All of rpm's problems as one line each, joined; obsoletes notes are not problems. */
static char *problems_text(rpmts ts, int *ret_count)
{
    rpmps ps = rpmtsProblems(ts);
    rpmpsi psi = rpmpsInitIterator(ps);
    rpmProblem prob;
    char *out = NULL;
    int count = 0;

    while ((prob = rpmpsiNext(psi))) {
        if (rpmProblemGetType(prob) == RPMPROB_OBSOLETES)
            continue;
        char *s = rpmProblemString(prob);
        if (count < 5) {
            char *joined = out ? xasprintf("%s; %s", out, s) : xstrdup(s);
            free(out);
            out = joined;
        }
        count++;
        free(s);
    }
    if (count > 5) {
        char *joined = xasprintf("%s; and %d more", out, count - 5);
        free(out);
        out = joined;
    }
    rpmpsFreeIterator(psi);
    rpmpsFree(ps);
    if (ret_count)
        *ret_count = count;
    return out;
}

static rpmtransFlags trans_flags(lapis_ctx *ctx, unsigned run_flags)
{
    rpmtransFlags fl = RPMTRANS_FLAG_NONE;
    if ((run_flags & LAPIS_RUN_NODOCS) || strv_contains(ctx->conf.tsflags, "nodocs"))
        fl |= RPMTRANS_FLAG_NODOCS;
    if ((run_flags & LAPIS_RUN_NOSCRIPTS) || strv_contains(ctx->conf.tsflags, "noscripts"))
        fl |= RPMTRANS_FLAG_NOSCRIPTS | RPMTRANS_FLAG_NOTRIGGERS;
    if (strv_contains(ctx->conf.tsflags, "notriggers"))
        fl |= RPMTRANS_FLAG_NOTRIGGERS;
    return fl;
}

/* The real path of the directory rel (inside the root) is in, created if
 * missing; refused, before anything is created, if a symlink takes it outside
 * the root. (Plain paths, not openat2: valgrind and older kernels lack it.) */
static int rpmdb_parent(lapis_ctx *ctx, const char *rel, char **ret)
{
    const char *root = lapis_ctx_installroot(ctx);
    const char *slash = strrchr(rel, '/');
    _cleanup_free_ char *prel = slash ? xstrndup(rel, (size_t)(slash - rel)) : xstrdup("");
    _cleanup_free_ char *p = path_in_root(root, prel);
    _cleanup_free_ char *real = path_resolve(p);
    size_t n = strlen(root);
    int r;

    if (strcmp(root, "/") != 0 && (strncmp(real, root, n) != 0 || (real[n] != '/' && real[n])))
        return lapis_err(ctx, LAPIS_E_RPM, "%s leads outside the install root through a "
                         "symlink; lapis does not put the rpm database there", p);
    if ((r = mkdir_p(real, 0755)) < 0)
        return lapis_err(ctx, r, "cannot create %s: %s", real, strerror(-r));
    *ret = TAKE_PTR(real);
    return 0;
}

static int init_rpmdb_at(rpmts ts, const char *dbpath)
{
    rpmPushMacro(NULL, "_dbpath", NULL, dbpath, RMIL_CMDLINE);
    int rc = rpmtsInitDB(ts, 0644);
    rpmtsCloseDB(ts);
    rpmPopMacro(NULL, "_dbpath");
    return rc;
}

/* rpm creates a new rpmdb table by table; a run killed in between would leave
 * one that even "rpm -qa" cannot open. So build it under a temporary name
 * beside the real one and rename it into place whole. */
static int create_rpmdb(lapis_ctx *ctx, rpmts ts, const char *parent, const char *dir,
                        char **ret_made)
{
    _cleanup_free_ char *tmp = NULL;
    const char *root = lapis_ctx_installroot(ctx);
    size_t rootlen = strcmp(root, "/") == 0 ? 0 : strlen(root); /* rpm prefixes its root */
    int r;

    sweep_dead_owner_dirs(parent, ".rpm.new-", 0); /* left by runs killed right here */
    tmp = xasprintf("%s/.rpm.new-%d-XXXXXX", parent, (int)getpid());
    if (!mkdtemp(tmp))
        return lapis_err(ctx, -errno, "cannot create %s: %s", tmp, strerror(errno));
    chmod(tmp, 0755);
    if (init_rpmdb_at(ts, tmp + rootlen) != 0) {
        rm_rf(tmp, NULL);
        return lapis_err(ctx, LAPIS_E_RPM, "cannot create the rpm database in %s", dir);
    }
    /* rename() also replaces an empty directory standing in its place. */
    if (rename(tmp, dir) == 0) {
        *ret_made = xstrdup(dir);
        return 0;
    }
    r = -errno;
    rm_rf(tmp, NULL);
    if (lapis_rpmdb_present(dir)) /* another run made it first: theirs is complete too */
        return 0;
    /* A directory with other files in it (rpm's lock file): rpm fills it in place. */
    if ((r == -ENOTEMPTY || r == -EEXIST) && init_rpmdb_at(ts, dir + rootlen) == 0)
        return 0;
    return lapis_err(ctx, r, "cannot create the rpm database in %s: %s", dir, strerror(-r));
}

/* var/lib/rpm -> ../../usr/lib/sysimage/rpm, made before the db: a run killed
 * in between leaves a dangling link, which the next one follows. */
static int link_varlib_rpm(lapis_ctx *ctx, char **ret_made)
{
    _cleanup_free_ char *varlib = NULL, *link = NULL;
    int r;

    if ((r = rpmdb_parent(ctx, "var/lib/rpm", &varlib)) < 0)
        return r;
    link = path_join(varlib, "rpm");
    if (symlink("../../usr/lib/sysimage/rpm", link) == 0)
        *ret_made = TAKE_PTR(link);
    else if (errno != EEXIST)
        return lapis_err(ctx, -errno, "cannot create %s: %s", link, strerror(errno));
    return 0;
}

/* The root's rpmdb, created in the root's layout (rpmdb.c) when missing;
 * what this run made is returned so that it can be taken back. */
static int ensure_rpmdb(lapis_ctx *ctx, rpmts ts, char **ret_made_db, char **ret_made_link)
{
    _cleanup_free_ char *rel = NULL, *parent = NULL, *dir = NULL;
    bool link;
    int r;

    if ((r = lapis_rpmdb_locate(ctx, &rel, &link)) < 0)
        return r;
    if ((r = rpmdb_parent(ctx, rel, &parent)) < 0)
        return r;
    dir = path_join(parent, strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel);
    if (link && (r = link_varlib_rpm(ctx, ret_made_link)) < 0)
        return r;
    return lapis_rpmdb_present(dir) ? 0 : create_rpmdb(ctx, ts, parent, dir, ret_made_db);
}

/* A run that never reached rpm's real transaction leaves the root as it was:
 * the rpmdb it created (holding at most the keys) goes again. */
static void forget_new_rpmdb(rpmts ts, const char *db, const char *link)
{
    rpmtsCloseDB(ts);
    if (db)
        rm_rf(db, NULL);
    if (link)
        unlink(link);
}

/* "name;XXXXXXXX" for a name in bases: the temporary name rpm writes a file
 * under before renaming it into place (XXXXXXXX: the transaction id in hex). */
static bool is_rpm_tempname(const char *entry, char *const *bases)
{
    const char *semi = strrchr(entry, ';');
    if (!semi || strlen(semi + 1) != 8 || strspn(semi + 1, "0123456789abcdef") != 8)
        return false;
    for (size_t i = 0; bases[i]; i++)
        if (strlen(bases[i]) == (size_t)(semi - entry) && strncmp(entry, bases[i], (size_t)(semi - entry)) == 0)
            return true;
    return false;
}

static int remove_tempnames_in(lapis_ctx *ctx, const char *dn, char *const *bases)
{
    _cleanup_free_ char *dir = path_in_root(ctx->installroot, dn);
    DIR *d = opendir(dir);
    struct dirent *de;
    int removed = 0;
    if (!d)
        return 0;
    while ((de = readdir(d)))
        if (is_rpm_tempname(de->d_name, bases) && unlinkat(dirfd(d), de->d_name, 0) == 0)
            removed++;
    closedir(d);
    return removed;
}

/* After a run killed inside rpm, the half-written temporary files of the
 * packages it was installing are still there; rpm never removes them, and a
 * retry within the same second would collide with their names. Remove them
 * for every file this transaction installs (one directory scan per directory
 * of each package: files come sorted by path). */
static void remove_rpm_leftovers(lapis_ctx *ctx, rpmts ts)
{
    rpmtsi it = rpmtsiInit(ts);
    rpmte te;
    int removed = 0;

    while ((te = rpmtsiNext(it, TR_ADDED))) {
        rpmfiles files = rpmteFiles(te);
        rpmfi fi = rpmfilesIter(files, RPMFI_ITER_FWD);
        char *dir = NULL;
        char **bases = xcalloc(1, sizeof(char *));
        while (rpmfiNext(fi) >= 0) {
            if (dir && strcmp(dir, rpmfiDN(fi)) != 0) {
                removed += remove_tempnames_in(ctx, dir, bases);
                lapis_strv_free(bases);
                bases = xcalloc(1, sizeof(char *));
                free(dir);
                dir = NULL;
            }
            if (!dir)
                dir = xstrdup(rpmfiDN(fi));
            strv_push(&bases, xstrdup(rpmfiBN(fi)));
        }
        if (dir)
            removed += remove_tempnames_in(ctx, dir, bases);
        free(dir);
        lapis_strv_free(bases);
        rpmfiFree(fi);
        rpmfilesFree(files);
    }
    rpmtsiFree(it);
    if (removed)
        lapis_log(ctx, LAPIS_LOG_INFO, "Removed %d half-written files left by the interrupted "
                  "transaction", removed);
}

/* The transaction proper: the repo keys imported, leftovers of an interrupted
 * one cleaned up, history opened, rpm run, history closed. */
static int run_rpm_for_real(lapis_goal *g, rpmts ts, struct lapis_pkgfile *f, size_t n,
                            const lapis_run_opts *o, rpmprobFilterFlags filter,
                            struct rpmlog_state *ls)
{
    lapis_ctx *ctx = g->ctx;
    int r;

    if ((r = import_repo_keys(ctx, ts, f, n)) < 0)
        return r;
    if (lapis_history_last_interrupted(ctx))
        remove_rpm_leftovers(ctx, ts);
    if ((r = lapis_history_begin(g, o->cmdline, o->comment)) < 0)
        return r;
    if (rpmtsRun(ts, NULL, filter) != 0) {
        _cleanup_free_ char *why = problems_text(ts, NULL);
        lapis_history_end(g, false);
        return lapis_err(ctx, LAPIS_E_RPM, "the rpm transaction failed: %s",
                         why ? why : ls->last_error ? ls->last_error : "unknown rpm error");
    }
    return lapis_history_end(g, true);
}

/* The transaction runs with SIGINT and SIGTERM blocked (rpm blocks them too,
 * but only inside rpmtsRun): no package is left half-installed and history
 * records how it ended. A signal that came before this point stops the run
 * here, with nothing changed; one that comes during it is delivered after,
 * and the caller finds the interrupt flag set. */
static int run_rpm_blocked(lapis_goal *g, rpmts ts, struct lapis_pkgfile *f, size_t n,
                           const lapis_run_opts *o, rpmprobFilterFlags filter,
                           struct rpmlog_state *ls)
{
    lapis_ctx *ctx = g->ctx;
    sigset_t stop, old;
    size_t cached = 0;
    int r;

    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, &old);
    for (size_t i = 0; i < n; i++)
        cached += !f[i].local && !f[i].in_memory;
    if (!lapis_interrupted(ctx))
        r = run_rpm_for_real(g, ts, f, n, o, filter, ls);
    else if (cached)
        r = lapis_err(ctx, LAPIS_E_INTERRUPTED, "interrupted: nothing was changed; %zu downloaded "
                      "package%s kept in %s for the next run", cached, cached == 1 ? "" : "s",
                      o->downloaddir ? o->downloaddir : ctx->conf.cachedir);
    else
        r = lapis_err(ctx, LAPIS_E_INTERRUPTED, "interrupted: nothing was changed");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

static int run_rpm(lapis_goal *g, rpmts ts, struct lapis_pkgfile *f, size_t n,
                   const lapis_run_opts *o, bool payload_covered, struct rpmlog_state *ls)
{
    lapis_ctx *ctx = g->ctx;
    struct notify_state ns = { ctx, NULL, 0, 0 };
    rpmprobFilterFlags filter = RPMPROB_FILTER_OLDPACKAGE | RPMPROB_FILTER_REPLACEPKG;
    /* A forced arch (an aarch64 root built on x86_64) is what the caller asked
     * for: rpm's host arch/OS check would refuse every package (dnf --forcearch). */
    if (ctx->arch_forced)
        filter |= RPMPROB_FILTER_IGNOREARCH | RPMPROB_FILTER_IGNOREOS;
    rpmtransFlags fl = trans_flags(ctx, o->flags);
    rpmVSFlags vfy = rpmtsVfyFlags(ts);
    int r, rc;

    if ((r = add_elements(g, ts, f, n)) < 0)
        return r;
    int ndeps = 0;
    /* Non-zero: rpm could not even run the check (its rpmdb did not open), so
     * "no problems" would mean nothing. */
    if (rpmtsCheck(ts) != 0)
        return lapis_err(ctx, LAPIS_E_RPM, "rpm could not check the transaction's dependencies "
                         "(%s); nothing was changed", ls->last_error ? ls->last_error
                                                                     : "its database did not open");
    _cleanup_free_ char *deps = problems_text(ts, &ndeps);
    if (ndeps > 0)
        return lapis_err(ctx, LAPIS_E_RPM, "rpm found unresolved dependencies: %s", deps);
    rpmtsOrder(ts);
    ns.total = (size_t)rpmtsNElements(ts);
    rpmtsSetNotifyCallback(ts, notify_cb, &ns);
    if (o->script_fd >= 0) {
        /* The ts takes a reference; Fclose() would close the descriptor under it,
         * so ours is dropped with fdFree() and rpm closes it with the ts. */
        FD_t sfd = fdDup(o->script_fd);
        rpmtsSetScriptFd(ts, sfd);
        fdFree(sfd);
    }

    /* Test run: file conflicts and disk space, nothing written. Verification is
     * left to the real run, which repeats it anyway. */
    rpmtsSetFlags(ts, fl | RPMTRANS_FLAG_TEST);
    rpmtsSetVfyFlags(ts, RPMVSF_MASK_NODIGESTS | RPMVSF_MASK_NOSIGNATURES);
    rpmtsSetVfyLevel(ts, 0);
    /* The keys are not in the rpmdb yet (lapis checked the signatures itself). */
    rpmVSFlags vs = rpmtsSetVSFlags(ts, rpmtsVSFlags(ts) | RPMVSF_MASK_NOSIGNATURES);
    rc = rpmtsRun(ts, NULL, filter);
    rpmtsSetVSFlags(ts, vs);
    rpmtsSetFlags(ts, fl); /* rpm does not store keys imported into a test transaction */
    if (rc != 0) {
        _cleanup_free_ char *why = problems_text(ts, NULL);
        return lapis_err(ctx, LAPIS_E_RPM, "the transaction check failed, nothing was changed: %s",
                         why ? why : ls->last_error ? ls->last_error : "unknown rpm error");
    }
    if (o->flags & LAPIS_RUN_TEST || strv_contains(ctx->conf.tsflags, "test"))
        return 0;
    rpmtsSetVfyFlags(ts, payload_covered ? (vfy | RPMVSF_MASK_NOPAYLOAD | RPMVSF_NEEDPAYLOAD) : vfy);
    rpmtsSetVfyLevel(ts, ctx->nogpgcheck ? RPMSIG_DIGEST_TYPE
                                         : (payload_covered ? RPMSIG_SIGNATURE_TYPE
                                                            : RPMSIG_DIGEST_TYPE));
    ns.done = 0;
    return run_rpm_blocked(g, ts, f, n, o, filter, ls);
}

/* With keepcache=0 (the default) packages leave the cache once installed. */
static void drop_cached_packages(lapis_ctx *ctx, struct lapis_pkgfile *f, size_t n,
                                 const lapis_run_opts *o)
{
    if (ctx->conf.keepcache || o->downloaddir)
        return;
    for (size_t i = 0; i < n; i++)
        if (!f[i].local && !f[i].in_memory)
            unlink(f[i].path);
}

/* An offline transaction verifies its packages against the root's keyring
 * when applied: the keys go in now, while the repos are at hand. */
static int import_keys_now(lapis_ctx *ctx, rpmts ts, struct lapis_pkgfile *f, size_t n)
{
    _cleanup_free_ char *made_db = NULL, *made_link = NULL;
    int r = lapis_ctx_lock(ctx);
    if (r >= 0)
        r = ensure_rpmdb(ctx, ts, &made_db, &made_link);
    return r < 0 ? r : import_repo_keys(ctx, ts, f, n);
}

int lapis_goal_run(lapis_goal *g, const lapis_run_opts *opts)
{
    lapis_ctx *ctx = g->ctx;
    lapis_run_opts o = opts ? *opts : (lapis_run_opts){ .script_fd = -1 };
    struct rpmlog_state ls = { ctx, NULL };
    struct lapis_pkgfile *f = NULL;
    size_t n = 0;
    bool covered = false;
    _cleanup_free_ char *made_db = NULL, *made_link = NULL;
    int r;

    if (!g->trans)
        return lapis_err(ctx, LAPIS_E_USAGE, "internal: goal run before it was resolved");
    if (g->nitems == 0 && (o.flags & LAPIS_RUN_DOWNLOADONLY))
        return 0;
    if (g->nitems == 0) /* a group install whose packages are all there already */
        return (r = lapis_ctx_lock(ctx)) < 0 ? r : lapis_history_record_groups(g);
    /* What can fail without rpm is checked before anything in the root changes
     * (the rpmdb created, a key imported). */
    if (!(o.flags & LAPIS_RUN_DOWNLOADONLY) &&
        ((r = lapis_ctx_lock(ctx)) < 0 || (r = lapis_history_check(ctx)) < 0))
        return r;
    lapis_rpm_init();
    rpmlogSetCallback(rpmlog_cb, &ls);

    _cleanup_ts_ rpmts ts = ts_for_root(ctx);
    r = lapis_download_packages(g, o.downloaddir,
                                !(o.flags & LAPIS_RUN_DOWNLOADONLY) && !ctx->conf.keepcache, &f, &n);
    if (r >= 0)
        r = verify_packages(ctx, ts, f, n, &ls, &covered);
    for (size_t i = 0; r >= 0 && i < n; i++)
        if (!f[i].in_memory)
            strv_push(&g->downloaded, xstrdup(f[i].path));
    if (r >= 0 && (o.flags & LAPIS_RUN_DOWNLOADONLY) && (o.flags & LAPIS_RUN_IMPORT_KEYS))
        r = import_keys_now(ctx, ts, f, n);
    if (r >= 0 && !(o.flags & LAPIS_RUN_DOWNLOADONLY)) {
        r = ensure_rpmdb(ctx, ts, &made_db, &made_link);
        if (r >= 0)
            r = run_rpm(g, ts, f, n, &o, covered, &ls);
        if (r >= 0)
            drop_cached_packages(ctx, f, n, &o);
        if (!g->history_id && (made_db || made_link))
            forget_new_rpmdb(ts, made_db, made_link);
    }
    lapis_progress(ctx, LAPIS_PROGRESS_DONE, NULL, 0, 0);
    lapis_pkgfiles_free(f, n);
    rpmlogSetCallback(NULL, NULL);
    free(ls.last_error);
    return r;
}

/* ---- download (dnf5's download command) ---------------------------------- */

/* A package that failed its checks must not stay where the user will pick it up. */
static void drop_unverified(struct lapis_pkgfile *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (f[i].downloaded)
            unlink(f[i].path);
}

static lapis_goal *download_goal(lapis_ctx *ctx, const lapis_pkglist *pkgs)
{
    lapis_goal *g = NULL;
    if (lapis_goal_new(ctx, &g) < 0)
        return NULL;
    g->items = xcalloc(pkgs->count + 1, sizeof(*g->items));
    for (size_t i = 0; i < pkgs->count; i++)
        g->items[g->nitems++] = (lapis_trans_item){ .action = LAPIS_ACT_INSTALL,
                                                    .pkg = pkgs->pkgs[i] };
    return g;
}

int lapis_download_pkgs(lapis_ctx *ctx, const lapis_pkglist *pkgs, const char *destdir,
                        char ***ret_paths)
{
    struct rpmlog_state ls = { ctx, NULL };
    struct lapis_pkgfile *f = NULL;
    size_t n = 0;
    bool covered;
    char **paths = NULL;
    int r;

    if (!destdir || !*destdir)
        return lapis_err(ctx, LAPIS_E_USAGE, "internal: download without a destination");
    lapis_goal *g = download_goal(ctx, pkgs);
    if (!g)
        return -LAPIS_E_USAGE;
    lapis_rpm_init();
    rpmlogSetCallback(rpmlog_cb, &ls);
    _cleanup_ts_ rpmts ts = ts_for_root(ctx);
    r = lapis_download_packages(g, destdir, false, &f, &n);
    if (r >= 0 && (r = verify_packages(ctx, ts, f, n, &ls, &covered)) < 0)
        drop_unverified(f, n);
    for (size_t i = 0; r >= 0 && i < n; i++)
        strv_push(&paths, xstrdup(f[i].path));
    lapis_progress(ctx, LAPIS_PROGRESS_DONE, NULL, 0, 0);
    lapis_pkgfiles_free(f, n);
    rpmlogSetCallback(NULL, NULL);
    free(ls.last_error);
    lapis_goal_free(g);
    if (r < 0) {
        lapis_strv_free(paths);
        return r;
    }
    *ret_paths = paths ? paths : xcalloc(1, sizeof(char *));
    return 0;
}
