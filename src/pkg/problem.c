/*
 * Why a resolve failed, in dnf5's words. libsolv's own texts
 * (solver_problemruleinfo2str) omit the repository and word things
 * differently; scripts and people who know dnf5 read lines such as
 * "nothing provides X needed by NEVRA from REPO", so each rule is phrased
 * as libdnf5 phrases it, one "Problem: ..." entry per libsolv problem with
 * its further rules as "  - ..." lines. The hints dnf5 prints under
 * "You can try to add to command line:" are derived from the same rules.
 */
#include <string.h>

#include "pkg/internal.h"
#include "pkg/goal.h"
#include <solv/solver.h>

static const char *repo_of(Pool *pool, Id p)
{
    Solvable *s = pool_id2solvable(pool, p);
    if (!s->repo)
        return "";
    if (s->repo == pool->installed)
        return "@System";
    return s->repo->name ? s->repo->name : "";
}

static bool is_installed(Pool *pool, Id p)
{
    return pool_id2solvable(pool, p)->repo == pool->installed;
}

static bool is_excluded(Pool *pool, Id p)
{
    return pool->considered && !MAPTST(pool->considered, p);
}

/* The rules that involve two packages and a dependency (conflicts, obsoletes). */
static char *pair_text(Pool *pool, const char *verb, Id source, Id target, Id dep)
{
    const char *d = pool_dep2str(pool, dep), *t = pool_solvid2str(pool, target);
    if (is_installed(pool, source))
        return xasprintf("installed package %s %s %s provided by %s from %s",
                         pool_solvid2str(pool, source), verb, d, t, repo_of(pool, target));
    return xasprintf("package %s from %s %s %s provided by %s from %s",
                     pool_solvid2str(pool, source), repo_of(pool, source), verb, d, t,
                     repo_of(pool, target));
}

static char *pkg_rule_text(Pool *pool, SolverRuleinfo type, Id source, Id target, Id dep)
{
    const char *s = source > 0 ? pool_solvid2str(pool, source) : "";
    switch (type) {
    case SOLVER_RULE_PKG_NOT_INSTALLABLE:
        return xasprintf(is_excluded(pool, source) ? "package %s from %s is filtered out by "
                         "exclude filtering" : "package %s from %s is not installable",
                         s, repo_of(pool, source));
    case SOLVER_RULE_PKG_NOTHING_PROVIDES_DEP:
        return xasprintf("nothing provides %s needed by %s from %s", pool_dep2str(pool, dep), s,
                         repo_of(pool, source));
    case SOLVER_RULE_PKG_SAME_NAME:
        return xasprintf("cannot install both %s from %s and %s from %s", s,
                         repo_of(pool, source), pool_solvid2str(pool, target),
                         repo_of(pool, target));
    case SOLVER_RULE_PKG_CONFLICTS:
        return pair_text(pool, "conflicts with", source, target, dep);
    case SOLVER_RULE_PKG_OBSOLETES:
    case SOLVER_RULE_PKG_INSTALLED_OBSOLETES:
        return pair_text(pool, "obsoletes", source, target, dep);
    case SOLVER_RULE_PKG_IMPLICIT_OBSOLETES:
        return pair_text(pool, "implicitly obsoletes", source, target, dep);
    case SOLVER_RULE_PKG_REQUIRES:
        if (is_installed(pool, source))
            return xasprintf("installed package %s requires %s, but none of the providers can "
                             "be installed", s, pool_dep2str(pool, dep));
        return xasprintf("package %s from %s requires %s, but none of the providers can be "
                         "installed", s, repo_of(pool, source), pool_dep2str(pool, dep));
    case SOLVER_RULE_PKG_SELF_CONFLICT:
        return xasprintf("package %s from %s conflicts with %s provided by itself", s,
                         repo_of(pool, source), pool_dep2str(pool, dep));
    default:
        return NULL;
    }
}

