/*
 * repoquery, with dnf5's options: the package source (--available, the
 * default, --installed, --upgrades), its filters (what<kind>, --exactdeps,
 * --recursive, --leaves, --unneeded, --duplicates, --installonly,
 * --latest-limit, --arch, --file), the --providers-of transform, and one
 * output: NEVRAs, --queryformat, --info, --location or one attribute
 * (--requires ... --files) deduplicated and sorted.
 */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <string.h>

#include "cli.h"

/* The location URL of an available package: its repo's first baseurl + href. */
char *cli_location_url(struct cli *c, lapis_pkg p)
{
    const char *repoid = lapis_pkg_repoid(c->ctx, p);
    for (size_t i = 0; i < lapis_repo_count(c->ctx); i++) {
        lapis_repo *r = lapis_repo_at(c->ctx, i);
        if (strcmp(lapis_repo_id(r), repoid) != 0)
            continue;
        const char *b = lapis_repo_baseurl(r);
        size_t n = strcspn(b, "\n");
        while (n > 0 && b[n - 1] == '/')
            n--;
        char *u;
        if (asprintf(&u, "%.*s/%s", (int)n, b, lapis_pkg_location(c->ctx, p)) < 0)
            return NULL;
        return u;
    }
    return NULL;
}

/* The attribute options and what each prints (dnf5: "like --queryformat
 * "%{requires}" but deduplicated and sorted"). */
#define ATTR_FILES (-1)
static const struct {
    size_t off;
    int kind; /* a lapis_dep_kind, or ATTR_FILES */
    const char *option;
} attrs[] = {
    { offsetof(struct cli, q_requires), LAPIS_DEP_REQUIRES, "--requires" },
    { offsetof(struct cli, q_provides), LAPIS_DEP_PROVIDES, "--provides" },
    { offsetof(struct cli, q_recommends), LAPIS_DEP_RECOMMENDS, "--recommends" },
    { offsetof(struct cli, q_suggests), LAPIS_DEP_SUGGESTS, "--suggests" },
    { offsetof(struct cli, q_conflicts), LAPIS_DEP_CONFLICTS, "--conflicts" },
    { offsetof(struct cli, q_obsoletes), LAPIS_DEP_OBSOLETES, "--obsoletes" },
    { offsetof(struct cli, q_enhances), LAPIS_DEP_ENHANCES, "--enhances" },
    { offsetof(struct cli, q_supplements), LAPIS_DEP_SUPPLEMENTS, "--supplements" },
    { offsetof(struct cli, q_requires_pre), LAPIS_DEP_REQUIRES_PRE, "--requires-pre" },
    { offsetof(struct cli, q_depends), LAPIS_DEP_DEPENDS, "--depends" },
    { offsetof(struct cli, q_files_attr), ATTR_FILES, "--files" },
};

/* How many attribute options were given; the last one's kind in *ret. */
static int attr_selected(struct cli *c, int *ret)
{
    int n = 0;
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
        if (*(bool *)((char *)c + attrs[i].off)) {
            *ret = attrs[i].kind;
            n++;
        }
    return n;
}

static int cmp_pkg(const void *a, const void *b)
{
    lapis_pkg x = *(const lapis_pkg *)a, y = *(const lapis_pkg *)b;
    return (x > y) - (x < y);
}

/* Keep only packages in both lists (a keeps its order). */
static void intersect(lapis_pkglist *a, const lapis_pkglist *b)
{
    lapis_pkg *sorted = malloc((b->count + 1) * sizeof(lapis_pkg));
    size_t w = 0;
    if (!sorted)
        abort(); /* as the library's xmalloc */
    if (b->count)
        memcpy(sorted, b->pkgs, b->count * sizeof(lapis_pkg));
    qsort(sorted, b->count, sizeof(lapis_pkg), cmp_pkg);
    for (size_t i = 0; i < a->count; i++)
        if (bsearch(&a->pkgs[i], sorted, b->count, sizeof(lapis_pkg), cmp_pkg))
            a->pkgs[w++] = a->pkgs[i];
    a->count = w;
    free(sorted);
}

