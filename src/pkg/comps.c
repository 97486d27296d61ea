/*
 * Groups (comps.xml): each enabled repo's verified group file is parsed with
 * libsolvext's repo_add_comps into a private pool, so group solvables never
 * show up among packages, and merged by id across repos. Group install,
 * remove and upgrade become ordinary goal jobs on package names; which
 * groups are installed (and with which packages) is kept in the history
 * database, written in the same database transaction as the packages.
 * Environments (dnf5's @^ENV) are the same solvables named "environment:ID"
 * whose requires/suggests are groups; installing one installs its groups.
 */
#include <fnmatch.h>
#include <string.h>

#include "pkg/internal.h"
#include "pkg/goal.h"
#include <solv/pool.h>
#include <solv/repo.h>

static void pool_freep(Pool **p) { if (*p) pool_free(*p); }

static void groups_clear(lapis_group *g, size_t n)
{
    for (size_t i = 0; g && i < n; i++) {
        free(g[i].id);
        free(g[i].name);
        free(g[i].description);
        free(g[i].order);
        lapis_strv_free(g[i].mandatory);
        lapis_strv_free(g[i].defaults);
        lapis_strv_free(g[i].optional);
        lapis_strv_free(g[i].members);
    }
}

void lapis_groups_free(lapis_group *g, size_t n)
{
    groups_clear(g, n);
    free(g);
}

/* Package names of one kind of the group's deps, added to *v without repeats. */
static void add_deps(Pool *pool, Solvable *s, Id key, char ***v)
{
    Queue q;
    queue_init(&q);
    solvable_lookup_deparray(s, key, &q, 0);
    for (int i = 0; i < q.count; i++) {
        const char *name = q.elements[i] == SOLVABLE_PREREQMARKER ? NULL
                                                                 : pool_dep2str(pool, q.elements[i]);
        if (name && strncmp(name, "group:", 6) == 0) /* an environment's groups */
            name += 6;
        if (name && !strv_contains(*v, name))
            strv_push(v, xstrdup(name));
    }
    queue_free(&q);
    if (!*v)
        *v = xcalloc(1, sizeof(char *));
}

static lapis_group *group_slot(lapis_group **all, size_t *n, const char *id)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*all)[i].id, id) == 0)
            return &(*all)[i];
    *all = xrealloc(*all, (*n + 1) * sizeof(**all));
    lapis_group *g = &(*all)[(*n)++];
    *g = (lapis_group){ .id = xstrdup(id) };
    return g;
}

static const char *str_or(const char *s, const char *dflt)
{
    return s && *s ? s : dflt;
}

/* Merge the groups (or environments: kind "environment:") of one parsed comps
 * repo into *all (repos in priority order: the first name and description win,
 * package lists add up). */
static void collect_groups(Pool *pool, Repo *repo, const char *kind, lapis_group **all,
                           size_t *n)
{
    size_t klen = strlen(kind);
    Solvable *s;
    Id p;
    FOR_REPO_SOLVABLES(repo, p, s) {
        const char *name = pool_id2str(pool, s->name);
        if (strncmp(name, kind, klen) != 0)
            continue;
        lapis_group *g = group_slot(all, n, name + klen);
        if (!g->name) {
            g->name = xstrdup(str_or(solvable_lookup_str(s, SOLVABLE_SUMMARY), g->id));
            g->description = xstrdup(str_or(solvable_lookup_str(s, SOLVABLE_DESCRIPTION), ""));
            g->order = xstrdup(str_or(solvable_lookup_str(s, SOLVABLE_ORDER), ""));
            g->visible = solvable_lookup_void(s, SOLVABLE_ISVISIBLE);
        }
        add_deps(pool, s, SOLVABLE_REQUIRES, &g->mandatory);
        add_deps(pool, s, SOLVABLE_RECOMMENDS, &g->defaults);
        add_deps(pool, s, SOLVABLE_SUGGESTS, &g->optional);
    }
}

static int cmp_group(const void *a, const void *b)
{
    return strcmp(((const lapis_group *)a)->id, ((const lapis_group *)b)->id);
}

static bool group_matches(const lapis_group *g, char *const *specs)
{
    if (!specs || !specs[0])
        return true;
    for (size_t i = 0; specs[i]; i++) {
        const char *spec = specs[i][0] == '@' ? specs[i] + 1 : specs[i];
        if (fnmatch(spec, g->id, FNM_CASEFOLD) == 0 || fnmatch(spec, g->name, FNM_CASEFOLD) == 0)
            return true;
    }
    return false;
}

