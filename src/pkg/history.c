/*
 * Transaction history and install reasons, in ROOT/var/lib/lapis/history.sqlite.
 *
 * A transaction row is written with result "interrupted" before rpm starts
 * and updated to "ok"/"failed" afterwards, so a run killed in the middle is
 * visible as such. Reasons (user / dependency / weak-dependency) are kept per
 * name.arch; packages with no recorded reason count as user-installed, as
 * dnf treats packages it did not install.
 *
 * Undo, redo and rollback are computed from the recorded rows: for every
 * name.arch touched, the package that was present before (or after) the
 * transactions in question becomes an exact install job, and what they
 * brought in becomes an exact erase job.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "pkg/internal.h"
#include "pkg/goal.h"
#include <solv/evr.h>

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS trans ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, begin INTEGER NOT NULL, end INTEGER,"
    " cmdline TEXT NOT NULL, result TEXT NOT NULL, uid INTEGER);"
    "CREATE TABLE IF NOT EXISTS trans_item ("
    " trans_id INTEGER NOT NULL REFERENCES trans(id), seq INTEGER NOT NULL,"
    " action TEXT NOT NULL, reason TEXT NOT NULL, name TEXT NOT NULL, epoch TEXT NOT NULL,"
    " version TEXT NOT NULL, release TEXT NOT NULL, arch TEXT NOT NULL, repo TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS trans_item_id ON trans_item(trans_id);"
    "CREATE TABLE IF NOT EXISTS reason ("
    " name TEXT NOT NULL, arch TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY(name, arch));"
    "CREATE TABLE IF NOT EXISTS comps_group ("
    " id TEXT PRIMARY KEY, packages TEXT NOT NULL);";

/* Columns added since the first schema: a history from before gets them on open. */
static const struct {
    const char *select, *add;
} added_columns[] = {
    { "SELECT releasever FROM trans LIMIT 0", "ALTER TABLE trans ADD COLUMN releasever TEXT" },
    { "SELECT comment FROM trans LIMIT 0", "ALTER TABLE trans ADD COLUMN comment TEXT" },
};

static int add_missing_columns(sqlite3 *db)
{
    for (size_t i = 0; i < ARRAY_SIZE(added_columns); i++) {
        sqlite3_stmt *st = NULL;
        bool has = sqlite3_prepare_v2(db, added_columns[i].select, -1, &st, NULL) == SQLITE_OK;
        sqlite3_finalize(st);
        if (!has && sqlite3_exec(db, added_columns[i].add, NULL, NULL, NULL) != SQLITE_OK)
            return -1;
    }
    return 0;
}

static void dbclosep(sqlite3 **db) { if (*db) sqlite3_close(*db); }
static void stmtfreep(sqlite3_stmt **st) { if (*st) sqlite3_finalize(*st); }
#define _cleanup_db_ _cleanup_(dbclosep)
#define _cleanup_stmt_ _cleanup_(stmtfreep)

static char *history_path(lapis_ctx *ctx)
{
    return path_in_root(ctx->installroot, "/var/lib/lapis/history.sqlite");
}

