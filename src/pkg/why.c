/*
 * -v's account of a resolve: for each package of the transaction, why the
 * solver put it there ("user request", "a dependency of A (requires B)",
 * "a weak dependency of A (recommends B)", ...) and which candidate it is,
 * read back from libsolv's decision record (solver_describe_decision and
 * the rule behind it). Debug messages only; nothing here changes a result.
 */
#include <stdio.h>
#include <string.h>

#include "pkg/internal.h"
#include "pkg/goal.h"
#include <solv/evr.h>
#include <solv/solver.h>
#include <solv/transaction.h>

/* pool_*2str share one ring of temporary buffers: copy what must survive. */
static char *dup_solvable(Pool *pool, Id p)
{
    return xstrdup(pool_solvid2str(pool, p));
}

static char *why_rule(lapis_goal *g, Id rule)
{
    Pool *pool = g->ctx->pool;
    Id from = 0, to = 0, dep = 0;
    int cls = solver_ruleclass(g->solver, rule);
    if (cls == SOLVER_RULE_JOB || cls == SOLVER_RULE_BEST)
        return xstrdup("user request");
    if (cls == SOLVER_RULE_UPDATE || cls == SOLVER_RULE_FEATURE)
        return xstrdup("an upgrade of an installed package");
    int type = solver_ruleinfo(g->solver, rule, &from, &to, &dep);
    _cleanup_free_ char *f = from ? dup_solvable(pool, from) : xstrdup("?");
    switch (type) {
    case SOLVER_RULE_PKG_REQUIRES:
        return xasprintf("a dependency of %s (requires %s)", f, pool_dep2str(pool, dep));
    case SOLVER_RULE_PKG_CONFLICTS:
        return xasprintf("in conflict with %s (conflicts %s)", f, pool_dep2str(pool, dep));
    case SOLVER_RULE_PKG_OBSOLETES:
    case SOLVER_RULE_PKG_INSTALLED_OBSOLETES:
        return xasprintf("obsoleted by %s (obsoletes %s)", f, pool_dep2str(pool, dep));
    case SOLVER_RULE_PKG_SAME_NAME:
        return xasprintf("replaced by %s (same name)", f);
    default:
        return xstrdup("the solver's choice");
    }
}

static char *why_weak(lapis_goal *g, Id p)
{
    Pool *pool = g->ctx->pool;
    Queue q;
    char *out;

    queue_init(&q);
    solver_describe_weakdep_decision(g->solver, p, &q);
    if (q.count >= 3) {
        _cleanup_free_ char *f = dup_solvable(pool, q.elements[1]);
        if (q.elements[0] == SOLVER_REASON_SUPPLEMENTED)
            out = xasprintf("a weak dependency: it supplements %s (%s)", f,
                            pool_dep2str(pool, q.elements[2]));
        else
            out = xasprintf("a weak dependency of %s (recommends %s)", f,
                            pool_dep2str(pool, q.elements[2]));
    } else
        out = xstrdup("a weak dependency");
    queue_free(&q);
    return out;
}

static char *why_decided(lapis_goal *g, Id p)
{
    Id info = 0;
    int reason = solver_describe_decision(g->solver, p, &info);
    switch (reason) {
    case SOLVER_REASON_WEAKDEP:
        return why_weak(g, p);
    case SOLVER_REASON_CLEANDEPS_ERASE:
        return xstrdup("no longer needed by anything");
    case SOLVER_REASON_KEEP_INSTALLED:
        return xstrdup("kept installed");
    case SOLVER_REASON_UPDATE_INSTALLED:
        return xstrdup("an upgrade of an installed package");
    case SOLVER_REASON_RESOLVE_JOB:
    case SOLVER_REASON_UNIT_RULE:
    case SOLVER_REASON_RESOLVE:
    case SOLVER_REASON_PREMISE:
        return info > 0 ? why_rule(g, info) : xstrdup("user request");
    default:
        return xstrdup("the solver's choice");
    }
}

/* Which candidate: the only one, or the newest of several (same name and arch). */
static char *why_candidate(Pool *pool, Id p)
{
    Solvable *s = pool->solvables + p;
    Id q, pp;
    int older = 0, all = 0;

    FOR_PROVIDES(q, pp, s->name) {
        Solvable *o = pool->solvables + q;
        if (o->name != s->name || o->arch != s->arch || (pool->installed && o->repo == pool->installed))
            continue;
        all++;
        if (pool_evrcmp(pool, o->evr, s->evr, EVRCMP_COMPARE) < 0)
            older++;
    }
    const char *repo = s->repo && s->repo->name ? s->repo->name : "?";
    if (all <= 1)
        return xasprintf("from repo %s", repo);
    if (older == all - 1)
        return xasprintf("best candidate over %d older version%s, from repo %s", older,
                         older == 1 ? "" : "s", repo);
    return xasprintf("%d of %d versions are older, from repo %s", older, all, repo);
}

static const char *action_words(enum lapis_action a)
{
    switch (a) {
    case LAPIS_ACT_INSTALL: case LAPIS_ACT_INSTALL_DEP: case LAPIS_ACT_INSTALL_WEAK:
        return "is installed";
    case LAPIS_ACT_UPGRADE: return "is an upgrade";
    case LAPIS_ACT_DOWNGRADE: return "is a downgrade";
    case LAPIS_ACT_REINSTALL: return "is reinstalled";
    default: return "is removed";
    }
}

void lapis_goal_log_reasons(lapis_goal *g)
{
    Pool *pool = g->ctx->pool;
    if (!lapis_log_wants(g->ctx, LAPIS_LOG_DEBUG))
        return;
    for (size_t i = 0; i < g->nitems; i++) {
        const lapis_trans_item *it = &g->items[i];
        _cleanup_free_ char *nevra = dup_solvable(pool, it->pkg);
        _cleanup_free_ char *why = why_decided(g, it->pkg);
        bool removal = it->action >= LAPIS_ACT_REMOVE;
        _cleanup_free_ char *cand = removal ? NULL : why_candidate(pool, it->pkg);
        bool user = strcmp(why, "user request") == 0;
        lapis_log(g->ctx, LAPIS_LOG_DEBUG, "%s %s%s %s%s%s", nevra, action_words(it->action),
                  user ? ":" : " as", why, cand ? "; " : "", cand ? cand : "");
    }
}