/* Mark the groups the history records as installed (with their package lists). */
static int mark_installed(lapis_ctx *ctx, lapis_group *all, size_t n)
{
    _cleanup_strv_ char **ids = NULL, **pkgs = NULL;
    int r = lapis_history_groups(ctx, &ids, &pkgs);
    for (size_t i = 0; r >= 0 && ids[i]; i++)
        for (size_t k = 0; k < n; k++)
            if (strcmp(all[k].id, ids[i]) == 0) {
                all[k].installed = true;
                all[k].members = strv_split(pkgs[i], " ");
            }
    return r;
}

static int load_all(lapis_ctx *ctx, const char *kind, lapis_group **ret, size_t *ret_n)
{
    __attribute__((cleanup(pool_freep))) Pool *pool = pool_create();
    lapis_group *all = NULL;
    size_t n = 0;
    int r = 0;

    if (!ctx->loaded)
        return lapis_err(ctx, LAPIS_E_USAGE, "internal: groups queried before lapis_load()");
    for (size_t i = 0; r >= 0 && i < ctx->nrepos; i++) {
        struct lapis_repo *lr = ctx->repos[i];
        if (!lr->enabled || !lr->solv || !lr->comps_path)
            continue;
        Repo *repo = repo_create(pool, lr->id);
        if ((r = lapis_metadata_add_comps(ctx, lr, repo)) >= 0)
            collect_groups(pool, repo, kind, &all, &n);
    }
    if (r >= 0 && strcmp(kind, "group:") == 0)
        r = mark_installed(ctx, all, n);
    if (r < 0) {
        lapis_groups_free(all, n);
        return r;
    }
    *ret = all;
    *ret_n = n;
    return 0;
}

/* Keep the entries matching specs, sorted by id. */
static void select_matching(lapis_group **all, size_t *n, char *const *specs)
{
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        if (group_matches(&(*all)[i], specs)) {
            lapis_group t = (*all)[kept];
            (*all)[kept++] = (*all)[i];
            (*all)[i] = t;
        }
    }
    groups_clear(*all + kept, *n - kept);
    *all = kept ? xrealloc(*all, kept * sizeof(**all)) : (free(*all), NULL);
    if (kept)
        qsort(*all, kept, sizeof(**all), cmp_group);
    *n = kept;
}

/* An environment counts as installed when every group it requires is. */
static void mark_envs_installed(lapis_group *envs, size_t n, const lapis_group *groups,
                                size_t ngroups)
{
    for (size_t e = 0; e < n; e++) {
        envs[e].installed = envs[e].mandatory && envs[e].mandatory[0];
        for (size_t i = 0; envs[e].installed && envs[e].mandatory[i]; i++) {
            bool have = false;
            for (size_t k = 0; k < ngroups && !have; k++)
                have = groups[k].installed && strcmp(groups[k].id, envs[e].mandatory[i]) == 0;
            envs[e].installed = have;
        }
    }
}

int lapis_environment_query(lapis_ctx *ctx, char *const *specs, lapis_group **ret, size_t *ret_n)
{
    lapis_group *envs = NULL, *groups = NULL;
    size_t n = 0, ngroups = 0;
    int r;

    if ((r = load_all(ctx, "environment:", &envs, &n)) < 0)
        return r;
    if ((r = load_all(ctx, "group:", &groups, &ngroups)) < 0) {
        lapis_groups_free(envs, n);
        return r;
    }
    select_matching(&envs, &n, specs);
    mark_envs_installed(envs, n, groups, ngroups);
    lapis_groups_free(groups, ngroups);
    *ret = envs;
    *ret_n = n;
    return 0;
}

int lapis_group_query(lapis_ctx *ctx, char *const *specs, lapis_group **ret, size_t *ret_n)
{
    lapis_group *all = NULL;
    size_t n = 0, kept = 0;
    int r;

    if ((r = load_all(ctx, "group:", &all, &n)) < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        if (group_matches(&all[i], specs)) {
            lapis_group t = all[kept];
            all[kept++] = all[i];
            all[i] = t;
        }
    }
    groups_clear(all + kept, n - kept);
    all = kept ? xrealloc(all, kept * sizeof(*all)) : (free(all), NULL);
    if (kept)
        qsort(all, kept, sizeof(*all), cmp_group);
    *ret = all;
    *ret_n = kept;
    return 0;
}

