/*
 * Query commands: list, info, search, provides, check-update (repoquery
 * is in cmd_repoquery.c).
 * Each loads the sack (file lists only when a path is asked about), runs a
 * liblapis query and prints a table or one JSON document.
 */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include "cli.h"

bool cli_args_need_filelists(char *const *args, int n)
{
    for (int i = 0; i < n; i++)
        if (lapis_spec_needs_filelists(args[i]))
            return true;
    return false;
}

/* dnf5's repo column and info line: an installed package shows the repo the
 * history says it came from ("<unknown>" when rpm, not lapis, installed it). */
static char *shown_repo(lapis_ctx *ctx, lapis_pkg p)
{
    if (!lapis_pkg_installed(ctx, p))
        return strdup(lapis_pkg_repoid(ctx, p));
    char *from = lapis_pkg_from_repo(ctx, p);
    return from ? from : strdup("<unknown>");
}

static void add_pkg_row(struct cli *c, lapis_table *t, lapis_pkg p)
{
    lapis_ctx *ctx = c->ctx;
    char na[512];
    snprintf(na, sizeof(na), "%s.%s", lapis_pkg_name(ctx, p), lapis_pkg_arch(ctx, p));
    char *repo = shown_repo(ctx, p);
    lapis_table_add(t, (const char *[]){ na, lapis_pkg_evr(ctx, p), repo });
    free(repo);
}



static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keep the packages keep() says yes to. */
static void filter(struct cli *c, lapis_pkglist *l, bool (*keep)(struct cli *, lapis_pkg, void *),
                   void *data)
{
    size_t w = 0;
    for (size_t i = 0; i < l->count; i++)
        if (keep(c, l->pkgs[i], data))
            l->pkgs[w++] = l->pkgs[i];
    l->count = w;
}

static bool is_userinstalled(struct cli *c, lapis_pkg p, void *data)
{
    (void)data;
    enum lapis_reason r = lapis_pkg_reason(c->ctx, p);
    return lapis_pkg_installed(c->ctx, p) && r != LAPIS_REASON_DEP && r != LAPIS_REASON_WEAK;
}

static bool is_recent(struct cli *c, lapis_pkg p, void *data)
{
    return lapis_pkg_buildtime(c->ctx, p) >= *(unsigned long long *)data;
}

struct nevras {
    char **v;
    size_t n;
};

static bool not_available(struct cli *c, lapis_pkg p, void *data)
{
    const char *nevra = lapis_pkg_nevra(c->ctx, p);
    struct nevras *avail = data;
    return lapis_pkg_installed(c->ctx, p) &&
           !bsearch(&nevra, avail->v, avail->n, sizeof(char *), cmp_strp);
}

/* --extras: installed packages no enabled repository offers (by NEVRA, as dnf). */
static int keep_extras(struct cli *c, lapis_pkglist *l)
{
    lapis_pkglist all = { 0 };
    char *none[] = { NULL };
    int r = lapis_query_all_versions(c->ctx, none, false, true, &all);
    if (r < 0)
        return r;
    struct nevras avail = { calloc(all.count + 1, sizeof(char *)), all.count };
    for (size_t i = 0; avail.v && i < all.count; i++)
        avail.v[i] = strdup(lapis_pkg_nevra(c->ctx, all.pkgs[i]));
    lapis_pkglist_free(&all);
    if (!avail.v)
        return -ENOMEM;
    qsort(avail.v, avail.n, sizeof(char *), cmp_strp);
    filter(c, l, not_available, &avail);
    lapis_strv_free(avail.v);
    return 0;
}

/* --userinstalled, --recent, --extras narrow any query. */
int cli_query_filters(struct cli *c, lapis_pkglist *l)
{
    if (c->q_userinstalled)
        filter(c, l, is_userinstalled, NULL);
    if (c->q_recent) {
        long long ago = (long long)time(NULL) - (long long)lapis_ctx_recent_days(c->ctx) * 86400;
        unsigned long long since = ago > 0 ? (unsigned long long)ago : 0;
        filter(c, l, is_recent, &since);
    }
    return c->q_extras ? keep_extras(c, l) : 0;
}