/* Narrow ret to the packages query() returns for any of specs. */
static int narrow_any(struct cli *c, char *const *specs, lapis_pkglist *ret,
                      int (*query)(lapis_ctx *, const char *, lapis_pkglist *))
{
    lapis_pkglist any = { 0 };
    int r = 0;
    for (size_t i = 0; specs && specs[i] && r >= 0; i++) {
        lapis_pkglist f = { 0 };
        if ((r = query(c->ctx, specs[i], &f)) >= 0)
            for (size_t k = 0; k < f.count; k++)
                cli_pkglist_add(&any, f.pkgs[k]);
        lapis_pkglist_free(&f);
    }
    if (r >= 0 && specs)
        intersect(ret, &any);
    lapis_pkglist_free(&any);
    return r;
}

/* Narrow ret to what list() returns (--leaves, --duplicates, --unneeded). */
static int narrow_to(struct cli *c, bool on, lapis_pkglist *ret,
                     int (*list)(struct cli *, lapis_pkglist *))
{
    lapis_pkglist f = { 0 };
    int r = on ? list(c, &f) : 0;
    if (on && r >= 0)
        intersect(ret, &f);
    lapis_pkglist_free(&f);
    return r;
}

static int list_leaves(struct cli *c, lapis_pkglist *l) { return lapis_query_leaves(c->ctx, l); }
static int list_duplicates(struct cli *c, lapis_pkglist *l) { return lapis_query_duplicates(c->ctx, l); }

/* --unneeded: what autoremove would remove (dnf5's filter_unneeded). */
static int list_unneeded(struct cli *c, lapis_pkglist *l)
{
    lapis_goal *g = NULL;
    size_t n = 0;
    int r = lapis_goal_new(c->ctx, &g);
    if (r >= 0 && (r = lapis_goal_autoremove(g)) >= 0 && (r = lapis_goal_resolve(g)) >= 0) {
        const lapis_trans_item *items = lapis_goal_items(g, &n);
        for (size_t i = 0; i < n; i++)
            if (items[i].action == LAPIS_ACT_REMOVE_UNUSED)
                cli_pkglist_add(l, items[i].pkg);
    }
    lapis_goal_free(g);
    return r;
}

static void keep_if(struct cli *c, lapis_pkglist *l, bool (*keep)(struct cli *, lapis_pkg))
{
    size_t w = 0;
    for (size_t i = 0; i < l->count; i++)
        if (keep(c, l->pkgs[i]))
            l->pkgs[w++] = l->pkgs[i];
    l->count = w;
}

static bool is_installonly(struct cli *c, lapis_pkg p)
{
    return lapis_pkg_installed(c->ctx, p) && lapis_pkg_installonly(c->ctx, p);
}

static bool arch_wanted(struct cli *c, lapis_pkg p)
{
    for (size_t i = 0; c->arches[i]; i++)
        if (fnmatch(c->arches[i], lapis_pkg_arch(c->ctx, p), 0) == 0)
            return true;
    return false;
}

/* Filters that only installed packages pass: dnf5 then reads only the rpmdb. */
static bool installed_only(const struct cli *c)
{
    return c->q_userinstalled || c->q_extras || c->q_leaves || c->q_unneeded || c->q_duplicates ||
           c->q_installonly;
}

static int repoquery_source(struct cli *c, char *const *globs, lapis_pkglist *ret)
{
    /* dnf5: available packages by default; --installed, or both with --available too */
    bool inst = c->q_installed, avail = !c->q_installed || c->q_available;
    if (installed_only(c))
        inst = true, avail = false;
    if (c->q_upgrades)
        return lapis_query_list(c->ctx, LAPIS_LIST_UPGRADES, globs, ret);
    return lapis_query_all_versions(c->ctx, globs, inst, avail, ret);
}