/* ---- goal jobs -------------------------------------------------------------- */

static bool pkg_exists(lapis_ctx *ctx, const char *name, bool installed, bool available)
{
    char *globs[] = { (char *)name, NULL };
    lapis_pkglist l = { 0 };
    bool found = lapis_query_all_versions(ctx, globs, installed, available, &l) >= 0 && l.count;
    lapis_pkglist_free(&l);
    return found;
}

static void record_set(lapis_goal *g, const char *id, char *const *members)
{
    _cleanup_free_ char *names = strv_join(members, " ");
    strv_push(&g->groups_set, xasprintf("%s\t%s", id, names ? names : ""));
}

/* Install name for the group unless it is there already; missing ones are skipped. */
static int install_member(lapis_goal *g, const lapis_group *grp, const char *name, char ***members)
{
    if (!pkg_exists(g->ctx, name, true, true)) {
        lapis_log(g->ctx, LAPIS_LOG_WARNING, "No match for group package \"%s\" (group %s); skipping it", name,
                   grp->id);
        return 0;
    }
    if (!strv_contains(*members, name))
        strv_push(members, xstrdup(name));
    if (pkg_exists(g->ctx, name, true, false))
        return 0;
    strv_push(&g->group_pkgs, xstrdup(name));
    return lapis_goal_install(g, name);
}

static int group_install(lapis_goal *g, const lapis_group *grp, bool with_optional)
{
    char *const *lists[] = { grp->mandatory, grp->defaults, with_optional ? grp->optional : NULL };
    _cleanup_strv_ char **members = strv_copy(grp->members);
    int r = 0;

    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; r >= 0 && lists[l] && lists[l][i]; i++)
            r = install_member(g, grp, lists[l][i], &members);
    if (r >= 0)
        record_set(g, grp->id, members);
    return r;
}

/* Another installed group also holds name: it stays. */
static bool held_elsewhere(lapis_goal *g, const char *id, const char *name)
{
    lapis_group *all = NULL;
    size_t n = 0;
    bool held = false;
    if (lapis_group_query(g->ctx, NULL, &all, &n) < 0)
        return true; /* cannot tell: keep it */
    for (size_t i = 0; i < n && !held; i++)
        held = all[i].installed && strcmp(all[i].id, id) != 0 && strv_contains(all[i].members, name);
    lapis_groups_free(all, n);
    return held;
}

static bool installed_for_group(lapis_ctx *ctx, const char *name)
{
    char *globs[] = { (char *)name, NULL };
    lapis_pkglist l = { 0 };
    bool yes = false;
    if (lapis_query_list(ctx, LAPIS_LIST_INSTALLED, globs, &l) >= 0)
        for (size_t i = 0; i < l.count && !yes; i++)
            yes = lapis_pkg_reason(ctx, l.pkgs[i]) == LAPIS_REASON_GROUP;
    lapis_pkglist_free(&l);
    return yes;
}

static int group_remove(lapis_goal *g, const lapis_group *grp)
{
    int r = 0;
    if (!grp->installed)
        return lapis_err(g->ctx, LAPIS_E_NOTFOUND, "group %s is not installed", grp->id);
    for (size_t i = 0; r >= 0 && grp->members && grp->members[i]; i++) {
        const char *name = grp->members[i];
        if (installed_for_group(g->ctx, name) && !held_elsewhere(g, grp->id, name))
            r = lapis_goal_remove(g, name);
    }
    if (r >= 0)
        strv_push(&g->groups_del, xstrdup(grp->id));
    return r;
}

static int group_upgrade(lapis_goal *g, const lapis_group *grp)
{
    char *const *lists[] = { grp->mandatory, grp->defaults };
    _cleanup_strv_ char **members = strv_copy(grp->members);
    int r = 0;

    if (!grp->installed)
        return lapis_err(g->ctx, LAPIS_E_NOTFOUND, "group %s is not installed; 'lapis group "
                         "install %s' installs it", grp->id, grp->id);
    for (size_t i = 0; r >= 0 && members && members[i]; i++)
        if (pkg_exists(g->ctx, members[i], true, false))
            r = lapis_goal_upgrade(g, members[i]);
    /* What the group gained since it was installed. */
    for (size_t l = 0; l < 2; l++)
        for (size_t i = 0; r >= 0 && lists[l] && lists[l][i]; i++)
            if (!strv_contains(grp->members, lists[l][i]))
                r = install_member(g, grp, lists[l][i], &members);
    if (r >= 0)
        record_set(g, grp->id, members);
    return r;
}