static void print_section(struct cli *c, const char *title, lapis_pkglist *l)
{
    lapis_table *t;
    if (l->count == 0)
        return;
    if (c->queryformat) {
        cli_qf_print(c, l, c->queryformat);
        return;
    }
    lapis_pkglist_sort(c->ctx, l);
    t = lapis_table_new(3);
    for (size_t i = 0; i < l->count; i++)
        add_pkg_row(c, t, l->pkgs[i]);
    printf("%s\n", title);
    lapis_table_print(t, stdout);
    lapis_table_free(t);
}

int cmd_list(struct cli *c)
{
    static const struct { const char *word; enum lapis_list_what what; } words[] = {
        { "all", LAPIS_LIST_ALL }, { "installed", LAPIS_LIST_INSTALLED },
        { "available", LAPIS_LIST_AVAILABLE }, { "updates", LAPIS_LIST_UPGRADES },
        { "upgrades", LAPIS_LIST_UPGRADES },
    };
    enum lapis_list_what what = LAPIS_LIST_ALL;
    char **globs = c->args;
    lapis_pkglist inst = { 0 }, avail = { 0 };
    int r;

    if (c->nargs > 0)
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (strcmp(c->args[0], words[i].word) == 0) {
                what = words[i].what;
                globs++;
                break;
            }
    /* dnf5 spells the words as options; --extras are installed, --recent available. */
    if (c->q_installed || c->q_extras)
        what = LAPIS_LIST_INSTALLED;
    else if (c->q_available || c->q_recent)
        what = LAPIS_LIST_AVAILABLE;
    else if (c->q_upgrades)
        what = LAPIS_LIST_UPGRADES;
    if ((r = cli_load(c, what == LAPIS_LIST_INSTALLED && !c->q_extras ? LAPIS_LOAD_NO_REPOS : 0)) < 0)
        return cli_fail(c, r);

    if (what == LAPIS_LIST_ALL || what == LAPIS_LIST_INSTALLED)
        r = lapis_query_list(c->ctx, LAPIS_LIST_INSTALLED, globs, &inst);
    if (r >= 0 && (what == LAPIS_LIST_ALL || what == LAPIS_LIST_AVAILABLE ||
                   what == LAPIS_LIST_UPGRADES)) {
        if (c->showduplicates && what != LAPIS_LIST_UPGRADES)
            r = lapis_query_all_versions(c->ctx, globs, false, true, &avail);
        else
            r = lapis_query_list(c->ctx, what == LAPIS_LIST_UPGRADES ? LAPIS_LIST_UPGRADES
                                                                   : LAPIS_LIST_AVAILABLE,
                                 globs, &avail);
    }
    if (r >= 0 && (r = cli_query_filters(c, &inst)) >= 0)
        r = cli_query_filters(c, &avail);
    if (r < 0) {
        lapis_pkglist_free(&inst);
        lapis_pkglist_free(&avail);
        return cli_fail(c, r);
    }
    if (inst.count + avail.count == 0 && globs[0]) {
        lapis_pkglist_free(&inst);
        lapis_pkglist_free(&avail);
        return cli_error(c, LAPIS_E_NOTFOUND, "No matching packages to list");
    }
    if (c->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "installed", cli_json_pkglist(c, &inst));
        cJSON_AddItemToObject(doc, what == LAPIS_LIST_UPGRADES ? "upgrades" : "available",
                              cli_json_pkglist(c, &avail));
        cli_json_out(c, doc);
    } else {
        print_section(c, c->q_extras ? "Extra packages" : "Installed packages", &inst);
        print_section(c, what == LAPIS_LIST_UPGRADES ? "Available upgrades"
                         : c->q_recent ? "Recently added packages" : "Available packages",
                      &avail);
    }
    lapis_pkglist_free(&inst);
    lapis_pkglist_free(&avail);
    return 0;
}

