/*
 * Offline transactions, dnf5's --offline: a resolved transaction and its
 * verified packages are stored in ROOT/usr/lib/sysimage/lapis/offline
 * (transaction.json, packages/); "offline reboot" links /system-update to it
 * and systemd boots into system-update.target, where the unit runs
 * "offline _execute". Applying re-checks each package (stored digest, then
 * its signature against the root's keyring, where the store imported the
 * repo keys) and refuses when the installed system is no longer the one the
 * transaction was resolved against (a digest of the installed NEVRAs).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "pkg/goal.h"
#include "pkg/internal.h"

#define STATE_FILE "transaction.json"
#define STATE_VERSION 1

static char *state_dir(lapis_ctx *ctx)
{
    return path_in_root(lapis_ctx_installroot(ctx), LAPIS_OFFLINE_DIR);
}

/* A symlink in the root on the way to the state directory must not lead
 * store's or clean's rm -rf outside the root. */
static int check_state_dir(lapis_ctx *ctx)
{
    _cleanup_free_ char *dir = state_dir(ctx);
    _cleanup_free_ char *real = path_resolve(dir);
    _cleanup_free_ char *root = path_resolve(lapis_ctx_installroot(ctx));
    size_t n = root ? strlen(root) : 0;
    if (real && root && (strcmp(root, "/") == 0 ||
                         (strncmp(real, root, n) == 0 && (real[n] == '/' || !real[n]))))
        return 0;
    return lapis_err(ctx, LAPIS_E_UNSAFE, "%s leads outside the root (%s); refusing to use it",
                     dir, real ? real : "unresolvable");
}

static char *state_path(lapis_ctx *ctx, const char *rel)
{
    _cleanup_free_ char *dir = state_dir(ctx);
    return path_join(dir, rel);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The installed system as the solver saw it: sha256 of the sorted NEVRAs. */
static int rpmdb_cookie(lapis_ctx *ctx, char ret[65])
{
    Repo *inst = ctx->pool->installed;
    _cleanup_strv_ char **v = NULL;
    Solvable *s;
    Id p;
    if (!inst)
        return lapis_chk_buf("", 0, LAPIS_CHK_SHA256, ret, 65);
    FOR_REPO_SOLVABLES(inst, p, s) {
        strv_push(&v, xasprintf("%s\n", pool_solvable2str(ctx->pool, s)));
    }
    size_t n = strv_length(v);
    if (n)
        qsort(v, n, sizeof(*v), cmp_str);
    _cleanup_free_ char *all = strv_join(v, "");
    return lapis_chk_buf(all ? all : "", all ? strlen(all) : 0, LAPIS_CHK_SHA256, ret, 65);
}

static bool action_incoming(enum lapis_action a)
{
    return a < LAPIS_ACT_REMOVE;
}

static int unlink_ours(lapis_ctx *ctx);

/* ---- storing ---------------------------------------------------------------- */

static int copy_fd(int in, int out)
{
    ssize_t n;
    while ((n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0)) > 0)
        ;
    return n < 0 ? -errno : fsync(out) < 0 ? -errno : 0;
}

/* A command-line .rpm goes into the state directory: the original may be gone at boot. */
static int copy_file(lapis_ctx *ctx, const char *from, const char *to)
{
    _cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int r = in < 0 || out < 0 ? -errno : copy_fd(in, out);
    return r < 0 ? lapis_err(ctx, r, "cannot copy %s to %s: %s", from, to, strerror(-r)) : 0;
}

/* Where the store put an incoming package; a command-line .rpm is copied there. */
static int item_file(lapis_ctx *ctx, lapis_pkg p, const char *pkgdir, char **ret)
{
    const char *local = lapis_sack_cmdline_path(ctx, p);
    const char *loc = local ? local : lapis_pkg_location(ctx, p);
    const char *base = loc ? strrchr(loc, '/') : NULL;
    if (!loc || !*loc)
        return lapis_err(ctx, LAPIS_E_METADATA, "%s: no location in the metadata",
                         lapis_pkg_nevra(ctx, p));
    *ret = path_join(pkgdir, base ? base + 1 : loc);
    return local ? copy_file(ctx, local, *ret) : 0;
}