/* One rule as libdnf5 words it (libsolv's text for the rare others). */
static char *rule_text(Solver *solv, SolverRuleinfo type, Id source, Id target, Id dep)
{
    Pool *pool = solv->pool;
    char *t = pkg_rule_text(pool, type, source, target, dep);
    if (t)
        return t;
    switch (type) {
    case SOLVER_RULE_JOB: return xstrdup("conflicting requests");
    case SOLVER_RULE_JOB_UNSUPPORTED: return xstrdup("unsupported request");
    case SOLVER_RULE_PKG: return xstrdup("some dependency problem");
    case SOLVER_RULE_UPDATE: return xstrdup("problem with installed package");
    case SOLVER_RULE_JOB_NOTHING_PROVIDES_DEP:
        return xasprintf("nothing provides requested %s", pool_dep2str(pool, dep));
    case SOLVER_RULE_JOB_UNKNOWN_PACKAGE:
        return xasprintf("package %s does not exist", pool_dep2str(pool, dep));
    case SOLVER_RULE_JOB_PROVIDED_BY_SYSTEM:
        return xasprintf("%s is provided by the system", pool_dep2str(pool, dep));
    case SOLVER_RULE_DISTUPGRADE:
        return xasprintf("%s does not belong to a distupgrade repository",
                         pool_solvid2str(pool, source));
    case SOLVER_RULE_INFARCH:
        return xasprintf("%s from %s has inferior architecture", pool_solvid2str(pool, source),
                         repo_of(pool, source));
    case SOLVER_RULE_BEST:
        if (source > 0)
            return xasprintf("cannot install the best update candidate for package %s",
                             pool_solvid2str(pool, source));
        return xstrdup("cannot install the best candidate for the job");
    case SOLVER_RULE_YUMOBS:
        return xasprintf("both package %s from %s and %s from %s obsolete %s",
                         pool_solvid2str(pool, source), repo_of(pool, source),
                         pool_solvid2str(pool, target), repo_of(pool, target),
                         pool_dep2str(pool, dep));
    default:
        return xstrdup(solver_problemruleinfo2str(solv, type, source, target, dep));
    }
}

static unsigned rule_hint(Pool *pool, SolverRuleinfo type, Id dep)
{
    switch (type) {
    case SOLVER_RULE_PKG_CONFLICTS: return LAPIS_HINT_ALLOWERASING;
    case SOLVER_RULE_BEST: return LAPIS_HINT_NO_BEST;
    case SOLVER_RULE_PKG_NOTHING_PROVIDES_DEP:
        return pool_dep2str(pool, dep)[0] == '/' ? LAPIS_HINT_FILEDEP : 0;
    default: return 0;
    }
}

static bool is_specific_rule(SolverRuleinfo type)
{
    switch (type) {
    case SOLVER_RULE_PKG_CONFLICTS: case SOLVER_RULE_PKG_NOTHING_PROVIDES_DEP:
    case SOLVER_RULE_JOB_NOTHING_PROVIDES_DEP: case SOLVER_RULE_PKG_REQUIRES:
    case SOLVER_RULE_PKG_OBSOLETES: case SOLVER_RULE_PKG_INSTALLED_OBSOLETES:
    case SOLVER_RULE_PKG_IMPLICIT_OBSOLETES: case SOLVER_RULE_PKG_SELF_CONFLICT:
        return true;
    default:
        return false;
    }
}

/* One libsolv problem: "Problem: first rule\n  - next rule...". *ret_lead is the
 * rule that names what conflicts or is missing (for a one-line summary). */
static char *problem_text(lapis_goal *g, Id pr, bool numbered, char **ret_lead)
{
    Solver *solv = g->solver;
    Queue rules;
    char **lines = xcalloc(1, sizeof(char *));
    queue_init(&rules);
    solver_findallproblemrules(solv, pr, &rules);
    for (int i = 0; i < rules.count; i++) {
        Id dep, source, target;
        SolverRuleinfo type = solver_ruleinfo(solv, rules.elements[i], &source, &target, &dep);
        char *t = rule_text(solv, type, source, target, dep);
        g->hints |= rule_hint(solv->pool, type, dep);
        if (strv_contains(lines, t)) {
            free(t);
            continue;
        }
        if (is_specific_rule(type) && !*ret_lead)
            *ret_lead = xstrdup(t);
        strv_push(&lines, t);
    }
    queue_free(&rules);
    if (!*ret_lead && lines[0])
        *ret_lead = xstrdup(lines[0]);
    _cleanup_free_ char *body = strv_join(lines, "\n  - ");
    lapis_strv_free(lines);
    return numbered ? xasprintf("Problem %d: %s", pr, body) : xasprintf("Problem: %s", body);
}

/* After a failed solver_solve(): the problems into g->problems (dnf5's
 * entries), the hints into g->hints. Returns the leading rule (caller frees). */
char *lapis_problem_collect(lapis_goal *g)
{
    int n = solver_problem_count(g->solver);
    char *lead = NULL;
    g->hints |= LAPIS_HINT_SKIP_BROKEN;
    for (Id pr = 1; pr <= n; pr++) {
        char *first = NULL;
        strv_push(&g->problems, problem_text(g, pr, n > 1, &first));
        if (!lead)
            lead = first;
        else
            free(first);
    }
    return lead ? lead : xstrdup("unknown problem");
}