static cJSON *json_pkg_details(struct cli *c, lapis_pkg p)
{
    lapis_ctx *ctx = c->ctx;
    cJSON *o = lapis_json_pkg(ctx, p);
    cJSON_AddStringToObject(o, "summary", lapis_pkg_summary(ctx, p));
    cJSON_AddStringToObject(o, "description", lapis_pkg_description(ctx, p));
    cJSON_AddStringToObject(o, "url", lapis_pkg_url(ctx, p));
    cJSON_AddStringToObject(o, "license", lapis_pkg_license(ctx, p));
    cJSON_AddStringToObject(o, "sourcerpm", lapis_pkg_sourcerpm(ctx, p));
    cJSON_AddNumberToObject(o, "downloadsize", (double)lapis_pkg_downloadsize(ctx, p));
    cJSON_AddNumberToObject(o, "installsize", (double)lapis_pkg_installsize(ctx, p));
    cJSON_AddNumberToObject(o, "buildtime", (double)lapis_pkg_buildtime(ctx, p));
    if (!lapis_pkg_installed(ctx, p))
        cJSON_AddStringToObject(o, "location", lapis_pkg_location(ctx, p));
    return o;
}

/* dnf5's "Key            : value": a value wraps to the terminal, its further
 * lines under the value column, as dnf5's info table wraps it. */
static void print_info_field(struct cli *c, int keyw, const char *key, const char *value)
{
    char prefix[64], indent[64];
    snprintf(prefix, sizeof(prefix), "%-*s : ", keyw, key);
    snprintf(indent, sizeof(indent), "%-*s : ", keyw, "");
    lapis_term_print_wrapped(stdout, prefix, indent, value, c->width);
}

/* dnf5 prints all of info's packages as one table: its key column is as
 * wide as the longest key, "From repository" once anything is installed. */
int cli_info_key_width(struct cli *c, const lapis_pkglist *a, const lapis_pkglist *b)
{
    for (size_t i = 0; a && i < a->count; i++)
        if (lapis_pkg_installed(c->ctx, a->pkgs[i]))
            return (int)strlen("From repository");
    for (size_t i = 0; b && i < b->count; i++)
        if (lapis_pkg_installed(c->ctx, b->pkgs[i]))
            return (int)strlen("From repository");
    return (int)strlen("Installed size");
}

void cli_print_info(struct cli *c, lapis_pkg p, int keyw)
{
    lapis_ctx *ctx = c->ctx;
    char buf[32], epoch[16];
    snprintf(epoch, sizeof(epoch), "%u", lapis_pkg_epoch(ctx, p));
    print_info_field(c, keyw, "Name", lapis_pkg_name(ctx, p));
    print_info_field(c, keyw, "Epoch", epoch); /* dnf5: also when it is 0 */
    print_info_field(c, keyw, "Version", lapis_pkg_version(ctx, p));
    print_info_field(c, keyw, "Release", lapis_pkg_release(ctx, p));
    print_info_field(c, keyw, "Architecture", lapis_pkg_arch(ctx, p));
    /* dnf5: what is installed has no download size */
    if (!lapis_pkg_installed(ctx, p))
        print_info_field(c, keyw, "Download size",
                         lapis_format_size_aligned(lapis_pkg_downloadsize(ctx, p), buf));
    print_info_field(c, keyw, "Installed size",
                     lapis_format_size_aligned(lapis_pkg_installsize(ctx, p), buf));
    print_info_field(c, keyw, "Source", lapis_pkg_sourcerpm(ctx, p));
    char *repo = shown_repo(ctx, p);
    print_info_field(c, keyw, lapis_pkg_installed(ctx, p) ? "From repository" : "Repository", repo);
    free(repo);
    print_info_field(c, keyw, "Summary", lapis_pkg_summary(ctx, p));
    print_info_field(c, keyw, "URL", lapis_pkg_url(ctx, p));
    print_info_field(c, keyw, "License", lapis_pkg_license(ctx, p));
    /* Description lines continue under the value column, as dnf prints them;
     * each line goes through the sanitizer on its own. */
    const char *d = lapis_pkg_description(ctx, p), *label = "Description";
    for (;; label = "") {
        size_t n = strcspn(d, "\n");
        char *line = strndup(d, n);
        print_info_field(c, keyw, label, line ? line : "");
        free(line);
        if (!d[n])
            break;
        d += n + 1;
    }
    print_info_field(c, keyw, "Vendor", lapis_pkg_vendor(ctx, p));
    printf("\n");
}

