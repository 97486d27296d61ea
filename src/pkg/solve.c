/*
 * Solving with libsolv under dnf's policy: best candidate (forced with
 * best=1), repo priority then cost, yum-style obsoletes, weak dependencies
 * when install_weak_deps=1, installonly packages installed side by side up
 * to installonly_limit, and user-installed vs dependency reasons so removals
 * only drop what nothing needs any more. A goal collects jobs, resolves, and
 * exposes the transaction classified the way dnf shows it.
 */
#include <errno.h>
#include <string.h>
#include <sys/utsname.h>

#include "pkg/internal.h"
#include "pkg/goal.h"
#include <solv/evr.h>
#include <solv/selection.h>
#include <solv/solver.h>
#include <solv/transaction.h>
#include <solv/util.h>

int lapis_goal_new(lapis_ctx *ctx, lapis_goal **ret)
{
    lapis_goal *g;
    if (!ctx->loaded)
        return lapis_err(ctx, LAPIS_E_USAGE, "internal: goal created before lapis_load()");
    g = xcalloc(1, sizeof(*g));
    g->ctx = ctx;
    queue_init(&g->job);
    queue_init(&g->work);
    queue_init(&g->reasons);
    queue_init(&g->skipped);
    g->problems = xcalloc(1, sizeof(char *));
    g->log = xcalloc(1, sizeof(char *));
    g->user_specs = xcalloc(1, sizeof(char *));
    g->downloaded = xcalloc(1, sizeof(char *));
    *ret = g;
    return 0;
}

/* Drop what the last resolve produced, so resolving again starts from the requests. */
static void goal_clear_result(lapis_goal *g)
{
    if (g->trans)
        transaction_free(g->trans);
    g->trans = NULL;
    if (g->solver)
        solver_free(g->solver);
    g->solver = NULL;
    free(g->items);
    g->items = NULL;
    g->nitems = 0;
    lapis_strv_free(g->problems);
    g->problems = xcalloc(1, sizeof(char *));
    g->hints = 0;
    queue_empty(&g->skipped);
    queue_free(&g->work);
    queue_init_clone(&g->work, &g->job);
}

void lapis_goal_free(lapis_goal *g)
{
    if (!g)
        return;
    if (g->trans)
        transaction_free(g->trans);
    if (g->solver)
        solver_free(g->solver);
    free(g->items);
    queue_free(&g->work);
    queue_free(&g->job);
    queue_free(&g->reasons);
    queue_free(&g->skipped);
    lapis_strv_free(g->problems);
    lapis_strv_free(g->log);
    lapis_strv_free(g->user_specs);
    lapis_strv_free(g->downloaded);
    lapis_strv_free(g->group_pkgs);
    lapis_strv_free(g->groups_set);
    lapis_strv_free(g->groups_del);
    free(g);
}

void lapis_goal_set_flags(lapis_goal *g, unsigned flags)
{
    g->flags = flags;
}

/* A local .rpm named on the command line selects exactly its solvable. */
static bool select_cmdline(lapis_goal *g, const char *spec, Queue *sel)
{
    lapis_ctx *ctx = g->ctx;
    _cleanup_free_ char *abs = NULL;
    Repo *r = ctx->cmdline_repo;

    if (!r || !str_endswith(spec, ".rpm") || !(abs = realpath(spec, NULL)))
        return false;
    for (Id p = r->start; p < r->end; p++) {
        const char *path = lapis_sack_cmdline_path(ctx, p);
        if (path && strcmp(path, abs) == 0) {
            queue_push2(sel, SOLVER_SOLVABLE, p);
            return true;
        }
    }
    return false;
}

/* Turn SPEC into a libsolv selection; installed_only limits it to the rpmdb. */
static void make_selection(lapis_goal *g, const char *spec, bool installed_only, Queue *sel)
{
    int flags = SELECTION_NAME | SELECTION_PROVIDES | SELECTION_GLOB | SELECTION_DOTARCH |
                SELECTION_CANON | SELECTION_REL;

    if (!installed_only && select_cmdline(g, spec, sel))
        return;
    if (lapis_spec_needs_filelists(spec))
        flags = SELECTION_FILELIST | SELECTION_GLOB;
    if (installed_only)
        flags |= SELECTION_INSTALLED_ONLY;
    selection_make(g->ctx->pool, sel, spec, flags);
}

/* dnf5 notes a request that matches nothing; without LAPIS_GOAL_LOG_UNAVAILABLE
 * it is an error at once. Returns 1 (skip the request) or a negative errno. */
static int unavailable(lapis_goal *g, const char *note, const char *fallback)
{
    if (!(g->flags & LAPIS_GOAL_LOG_UNAVAILABLE))
        return lapis_err(g->ctx, LAPIS_E_NOTFOUND, "%s", fallback);
    strv_push(&g->log, xstrdup(note));
    g->unavailable |= !g->ctx->conf.skip_unavailable;
    return 1;
}