/* The what<kind> filters, in dnf5's order; whatprovides falls back to files. */
static int repoquery_what(struct cli *c, lapis_pkglist *l)
{
    static const enum lapis_dep_kind order[] = {
        LAPIS_DEP_DEPENDS, LAPIS_DEP_REQUIRES, LAPIS_DEP_OBSOLETES, LAPIS_DEP_CONFLICTS,
        LAPIS_DEP_RECOMMENDS, LAPIS_DEP_ENHANCES, LAPIS_DEP_SUPPLEMENTS, LAPIS_DEP_SUGGESTS,
    };
    unsigned flags = c->q_exactdeps ? LAPIS_WHAT_EXACT : 0;
    int r = narrow_any(c, c->what[LAPIS_DEP_PROVIDES], l, lapis_query_whatprovides);

    for (size_t i = 0; r >= 0 && i < sizeof(order) / sizeof(order[0]); i++) {
        enum lapis_dep_kind k = order[i];
        /* dnf5: obsoletes match the capability only; --recursive follows requires */
        unsigned f = flags | (k == LAPIS_DEP_OBSOLETES ? LAPIS_WHAT_EXACT : 0) |
                     (k == LAPIS_DEP_REQUIRES && c->q_recursive ? LAPIS_WHAT_RECURSIVE : 0);
        if (c->what[k])
            r = lapis_query_filter_what(c->ctx, k, c->what[k], f, l);
    }
    return r >= 0 ? narrow_any(c, c->q_file, l, lapis_query_whatprovides) : r;
}

static int repoquery_filters(struct cli *c, lapis_pkglist *l)
{
    int r = repoquery_what(c, l);
    if (r >= 0)
        r = narrow_to(c, c->q_leaves, l, list_leaves);
    if (r >= 0)
        r = narrow_to(c, c->q_duplicates, l, list_duplicates);
    if (r >= 0)
        r = narrow_to(c, c->q_unneeded, l, list_unneeded);
    if (r >= 0 && c->q_installonly)
        keep_if(c, l, is_installonly);
    if (r >= 0 && c->arches)
        keep_if(c, l, arch_wanted);
    if (r >= 0)
        r = cli_query_filters(c, l);
    if (r >= 0 && c->latest_limit)
        lapis_pkglist_latest(c->ctx, l, c->latest_limit);
    return r;
}

/* --providers-of=ATTR: the packages of the source providing the results' ATTR. */
static int repoquery_providers_of(struct cli *c, lapis_pkglist *l)
{
    lapis_pkglist universe = { 0 };
    unsigned flags = c->q_recursive && c->providers_of == LAPIS_DEP_REQUIRES ? LAPIS_WHAT_RECURSIVE : 0;
    int r = repoquery_source(c, NULL, &universe);
    if (r >= 0)
        r = lapis_query_filter_providers_of(c->ctx, c->providers_of, flags, l,
                                            &universe);
    lapis_pkglist_free(l);
    *l = universe;
    return r;
}

static int repoquery_select(struct cli *c, lapis_pkglist *ret)
{
    /* --recursive reaches packages the name globs leave out: they narrow last, as in dnf5 */
    bool globs_last = c->q_recursive && c->nargs;
    int r = repoquery_source(c, globs_last ? NULL : c->args, ret);

    if (r >= 0)
        r = repoquery_filters(c, ret);
    if (r >= 0 && globs_last) {
        lapis_pkglist named = { 0 };
        if ((r = repoquery_source(c, c->args, &named)) >= 0)
            intersect(ret, &named);
        lapis_pkglist_free(&named);
    }
    if (r >= 0 && c->providers_of_given)
        r = repoquery_providers_of(c, ret);
    if (r >= 0)
        lapis_pkglist_sort(c->ctx, ret);
    return r;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One attribute of every package, deduplicated and sorted. */
static int repoquery_attr(struct cli *c, const lapis_pkglist *l, int kind, cJSON *doc)
{
    char **all = calloc(1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; all && i < l->count; i++) {
        char **v = kind == ATTR_FILES ? lapis_pkg_files(c->ctx, l->pkgs[i])
                                      : lapis_pkg_deps(c->ctx, l->pkgs[i], (enum lapis_dep_kind)kind);
        for (size_t k = 0; v[k]; k++) {
            char **grown = realloc(all, (n + 2) * sizeof(char *));
            if (!grown)
                abort();
            all = grown;
            all[n++] = v[k];
            all[n] = NULL;
            v[k] = strdup("");
        }
        lapis_strv_free(v);
    }
    qsort(all, n, sizeof(char *), cmp_strp);
    cJSON *arr = doc ? cJSON_AddArrayToObject(doc, kind == ATTR_FILES ? "files" : "deps") : NULL;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(all[i], all[i - 1]) == 0)
            continue;
        if (arr)
            cJSON_AddItemToArray(arr, cJSON_CreateString(all[i]));
        else
            cli_puts(all[i]);
    }
    lapis_strv_free(all);
    return 0;
}

