/*
 * history undo / redo / rollback: turn recorded transactions back into goal
 * jobs, with packages from the repos or, with keepcache=1, from the package
 * cache. Above both history (what was done) and solving (the goal).
 */
#include <string.h>
#include <sys/stat.h>

#include "pkg/goal.h"
#include <solv/evr.h>

static bool is_outgoing(const char *action)
{
    return str_startswith(action, "remove") || strcmp(action, "upgraded") == 0 ||
           strcmp(action, "downgraded") == 0 || strcmp(action, "obsoleted") == 0;
}

static char *item_evr(const lapis_history_item *it)
{
    if (strcmp(it->epoch, "0") == 0 || !*it->epoch)
        return xasprintf("%s-%s", it->version, it->release);
    return xasprintf("%s:%s-%s", it->epoch, it->version, it->release);
}

/* The solvable for an exact recorded package: installed, in a repo, or in the cache. */
static Id find_exact(lapis_ctx *ctx, const lapis_history_item *it, bool installed)
{
    Pool *pool = ctx->pool;
    Id name = pool_str2id(pool, it->name, 0), arch = pool_str2id(pool, it->arch, 0);
    _cleanup_free_ char *evr_s = item_evr(it);
    Id evr = pool_str2id(pool, evr_s, 0);

    if (!name || !arch || !evr)
        return 0;
    return lapis_sack_find_exact(pool, name, arch, evr, installed);
}

/* Look for NAME-VERSION-RELEASE.ARCH.rpm in the package cache of every configured
 * repo (enabled or not). The file is remembered as that repo's, so its
 * signature is checked against that repo's keys like any download. */
static Id find_in_cache(lapis_ctx *ctx, const lapis_history_item *it)
{
    _cleanup_free_ char *file = xasprintf("%s-%s-%s.%s.rpm", it->name, it->version, it->release,
                                          it->arch);
    for (size_t i = 0; i < ctx->nrepos; i++) {
        _cleanup_free_ char *dir = lapis_cache_repo_dir(ctx, ctx->repos[i]);
        _cleanup_free_ char *path = xasprintf("%s/packages/%s", dir, file);
        struct stat st;
        Id p = 0;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            lapis_sack_add_cached_rpm(ctx, path, ctx->repos[i], &p) == 0 && p) {
            Id found = find_exact(ctx, it, false);
            if (found)
                return found;
        }
    }
    return 0;
}

struct restore {
    lapis_history_item *items; /* all rows of the transactions, oldest transaction first */
    size_t n;
    long long *trans_of;       /* transaction id of each row */
};

static void restore_clear(struct restore *rs)
{
    lapis_history_items_free(rs->items, rs->n);
    free(rs->trans_of);
}

static int restore_add(lapis_ctx *ctx, struct restore *rs, long long id)
{
    lapis_history_item *it;
    size_t n;
    int r = lapis_history_items(ctx, id, &it, &n);
    if (r < 0)
        return r;
    rs->items = xrealloc(rs->items, (rs->n + n) * sizeof(*it));
    rs->trans_of = xrealloc(rs->trans_of, (rs->n + n) * sizeof(long long));
    memcpy(rs->items + rs->n, it, n * sizeof(*it));
    for (size_t i = 0; i < n; i++)
        rs->trans_of[rs->n + i] = id;
    rs->n += n;
    free(it);
    return 0;
}

static bool same_key(const lapis_history_item *a, const lapis_history_item *b)
{
    return strcmp(a->name, b->name) == 0 && strcmp(a->arch, b->arch) == 0;
}

static int need_package(lapis_goal *g, const lapis_history_item *it, Id *ret)
{
    lapis_ctx *ctx = g->ctx;
    Id p = find_exact(ctx, it, true);
    if (!p)
        p = find_exact(ctx, it, false);
    if (!p)
        p = find_in_cache(ctx, it);
    if (!p) {
        _cleanup_free_ char *evr = item_evr(it);
        return lapis_err(ctx, LAPIS_E_NOTFOUND, "%s-%s.%s is needed to restore the recorded "
                         "state but is in no enabled repository and not in the package cache",
                         it->name, evr, it->arch);
    }
    *ret = p;
    return 0;
}