static int select_spec(lapis_goal *g, const char *spec, bool installed_only, Queue *sel)
{
    make_selection(g, spec, installed_only, sel);
    if (sel->count)
        return 0;
    _cleanup_free_ char *note = xasprintf("No match for argument: %s", spec);
    _cleanup_free_ char *old = installed_only
        ? xasprintf("no installed package matches '%s'", spec)
        : xasprintf("no package matches '%s'; 'lapis search' or 'lapis provides' can help find it",
                    spec);
    return unavailable(g, note, old);
}

static void push_selection(lapis_goal *g, Queue *sel, Id how)
{
    if (g->flags & LAPIS_GOAL_SKIP_BROKEN)
        how |= SOLVER_WEAK;
    for (int i = 0; i < sel->count; i += 2)
        queue_push2(&g->job, sel->elements[i] | how, sel->elements[i + 1]);
}

static Id forcebest(lapis_goal *g)
{
    return g->ctx->conf.best ? SOLVER_FORCEBEST : 0;
}

/* Appends to Q what obsoletes "name = evr" of T, as pool_whatmatchesdep(
 * SOLVABLE_OBSOLETES) finds it but without its per-package copy of the
 * dependency array (seven times the cost on 63k packages) and without
 * emptying Q: obsoletes always live in s->obsoletes, and most packages have
 * none. The relation is made only once a package has obsoletes: after
 * pool_createwhatprovides() the first pool_rel2id() hashes every relation
 * again. */
static void whatobsoletes(Pool *pool, Solvable *t, Queue *q)
{
    Id p, dep = 0;
    FOR_POOL_SOLVABLES(p) {
        Solvable *s = pool_id2solvable(pool, p);
        if (!s->obsoletes || s->repo->disabled ||
            (s->repo != pool->installed && !pool_installable(pool, s)))
            continue;
        if (!dep)
            dep = pool_rel2id(pool, t->name, t->evr, REL_EQ, 1);
        for (Id *op = s->repo->idarraydata + s->obsoletes; *op; op++)
            if (pool_match_dep(pool, *op, dep)) {
                queue_pushunique(q, p);
                break;
            }
    }
}

/* Whether P may stand in for a match: available, installable, not excluded. */
static bool obsoleter_ok(Pool *pool, Id p)
{
    Solvable *o = pool_id2solvable(pool, p);
    return o->repo != pool->installed && pool_installable(pool, o) &&
           !(pool->considered && !MAPTST(pool->considered, p));
}

/* The packages of one selection job, with what obsoletes any of them. */
static bool job_with_obsoleters(Pool *pool, Id how, Id what, Queue *pkgs)
{
    Queue job, obs;
    int before;
    queue_init(&job);
    queue_init(&obs);
    queue_push2(&job, how, what);
    selection_solvables(pool, &job, pkgs);
    for (int i = 0; i < pkgs->count; i++)
        whatobsoletes(pool, pool_id2solvable(pool, pkgs->elements[i]), &obs);
    before = pkgs->count;
    for (int i = 0; i < obs.count; i++)
        if (obsoleter_ok(pool, obs.elements[i]))
            queue_pushunique(pkgs, obs.elements[i]);
    queue_free(&obs);
    queue_free(&job);
    return pkgs->count > before;
}

/* obsoletes=1: what obsoletes a match is a candidate too, and libsolv's policy
 * prefers it (prune_obsoleted), so "install oldname" installs its replacement.
 * As in dnf, only for a bare name (a glob gives one job per name, each with
 * its own obsoleters), not for name-evr, name.arch or a provide. */
static void add_obsoleters(lapis_goal *g, Queue *sel)
{
    Pool *pool = g->ctx->pool;
    Queue pkgs;
    queue_init(&pkgs);
    for (int i = 0; i < sel->count; i += 2) {
        Id how = sel->elements[i], what = sel->elements[i + 1];
        if ((how & SOLVER_SELECTMASK) != SOLVER_SOLVABLE_NAME || ISRELDEP(what))
            continue;
        queue_empty(&pkgs);
        if (job_with_obsoleters(pool, how, what, &pkgs)) {
            sel->elements[i] = SOLVER_SOLVABLE_ONE_OF;
            sel->elements[i + 1] = pool_queuetowhatprovides(pool, &pkgs);
        }
    }
    queue_free(&pkgs);
}

int lapis_goal_install(lapis_goal *g, const char *spec)
{
    Queue sel;
    int r;
    queue_init(&sel);
    if ((r = select_spec(g, spec, false, &sel)) == 0) {
        if (g->ctx->conf.obsoletes)
            add_obsoleters(g, &sel);
        push_selection(g, &sel, SOLVER_INSTALL | forcebest(g));
        strv_push(&g->user_specs, xstrdup(spec));
    }
    queue_free(&sel);
    return r < 0 ? r : 0;
}

/* An id that names no package would make libsolv read outside its arrays. */
static int check_pkg(lapis_goal *g, lapis_pkg p)
{
    Pool *pool = g->ctx->pool;
    if (p < 2 || p >= pool->nsolvables || !pool_id2solvable(pool, p)->repo)
        return lapis_err(g->ctx, LAPIS_E_USAGE, "internal: %d is not a package id", p);
    return 0;
}