static int json_item(lapis_ctx *ctx, const lapis_trans_item *it, const char *pkgdir, cJSON *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(a, o);
    cJSON_AddStringToObject(o, "action", lapis_action_name(it->action));
    cJSON_AddStringToObject(o, "nevra", lapis_pkg_nevra(ctx, it->pkg));
    cJSON_AddStringToObject(o, "repo", lapis_pkg_repoid(ctx, it->pkg));
    if (!action_incoming(it->action))
        return 0;
    _cleanup_free_ char *path = NULL;
    char hex[65];
    int r = item_file(ctx, it->pkg, pkgdir, &path);
    if (r < 0)
        return r;
    if ((r = lapis_chk_file(path, LAPIS_CHK_SHA256, hex, sizeof(hex))) < 0)
        return lapis_err(ctx, r, "%s: cannot read the stored package %s: %s",
                         lapis_pkg_nevra(ctx, it->pkg), path, strerror(-r));
    const char *base = strrchr(path, '/');
    cJSON_AddStringToObject(o, "file", base ? base + 1 : path);
    cJSON_AddStringToObject(o, "sha256", hex);
    return 0;
}

/* Signatures are demanded when applied unless every package came without that check. */
static bool store_gpgcheck(lapis_goal *g)
{
    lapis_ctx *ctx = g->ctx;
    if (ctx->nogpgcheck)
        return false;
    for (size_t i = 0; i < g->nitems; i++) {
        if (!action_incoming(g->items[i].action))
            continue;
        Solvable *s = pool_id2solvable(ctx->pool, g->items[i].pkg);
        struct lapis_repo *r = s->repo == ctx->cmdline_repo ? NULL
                                                            : lapis_sack_repo_of(ctx, s->repo);
        if (r ? !r->opts.gpgcheck : !ctx->conf.localpkg_gpgcheck)
            return false;
    }
    return true;
}

static int write_state(lapis_goal *g, const char *cmdline, const char *pkgdir)
{
    lapis_ctx *ctx = g->ctx;
    char cookie[65];
    int r = rpmdb_cookie(ctx, cookie);
    if (r < 0)
        return lapis_err(ctx, r, "cannot digest the installed packages");
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "version", STATE_VERSION);
    cJSON_AddStringToObject(doc, "status", "download-complete"); /* dnf5's word */
    cJSON_AddStringToObject(doc, "cmdline", cmdline ? cmdline : "");
    cJSON_AddNumberToObject(doc, "stored", (double)time(NULL));
    cJSON_AddStringToObject(doc, "rpmdb_cookie", cookie);
    cJSON_AddBoolToObject(doc, "gpgcheck", store_gpgcheck(g));
    cJSON_AddBoolToObject(doc, "poweroff", false);
    cJSON *a = cJSON_AddArrayToObject(doc, "items");
    for (size_t i = 0; i < g->nitems && r >= 0; i++)
        r = json_item(ctx, &g->items[i], pkgdir, a);
    char *text = r >= 0 ? cJSON_Print(doc) : NULL;
    cJSON_Delete(doc);
    if (r < 0)
        return r;
    _cleanup_free_ char *path = state_path(ctx, STATE_FILE);
    r = write_file_atomic(path, text, strlen(text));
    free(text);
    return r < 0 ? lapis_err(ctx, r, "cannot write %s: %s", path, strerror(-r)) : 0;
}

int lapis_offline_store(lapis_goal *g, const lapis_run_opts *opts)
{
    lapis_ctx *ctx = g->ctx;
    _cleanup_free_ char *dir = state_dir(ctx);
    _cleanup_free_ char *pkgdir = path_join(dir, "packages");
    lapis_run_opts o = *opts;
    int r;

    /* A new offline transaction replaces the stored one (dnf5), unscheduled until
     * "offline reboot" schedules it. */
    if ((r = lapis_ctx_lock(ctx)) < 0 || (r = check_state_dir(ctx)) < 0 ||
        (r = unlink_ours(ctx)) < 0)
        return r;
    (void)rm_rf(dir, NULL);
    if ((r = mkdir_p(pkgdir, 0755)) < 0)
        return lapis_err(ctx, r, "cannot create %s: %s", pkgdir, strerror(-r));
    o.flags |= LAPIS_RUN_DOWNLOADONLY | LAPIS_RUN_IMPORT_KEYS;
    o.downloaddir = pkgdir;
    if ((r = lapis_goal_run(g, &o)) >= 0)
        r = write_state(g, opts->cmdline, pkgdir);
    if (r < 0)
        (void)rm_rf(dir, NULL); /* nothing partial stays behind */
    return r;
}