/* Open the database; with create=false a missing file gives *ret == NULL and 0. */
static int history_open(lapis_ctx *ctx, bool create, sqlite3 **ret)
{
    _cleanup_free_ char *path = history_path(ctx);
    _cleanup_free_ char *dir = path_in_root(ctx->installroot, "/var/lib/lapis");
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW;
    int r;

    *ret = NULL;
    if (!create && !path_exists(path))
        return 0;
    if (create) {
        if ((r = mkdir_p(dir, 0755)) < 0)
            return lapis_err(ctx, r, "cannot create %s: %s", dir, strerror(-r));
        flags |= SQLITE_OPEN_CREATE;
    }
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        /* NOFOLLOW: a link planted inside the root must not redirect our writes. */
        if (db && sqlite3_extended_errcode(db) == SQLITE_CANTOPEN_SYMLINK)
            r = lapis_err(ctx, LAPIS_E_HISTORY, "cannot open the history database %s: a symlink "
                          "inside the install root leads to it; replace the link with the real "
                          "file or directory", path);
        else
            r = lapis_err(ctx, LAPIS_E_HISTORY, "cannot open the history database %s: %s", path,
                          db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return r;
    }
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_exec(db, "PRAGMA synchronous=FULL;", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK || add_missing_columns(db) < 0) {
        r = lapis_err(ctx, LAPIS_E_HISTORY, "history database %s is unusable: %s; move it "
                      "aside to start a new history", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return r;
    }
    *ret = db;
    return 0;
}

int lapis_history_check(lapis_ctx *ctx)
{
    _cleanup_db_ sqlite3 *db = NULL;
    return history_open(ctx, true, &db);
}

static int db_fail(lapis_ctx *ctx, sqlite3 *db, const char *what)
{
    return lapis_err(ctx, LAPIS_E_HISTORY, "history database: %s: %s", what, sqlite3_errmsg(db));
}

/* ---- reasons ------------------------------------------------------------ */

/* Load every recorded reason onto the installed solvables (once per load). */
static void load_reasons(lapis_ctx *ctx)
{
    Pool *pool = ctx->pool;
    Repo *inst = pool->installed;
    _cleanup_db_ sqlite3 *db = NULL;
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    ctx->reasons_loaded = true;
    if (!inst || inst->end <= inst->start)
        return;
    ctx->reasons = xcalloc((size_t)(inst->end - inst->start), 1);
    if (history_open(ctx, false, &db) < 0 || !db)
        return;
    if (sqlite3_prepare_v2(db, "SELECT name, arch, reason FROM reason", -1, &st, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW) {
        Id name = pool_str2id(pool, (const char *)sqlite3_column_text(st, 0), 0);
        Id arch = pool_str2id(pool, (const char *)sqlite3_column_text(st, 1), 0);
        enum lapis_reason why = lapis_reason_from_name((const char *)sqlite3_column_text(st, 2));
        Id p, pp;
        if (!name || !arch)
            continue;
        FOR_PROVIDES(p, pp, name) {
            Solvable *s = pool_id2solvable(pool, p);
            if (s->repo == inst && s->name == name && s->arch == arch)
                ctx->reasons[p - inst->start] = (unsigned char)why;
        }
    }
}

/* The installed solvable with exactly this name, evr and arch, or 0. */
static Id installed_nevra(Pool *pool, const char *name, const char *evr, const char *arch)
{
    Id n = pool_str2id(pool, name, 0), e = pool_str2id(pool, evr, 0), a = pool_str2id(pool, arch, 0);
    Id p, pp;
    if (!n || !e || !a)
        return 0;
    FOR_PROVIDES(p, pp, n) {
        Solvable *s = pool_id2solvable(pool, p);
        if (s->repo == pool->installed && s->name == n && s->evr == e && s->arch == a)
            return p;
    }
    return 0;
}

/* One query for every installed package's repo: the newest transaction that
 * brought each NEVRA in wins (rows come oldest first and overwrite). */
static void load_from_repos(lapis_ctx *ctx)
{
    Pool *pool = ctx->pool;
    Repo *inst = pool->installed;
    _cleanup_db_ sqlite3 *db = NULL;
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    ctx->from_repos_loaded = true;
    if (!inst || inst->end <= inst->start)
        return;
    ctx->nfrom_repos = (size_t)(inst->end - inst->start);
    ctx->from_repos = xcalloc(ctx->nfrom_repos, sizeof(char *));
    if (history_open(ctx, false, &db) < 0 || !db)
        return;
    if (sqlite3_prepare_v2(db, "SELECT name, epoch, version, release, arch, repo FROM trans_item "
                           "WHERE action IN ('install','install-dep','install-weak','upgrade',"
                           "'downgrade','reinstall') ORDER BY trans_id", -1, &st, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *col[6];
        for (int i = 0; i < 6; i++)
            col[i] = (const char *)sqlite3_column_text(st, i);
        if (!col[0] || !col[2] || !col[3] || !col[4] || !col[5])
            continue;
        char *evr = col[1] && strcmp(col[1], "0") != 0
                        ? xasprintf("%s:%s-%s", col[1], col[2], col[3])
                        : xasprintf("%s-%s", col[2], col[3]);
        Id p = installed_nevra(pool, col[0], evr, col[4]);
        free(evr);
        if (p) {
            free(ctx->from_repos[p - inst->start]);
            ctx->from_repos[p - inst->start] = xstrdup(col[5]);
        }
    }
}

/* The repo the history says an installed package came from (dnf5's from_repo). */
char *lapis_pkg_from_repo(lapis_ctx *ctx, lapis_pkg p)
{
    Repo *inst = ctx->pool ? ctx->pool->installed : NULL;
    if (!lapis_pkg_installed(ctx, p) || !inst)
        return NULL;
    if (!ctx->from_repos_loaded)
        load_from_repos(ctx);
    const char *r = ctx->from_repos ? ctx->from_repos[p - inst->start] : NULL;
    return r ? xstrdup(r) : NULL;
}

enum lapis_reason lapis_pkg_reason(lapis_ctx *ctx, lapis_pkg p)
{
    Repo *inst = ctx->pool ? ctx->pool->installed : NULL;
    if (!inst || p < inst->start || p >= inst->end)
        return LAPIS_REASON_UNKNOWN;
    if (!ctx->reasons_loaded)
        load_reasons(ctx);
    return ctx->reasons ? (enum lapis_reason)ctx->reasons[p - inst->start] : LAPIS_REASON_UNKNOWN;
}

static int set_reason(lapis_ctx *ctx, sqlite3 *db, const char *name, const char *arch,
                      enum lapis_reason why)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    const char *sql = why == LAPIS_REASON_UNKNOWN
                          ? "DELETE FROM reason WHERE name = ?1 AND arch = ?2"
                          : "INSERT OR REPLACE INTO reason(name, arch, reason) VALUES (?1, ?2, ?3)";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "reason");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, arch, -1, SQLITE_STATIC);
    if (why != LAPIS_REASON_UNKNOWN)
        sqlite3_bind_text(st, 3, lapis_reason_name(why), -1, SQLITE_STATIC);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(ctx, db, "reason");
}