int lapis_goal_install_pkg(lapis_goal *g, lapis_pkg p)
{
    int r = check_pkg(g, p);
    if (r == 0)
        queue_push2(&g->job, SOLVER_INSTALL | SOLVER_SOLVABLE, p);
    return r;
}

int lapis_goal_remove_pkg(lapis_goal *g, lapis_pkg p)
{
    int r = check_pkg(g, p);
    if (r == 0)
        queue_push2(&g->job, SOLVER_ERASE | SOLVER_SOLVABLE, p);
    return r;
}

int lapis_goal_remove(lapis_goal *g, const char *spec)
{
    Queue sel;
    int r;
    queue_init(&sel);
    make_selection(g, spec, true, &sel);
    if (sel.count) {
        push_selection(g, &sel, SOLVER_ERASE |
                       (g->ctx->conf.clean_requirements_on_remove ? SOLVER_CLEANDEPS : 0));
        g->erasing = true;
        r = 0;
    } else if (g->flags & LAPIS_GOAL_LOG_UNAVAILABLE) {
        /* dnf5: a note, and nothing to do is not a failure. */
        strv_push(&g->log, xasprintf("No packages to remove for argument: %s", spec));
        r = 0;
    } else {
        r = lapis_err(g->ctx, LAPIS_E_NOTFOUND, "no installed package matches '%s'", spec);
    }
    queue_free(&sel);
    return r;
}

int lapis_goal_reinstall(lapis_goal *g, const char *spec)
{
    Pool *pool = g->ctx->pool;
    Queue sel, pkgs;
    int r, found = 0;

    queue_init(&sel);
    queue_init(&pkgs);
    if ((r = select_spec(g, spec, true, &sel)) == 0) {
        selection_solvables(pool, &sel, &pkgs);
        for (int i = 0; i < pkgs.count; i++) {
            Solvable *s = pool_id2solvable(pool, pkgs.elements[i]);
            Id q = lapis_sack_find_exact(pool, s->name, s->arch, s->evr, false);
            if (q) {
                queue_push2(&g->job, SOLVER_INSTALL | SOLVER_SOLVABLE, q);
                found++;
            }
        }
        if (!found)
            r = lapis_err(g->ctx, LAPIS_E_NOTFOUND, "installed package %s is not available in "
                          "any enabled repository, so it cannot be reinstalled",
                          pool_solvable2str(pool, pool_id2solvable(pool, pkgs.elements[0])));
    }
    queue_free(&pkgs);
    queue_free(&sel);
    return r < 0 ? r : 0;
}

static bool name_installed(Pool *pool, Id name)
{
    Id p, pp;
    FOR_PROVIDES(p, pp, name) {
        Solvable *s = pool_id2solvable(pool, p);
        if (s->repo == pool->installed && s->name == name)
            return true;
    }
    return false;
}

int lapis_goal_upgrade(lapis_goal *g, const char *spec)
{
    Queue sel;
    int r;
    if (!spec) {
        queue_push2(&g->job, SOLVER_UPDATE | SOLVER_SOLVABLE_ALL | forcebest(g), 0);
        return 0;
    }
    queue_init(&sel);
    if ((r = select_spec(g, spec, false, &sel)) == 0) {
        Queue inst;
        queue_init(&inst);
        selection_solvables(g->ctx->pool, &sel, &inst);
        bool any = false;
        for (int i = 0; i < inst.count && !any; i++)
            any = name_installed(g->ctx->pool, pool_id2solvable(g->ctx->pool, inst.elements[i])->name);
        queue_free(&inst);
        if (!any) {
            _cleanup_free_ char *note = xasprintf("Packages for argument '%s' available, but not "
                                                  "installed.", spec);
            _cleanup_free_ char *old = xasprintf("'%s' is not installed; use 'lapis install' to "
                                                 "install it", spec);
            r = unavailable(g, note, old);
        } else {
            push_selection(g, &sel, SOLVER_UPDATE | forcebest(g));
        }
    }
    queue_free(&sel);
    return r < 0 ? r : 0;
}

int lapis_goal_distro_sync(lapis_goal *g, const char *spec)
{
    Queue sel;
    int r;
    if (!spec) {
        queue_push2(&g->job, SOLVER_DISTUPGRADE | SOLVER_SOLVABLE_ALL, 0);
        return 0;
    }
    queue_init(&sel);
    if ((r = select_spec(g, spec, false, &sel)) == 0)
        push_selection(g, &sel, SOLVER_DISTUPGRADE);
    queue_free(&sel);
    return r < 0 ? r : 0;
}