/* ---- reading the state ------------------------------------------------------ */

static int read_state(lapis_ctx *ctx, cJSON **ret)
{
    _cleanup_free_ char *path = state_path(ctx, STATE_FILE);
    _cleanup_free_ char *buf = NULL;
    size_t len;
    int r = check_state_dir(ctx);
    if (r < 0)
        return r;
    r = read_file(path, 16 << 20, &buf, &len);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return lapis_err(ctx, r, "cannot read %s: %s", path, strerror(-r));
    *ret = cJSON_ParseWithLength(buf, len);
    cJSON *v = *ret ? cJSON_GetObjectItem(*ret, "version") : NULL;
    if (!cJSON_IsNumber(v) || v->valueint != STATE_VERSION ||
        !cJSON_IsArray(cJSON_GetObjectItem(*ret, "items"))) {
        cJSON_Delete(*ret);
        return lapis_err(ctx, LAPIS_E_OFFLINE, "%s is damaged or from another lapis version; "
                         "remove it with 'lapis offline clean'", path);
    }
    return 1;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return s ? s : "";
}

static bool link_is_ours(lapis_ctx *ctx)
{
    _cleanup_free_ char *link = path_in_root(lapis_ctx_installroot(ctx), LAPIS_OFFLINE_LINK);
    char target[4096];
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n < 0)
        return false;
    target[n] = '\0';
    return strcmp(target, LAPIS_OFFLINE_DIR) == 0;
}

int lapis_offline_status(lapis_ctx *ctx, lapis_offline_info *ret)
{
    cJSON *doc = NULL;
    int r = read_state(ctx, &doc);
    *ret = (lapis_offline_info){ 0 };
    if (r <= 0)
        return r;
    ret->cmdline = xstrdup(jstr(doc, "cmdline"));
    ret->stored = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "stored"));
    ret->poweroff = cJSON_IsTrue(cJSON_GetObjectItem(doc, "poweroff"));
    ret->scheduled = link_is_ours(ctx);
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "items"))
        strv_push(&ret->items, xasprintf("%s %s", jstr(it, "action"), jstr(it, "nevra")));
    cJSON_Delete(doc);
    return 1;
}

void lapis_offline_info_free(lapis_offline_info *info)
{
    free(info->cmdline);
    lapis_strv_free(info->items);
    *info = (lapis_offline_info){ 0 };
}

static int unlink_ours(lapis_ctx *ctx)
{
    _cleanup_free_ char *link = path_in_root(lapis_ctx_installroot(ctx), LAPIS_OFFLINE_LINK);
    if (link_is_ours(ctx) && unlink(link) < 0 && errno != ENOENT)
        return lapis_err(ctx, -errno, "cannot remove %s: %s", link, strerror(errno));
    return 0;
}

int lapis_offline_clean(lapis_ctx *ctx)
{
    _cleanup_free_ char *dir = state_dir(ctx);
    int r = lapis_ctx_lock(ctx);
    if (r < 0 || (r = check_state_dir(ctx)) < 0 || (r = unlink_ours(ctx)) < 0)
        return r;
    if ((r = rm_rf(dir, NULL)) < 0 && r != -ENOENT)
        return lapis_err(ctx, r, "cannot remove %s: %s", dir, strerror(-r));
    return 0;
}

static int set_poweroff(lapis_ctx *ctx, cJSON *doc, bool poweroff)
{
    cJSON_DeleteItemFromObject(doc, "poweroff");
    cJSON_AddBoolToObject(doc, "poweroff", poweroff);
    char *text = cJSON_Print(doc);
    _cleanup_free_ char *path = state_path(ctx, STATE_FILE);
    int r = write_file_atomic(path, text, strlen(text));
    free(text);
    return r < 0 ? lapis_err(ctx, r, "cannot write %s: %s", path, strerror(-r)) : 0;
}