static void print_files(struct cli *c, const lapis_pkglist *l, cJSON *doc)
{
    for (size_t i = 0; i < l->count; i++) {
        char **files = lapis_pkg_files(c->ctx, l->pkgs[i]);
        if (doc)
            cJSON_AddItemToObject(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "packages"), (int)i),
                                  "files", lapis_json_strv(files));
        else
            for (size_t k = 0; files[k]; k++)
                cli_puts(files[k]);
        lapis_strv_free(files);
    }
}

static void print_locations(struct cli *c, const lapis_pkglist *l, cJSON *doc)
{
    for (size_t i = 0; i < l->count; i++) {
        if (lapis_pkg_installed(c->ctx, l->pkgs[i]))
            continue;
        char *u = cli_location_url(c, l->pkgs[i]);
        if (doc)
            cJSON_AddStringToObject(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "packages"), (int)i),
                                    "location", u ? u : "");
        else if (u)
            cli_puts(u);
        free(u);
    }
}

static void repoquery_print(struct cli *c, const lapis_pkglist *l, int nattr, int attr, cJSON *doc)
{
    if (doc)
        cJSON_AddItemToObject(doc, "packages", cli_json_pkglist(c, l));
    if (nattr) {
        repoquery_attr(c, l, attr, doc);
    } else if (c->q_files) {
        print_files(c, l, doc);
    } else if (c->q_location) {
        print_locations(c, l, doc);
    } else if (c->q_info && !doc) {
        int keyw = cli_info_key_width(c, l, NULL);
        for (size_t i = 0; i < l->count; i++)
            cli_print_info(c, l->pkgs[i], keyw);
    } else if (!doc) {
        /* dnf5's default format; lines come out as a sorted set */
        cli_qf_print(c, l, c->queryformat ? c->queryformat : "%{full_nevra}\n");
    }
}

static bool repoquery_needs_filelists(struct cli *c, int attr)
{
    if (c->q_files || attr == ATTR_FILES || c->q_file ||
        cli_args_need_filelists(c->args, c->nargs) || cli_qf_needs_filelists(c->queryformat))
        return true;
    for (size_t k = 0; k < sizeof(c->what) / sizeof(c->what[0]); k++)
        for (size_t i = 0; c->what[k] && c->what[k][i]; i++)
            if (lapis_spec_needs_filelists(c->what[k][i]))
                return true;
    return false;
}

int cmd_repoquery(struct cli *c)
{
    int attr = LAPIS_DEP_REQUIRES, nattr = attr_selected(c, &attr);
    lapis_pkglist l = { 0 };
    cJSON *doc;
    int r;

    if (c->q_querytags) {
        cli_qf_print_tags();
        return 0;
    }
    if (nattr > 1)
        return cli_error(c, LAPIS_E_USAGE, "choose one of --requires, --provides, --recommends, "
                         "--suggests, --conflicts, --obsoletes, --enhances, --supplements, "
                         "--requires-pre, --depends, --files");
    if ((r = cli_load(c, repoquery_needs_filelists(c, attr) ? LAPIS_LOAD_FILELISTS : 0)) < 0)
        return cli_fail(c, r);
    if ((r = repoquery_select(c, &l)) < 0) {
        lapis_pkglist_free(&l);
        return cli_fail(c, r);
    }
    doc = c->json ? cJSON_CreateObject() : NULL;
    repoquery_print(c, &l, nattr, attr, doc);
    if (doc)
        cli_json_out(c, doc);
    lapis_pkglist_free(&l);
    return 0;
}