/* "downgrade hello-1.0": the named available versions older than what is installed. */
static int downgrade_to_named_version(lapis_goal *g, const char *spec, int *found)
{
    Pool *pool = g->ctx->pool;
    Queue sel, pkgs;
    *found = 0;
    queue_init(&sel);
    queue_init(&pkgs);
    /* A plain name (or name.arch) is the usual "next older version" downgrade. */
    selection_make(pool, &sel, spec, SELECTION_NAME | SELECTION_DOTARCH | SELECTION_GLOB);
    if (sel.count) {
        queue_free(&sel);
        queue_free(&pkgs);
        return 0;
    }
    selection_make(pool, &sel, spec, SELECTION_CANON | SELECTION_DOTARCH | SELECTION_REL);
    selection_solvables(pool, &sel, &pkgs);
    for (int i = 0; i < pkgs.count; i++) {
        Solvable *t = pool_id2solvable(pool, pkgs.elements[i]);
        Id p, pp;
        if (t->repo == pool->installed)
            continue;
        FOR_PROVIDES(p, pp, t->name) {
            Solvable *s = pool_id2solvable(pool, p);
            if (s->repo == pool->installed && s->name == t->name &&
                pool_evrcmp(pool, t->evr, s->evr, EVRCMP_COMPARE) < 0) {
                queue_push2(&g->job, SOLVER_INSTALL | SOLVER_SOLVABLE, pkgs.elements[i]);
                (*found)++;
                break;
            }
        }
    }
    queue_free(&pkgs);
    queue_free(&sel);
    return 0;
}

/* For each installed match, the newest available version older than it (dnf's downgrade). */
int lapis_goal_downgrade(lapis_goal *g, const char *spec)
{
    Pool *pool = g->ctx->pool;
    Queue sel, pkgs;
    int r, found = 0;

    queue_init(&sel);
    queue_init(&pkgs);
    if (downgrade_to_named_version(g, spec, &found) == 0 && found) {
        queue_free(&pkgs);
        queue_free(&sel);
        return 0;
    }
    if ((r = select_spec(g, spec, true, &sel)) == 0) {
        selection_solvables(pool, &sel, &pkgs);
        for (int i = 0; i < pkgs.count; i++) {
            Solvable *s = pool_id2solvable(pool, pkgs.elements[i]);
            Id q, pp, best = 0;
            FOR_PROVIDES(q, pp, s->name) {
                Solvable *t = pool_id2solvable(pool, q);
                if (t->repo == pool->installed || t->name != s->name ||
                    (pool->considered && !MAPTST(pool->considered, q)) ||
                    !pool_installable(pool, t) || (t->arch != s->arch && s->arch != ARCH_NOARCH &&
                                                   t->arch != ARCH_NOARCH))
                    continue;
                if (pool_evrcmp(pool, t->evr, s->evr, EVRCMP_COMPARE) >= 0)
                    continue;
                if (!best || pool_evrcmp(pool, t->evr, pool_id2solvable(pool, best)->evr,
                                         EVRCMP_COMPARE) > 0)
                    best = q;
            }
            if (best) {
                queue_push2(&g->job, SOLVER_INSTALL | SOLVER_SOLVABLE, best);
                found++;
            }
        }
        if (!found)
            r = lapis_err(g->ctx, LAPIS_E_NOTFOUND, "no older version of '%s' is available to "
                          "downgrade to", spec);
    }
    queue_free(&pkgs);
    queue_free(&sel);
    return r < 0 ? r : 0;
}

int lapis_goal_autoremove(lapis_goal *g)
{
    g->autoremove = true;
    return 0;
}

/* Installed packages not recorded as dependencies count as user-installed (dnf's rule
 * for packages it did not install itself), so autoremove never touches them. */
static void add_userinstalled_jobs(lapis_goal *g)
{
    Pool *pool = g->ctx->pool;
    Id p;
    Solvable *s;
    if (!pool->installed)
        return;
    FOR_REPO_SOLVABLES(pool->installed, p, s) {
        enum lapis_reason r = lapis_pkg_reason(g->ctx, p);
        if (r != LAPIS_REASON_DEP && r != LAPIS_REASON_WEAK)
            queue_push2(&g->work, SOLVER_USERINSTALLED | SOLVER_SOLVABLE, p);
    }
}

/* dnf's exclude_from_weak_autodetect: a weak dependency the installed system
 * already does without (an unmet Recommends, a non-installed package that
 * Supplements something installed) was left out on purpose, so upgrades and
 * reinstalls must not bring it back. */
static void add_exclude_from_weak_jobs(lapis_goal *g)
{
    Pool *pool = g->ctx->pool;
    Repo *inst = pool->installed;
    Id p, pp, *dp;
    Solvable *s;

    if (!inst)
        return;
    FOR_REPO_SOLVABLES(inst, p, s) {
        if (!s->recommends)
            continue;
        for (dp = s->repo->idarraydata + s->recommends; *dp; dp++) {
            bool met = false;
            Id q, qq;
            FOR_PROVIDES(q, qq, *dp)
                if (pool_id2solvable(pool, q)->repo == inst) {
                    met = true;
                    break;
                }
            if (!met)
                queue_push2(&g->work, SOLVER_EXCLUDEFROMWEAK | SOLVER_SOLVABLE_PROVIDES, *dp);
        }
    }
    FOR_POOL_SOLVABLES(p) {
        s = pool_id2solvable(pool, p);
        if (s->repo == inst || !s->supplements || name_installed(pool, s->name))
            continue;
        for (dp = s->repo->idarraydata + s->supplements; *dp; dp++) {
            bool hit = false;
            Id q;
            FOR_PROVIDES(q, pp, *dp)
                if (pool_id2solvable(pool, q)->repo == inst) {
                    hit = true;
                    break;
                }
            if (hit) {
                queue_push2(&g->work, SOLVER_EXCLUDEFROMWEAK | SOLVER_SOLVABLE, p);
                break;
            }
        }
    }
}