enum group_op { GROUP_INSTALL, GROUP_REMOVE, GROUP_UPGRADE };

static int group_jobs(lapis_goal *g, const char *spec, enum group_op op, bool with_optional)
{
    char *specs[] = { (char *)spec, NULL };
    lapis_group *all = NULL;
    size_t n = 0;
    int r = lapis_group_query(g->ctx, specs, &all, &n);

    if (r >= 0 && n == 0)
        r = lapis_err(g->ctx, LAPIS_E_NOTFOUND, "No match for argument: %s (no such group; "
                      "'lapis group list' shows them)", spec);
    for (size_t i = 0; r >= 0 && i < n; i++)
        r = op == GROUP_INSTALL ? group_install(g, &all[i], with_optional)
            : op == GROUP_REMOVE ? group_remove(g, &all[i]) : group_upgrade(g, &all[i]);
    lapis_groups_free(all, n);
    return r;
}

int lapis_goal_group_install(lapis_goal *g, const char *spec, bool with_optional)
{
    return group_jobs(g, spec, GROUP_INSTALL, with_optional);
}

int lapis_goal_group_remove(lapis_goal *g, const char *spec)
{
    return group_jobs(g, spec, GROUP_REMOVE, false);
}

int lapis_goal_group_upgrade(lapis_goal *g, const char *spec)
{
    return group_jobs(g, spec, GROUP_UPGRADE, false);
}

/* Apply op to one group an environment requires: install it, or remove or
 * upgrade it when it is installed. */
static int environment_group(lapis_goal *g, const lapis_group *grp, enum group_op op,
                             bool with_optional)
{
    if (op == GROUP_INSTALL)
        return group_install(g, grp, with_optional);
    if (!grp->installed)
        return 0;
    return op == GROUP_REMOVE ? group_remove(g, grp) : group_upgrade(g, grp);
}

/* dnf5's @^ENV: op on each group the environment requires; a group no repo
 * defines is skipped with a warning, as a group's missing package is. */
static int environment_groups(lapis_goal *g, const lapis_group *env, enum group_op op,
                              bool with_optional)
{
    lapis_group *grp = NULL;
    size_t n = 0;
    int r;

    if (!env->mandatory || !env->mandatory[0])
        return 0;
    /* One query for all its groups (each query reads the repos' comps). */
    if ((r = lapis_group_query(g->ctx, env->mandatory, &grp, &n)) < 0)
        return r;
    for (size_t i = 0; r >= 0 && env->mandatory[i]; i++) {
        bool found = false;
        for (size_t k = 0; r >= 0 && k < n; k++)
            if (strcmp(grp[k].id, env->mandatory[i]) == 0) {
                found = true;
                r = environment_group(g, &grp[k], op, with_optional);
            }
        if (!found)
            lapis_log(g->ctx, LAPIS_LOG_WARNING, "No match for group \"%s\" (environment %s); "
                      "skipping it", env->mandatory[i], env->id);
    }
    lapis_groups_free(grp, n);
    return r;
}

static int environment_jobs(lapis_goal *g, const char *spec, enum group_op op, bool with_optional)
{
    char *specs[] = { (char *)spec, NULL };
    lapis_group *envs = NULL;
    size_t n = 0;
    int r = lapis_environment_query(g->ctx, specs, &envs, &n);

    if (r >= 0 && n == 0)
        r = lapis_err(g->ctx, LAPIS_E_NOTFOUND, "No match for argument: @^%s (no such "
                      "environment; 'lapis environment list' shows them)", spec);
    for (size_t i = 0; r >= 0 && i < n; i++)
        r = environment_groups(g, &envs[i], op, with_optional);
    lapis_groups_free(envs, n);
    return r;
}

int lapis_goal_environment_install(lapis_goal *g, const char *spec, bool with_optional)
{
    return environment_jobs(g, spec, GROUP_INSTALL, with_optional);
}

int lapis_goal_environment_remove(lapis_goal *g, const char *spec)
{
    return environment_jobs(g, spec, GROUP_REMOVE, false);
}

int lapis_goal_environment_upgrade(lapis_goal *g, const char *spec)
{
    return environment_jobs(g, spec, GROUP_UPGRADE, false);
}
