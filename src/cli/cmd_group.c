/*
 * group list|info|install|remove|upgrade and environment list|info (dnf5's
 * layout), and @group and @^environment specs in install, remove and upgrade. The groups come from the repos' comps files
 * (liblapis); the transactions go through cli_run_goal like any other.
 */
#include <string.h>

#include "cli.h"

/* "@^ENV" (dnf5's environment spec) or "@GROUP" / "GROUP". */
int cli_goal_group_spec(struct cli *c, lapis_goal *goal, const char *spec, char op)
{
    if (spec[0] == '@' && spec[1] == '^') {
        switch (op) {
        case 'i': return lapis_goal_environment_install(goal, spec + 2, c->with_optional);
        case 'r': return lapis_goal_environment_remove(goal, spec + 2);
        default: return lapis_goal_environment_upgrade(goal, spec + 2);
        }
    }
    switch (op) {
    case 'i': return lapis_goal_group_install(goal, spec, c->with_optional);
    case 'r': return lapis_goal_group_remove(goal, spec);
    default: return lapis_goal_group_upgrade(goal, spec);
    }
}

static int build_group(struct cli *c, lapis_goal *goal)
{
    for (int i = 1; i < c->nargs; i++) {
        int r = cli_goal_group_spec(c, goal, c->args[i], c->group_op);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ---- list and info ----------------------------------------------------------- */

static bool listed(const struct cli *c, const lapis_group *g, bool specs_given)
{
    if (!g->visible && !c->hidden && !specs_given)
        return false;
    if (c->q_installed && !g->installed)
        return false;
    return !(c->q_available && g->installed);
}

static cJSON *json_group(const lapis_group *g)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", g->id);
    cJSON_AddStringToObject(o, "name", g->name);
    cJSON_AddStringToObject(o, "description", g->description);
    cJSON_AddBoolToObject(o, "installed", g->installed);
    cJSON_AddBoolToObject(o, "visible", g->visible);
    cJSON_AddItemToObject(o, "mandatory", lapis_json_strv(g->mandatory));
    cJSON_AddItemToObject(o, "default", lapis_json_strv(g->defaults));
    cJSON_AddItemToObject(o, "optional", lapis_json_strv(g->optional));
    return o;
}

static void print_info(const struct cli *c, const lapis_group *g)
{
    cli_kv(c, "Id", g->id);
    cli_kv(c, "Name", g->name);
    cli_kv(c, "Description", g->description);
    cli_kv(c, "Installed", g->installed ? "yes" : "no");
    cli_kv(c, "Uservisible", g->visible ? "yes" : "no");
    cli_kv_list(c, "Mandatory packages", g->mandatory);
    cli_kv_list(c, "Default packages", g->defaults);
    cli_kv_list(c, "Optional packages", g->optional);
}

static void print_list(const lapis_group *g, const size_t *sel, size_t n)
{
    lapis_table *t = lapis_table_new(3);
    lapis_table_align_right(t, 2);
    lapis_table_add(t, (const char *[]){ "ID", "Name", "Installed" });
    for (size_t i = 0; i < n; i++)
        lapis_table_add(t, (const char *[]){ g[sel[i]].id, g[sel[i]].name,
                                             g[sel[i]].installed ? "yes" : "no" });
    lapis_table_print(t, stdout);
    lapis_table_free(t);
}

static int group_show(struct cli *c, bool info)
{
    char **specs = c->args + 1;
    bool specs_given = c->nargs > 1;
    lapis_group *g = NULL;
    size_t n = 0, k = 0;
    int r;

    if ((r = cli_load(c, 0)) < 0 || (r = lapis_group_query(c->ctx, specs, &g, &n)) < 0)
        return cli_fail(c, r);
    size_t *sel = calloc(n + 1, sizeof(*sel));
    for (size_t i = 0; i < n; i++)
        if (listed(c, &g[i], specs_given))
            sel[k++] = i;
    if (c->json) {
        cJSON *doc = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(doc, "groups");
        for (size_t i = 0; i < k; i++)
            cJSON_AddItemToArray(a, json_group(&g[sel[i]]));
        cli_json_out(c, doc);
    } else if (info) {
        for (size_t i = 0; i < k; i++) {
            if (i)
                putchar('\n');
            print_info(c, &g[sel[i]]);
        }
    } else if (k) {
        print_list(g, sel, k);
    }
    r = specs_given && k == 0 ? cli_error(c, LAPIS_E_NOTFOUND, "No match for argument: %s",
                                          specs[0]) : 0;
    free(sel);
    lapis_groups_free(g, n);
    return r;
}

int cmd_group(struct cli *c)
{
    static const char *const ops[] = { "install", "remove", "upgrade" };
    const char *sub = c->nargs > 0 ? c->args[0] : "list";

    if (strcmp(sub, "list") == 0 || strcmp(sub, "info") == 0)
        return group_show(c, sub[0] == 'i');
    for (int o = 0; o < 3; o++) {
        if (strcmp(sub, ops[o]) != 0)
            continue;
        if (c->nargs < 2)
            return cli_error(c, LAPIS_E_USAGE, "group %s needs at least one group", sub);
        c->group_op = "iru"[o];
        return cli_run_goal(c, 0, build_group);
    }
    return cli_error(c, LAPIS_E_USAGE, "group takes list, info, install, remove or upgrade, "
                     "not '%s'", sub);
}

/* ---- environments -------------------------------------------------------------- */

static cJSON *json_environment(const lapis_group *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", e->id);
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddStringToObject(o, "description", e->description);
    cJSON_AddStringToObject(o, "order", e->order);
    cJSON_AddBoolToObject(o, "installed", e->installed);
    cJSON_AddItemToObject(o, "groups", lapis_json_strv(e->mandatory));
    cJSON_AddItemToObject(o, "optional_groups", lapis_json_strv(e->optional));
    return o;
}

/* dnf5's environment info fields. */
static void print_environment_info(const struct cli *c, const lapis_group *e)
{
    cli_kv(c, "Id", e->id);
    cli_kv(c, "Name", e->name);
    cli_kv(c, "Description", e->description);
    cli_kv(c, "Order", e->order);
    cli_kv(c, "Installed", e->installed ? "True" : "False");
    if (e->mandatory && e->mandatory[0])
        cli_kv_list(c, "Required groups", e->mandatory);
    if (e->optional && e->optional[0])
        cli_kv_list(c, "Optional groups", e->optional);
}

static void print_environment_list(const lapis_group *e, size_t n)
{
    lapis_table *t = lapis_table_new(3);
    lapis_table_align_right(t, 2);
    lapis_table_add(t, (const char *[]){ "ID", "Name", "Installed" });
    for (size_t i = 0; i < n; i++)
        lapis_table_add(t, (const char *[]){ e[i].id, e[i].name, e[i].installed ? "yes" : "no" });
    lapis_table_print(t, stdout);
    lapis_table_free(t);
}

static int environment_show(struct cli *c, bool info)
{
    lapis_group *e = NULL;
    size_t n = 0;
    int r;

    if ((r = cli_load(c, 0)) < 0 || (r = lapis_environment_query(c->ctx, c->nargs > 1 ? c->args + 1 : NULL, &e, &n)) < 0)
        return cli_fail(c, r);
    if (c->json) {
        cJSON *doc = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(doc, "environments");
        for (size_t i = 0; i < n; i++)
            cJSON_AddItemToArray(a, json_environment(&e[i]));
        cli_json_out(c, doc);
    } else if (info) {
        for (size_t i = 0; i < n; i++) {
            if (i)
                putchar('\n');
            print_environment_info(c, &e[i]);
        }
    } else if (n) {
        print_environment_list(e, n);
    }
    r = c->nargs > 1 && n == 0 ? cli_error(c, LAPIS_E_NOTFOUND, "No match for argument: %s",
                                           c->args[1]) : 0;
    lapis_groups_free(e, n);
    return r;
}

int cmd_environment(struct cli *c)
{
    const char *sub = c->nargs > 0 ? c->args[0] : "list";
    if (strcmp(sub, "list") == 0 || strcmp(sub, "info") == 0)
        return environment_show(c, sub[0] == 'i');
    return cli_error(c, LAPIS_E_USAGE, "environment takes list or info, not '%s' (install: "
                     "'lapis install @^ENV')", sub);
}