static bool obsoletes_installed(Pool *pool, Solvable *s)
{
    Id obs, *op;
    if (!s->obsoletes)
        return false;
    for (op = s->repo->idarraydata + s->obsoletes; (obs = *op++) != 0;) {
        Id p, pp;
        FOR_PROVIDES(p, pp, obs) {
            Solvable *o = pool_id2solvable(pool, p);
            if (o->repo == pool->installed && o->name != s->name && pool_match_nevr(pool, o, obs))
                return true;
        }
    }
    return false;
}

/* obsoletes=0: a package that obsoletes an installed one is no upgrade for it
 * (libsolv always offers it, so it is locked out unless asked for by name). */
static void add_no_obsoletes_jobs(lapis_goal *g)
{
    Pool *pool = g->ctx->pool;
    Id p;
    if (g->ctx->conf.obsoletes || !pool->installed)
        return;
    FOR_POOL_SOLVABLES(p) {
        Solvable *s = pool_id2solvable(pool, p);
        if (s->repo == pool->installed || name_installed(pool, s->name) ||
            strv_contains(g->user_specs, pool_id2str(pool, s->name)) ||
            !obsoletes_installed(pool, s))
            continue;
        queue_push2(&g->work, SOLVER_LOCK | SOLVER_SOLVABLE, p);
    }
}

/* installonlypkgs are provides: every provider may be installed in several versions. */
static void add_installonly_jobs(lapis_goal *g)
{
    Pool *pool = g->ctx->pool;
    for (size_t i = 0; g->ctx->conf.installonlypkgs && g->ctx->conf.installonlypkgs[i]; i++) {
        Id dep = pool_str2id(pool, g->ctx->conf.installonlypkgs[i], 0);
        if (dep)
            queue_push2(&g->work, SOLVER_MULTIVERSION | SOLVER_SOLVABLE_PROVIDES, dep);
    }
}

bool lapis_pkg_installonly(lapis_ctx *ctx, lapis_pkg p)
{
    Pool *pool = ctx->pool;
    Solvable *s = pool_id2solvable(pool, p);
    for (size_t i = 0; ctx->conf.installonlypkgs && ctx->conf.installonlypkgs[i]; i++) {
        Id dep = pool_str2id(pool, ctx->conf.installonlypkgs[i], 0);
        if (dep && (s->name == dep || solvable_matchesdep(s, SOLVABLE_PROVIDES, dep, 0)))
            return true;
    }
    return false;
}

/* rpm installs the new version before it erases the old one, so a run killed
 * in between leaves both in the rpmdb. Any later transaction finishes that
 * work: the older copies of a name.arch that is not installonly go. */
static void add_duplicate_erase_jobs(lapis_goal *g)
{
    lapis_ctx *ctx = g->ctx;
    Pool *pool = ctx->pool;
    Solvable *s;
    Id p;

    if (!pool->installed)
        return;
    FOR_REPO_SOLVABLES(pool->installed, p, s) {
        Id q, qq;
        FOR_PROVIDES(q, qq, s->name) {
            Solvable *o = pool_id2solvable(pool, q);
            if (q == p || o->repo != pool->installed || o->name != s->name || o->arch != s->arch)
                continue;
            int c = pool_evrcmp(pool, s->evr, o->evr, EVRCMP_COMPARE);
            /* s is older (or the same version twice: keep the first copy). The
             * installonly check costs more, so it waits for a duplicate. */
            if ((c < 0 || (c == 0 && p > q)) && !lapis_pkg_installonly(ctx, p)) {
                lapis_log(ctx, LAPIS_LOG_WARNING, "%s is installed twice (an interrupted "
                          "transaction?); removing the older copy %s",
                          pool_id2str(pool, s->name), pool_solvable2str(pool, s));
                queue_push2(&g->work, SOLVER_ERASE | SOLVER_SOLVABLE, p);
                break;
            }
        }
    }
}

/* The running kernel is never removed to honour installonly_limit (only knowable for "/"). */
static bool is_running_kernel(lapis_ctx *ctx, Solvable *s)
{
    struct utsname u;
    if (ctx->installroot || uname(&u) < 0)
        return false;
    const char *evr = pool_id2str(ctx->pool, s->evr);
    const char *colon = strchr(evr, ':');
    _cleanup_free_ char *vra = xasprintf("%s.%s", colon ? colon + 1 : evr,
                                         pool_id2str(ctx->pool, s->arch));
    return strcmp(u.release, vra) == 0;
}

static int cmp_evr(const void *a, const void *b, void *dp)
{
    Pool *pool = dp;
    return pool_evrcmp(pool, pool_id2solvable(pool, *(const Id *)a)->evr,
                       pool_id2solvable(pool, *(const Id *)b)->evr, EVRCMP_COMPARE);
}