int lapis_mark(lapis_ctx *ctx, const char *spec, enum lapis_reason why)
{
    _cleanup_db_ sqlite3 *db = NULL;
    lapis_pkglist l = { 0 };
    char *globs[] = { (char *)spec, NULL };
    int r;

    if ((r = lapis_query_all_versions(ctx, globs, true, false, &l)) < 0)
        return r;
    if (l.count == 0) {
        lapis_pkglist_free(&l);
        return lapis_err(ctx, LAPIS_E_NOTFOUND, "no installed package matches '%s'", spec);
    }
    if ((r = history_open(ctx, true, &db)) < 0)
        goto out;
    for (size_t i = 0; i < l.count && r >= 0; i++) {
        r = set_reason(ctx, db, lapis_pkg_name(ctx, l.pkgs[i]), lapis_pkg_arch(ctx, l.pkgs[i]), why);
        if (r >= 0 && ctx->reasons)
            ctx->reasons[l.pkgs[i] - ctx->pool->installed->start] = (unsigned char)why;
    }
    r = r < 0 ? r : (int)l.count;
out:
    lapis_pkglist_free(&l);
    return r;
}

/* ---- recording a transaction ------------------------------------------- */

static int insert_item(lapis_ctx *ctx, sqlite3 *db, sqlite3_stmt *st, long long id, int seq,
                       const char *action, enum lapis_reason why, lapis_pkg p)
{
    char epoch[16];
    snprintf(epoch, sizeof(epoch), "%u", lapis_pkg_epoch(ctx, p));
    _cleanup_free_ char *version = xstrdup(lapis_pkg_version(ctx, p));
    _cleanup_free_ char *release = xstrdup(lapis_pkg_release(ctx, p));
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, seq);
    sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, lapis_reason_name(why), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, lapis_pkg_name(ctx, p), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, epoch, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, release, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 9, lapis_pkg_arch(ctx, p), -1, SQLITE_TRANSIENT);
    const char *from = lapis_sack_cmdline_from_repo(ctx, p);
    sqlite3_bind_text(st, 10, from ? from : lapis_pkg_repoid(ctx, p), -1, SQLITE_TRANSIENT);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(ctx, db, "recording a package");
}