int cmd_info(struct cli *c)
{
    lapis_pkglist inst = { 0 }, avail = { 0 };
    int r;

    bool want_inst = !(c->q_available || c->q_recent || c->q_upgrades) || c->q_installed;
    bool want_avail = !(c->q_installed || c->q_extras || c->q_userinstalled) || c->q_available;
    if ((r = cli_load(c, cli_qf_needs_filelists(c->queryformat) ? LAPIS_LOAD_FILELISTS : 0)) < 0)
        return cli_fail(c, r);
    if (want_inst)
        r = lapis_query_list(c->ctx, LAPIS_LIST_INSTALLED, c->args, &inst);
    if (r >= 0 && want_avail && c->q_upgrades)
        r = lapis_query_list(c->ctx, LAPIS_LIST_UPGRADES, c->args, &avail);
    else if (r >= 0 && want_avail && c->showduplicates)
        r = lapis_query_all_versions(c->ctx, c->args, false, true, &avail);
    else if (r >= 0 && want_avail)
        r = lapis_query_list(c->ctx, LAPIS_LIST_AVAILABLE, c->args, &avail);
    if (r >= 0 && (r = cli_query_filters(c, &inst)) >= 0)
        r = cli_query_filters(c, &avail);
    if (r < 0) {
        lapis_pkglist_free(&inst);
        lapis_pkglist_free(&avail);
        return cli_fail(c, r);
    }
    lapis_pkglist_sort(c->ctx, &inst);
    lapis_pkglist_sort(c->ctx, &avail);
    if (inst.count + avail.count == 0) {
        lapis_pkglist_free(&inst);
        lapis_pkglist_free(&avail);
        return cli_error(c, LAPIS_E_NOTFOUND, "No matching packages to list");
    }
    if (c->queryformat && !c->json) {
        print_section(c, NULL, &inst);
        print_section(c, NULL, &avail);
    } else if (c->json) {
        cJSON *doc = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(doc, "packages");
        for (size_t i = 0; i < inst.count; i++)
            cJSON_AddItemToArray(a, json_pkg_details(c, inst.pkgs[i]));
        for (size_t i = 0; i < avail.count; i++)
            cJSON_AddItemToArray(a, json_pkg_details(c, avail.pkgs[i]));
        cli_json_out(c, doc);
    } else {
        int keyw = cli_info_key_width(c, &inst, &avail);
        if (inst.count)
            printf("Installed packages\n");
        for (size_t i = 0; i < inst.count; i++)
            cli_print_info(c, inst.pkgs[i], keyw);
        if (avail.count) /* list's headings */
            printf(c->q_upgrades ? "Available upgrades\n" : "Available packages\n");
        for (size_t i = 0; i < avail.count; i++)
            cli_print_info(c, avail.pkgs[i], keyw);
    }
    lapis_pkglist_free(&inst);
    lapis_pkglist_free(&avail);
    return 0;
}

/* The order dnf5 prints search results in: best matched fields first, then by name. */
struct search_hit {
    lapis_pkg pkg;
    unsigned fields;
    const char *name;
};