/* After a solve: if more than installonly_limit versions of an installonly
 * package would be present, add erase jobs for the oldest installed ones.
 * Returns true when jobs were added (solve again). */
static bool enforce_installonly_limit(lapis_goal *g)
{
    lapis_ctx *ctx = g->ctx;
    Pool *pool = ctx->pool;
    Queue names, present;
    bool added = false;
    int limit = ctx->conf.installonly_limit;

    if (limit < 1 || !pool->installed)
        return false;
    queue_init(&names);
    queue_init(&present);
    for (Id p = 2; p < pool->nsolvables; p++) {
        Solvable *s = pool_id2solvable(pool, p);
        if (!s->repo || solver_get_decisionlevel(g->solver, p) <= 0 || !lapis_pkg_installonly(ctx, p))
            continue;
        if (s->repo != pool->installed)
            queue_pushunique(&names, s->name);
    }
    for (int n = 0; n < names.count; n++) {
        Id q, pp;
        queue_empty(&present);
        FOR_PROVIDES(q, pp, names.elements[n]) {
            Solvable *s = pool_id2solvable(pool, q);
            if (s->name == names.elements[n] && solver_get_decisionlevel(g->solver, q) > 0)
                queue_pushunique(&present, q);
        }
        if (present.count <= limit)
            continue;
        /* Keep what the first solve chose to install; only the oldest go. */
        for (int i = 0; i < present.count; i++)
            if (pool_id2solvable(pool, present.elements[i])->repo != pool->installed)
                queue_push2(&g->work, SOLVER_INSTALL | SOLVER_SOLVABLE, present.elements[i]);
        solv_sort(present.elements, (size_t)present.count, sizeof(Id), cmp_evr, pool);
        int excess = present.count - limit;
        for (int i = 0; i < present.count && excess > 0; i++) {
            Solvable *s = pool_id2solvable(pool, present.elements[i]);
            if (s->repo != pool->installed || is_running_kernel(ctx, s))
                continue;
            queue_push2(&g->work, SOLVER_ERASE | SOLVER_SOLVABLE, present.elements[i]);
            excess--;
            added = true;
        }
    }
    queue_free(&present);
    queue_free(&names);
    return added;
}

static bool from_job(lapis_goal *g, Id info)
{
    int cls = solver_ruleclass(g->solver, info);
    return cls == SOLVER_RULE_JOB || cls == SOLVER_RULE_BEST;
}

static enum lapis_action classify_install(lapis_goal *g, Id p)
{
    Id info;
    int reason = solver_describe_decision(g->solver, p, &info);
    if (reason == SOLVER_REASON_WEAKDEP)
        return LAPIS_ACT_INSTALL_WEAK;
    /* A job with one candidate is decided as a unit rule: ask which rule it was (as libdnf). */
    if ((reason == SOLVER_REASON_RESOLVE_JOB || reason == SOLVER_REASON_UNIT_RULE) &&
        from_job(g, info))
        return LAPIS_ACT_INSTALL;
    return LAPIS_ACT_INSTALL_DEP;
}

static enum lapis_action classify_erase(lapis_goal *g, Id p)
{
    Id info;
    int reason = solver_describe_decision(g->solver, p, &info);
    if (reason == SOLVER_REASON_CLEANDEPS_ERASE)
        return LAPIS_ACT_REMOVE_UNUSED;
    if ((reason == SOLVER_REASON_RESOLVE_JOB || reason == SOLVER_REASON_UNIT_RULE) &&
        from_job(g, info))
        return g->autoremove ? LAPIS_ACT_REMOVE_UNUSED : LAPIS_ACT_REMOVE;
    return LAPIS_ACT_REMOVE_DEP;
}

static void push_item(lapis_goal *g, enum lapis_action a, Id p, Id replaces)
{
    g->items = xrealloc(g->items, (g->nitems + 1) * sizeof(*g->items));
    g->items[g->nitems++] = (lapis_trans_item){ a, p, replaces };
}

static void build_items(lapis_goal *g)
{
    Transaction *t = g->trans;
    /* Same evr but not byte-identical metadata (rpmdb vs repo) is a CHANGE: show it as
     * the reinstall it is. */
    int mode = SOLVER_TRANSACTION_SHOW_ACTIVE | SOLVER_TRANSACTION_SHOW_ALL |
               SOLVER_TRANSACTION_SHOW_OBSOLETES | SOLVER_TRANSACTION_SHOW_MULTIINSTALL |
               SOLVER_TRANSACTION_CHANGE_IS_REINSTALL;

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
        case SOLVER_TRANSACTION_CHANGE:
            push_item(g, LAPIS_ACT_REINSTALL, p, other);
            break;
        case SOLVER_TRANSACTION_ERASE:
            push_item(g, classify_erase(g, p), p, 0);
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
    if ((r = strcmp(pool_id2str(pool, sa->arch), pool_id2str(pool, sb->arch))))
        return r;
    return pool_evrcmp(pool, sa->evr, sb->evr, EVRCMP_COMPARE);
}

