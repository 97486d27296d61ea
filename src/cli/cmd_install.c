/*
 * install: resolve the request and show the transaction in the layout dnf5
 * users know. Executing transactions (download, verify, rpm) arrives with
 * the transaction engine; until then only --assumeno is accepted.
 */
#include <string.h>

#include "cli.h"

static const struct {
    enum lapis_action action;
    const char *title;
    const char *summary;
} sections[] = {
    { LAPIS_ACT_INSTALL, "Installing:", "Installing" },
    { LAPIS_ACT_INSTALL_DEP, "Installing dependencies:", "Installing" },
    { LAPIS_ACT_INSTALL_WEAK, "Installing weak dependencies:", "Installing" },
    { LAPIS_ACT_UPGRADE, "Upgrading:", "Upgrading" },
    { LAPIS_ACT_DOWNGRADE, "Downgrading:", "Downgrading" },
    { LAPIS_ACT_REINSTALL, "Reinstalling:", "Reinstalling" },
    { LAPIS_ACT_REMOVE, "Removing:", "Removing" },
};

static void add_row(lapis_ctx *ctx, lapis_table *t, const char *indent, lapis_pkg p)
{
    char name[512], size[32];
    snprintf(name, sizeof(name), "%s%s", indent, lapis_pkg_name(ctx, p));
    lapis_format_size(lapis_pkg_installed(ctx, p) ? lapis_pkg_installsize(ctx, p)
                                                  : lapis_pkg_downloadsize(ctx, p), size);
    lapis_table_add(t, (const char *[]){ name, lapis_pkg_arch(ctx, p), lapis_pkg_evr(ctx, p),
                                         lapis_pkg_repoid(ctx, p), size });
}

static void print_transaction(lapis_ctx *ctx, const lapis_trans_item *items, size_t n)
{
    lapis_table *t = lapis_table_new(5);
    unsigned long long dl = 0;
    size_t count[sizeof(sections) / sizeof(sections[0])] = { 0 };

    lapis_table_align_right(t, 4);
    lapis_table_add(t, (const char *[]){ "Package", "Arch", "Version", "Repository", "Size" });
    for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
        for (size_t i = 0; i < n; i++) {
            if (items[i].action != sections[s].action)
                continue;
            if (count[s]++ == 0)
                lapis_table_add_line(t, sections[s].title);
            add_row(ctx, t, " ", items[i].pkg);
            if (items[i].replaces)
                add_row(ctx, t, "   replacing ", items[i].replaces);
            if (!lapis_pkg_installed(ctx, items[i].pkg))
                dl += lapis_pkg_downloadsize(ctx, items[i].pkg);
        }
    }
    lapis_table_print(t, stdout);
    lapis_table_free(t);

    printf("\nTransaction Summary:\n");
    size_t installing = count[0] + count[1] + count[2];
    if (installing)
        printf(" %-15s %zu package%s\n", "Installing:", installing, installing == 1 ? "" : "s");
    for (size_t s = 3; s < sizeof(sections) / sizeof(sections[0]); s++) {
        char label[32];
        snprintf(label, sizeof(label), "%s:", sections[s].summary);
        if (count[s])
            printf(" %-15s %zu package%s\n", label, count[s], count[s] == 1 ? "" : "s");
    }
    char size[32];
    printf("\nTotal size of inbound packages is %s.\n", lapis_format_size(dl, size));
}

static cJSON *json_transaction(lapis_ctx *ctx, const lapis_trans_item *items, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = lapis_json_pkg(ctx, items[i].pkg);
        cJSON_AddStringToObject(o, "action", lapis_action_name(items[i].action));
        cJSON_AddNumberToObject(o, "size", (double)lapis_pkg_downloadsize(ctx, items[i].pkg));
        if (items[i].replaces)
            cJSON_AddItemToObject(o, "replaces", lapis_json_pkg(ctx, items[i].replaces));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

int cmd_install(struct cli *c)
{
    lapis_goal *goal = NULL;
    const lapis_trans_item *items;
    size_t n;
    int r;

    if (c->nargs == 0) {
        return cli_error(c, LAPIS_E_USAGE, "install needs at least one package");
    }
    if (!c->assumeno) {
        return cli_error(c, LAPIS_E_USAGE, "this build can only show an install (use --assumeno); "
                         "executing transactions is not available yet");
    }
    bool paths = false;
    for (int i = 0; i < c->nargs; i++)
        paths |= lapis_spec_needs_filelists(c->args[i]);
    if ((r = cli_load(c, paths ? LAPIS_LOAD_FILELISTS : 0)) < 0)
        return cli_fail(c, r);
    lapis_goal_new(c->ctx, &goal);
    for (int i = 0; i < c->nargs && r >= 0; i++)
        r = lapis_goal_install(goal, c->args[i]);
    if (r >= 0)
        r = lapis_goal_resolve(goal);
    if (r < 0) {
        char *const *probs = lapis_goal_problems(goal);
        for (size_t i = 0; probs[i] && i > 0; i++)
            fprintf(stderr, "  %s\n", probs[i]);
        lapis_goal_free(goal);
        return cli_fail(c, r);
    }
    items = lapis_goal_items(goal, &n);
    if (c->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "transaction", json_transaction(c->ctx, items, n));
        cJSON_AddStringToObject(doc, "result", n ? "aborted" : "nothing-to-do");
        cli_json_out(c, doc);
    } else if (n == 0) {
        printf("Nothing to do.\n");
    } else {
        print_transaction(c->ctx, items, n);
        printf("Operation aborted by --assumeno.\n");
    }
    lapis_goal_free(goal);
    return n ? 1 : 0;
}
