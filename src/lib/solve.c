/*
 * Solving with libsolv under dnf's policy: best candidate (forced with
 * best=1), repo priority then cost, yum-style obsoletes, weak dependencies
 * when install_weak_deps=1, installonly packages installed side by side.
 * A goal collects jobs, resolves, and exposes the transaction classified
 * the way dnf shows it (direct install, dependency, weak dependency, ...).
 */
#include <string.h>

#include "internal.h"
#include <solv/selection.h>
#include <solv/solver.h>
#include <solv/transaction.h>
#include <solv/util.h>


struct lapis_goal {
    lapis_ctx *ctx;
    Queue job;
    Solver *solver;
    Transaction *trans;
    lapis_trans_item *items;
    size_t nitems;
    char **problems;
};

int lapis_goal_new(lapis_ctx *ctx, lapis_goal **ret)
{
    lapis_goal *g;
    if (!ctx->loaded)
        return lapis_err(ctx, LAPIS_E_USAGE, "internal: goal created before lapis_load()");
    g = xcalloc(1, sizeof(*g));
    g->ctx = ctx;
    queue_init(&g->job);
    g->problems = xcalloc(1, sizeof(char *));
    *ret = g;
    return 0;
}

void lapis_goal_free(lapis_goal *g)
{
    if (!g)
        return;
    if (g->trans)
        transaction_free(g->trans);
    if (g->solver)
        solver_free(g->solver);
    queue_free(&g->job);
    free(g->items);
    lapis_strv_free(g->problems);
    free(g);
}

int lapis_goal_install(lapis_goal *g, const char *spec)
{
    Pool *pool = g->ctx->pool;
    Queue sel;
    int flags = SELECTION_NAME | SELECTION_PROVIDES | SELECTION_GLOB | SELECTION_DOTARCH |
                SELECTION_CANON | SELECTION_REL;

    if (lapis_spec_needs_filelists(spec))
        flags = SELECTION_FILELIST | SELECTION_GLOB;
    queue_init(&sel);
    selection_make(pool, &sel, spec, flags);
    if (sel.count == 0) {
        queue_free(&sel);
        return lapis_err(g->ctx, LAPIS_E_NOTFOUND,
                         "no package matches '%s'; 'lapis search' or 'lapis provides' can help find it",
                         spec);
    }
    for (int i = 0; i < sel.count; i += 2)
        sel.elements[i] |= SOLVER_INSTALL | (g->ctx->conf.best ? SOLVER_FORCEBEST : 0);
    queue_insertn(&g->job, g->job.count, sel.count, sel.elements);
    queue_free(&sel);
    return 0;
}

/* installonlypkgs are provides: every provider may be installed in several versions. */
static void add_installonly_jobs(lapis_goal *g)
{
    Pool *pool = g->ctx->pool;
    for (size_t i = 0; g->ctx->conf.installonlypkgs && g->ctx->conf.installonlypkgs[i]; i++) {
        Id dep = pool_str2id(pool, g->ctx->conf.installonlypkgs[i], 0);
        if (dep)
            queue_push2(&g->job, SOLVER_MULTIVERSION | SOLVER_SOLVABLE_PROVIDES, dep);
    }
}

static void collect_problems(lapis_goal *g)
{
    Solver *solv = g->solver;
    int n = solver_problem_count(solv);
    for (Id pr = 1; pr <= n; pr++) {
        Queue rules;
        queue_init(&rules);
        solver_findallproblemrules(solv, pr, &rules);
        for (int i = 0; i < rules.count; i++) {
            Id dep, source, target;
            SolverRuleinfo type = solver_ruleinfo(solv, rules.elements[i], &source, &target, &dep);
            const char *text = solver_problemruleinfo2str(solv, type, source, target, dep);
            if (!strv_contains(g->problems, text))
                strv_push(&g->problems, xstrdup(text));
        }
        queue_free(&rules);
    }
}

static enum lapis_action classify_install(lapis_goal *g, Id p)
{
    Id info;
    int reason = solver_describe_decision(g->solver, p, &info);
    if (reason == SOLVER_REASON_WEAKDEP)
        return LAPIS_ACT_INSTALL_WEAK;
    /* A job with one candidate is decided as a unit rule: ask which rule it was (as libdnf). */
    if (reason == SOLVER_REASON_RESOLVE_JOB || reason == SOLVER_REASON_UNIT_RULE) {
        int cls = solver_ruleclass(g->solver, info);
        if (cls == SOLVER_RULE_JOB || cls == SOLVER_RULE_BEST)
            return LAPIS_ACT_INSTALL;
    }
    return LAPIS_ACT_INSTALL_DEP;
}