static Solver *make_solver(lapis_goal *g)
{
    lapis_ctx *ctx = g->ctx;
    Solver *s = solver_create(ctx->pool);
    solver_set_flag(s, SOLVER_FLAG_BEST_OBEY_POLICY, 1);
    solver_set_flag(s, SOLVER_FLAG_ALLOW_VENDORCHANGE, 1);
    solver_set_flag(s, SOLVER_FLAG_YUM_OBSOLETES, 1);
    solver_set_flag(s, SOLVER_FLAG_IGNORE_RECOMMENDED, !ctx->conf.install_weak_deps);
    solver_set_flag(s, SOLVER_FLAG_ALLOW_UNINSTALL,
                    (g->flags & LAPIS_GOAL_ALLOWERASING) || g->erasing || g->autoremove);
    /* Downgrades and arch changes only when asked for by name (jobs), or for
     * dependencies with --allow-downgrade. */
    solver_set_flag(s, SOLVER_FLAG_ALLOW_DOWNGRADE, (g->flags & LAPIS_GOAL_ALLOW_DOWNGRADE) != 0);
    return s;
}


/* The options that may help, for the one-line message ("--no-best, --skip-broken"). */
static char *hint_list(const lapis_goal *g)
{
    static const struct { unsigned hint; const char *opt; } opts[] = {
        { LAPIS_HINT_SKIP_UNAVAILABLE, "--skip-unavailable" }, { LAPIS_HINT_NO_BEST, "--no-best" },
        { LAPIS_HINT_ALLOWERASING, "--allowerasing" }, { LAPIS_HINT_SKIP_BROKEN, "--skip-broken" },
    };
    unsigned h = lapis_goal_hints(g);
    _cleanup_strv_ char **v = xcalloc(1, sizeof(char *));
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
        if (h & opts[i].hint)
            strv_push(&v, xstrdup(opts[i].opt));
    return strv_join(v, ", ");
}

/* Specs that matched nothing fail the resolve, after the solver had its say (dnf5). */
static int unavailable_failed(lapis_goal *g)
{
    g->hints |= LAPIS_HINT_SKIP_UNAVAILABLE;
    for (size_t i = 0; g->log[i]; i++)
        if (!str_startswith(g->log[i], "Package \""))
            return lapis_err(g->ctx, LAPIS_E_NOTFOUND, "Failed to resolve the transaction: %s "
                             "(try --skip-unavailable)", g->log[i]);
    return lapis_err(g->ctx, LAPIS_E_NOTFOUND, "Failed to resolve the transaction");
}

static int solve_once(lapis_goal *g)
{
    if (g->solver)
        solver_free(g->solver);
    g->solver = make_solver(g);
    if (solver_solve(g->solver, &g->work) != 0) {
        _cleanup_free_ char *lead = lapis_problem_collect(g);
        if (g->unavailable)
            return unavailable_failed(g);
        _cleanup_free_ char *hints = hint_list(g);
        return lapis_err(g->ctx, LAPIS_E_SOLVE, "Failed to resolve the transaction: %s%s%s%s",
                         lead, *hints ? " (try " : "", hints, *hints ? ")" : "");
    }
    return 0;
}

static bool item_has_name(const lapis_goal *g, Id name)
{
    for (size_t i = 0; i < g->nitems; i++)
        if (pool_id2solvable(g->ctx->pool, g->items[i].pkg)->name == name)
            return true;
    return false;
}

/* dnf5's note for an install request the system already satisfies. */
static void note_already_installed(lapis_goal *g)
{
    Pool *pool = g->ctx->pool;
    Queue sel, pkgs;
    queue_init(&sel);
    queue_init(&pkgs);
    for (size_t i = 0; g->user_specs[i]; i++) {
        make_selection(g, g->user_specs[i], false, &sel);
        selection_solvables(pool, &sel, &pkgs);
        for (int k = 0; k < pkgs.count; k++) {
            Solvable *s = pool_id2solvable(pool, pkgs.elements[k]);
            if (s->repo != pool->installed || item_has_name(g, s->name))
                continue;
            _cleanup_free_ char *t = xasprintf("Package \"%s\" is already installed.",
                                               pool_solvable2str(pool, s));
            if (!strv_contains(g->log, t))
                strv_push(&g->log, TAKE_PTR(t));
        }
        queue_empty(&sel);
    }
    queue_free(&pkgs);
    queue_free(&sel);
}

static bool is_protected(lapis_ctx *ctx, Solvable *s)
{
    char *const *names = ctx->conf.protected_packages;
    return names && strv_contains(names, pool_id2str(ctx->pool, s->name));
}