/* Reason a package brought in by this transaction will have. */
static enum lapis_reason incoming_reason(lapis_goal *g, const lapis_trans_item *it)
{
    /* A package brought back by undo/rollback keeps the reason it had. */
    for (int i = 0; i < g->reasons.count; i += 2)
        if (g->reasons.elements[i] == it->pkg && g->reasons.elements[i + 1] != LAPIS_REASON_UNKNOWN)
            return (enum lapis_reason)g->reasons.elements[i + 1];
    switch (it->action) {
    case LAPIS_ACT_INSTALL:
        return strv_contains(g->group_pkgs, lapis_pkg_name(g->ctx, it->pkg)) ? LAPIS_REASON_GROUP
                                                                             : LAPIS_REASON_USER;
    case LAPIS_ACT_INSTALL_DEP: return LAPIS_REASON_DEP;
    case LAPIS_ACT_INSTALL_WEAK: return LAPIS_REASON_WEAK;
    default:
        return it->replaces ? lapis_pkg_reason(g->ctx, it->replaces) : LAPIS_REASON_UNKNOWN;
    }
}

static const char *outgoing_action(lapis_goal *g, const lapis_trans_item *it)
{
    Pool *pool = g->ctx->pool;
    if (it->action == LAPIS_ACT_DOWNGRADE)
        return "downgraded";
    return pool_id2solvable(pool, it->pkg)->name == pool_id2solvable(pool, it->replaces)->name
               ? "upgraded" : "obsoleted";
}

int lapis_history_begin(lapis_goal *g, const char *cmdline, const char *comment)
{
    lapis_ctx *ctx = g->ctx;
    _cleanup_db_ sqlite3 *db = NULL;
    _cleanup_stmt_ sqlite3_stmt *st = NULL, *it = NULL;
    int r, seq = 0;

    if ((r = history_open(ctx, true, &db)) < 0)
        return r;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "begin");
    if (sqlite3_prepare_v2(db, "INSERT INTO trans(begin, cmdline, result, uid, releasever, comment)"
                           " VALUES (?1, ?2, 'interrupted', ?3, ?4, ?5)", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO trans_item VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                           -1, &it, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "prepare");
    sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
    sqlite3_bind_text(st, 2, cmdline ? cmdline : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)getuid());
    sqlite3_bind_text(st, 4, ctx->releasever ? ctx->releasever : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, comment ? comment : "", -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return db_fail(ctx, db, "recording the transaction");
    g->history_id = sqlite3_last_insert_rowid(db);
    for (size_t i = 0; i < g->nitems; i++) {
        const lapis_trans_item *x = &g->items[i];
        bool out = x->action >= LAPIS_ACT_REMOVE;
        r = insert_item(ctx, db, it, g->history_id, seq++, lapis_action_name(x->action),
                        out ? lapis_pkg_reason(ctx, x->pkg) : incoming_reason(g, x), x->pkg);
        if (r >= 0 && x->replaces && x->action != LAPIS_ACT_REINSTALL)
            r = insert_item(ctx, db, it, g->history_id, seq++, outgoing_action(g, x),
                            lapis_pkg_reason(ctx, x->replaces), x->replaces);
        if (r < 0)
            return r;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "commit");
    return 0;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return xstrdup(t ? (const char *)t : "");
}

/* ---- installed groups ---------------------------------------------------- */

static int exec_group(lapis_ctx *ctx, sqlite3 *db, const char *sql, const char *id,
                      const char *pkgs)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "groups");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (pkgs)
        sqlite3_bind_text(st, 2, pkgs, -1, SQLITE_TRANSIENT);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(ctx, db, "groups");
}

/* The goal's group changes, inside the caller's database transaction. */
static int record_groups(lapis_goal *g, sqlite3 *db)
{
    int r = 0;
    for (size_t i = 0; r >= 0 && g->groups_del && g->groups_del[i]; i++)
        r = exec_group(g->ctx, db, "DELETE FROM comps_group WHERE id = ?1", g->groups_del[i], NULL);
    for (size_t i = 0; r >= 0 && g->groups_set && g->groups_set[i]; i++) {
        _cleanup_free_ char *id = xstrdup(g->groups_set[i]);
        char *tab = strchr(id, '\t');
        *tab = '\0';
        r = exec_group(g->ctx, db, "INSERT OR REPLACE INTO comps_group(id, packages) "
                       "VALUES (?1, ?2)", id, tab + 1);
    }
    return r;
}

int lapis_history_record_groups(lapis_goal *g)
{
    _cleanup_db_ sqlite3 *db = NULL;
    int r;

    if (!g->groups_set && !g->groups_del)
        return 0;
    if ((r = history_open(g->ctx, true, &db)) < 0)
        return r;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(g->ctx, db, "begin");
    if ((r = record_groups(g, db)) < 0)
        return r;
    return sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : db_fail(g->ctx, db, "commit");
}