/* Return every name.arch touched by the rows to its state before them. */
static int jobs_restore_before(lapis_goal *g, struct restore *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        const lapis_history_item *it = &rs->items[i];
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = same_key(&rs->items[k], it);
        if (seen)
            continue;
        /* The oldest transaction touching this key tells what was there before it. */
        const lapis_history_item *before = NULL;
        for (size_t k = i; k < rs->n && rs->trans_of[k] == rs->trans_of[i]; k++)
            if (same_key(&rs->items[k], it) && (is_outgoing(rs->items[k].action) ||
                                                strcmp(rs->items[k].action, "reinstall") == 0))
                before = &rs->items[k];
        Id keep = 0;
        int r;
        if (before) {
            if ((r = need_package(g, before, &keep)) < 0 ||
                (r = lapis_goal_install_pkg(g, keep)) < 0)
                return r;
            queue_push2(&g->reasons, keep, lapis_reason_from_name(before->reason));
        }
        /* Everything these transactions brought in under this key goes, except the keeper. */
        for (size_t k = i; k < rs->n; k++) {
            const lapis_history_item *x = &rs->items[k];
            if (!same_key(x, it) || is_outgoing(x->action))
                continue;
            Id p = find_exact(g->ctx, x, true);
            if (p && p != keep && (r = lapis_goal_remove_pkg(g, p)) < 0)
                return r;
        }
    }
    return 0;
}

int lapis_goal_history_undo(lapis_goal *g, long long id)
{
    struct restore rs = { 0 };
    int r = restore_add(g->ctx, &rs, id);
    if (r >= 0 && rs.n == 0)
        r = lapis_err(g->ctx, LAPIS_E_HISTORY, "transaction %lld changed no packages", id);
    if (r >= 0)
        r = jobs_restore_before(g, &rs);
    restore_clear(&rs);
    return r;
}

int lapis_goal_history_rollback(lapis_goal *g, long long id)
{
    lapis_history_trans *t;
    size_t n;
    struct restore rs = { 0 };
    int r;

    if ((r = lapis_history_list(g->ctx, &t, &n)) < 0)
        return r;
    /* list is newest first: add the later transactions oldest first */
    for (size_t i = n; i-- > 0 && r >= 0;)
        if (t[i].id > id && strcmp(t[i].result, "ok") == 0)
            r = restore_add(g->ctx, &rs, t[i].id);
    lapis_history_trans_free(t, n);
    if (r >= 0)
        r = jobs_restore_before(g, &rs);
    restore_clear(&rs);
    return r;
}

/* Redo: what the transaction brought in is installed again, what it removed is removed. */
int lapis_goal_history_redo(lapis_goal *g, long long id)
{
    struct restore rs = { 0 };
    int r = restore_add(g->ctx, &rs, id);
    if (r >= 0 && rs.n == 0)
        r = lapis_err(g->ctx, LAPIS_E_HISTORY, "transaction %lld changed no packages", id);
    for (size_t i = 0; r >= 0 && i < rs.n; i++) {
        const lapis_history_item *it = &rs.items[i];
        Id p;
        if (!is_outgoing(it->action)) {
            if ((r = need_package(g, it, &p)) >= 0 && (r = lapis_goal_install_pkg(g, p)) >= 0)
                queue_push2(&g->reasons, p, lapis_reason_from_name(it->reason));
            continue;
        }
        bool replaced = false;
        for (size_t k = 0; k < rs.n && !replaced; k++)
            replaced = !is_outgoing(rs.items[k].action) && same_key(&rs.items[k], it);
        if (!replaced && (p = find_exact(g->ctx, it, true)))
            r = lapis_goal_remove_pkg(g, p);
    }
    restore_clear(&rs);
    return r;
}