static int search_hit_cmp(const void *a, const void *b)
{
    const struct search_hit *x = a, *y = b;
    if (x->fields != y->fields)
        return x->fields < y->fields ? 1 : -1;
    return strcmp(x->name, y->name);
}

static struct search_hit *search_rank(struct cli *c, const lapis_pkglist *l)
{
    struct search_hit *h = calloc(l->count + 1, sizeof(*h));
    for (size_t i = 0; i < l->count; i++)
        h[i] = (struct search_hit){ l->pkgs[i], lapis_search_fields(c->ctx, l->pkgs[i], c->args, c->all),
                                    lapis_pkg_name(c->ctx, l->pkgs[i]) };
    qsort(h, l->count, sizeof(*h), search_hit_cmp);
    return h;
}

/* "name (exact), summary": dnf5's "Matched fields:" list, best field first. */
static void search_fields_str(unsigned fields, char *buf, size_t size)
{
    static const char *const names[] = { "name", "summary", "description", "url" };
    static const unsigned bits[] = { LAPIS_SEARCH_NAME, LAPIS_SEARCH_SUMMARY,
                                     LAPIS_SEARCH_DESCRIPTION, LAPIS_SEARCH_URL };
    size_t n = 0;

    buf[0] = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && n < size; i++)
        if (fields & bits[i])
            n += (size_t)snprintf(buf + n, size - n, "%s%s%s", n ? ", " : "", names[i],
                                  fields & (bits[i] << 1) ? " (exact)" : "");
}

static cJSON *search_fields_json(unsigned fields)
{
    char buf[96];
    cJSON *a = cJSON_CreateArray();
    search_fields_str(fields, buf, sizeof(buf));
    for (char *save = NULL, *f = strtok_r(buf, ",", &save); f; f = strtok_r(NULL, ",", &save))
        cJSON_AddItemToArray(a, cJSON_CreateString(f + (*f == ' ')));
    return a;
}

static void search_print_json(struct cli *c, const struct search_hit *h, size_t n)
{
    cJSON *doc = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(doc, "packages");
    for (size_t i = 0; i < n; i++) {
        cJSON *o = lapis_json_pkg(c->ctx, h[i].pkg);
        cJSON_AddStringToObject(o, "summary", lapis_pkg_summary(c->ctx, h[i].pkg));
        cJSON_AddItemToObject(o, "matched_fields", search_fields_json(h[i].fields));
        cJSON_AddItemToArray(a, o);
    }
    cli_json_out(c, doc);
}

/* One group of hits with the same fields: its heading, then " name.arch: summary"
 * lines, the terms in green and wrapped on a terminal. */
static size_t search_print_group(struct cli *c, const struct search_hit *h, size_t n)
{
    char fields[96];
    size_t k = 0;
    lapis_table *t = lapis_table_new(1);

    search_fields_str(h[0].fields, fields, sizeof(fields));
    printf("%sMatched fields: %s%s\n", c->color ? "\033[" LAPIS_SGR_BOLD "m" : "",
           c->color ? "\033[0m" : "", fields);
    lapis_table_set_width(t, c->width);
    lapis_table_wrap_column(t, 0, 2);
    lapis_table_set_color(t, c->color);
    lapis_table_highlight(t, (const char *const *)c->args, LAPIS_SGR_GREEN);
    for (; k < n && h[k].fields == h[0].fields; k++) {
        char line[1536];
        snprintf(line, sizeof(line), " %s.%s: %s", h[k].name, lapis_pkg_arch(c->ctx, h[k].pkg),
                 lapis_pkg_summary(c->ctx, h[k].pkg));
        lapis_table_add(t, (const char *[]){ line });
    }
    lapis_table_print(t, stdout);
    lapis_table_free(t);
    return k;
}