static void push_item(lapis_goal *g, enum lapis_action a, Id p, Id replaces)
{
    g->items = xrealloc(g->items, (g->nitems + 1) * sizeof(*g->items));
    g->items[g->nitems++] = (lapis_trans_item){ a, p, replaces };
}

static void build_items(lapis_goal *g)
{
    Transaction *t = g->trans;
    int mode = SOLVER_TRANSACTION_SHOW_ACTIVE | SOLVER_TRANSACTION_SHOW_ALL |
               SOLVER_TRANSACTION_SHOW_OBSOLETES | SOLVER_TRANSACTION_SHOW_MULTIINSTALL;

    for (int i = 0; i < t->steps.count; i++) {
        Id p = t->steps.elements[i];
        Id type = transaction_type(t, p, mode);
        Id other = transaction_obs_pkg(t, p);
        switch (type) {
        case SOLVER_TRANSACTION_INSTALL:
        case SOLVER_TRANSACTION_MULTIINSTALL:
            push_item(g, classify_install(g, p), p, 0);
            break;
        case SOLVER_TRANSACTION_UPGRADE:
        case SOLVER_TRANSACTION_OBSOLETES:
            push_item(g, LAPIS_ACT_UPGRADE, p, other);
            break;
        case SOLVER_TRANSACTION_DOWNGRADE:
            push_item(g, LAPIS_ACT_DOWNGRADE, p, other);
            break;
        case SOLVER_TRANSACTION_REINSTALL:
        case SOLVER_TRANSACTION_MULTIREINSTALL:
            push_item(g, LAPIS_ACT_REINSTALL, p, other);
            break;
        case SOLVER_TRANSACTION_ERASE:
            push_item(g, LAPIS_ACT_REMOVE, p, 0);
            break;
        default:
            break; /* the replaced side of an upgrade is reported with it */
        }
    }
}

/* Display order: by action, then name, then arch (rpm's ordering is applied at run time). */
static int cmp_items(const void *pa, const void *pb, void *dp)
{
    const lapis_trans_item *a = pa, *b = pb;
    Pool *pool = dp;
    Solvable *sa = pool_id2solvable(pool, a->pkg), *sb = pool_id2solvable(pool, b->pkg);
    int r;
    if (a->action != b->action)
        return (int)a->action - (int)b->action;
    if ((r = strcmp(pool_id2str(pool, sa->name), pool_id2str(pool, sb->name))))
        return r;
    return strcmp(pool_id2str(pool, sa->arch), pool_id2str(pool, sb->arch));
}

int lapis_goal_resolve(lapis_goal *g)
{
    lapis_ctx *ctx = g->ctx;

    add_installonly_jobs(g);
    g->solver = solver_create(ctx->pool);
    solver_set_flag(g->solver, SOLVER_FLAG_BEST_OBEY_POLICY, 1);
    solver_set_flag(g->solver, SOLVER_FLAG_ALLOW_VENDORCHANGE, 1);
    solver_set_flag(g->solver, SOLVER_FLAG_YUM_OBSOLETES, 1);
    solver_set_flag(g->solver, SOLVER_FLAG_IGNORE_RECOMMENDED, !ctx->conf.install_weak_deps);
    if (solver_solve(g->solver, &g->job) != 0) {
        collect_problems(g);
        return lapis_err(ctx, LAPIS_E_SOLVE, "cannot satisfy the request: %s",
                         g->problems[0] ? g->problems[0] : "unknown problem");
    }
    /* No transaction_order(): display order is by name, and rpm orders the real run. */
    g->trans = solver_create_transaction(g->solver);
    build_items(g);
    solv_sort(g->items, g->nitems, sizeof(*g->items), cmp_items, ctx->pool);
    return 0;
}

const lapis_trans_item *lapis_goal_items(const lapis_goal *g, size_t *ret_count)
{
    *ret_count = g->nitems;
    return g->items;
}

char *const *lapis_goal_problems(const lapis_goal *g)
{
    return g->problems;
}

const char *lapis_action_name(enum lapis_action a)
{
    static const char *const names[] = {
        [LAPIS_ACT_INSTALL] = "install",       [LAPIS_ACT_INSTALL_DEP] = "install-dep",
        [LAPIS_ACT_INSTALL_WEAK] = "install-weak", [LAPIS_ACT_UPGRADE] = "upgrade",
        [LAPIS_ACT_DOWNGRADE] = "downgrade",   [LAPIS_ACT_REINSTALL] = "reinstall",
        [LAPIS_ACT_REMOVE] = "remove",         [LAPIS_ACT_REMOVE_DEP] = "remove-dep",
        [LAPIS_ACT_OBSOLETED] = "obsoleted",   [LAPIS_ACT_UPGRADED] = "upgraded",
    };
    return a < ARRAY_SIZE(names) ? names[a] : "unknown";
}