int lapis_offline_schedule(lapis_ctx *ctx, bool poweroff)
{
    _cleanup_free_ char *link = path_in_root(lapis_ctx_installroot(ctx), LAPIS_OFFLINE_LINK);
    cJSON *doc = NULL;
    int r = lapis_ctx_lock(ctx);
    if (r < 0 || (r = read_state(ctx, &doc)) < 0)
        return r;
    if (r == 0)
        return lapis_err(ctx, LAPIS_E_OFFLINE, "no offline transaction is stored; store one "
                         "with e.g. 'lapis --offline upgrade'");
    r = set_poweroff(ctx, doc, poweroff);
    cJSON_Delete(doc);
    if (r < 0 || (r = unlink_ours(ctx)) < 0)
        return r;
    if (symlink(LAPIS_OFFLINE_DIR, link) < 0)
        return lapis_err(ctx, -errno, "cannot create %s: %s%s", link, strerror(errno),
                         errno == EEXIST ? " (another tool's offline update is scheduled)" : "");
    return 0;
}

/* ---- applying ----------------------------------------------------------------- */

static int refuse(lapis_ctx *ctx, const char *why)
{
    return lapis_err(ctx, LAPIS_E_OFFLINE, "the stored offline transaction no longer applies: "
                     "%s; nothing was changed (store it again, or 'lapis offline clean')", why);
}

static int check_file(lapis_ctx *ctx, const cJSON *it, const char *path)
{
    char hex[65];
    int r = lapis_chk_file(path, LAPIS_CHK_SHA256, hex, sizeof(hex));
    if (r < 0)
        return lapis_err(ctx, LAPIS_E_OFFLINE, "%s: the stored package %s is unreadable (%s); "
                         "nothing was changed", jstr(it, "nevra"), path, strerror(-r));
    if (strcmp(hex, jstr(it, "sha256")) != 0)
        return lapis_err(ctx, LAPIS_E_CHECKSUM, "%s: the stored package %s was altered since it "
                         "was verified (sha256 differs); refusing the offline transaction "
                         "(nothing was changed)", jstr(it, "nevra"), path);
    return 0;
}

static lapis_pkg installed_by_nevra(lapis_ctx *ctx, const char *nevra)
{
    Repo *inst = ctx->pool->installed;
    Solvable *s;
    Id p;
    if (!inst)
        return 0;
    FOR_REPO_SOLVABLES(inst, p, s) {
        if (strcmp(pool_solvable2str(ctx->pool, s), nevra) == 0)
            return p;
    }
    return 0;
}

static int add_job(lapis_goal *g, const cJSON *it, const char *pkgdir)
{
    lapis_ctx *ctx = g->ctx;
    int act = lapis_action_from_name(jstr(it, "action")), r, p = 0;
    if (act < 0 || !action_incoming((enum lapis_action)act)) {
        lapis_pkg q = installed_by_nevra(ctx, jstr(it, "nevra"));
        return q ? lapis_goal_remove_pkg(g, q) : refuse(ctx, "a package to remove is gone");
    }
    const char *file = jstr(it, "file");
    if (!*file || strchr(file, '/'))
        return lapis_err(ctx, LAPIS_E_OFFLINE, "the stored transaction names a bad file '%s'",
                         file);
    _cleanup_free_ char *path = path_join(pkgdir, file);
    if ((r = check_file(ctx, it, path)) < 0 || (r = lapis_ctx_add_rpm_file(ctx, path, &p)) < 0)
        return r;
    lapis_sack_set_from_repo(ctx, p, jstr(it, "repo")); /* history names the repo, as dnf5 */
    return lapis_goal_install_pkg(g, p);
}

static bool stored_has(const cJSON *items, const char *nevra)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
        if (strcmp(jstr(it, "nevra"), nevra) == 0)
            return true;
    return false;
}

/* The resolve must come out as stored: same packages, nothing else pulled in. */
static int check_resolved(lapis_goal *g, const cJSON *items)
{
    size_t n = 0;
    const lapis_trans_item *res = lapis_goal_items(g, &n);
    if (n != (size_t)cJSON_GetArraySize(items))
        return refuse(g->ctx, "resolving it again gives a different transaction");
    for (size_t i = 0; i < n; i++)
        if (!stored_has(items, lapis_pkg_nevra(g->ctx, res[i].pkg)))
            return refuse(g->ctx, "resolving it again gives a different transaction");
    return 0;
}