int cmd_search(struct cli *c)
{
    lapis_pkglist l = { 0 };
    struct search_hit *h;
    int r;

    if (c->nargs == 0)
        return cli_error(c, LAPIS_E_USAGE, "search needs at least one term");
    if ((r = cli_load(c, 0)) < 0)
        return cli_fail(c, r);
    if ((r = lapis_query_search(c->ctx, c->args, c->all, &l)) < 0)
        return cli_fail(c, r);
    h = search_rank(c, &l);
    if (c->json)
        search_print_json(c, h, l.count);
    else
        for (size_t i = 0; i < l.count;)
            i += search_print_group(c, h + i, l.count - i);
    if (l.count == 0 && !c->json && !c->quiet)
        fprintf(stderr, "No matches found.\n");
    free(h);
    lapis_pkglist_free(&l);
    return 0;
}

/* Does a provide ("name = 1.0-1") or a file of the package match what was asked? */
static bool provide_matches(const char *dep, const char *spec)
{
    size_t dn = strcspn(dep, " "), sn = strcspn(spec, " ");
    char dname[512], sname[512];

    if (dn >= sizeof(dname) || sn >= sizeof(sname))
        return false;
    snprintf(dname, sizeof(dname), "%.*s", (int)dn, dep);
    snprintf(sname, sizeof(sname), "%.*s", (int)sn, spec);
    return fnmatch(sname, dname, 0) == 0;
}

/* What one argument of provides found: spec is what the lines show (the path
 * that matched, for a /bin path found under /usr); binary: a bare name found
 * as a file in one of the bin directories, spec the name. */
struct provided {
    lapis_pkglist pkgs;
    char *spec;
    bool binary;
};

static const char *const provides_bindirs[] = { "/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/" };
#define N_BINDIRS (sizeof(provides_bindirs) / sizeof(provides_bindirs[0]))

static bool file_matches(const char *file, const struct provided *m)
{
    char path[PATH_MAX];

    if (!m->binary)
        return fnmatch(m->spec, file, 0) == 0;
    for (size_t d = 0; d < N_BINDIRS; d++) {
        snprintf(path, sizeof(path), "%s%s", provides_bindirs[d], m->spec);
        if (fnmatch(path, file, 0) == 0)
            return true;
    }
    return false;
}

/* The package's first file that matched (NULL if none, e.g. a virtual provide
 * of the path): freed by the caller. */
static char *first_matching_file(struct cli *c, lapis_pkg p, const struct provided *m)
{
    char **v = lapis_pkg_files(c->ctx, p);
    char *hit = NULL;

    for (size_t k = 0; v && v[k] && !hit; k++)
        if (file_matches(v[k], m))
            hit = strdup(v[k]);
    lapis_strv_free(v);
    return hit;
}

/* dnf5's "Provide : …" or "Filename : …" lines: what of the package matched. */
static void provides_print_matches(struct cli *c, lapis_pkg p, const struct provided *m)
{
    bool file = m->binary || strchr(m->spec, '/') != NULL;
    char **v = file ? lapis_pkg_files(c->ctx, p) : lapis_pkg_deps(c->ctx, p, LAPIS_DEP_PROVIDES);
    bool any = false;

    for (size_t k = 0; v && v[k]; k++) {
        if (file ? !file_matches(v[k], m) : !provide_matches(v[k], m->spec))
            continue;
        char *s = lapis_sanitize(v[k]);
        printf("%-12s : %s\n", file ? "Filename" : "Provide", s);
        free(s);
        any = true;
    }
    if (!any) {
        char *s = lapis_sanitize(m->spec);
        printf("%-12s : %s\n", file ? "Filename" : "Provide", s);
        free(s);
    }
    lapis_strv_free(v);
}