/* protected_packages are never removed (an upgrade that replaces them is fine). */
static int check_protected(lapis_goal *g)
{
    Pool *pool = g->ctx->pool;
    _cleanup_strv_ char **hit = xcalloc(1, sizeof(char *));
    for (size_t i = 0; i < g->nitems; i++) {
        Solvable *s = pool_id2solvable(pool, g->items[i].pkg);
        enum lapis_action a = g->items[i].action;
        if ((a == LAPIS_ACT_REMOVE || a == LAPIS_ACT_REMOVE_DEP || a == LAPIS_ACT_REMOVE_UNUSED) &&
            is_protected(g->ctx, s) && !strv_contains(hit, pool_id2str(pool, s->name)))
            strv_push(&hit, xstrdup(pool_id2str(pool, s->name)));
    }
    if (!hit[0])
        return 0;
    _cleanup_free_ char *list = strv_join(hit, ", ");
    strv_push(&g->problems, xasprintf("Problem: The operation would result in removing the "
                                      "following protected packages: %s", list));
    return lapis_err(g->ctx, LAPIS_E_SOLVE, "Failed to resolve the transaction: the operation "
                     "would remove the protected packages %s (protected_packages)", list);
}

/* autoremove: packages no user-installed package needs any more. */
static void add_unneeded_erase_jobs(lapis_goal *g)
{
    Queue q;
    queue_init(&q);
    solver_get_unneeded(g->solver, &q, 0);
    for (int i = 0; i < q.count; i++)
        queue_push2(&g->work, SOLVER_ERASE | SOLVER_SOLVABLE, q.elements[i]);
    queue_free(&q);
}

/* A weak install request none of whose packages the solver kept or chose was
 * dropped; its newest available candidate is what dnf5 reports as skipped. */
static Id skipped_candidate(lapis_goal *g, Id how, Id what)
{
    Pool *pool = g->ctx->pool;
    Id p, pp, best = 0, select = how & SOLVER_SELECTMASK; /* the macro needs a plain name */

    FOR_JOB_SELECT(p, pp, select, what) {
        if (solver_get_decisionlevel(g->solver, p) > 0)
            return 0;
        if (pool->installed && pool_id2solvable(pool, p)->repo == pool->installed)
            continue;
        if (!best || pool_evrcmp(pool, pool_id2solvable(pool, p)->evr,
                                 pool_id2solvable(pool, best)->evr, EVRCMP_COMPARE) > 0)
            best = p;
    }
    return best;
}

static void collect_skipped(lapis_goal *g)
{
    for (int i = 0; i < g->work.count; i += 2) {
        Id how = g->work.elements[i];
        if ((how & SOLVER_JOBMASK) != SOLVER_INSTALL || !(how & SOLVER_WEAK))
            continue;
        Id p = skipped_candidate(g, how, g->work.elements[i + 1]);
        if (p)
            queue_pushunique(&g->skipped, p);
    }
}

const lapis_pkg *lapis_goal_skipped(const lapis_goal *g, size_t *ret_count)
{
    *ret_count = (size_t)g->skipped.count;
    return g->skipped.elements;
}

int lapis_goal_resolve(lapis_goal *g)
{
    lapis_ctx *ctx = g->ctx;
    int r;

    goal_clear_result(g);
    add_installonly_jobs(g);
    add_duplicate_erase_jobs(g);
    add_userinstalled_jobs(g);
    add_exclude_from_weak_jobs(g);
    add_no_obsoletes_jobs(g);
    if ((r = solve_once(g)) < 0)
        return r;
    if (g->autoremove) {
        add_unneeded_erase_jobs(g);
        if ((r = solve_once(g)) < 0)
            return r;
    }
    if (enforce_installonly_limit(g)) {
        /* "Best" for an installed kernel about to be removed can never hold. */
        for (int i = 0; i < g->work.count; i += 2)
            g->work.elements[i] &= ~SOLVER_FORCEBEST;
        if ((r = solve_once(g)) < 0)
            return r;
    }
    if (g->unavailable)
        return unavailable_failed(g);
    if (g->flags & LAPIS_GOAL_SKIP_BROKEN)
        collect_skipped(g);
    /* No transaction_order(): display order is by name, and rpm orders the real run. */
    g->trans = solver_create_transaction(g->solver);
    build_items(g);
    solv_sort(g->items, g->nitems, sizeof(*g->items), cmp_items, ctx->pool);
    lapis_goal_log_reasons(g);
    note_already_installed(g);
    return check_protected(g);
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

char *const *lapis_goal_log(const lapis_goal *g)
{
    return g->log;
}

/* Only what is not in effect already helps (dnf5 hides the others). */
unsigned lapis_goal_hints(const lapis_goal *g)
{
    unsigned h = g->hints;
    if (!g->ctx->conf.best)
        h &= ~LAPIS_HINT_NO_BEST;
    if (g->ctx->conf.skip_unavailable)
        h &= ~LAPIS_HINT_SKIP_UNAVAILABLE;
    if (g->flags & LAPIS_GOAL_ALLOWERASING)
        h &= ~LAPIS_HINT_ALLOWERASING;
    if (g->flags & LAPIS_GOAL_SKIP_BROKEN)
        h &= ~LAPIS_HINT_SKIP_BROKEN;
    return h;
}

char *const *lapis_goal_downloaded(const lapis_goal *g)
{
    return g->downloaded;
}

long long lapis_goal_history_id(const lapis_goal *g)
{
    return g->history_id;
}