/* The actions as resolved when stored (dependencies stay dependencies in history). */
static void restore_actions(lapis_goal *g, const cJSON *items)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, items) {
        int act = lapis_action_from_name(jstr(it, "action"));
        for (size_t i = 0; act >= 0 && i < g->nitems; i++)
            if (strcmp(lapis_pkg_nevra(g->ctx, g->items[i].pkg), jstr(it, "nevra")) == 0)
                g->items[i].action = (enum lapis_action)act;
    }
}

static int check_system(lapis_ctx *ctx, const cJSON *doc)
{
    char cookie[65];
    int r = rpmdb_cookie(ctx, cookie);
    if (r < 0)
        return lapis_err(ctx, r, "cannot digest the installed packages");
    if (strcmp(cookie, jstr(doc, "rpmdb_cookie")) != 0)
        return refuse(ctx, "the installed packages changed since it was stored");
    return 0;
}

static int build_goal(lapis_goal *g, const cJSON *doc)
{
    _cleanup_free_ char *pkgdir = state_path(g->ctx, "packages");
    const cJSON *items = cJSON_GetObjectItem(doc, "items"), *it;
    int r;
    cJSON_ArrayForEach(it, items)
        if ((r = add_job(g, it, pkgdir)) < 0)
            return r;
    lapis_goal_set_flags(g, LAPIS_GOAL_ALLOW_DOWNGRADE | LAPIS_GOAL_ALLOWERASING);
    if ((r = lapis_goal_resolve(g)) < 0)
        return r == -LAPIS_E_SOLVE ? refuse(g->ctx, "its dependencies no longer resolve") : r;
    if ((r = check_resolved(g, items)) < 0)
        return r;
    restore_actions(g, items);
    return 0;
}

static int execute_doc(lapis_ctx *ctx, const cJSON *doc, const lapis_run_opts *opts,
                       lapis_goal **ret_goal)
{
    lapis_run_opts o = *opts;
    int r;
    if ((r = check_system(ctx, doc)) < 0 || (r = lapis_goal_new(ctx, ret_goal)) < 0)
        return r;
    /* Stored packages are command-line files to librpm: their signatures are
     * checked against the root's keyring, where the store put the repo keys. */
    ctx->conf.localpkg_gpgcheck = cJSON_IsTrue(cJSON_GetObjectItem(doc, "gpgcheck"));
    if ((r = build_goal(*ret_goal, doc)) < 0)
        return r;
    o.flags &= ~(unsigned)(LAPIS_RUN_DOWNLOADONLY | LAPIS_RUN_IMPORT_KEYS);
    o.downloaddir = NULL;
    o.cmdline = jstr(doc, "cmdline");
    return lapis_goal_run(*ret_goal, &o);
}

int lapis_offline_execute(lapis_ctx *ctx, const lapis_run_opts *opts, lapis_goal **ret_goal)
{
    cJSON *doc = NULL;
    *ret_goal = NULL;
    int r = lapis_ctx_lock(ctx);
    if (r < 0 || (r = read_state(ctx, &doc)) < 0)
        return r;
    if (r == 0)
        return lapis_err(ctx, LAPIS_E_OFFLINE, "no offline transaction is stored");
    if (!link_is_ours(ctx)) { /* a /system-update of another tool is not ours to act on */
        cJSON_Delete(doc);
        return lapis_err(ctx, LAPIS_E_OFFLINE, "the offline transaction is not scheduled (%s "
                         "does not point at %s); run 'lapis offline reboot'", LAPIS_OFFLINE_LINK,
                         LAPIS_OFFLINE_DIR);
    }
    /* First, so a transaction that crashes the machine is not retried at every boot. */
    if ((r = unlink_ours(ctx)) >= 0)
        r = execute_doc(ctx, doc, opts, ret_goal);
    cJSON_Delete(doc);
    if (r >= 0) {
        _cleanup_free_ char *dir = state_dir(ctx);
        (void)rm_rf(dir, NULL);
    }
    return r;
}