static void provides_print(struct cli *c, lapis_pkg p, const struct provided *m)
{
    char *nevra = lapis_sanitize(lapis_pkg_nevra(c->ctx, p));
    char *sum = lapis_sanitize(lapis_pkg_summary(c->ctx, p));
    char *repo = lapis_sanitize(lapis_pkg_repoid(c->ctx, p));

    printf("%s : %s\nRepo         : %s\nMatched From : \n", nevra, sum, repo);
    provides_print_matches(c, p, m);
    printf("\n");
    free(nevra);
    free(sum);
    free(repo);
}

/* Adds the packages of from that ship a file the binary match names (dnf5
 * matches files here, not virtual provides of the path). */
static void add_binary_hits(struct cli *c, struct provided *m, const lapis_pkglist *from)
{
    for (size_t k = 0; k < from->count; k++) {
        char *f = first_matching_file(c, from->pkgs[k], m);
        if (f)
            cli_pkglist_add(&m->pkgs, from->pkgs[k]);
        free(f);
    }
}

/* A bare name no capability matched: the packages with that file in any of
 * the bin directories, all four of them (as dnf5). */
static int provides_find_binary(struct cli *c, struct provided *m)
{
    char path[PATH_MAX];
    int r = 0;

    m->binary = true;
    for (size_t d = 0; d < N_BINDIRS && r >= 0; d++) {
        lapis_pkglist l = { 0 };
        snprintf(path, sizeof(path), "%s%s", provides_bindirs[d], m->spec);
        if ((r = lapis_query_whatprovides(c->ctx, path, &l)) >= 0)
            add_binary_hits(c, m, &l);
        lapis_pkglist_free(&l);
    }
    return r;
}

/* dnf5's order: a capability, then (for a bare name) the binaries of that name,
 * then a path; /bin and /sbin paths also as /usr ones, for packages after UsrMove. */
static int provides_find(struct cli *c, const char *spec, struct provided *m)
{
    char path[PATH_MAX];
    int r;

    m->spec = strdup(spec);
    if ((r = lapis_query_whatprovides(c->ctx, spec, &m->pkgs)) < 0 || m->pkgs.count)
        return r;
    if (!strchr(spec, '/'))
        return provides_find_binary(c, m);
    if (strncmp(spec, "/bin/", 5) != 0 && strncmp(spec, "/sbin/", 6) != 0)
        return 0;
    snprintf(path, sizeof(path), "/usr%s", spec);
    lapis_pkglist_free(&m->pkgs);
    if ((r = lapis_query_whatprovides(c->ctx, path, &m->pkgs)) < 0 || !m->pkgs.count)
        return r;
    free(m->spec);
    m->spec = strdup(path);
    return 0;
}

static void provides_json_add(struct cli *c, cJSON *arr, const struct provided *m)
{
    for (size_t k = 0; k < m->pkgs.count; k++) {
        cJSON *o = lapis_json_pkg(c->ctx, m->pkgs.pkgs[k]);
        char *f = m->binary ? first_matching_file(c, m->pkgs.pkgs[k], m) : NULL;
        cJSON_AddStringToObject(o, "summary", lapis_pkg_summary(c->ctx, m->pkgs.pkgs[k]));
        cJSON_AddStringToObject(o, "matched", f ? f : m->spec);
        cJSON_AddItemToArray(arr, o);
        free(f);
    }
}

/* dnf5 prints what matched, then fails naming the specs nothing matched. */
static int provides_unmatched_error(struct cli *c, const struct provided *found)
{
    char *names = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&names, &len);
    int r;

    for (int i = 0, n = 0; f && i < c->nargs; i++)
        if (found[i].pkgs.count == 0)
            fprintf(f, "%s%s", n++ ? ", " : "", c->args[i]);
    if (f)
        fclose(f);
    if (!names || !*names) {
        free(names);
        return 0;
    }
    r = cli_error(c, LAPIS_E_NOTFOUND,
                  "No matches found for %s. If searching for a file, try the full path or a "
                  "wildcard prefix (\"*/\") at the beginning.", names);
    free(names);
    return r;
}