int lapis_history_groups(lapis_ctx *ctx, char ***ret_ids, char ***ret_pkgs)
{
    _cleanup_db_ sqlite3 *db = NULL;
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;

    *ret_ids = xcalloc(1, sizeof(char *));
    *ret_pkgs = xcalloc(1, sizeof(char *));
    if ((r = history_open(ctx, false, &db)) < 0 || !db)
        return r;
    if (sqlite3_prepare_v2(db, "SELECT id, packages FROM comps_group ORDER BY id", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(ctx, db, "groups");
    while (sqlite3_step(st) == SQLITE_ROW) {
        strv_push(ret_ids, col_dup(st, 0));
        strv_push(ret_pkgs, col_dup(st, 1));
    }
    return 0;
}

/* Record the outcome and, on success, the new reasons. */
int lapis_history_end(lapis_goal *g, bool ok)
{
    lapis_ctx *ctx = g->ctx;
    _cleanup_db_ sqlite3 *db = NULL;
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;

    if (!g->history_id)
        return 0;
    if ((r = history_open(ctx, true, &db)) < 0)
        return r;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "begin");
    if (sqlite3_prepare_v2(db, "UPDATE trans SET end = ?1, result = ?2 WHERE id = ?3", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(ctx, db, "prepare");
    sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
    sqlite3_bind_text(st, 2, ok ? "ok" : "failed", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, g->history_id);
    if (sqlite3_step(st) != SQLITE_DONE)
        return db_fail(ctx, db, "recording the result");
    /* Removals first, so a name.arch removed and brought back keeps the new reason. */
    for (size_t i = 0; ok && i < g->nitems; i++) {
        const lapis_trans_item *x = &g->items[i];
        lapis_pkg gone = x->action >= LAPIS_ACT_REMOVE ? x->pkg
                         : x->action == LAPIS_ACT_UPGRADE && x->replaces ? x->replaces : 0;
        if (gone && (r = set_reason(ctx, db, lapis_pkg_name(ctx, gone), lapis_pkg_arch(ctx, gone),
                                    LAPIS_REASON_UNKNOWN)) < 0)
            return r;
    }
    for (size_t i = 0; ok && i < g->nitems; i++) {
        const lapis_trans_item *x = &g->items[i];
        enum lapis_reason why = incoming_reason(g, x);
        if (x->action < LAPIS_ACT_REMOVE && why != LAPIS_REASON_UNKNOWN &&
            (r = set_reason(ctx, db, lapis_pkg_name(ctx, x->pkg), lapis_pkg_arch(ctx, x->pkg),
                            why)) < 0)
            return r;
    }
    if (ok && (r = record_groups(g, db)) < 0)
        return r;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "commit");
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

void lapis_history_trans_free(lapis_history_trans *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) {
        free(t[i].cmdline);
        free(t[i].result);
        free(t[i].actions);
        free(t[i].releasever);
        free(t[i].comment);
    }
    free(t);
}

void lapis_history_items_free(lapis_history_item *it, size_t n)
{
    for (size_t i = 0; it && i < n; i++) {
        free(it[i].action);
        free(it[i].reason);
        free(it[i].name);
        free(it[i].epoch);
        free(it[i].version);
        free(it[i].release);
        free(it[i].arch);
        free(it[i].repo);
    }
    free(it);
}

int lapis_history_list(lapis_ctx *ctx, lapis_history_trans **ret, size_t *ret_n)
{
    _cleanup_db_ sqlite3 *db = NULL;
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    lapis_history_trans *t = NULL;
    size_t n = 0;
    int r;

    *ret = NULL;
    *ret_n = 0;
    if ((r = lapis_ctx_setup(ctx)) < 0 || (r = history_open(ctx, false, &db)) < 0)
        return r;
    if (!db)
        return 0;
    if (sqlite3_prepare_v2(db,
            "SELECT t.id, t.begin, t.end, t.cmdline, t.result, "
            " (SELECT count(*) FROM trans_item i WHERE i.trans_id = t.id),"
            " (SELECT group_concat(a, ', ') FROM (SELECT DISTINCT CASE"
            "   WHEN action LIKE 'install%' THEN 'Install' WHEN action = 'upgrade' THEN 'Upgrade'"
            "   WHEN action = 'downgrade' THEN 'Downgrade' WHEN action = 'reinstall' THEN 'Reinstall'"
            "   WHEN action LIKE 'remove%' THEN 'Removed' END AS a"
            "   FROM trans_item i WHERE i.trans_id = t.id AND a IS NOT NULL ORDER BY a)),"
            " t.uid, t.releasever, t.comment"
            " FROM trans t ORDER BY t.id DESC", -1, &st, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "list");
    while (sqlite3_step(st) == SQLITE_ROW) {
        t = xrealloc(t, (n + 1) * sizeof(*t));
        t[n] = (lapis_history_trans){
            .id = sqlite3_column_int64(st, 0), .begin = sqlite3_column_int64(st, 1),
            .end = sqlite3_column_int64(st, 2), .cmdline = col_dup(st, 3),
            .result = col_dup(st, 4), .nitems = sqlite3_column_int(st, 5),
            .actions = col_dup(st, 6), .uid = sqlite3_column_int64(st, 7),
            .releasever = col_dup(st, 8), .comment = col_dup(st, 9),
        };
        n++;
    }
    *ret = t;
    *ret_n = n;
    return 0;
}

bool lapis_history_last_interrupted(lapis_ctx *ctx)
{
    _cleanup_db_ sqlite3 *db = NULL;
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (history_open(ctx, false, &db) < 0 || !db ||
        sqlite3_prepare_v2(db, "SELECT result FROM trans ORDER BY id DESC LIMIT 1", -1, &st,
                           NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        return false;
    const unsigned char *result = sqlite3_column_text(st, 0);
    return result && strcmp((const char *)result, "interrupted") == 0;
}

int lapis_history_items(lapis_ctx *ctx, long long id, lapis_history_item **ret, size_t *ret_n)
{
    _cleanup_db_ sqlite3 *db = NULL;
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    lapis_history_item *it = NULL;
    size_t n = 0;
    int r;

    *ret = NULL;
    *ret_n = 0;
    if ((r = lapis_ctx_setup(ctx)) < 0 || (r = history_open(ctx, false, &db)) < 0)
        return r;
    if (!db)
        return lapis_err(ctx, LAPIS_E_HISTORY, "no transaction %lld: the history is empty", id);
    if (sqlite3_prepare_v2(db, "SELECT action, reason, name, epoch, version, release, arch, repo "
                           "FROM trans_item WHERE trans_id = ?1 ORDER BY seq", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(ctx, db, "items");
    sqlite3_bind_int64(st, 1, id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        it = xrealloc(it, (n + 1) * sizeof(*it));
        it[n] = (lapis_history_item){
            .action = col_dup(st, 0), .reason = col_dup(st, 1), .name = col_dup(st, 2),
            .epoch = col_dup(st, 3), .version = col_dup(st, 4), .release = col_dup(st, 5),
            .arch = col_dup(st, 6), .repo = col_dup(st, 7),
        };
        n++;
    }
    *ret = it;
    *ret_n = n;
    return 0;
}

int lapis_history_resolve_id(lapis_ctx *ctx, const char *text, long long *ret)
{
    lapis_history_trans *t;
    size_t n;
    long long want = 0;
    int r;

    long long back = 0; /* "last-N": N transactions before the last (dnf counts by id) */
    bool last = strcmp(text, "last") == 0 ||
                (str_startswith(text, "last-") &&
                 lapis_parse_int(text + 5, 0, (long long)1 << 62, &back) == 0);
    if (!last && (lapis_parse_int(text, 1, (long long)1 << 62, &want) < 0))
        return lapis_err(ctx, LAPIS_E_USAGE, "'%s' is not a transaction id (a number, 'last' "
                         "or 'last-N')", text);
    if ((r = lapis_history_list(ctx, &t, &n)) < 0)
        return r;
    if (last && back > 0)
        want = n > 0 && t[0].id > back ? t[0].id - back : -1; /* the list is newest first */
    r = -LAPIS_E_HISTORY;
    for (size_t i = 0; i < n; i++)
        if (want == 0 || t[i].id == want) {
            *ret = t[i].id;
            r = 0;
            break;
        }
    lapis_history_trans_free(t, n);
    if (r < 0)
        return lapis_err(ctx, LAPIS_E_HISTORY, "no transaction %s in the history of %s; "
                         "'lapis history list' shows them", text, lapis_ctx_installroot(ctx));
    return 0;
}