int cmd_provides(struct cli *c)
{
    struct provided *found;
    cJSON *doc = NULL, *arr = NULL;
    int r = 0;

    if (c->nargs == 0)
        return cli_error(c, LAPIS_E_USAGE, "provides needs a capability or a file path");
    if ((r = cli_load(c, cli_args_need_filelists(c->args, c->nargs) ? LAPIS_LOAD_FILELISTS : 0)) < 0)
        return cli_fail(c, r);
    found = calloc((size_t)c->nargs, sizeof(*found));
    for (int i = 0; i < c->nargs && r >= 0; i++) {
        if ((r = provides_find(c, c->args[i], &found[i])) < 0)
            r = cli_fail(c, r);
        lapis_pkglist_sort(c->ctx, &found[i].pkgs);
    }
    if (r >= 0 && c->json) {
        /* One document: matches, or else the error. */
        if ((r = provides_unmatched_error(c, found)) == 0) {
            doc = cJSON_CreateObject();
            arr = cJSON_AddArrayToObject(doc, "packages");
            for (int i = 0; i < c->nargs; i++)
                provides_json_add(c, arr, &found[i]);
            cli_json_out(c, doc);
        }
    } else if (r >= 0) {
        for (int i = 0; i < c->nargs; i++)
            for (size_t k = 0; k < found[i].pkgs.count; k++)
                provides_print(c, found[i].pkgs.pkgs[k], &found[i]);
        fflush(stdout);
        r = provides_unmatched_error(c, found);
    }
    for (int i = 0; i < c->nargs; i++) {
        lapis_pkglist_free(&found[i].pkgs);
        free(found[i].spec);
    }
    free(found);
    return r;
}

/* dnf5's check-upgrade: filters that leave out every upgrade say how many there are
 * (its condition leaves out --enhancement alone; so does this one). check-update
 * keeps dnf 4's empty output. */
static void upgrades_outside_advisories(struct cli *c, size_t all)
{
    unsigned others = LAPIS_ADV_SECURITY | LAPIS_ADV_BUGFIX | LAPIS_ADV_NEWPACKAGE;
    bool said = (c->adv_types & others) || c->adv_ids || c->adv_cves || c->adv_bzs ||
                c->adv_severities;
    if (all && said && !c->json && strcmp(c->cmd_name, "check-upgrade") == 0)
        printf("No security updates needed, but %zu update(s) available\n", all);
}

int cmd_check_update(struct cli *c)
{
    lapis_pkglist l = { 0 };
    int r;

    if ((r = cli_load(c, 0)) < 0)
        return cli_fail(c, r);
    if ((r = lapis_query_list(c->ctx, LAPIS_LIST_UPGRADES, c->args, &l)) >= 0 &&
        cli_has_advisory_filter(c)) {
        lapis_advisory_filter f = cli_advisory_filter(c);
        size_t all = l.count;
        lapis_pkglist_free(&l);
        if ((r = lapis_query_advisory_upgrades(c->ctx, &f, c->args, &l)) >= 0 && !l.count)
            upgrades_outside_advisories(c, all);
    }
    if (r < 0) {
        lapis_pkglist_free(&l);
        return cli_fail(c, r);
    }
    lapis_pkglist_sort(c->ctx, &l);
    if (c->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "upgrades", cli_json_pkglist(c, &l));
        cli_json_out(c, doc);
    } else if (l.count) {
        lapis_table *t = lapis_table_new(3);
        for (size_t i = 0; i < l.count; i++)
            add_pkg_row(c, t, l.pkgs[i]);
        if (strcmp(c->cmd_name, "check-update") == 0)
            putchar('\n'); /* dnf 4's layout; dnf5's check-upgrade starts with the table */
        lapis_table_print(t, stdout);
        lapis_table_free(t);
    }
    r = l.count ? EXIT_UPDATES : 0;
    lapis_pkglist_free(&l);
    return r;
}
