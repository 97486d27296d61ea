/*
 * Repository definitions: .repo files from the reposdir directories, their
 * keys, and validation. A repo starts as a copy of the [main] overridable
 * options and then takes its own section's values.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "pkg/internal.h"

int lapis_repo_opts_set(struct lapis_repo_opts *o, const char *key, const char *value);

struct lapis_repo *lapis_repo_new(const char *id, const struct lapis_repo_opts *defaults)
{
    struct lapis_repo *r = xcalloc(1, sizeof(*r));
    r->id = xstrdup(id);
    r->enabled = 1;
    r->priority = 99;
    r->cost = 1000;
    r->baseurls = xcalloc(1, sizeof(char *));
    r->gpgkeys = xcalloc(1, sizeof(char *));
    lapis_repo_opts_copy(&r->opts, defaults);
    return r;
}

void lapis_repo_free(struct lapis_repo *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->name);
    lapis_strv_free(r->baseurls);
    free(r->baseurl_text);
    lapis_strv_free(r->gpgkeys);
    lapis_strv_free(r->includepkgs);
    lapis_repo_opts_clear(&r->opts);
    free(r->source);
    free(r->cachedir);
    free(r->solv_dir);
    free(r->comps_path);
    free(r);
}

/* Ids become directory names in the cache: keep them to a safe alphabet. */
bool lapis_repo_id_valid(const char *id)
{
    if (!*id || strcmp(id, ".") == 0 || strcmp(id, "..") == 0 || strlen(id) > 100)
        return false;
    return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
           == strlen(id);
}

static int set_int(const char *value, long long min, long long max, int *field)
{
    long long v;
    int r = lapis_parse_int(value, min, max, &v);
    if (r == 0)
        *field = (int)v;
    return r;
}

/* Returns 0, -ENOENT for an unknown key, -EINVAL for a bad value. */
int lapis_repo_set(lapis_ctx *ctx, struct lapis_repo *r, const char *key, const char *value)
{
    if (strcmp(key, "name") == 0) {
        free(r->name);
        r->name = xstrdup(value);
        return 0;
    }
    if (strcmp(key, "baseurl") == 0) {
        char **urls = strv_split(value, " \t\n,");
        for (size_t i = 0; urls[i]; i++)
            if (!lapis_url_scheme_ok(urls[i])) {
                lapis_strv_free(urls);
                return -EINVAL;
            }
        lapis_strv_free(r->baseurls);
        r->baseurls = urls;
        free(r->baseurl_text);
        r->baseurl_text = NULL;
        return 0;
    }
    if (strcmp(key, "gpgkey") == 0) {
        lapis_strv_free(r->gpgkeys);
        r->gpgkeys = strv_split(value, " \t\n,");
        return 0;
    }
    if (strcmp(key, "includepkgs") == 0) {
        lapis_strv_free(r->includepkgs);
        r->includepkgs = strv_split(value, " \t\n,");
        if (!r->includepkgs[0]) { /* empty: no filter, as in dnf */
            lapis_strv_free(r->includepkgs);
            r->includepkgs = NULL;
        }
        return 0;
    }
    if (strcmp(key, "enabled") == 0)
        return lapis_parse_bool(value, &r->enabled);
    if (strcmp(key, "priority") == 0)
        /* Any integer, as dnf (lower wins); INT_MIN is left out so the
         * libsolv value (its negation) cannot overflow. */
        return set_int(value, INT_MIN + 1, INT_MAX, &r->priority);
    if (strcmp(key, "cost") == 0)
        return set_int(value, 0, 1000000, &r->cost);
    if (strcmp(key, "mirrorlist") == 0 || strcmp(key, "metalink") == 0) {
        if (*value)
            lapis_log(ctx, LAPIS_LOG_WARNING, "repo %s: %s is not supported yet; using baseurl",
                      r->id, key);
        return 0;
    }
    /* Keys dnf accepts that have no effect here. */
    static const char *const inert[] = { "type", "autorefresh", "countme", "deltarpm",
                                         "enabled_metadata", "module_hotfixes", "fastestmirror" };
    for (size_t i = 0; i < ARRAY_SIZE(inert); i++)
        if (strcmp(key, inert[i]) == 0)
            return 0;
    return lapis_repo_opts_set(&r->opts, key, value);
}

struct lapis_repo *lapis_repo_find(lapis_ctx *ctx, const char *id)
{
    for (size_t i = 0; i < ctx->nrepos; i++)
        if (strcmp(ctx->repos[i]->id, id) == 0)
            return ctx->repos[i];
    return NULL;
}

struct repofile_parse {
    lapis_ctx *ctx;
    const char *path;
    struct lapis_repo *cur;   /* NULL while inside an ignored section */
    char *cur_section;
};

static struct lapis_repo *repo_for_section(struct repofile_parse *rp, const char *section, int lineno,
                                           int *ret_r)
{
    lapis_ctx *ctx = rp->ctx;

    *ret_r = 0;
    if (rp->cur_section && strcmp(rp->cur_section, section) == 0)
        return rp->cur;
    free(rp->cur_section);
    rp->cur_section = xstrdup(section);
    rp->cur = NULL;
    if (!*section || strcmp(section, "main") == 0) {
        lapis_log(ctx, LAPIS_LOG_WARNING, "%s:%d: keys outside a repo section are ignored",
                  rp->path, lineno);
        return NULL;
    }
    if (!lapis_repo_id_valid(section)) {
        *ret_r = lapis_err(ctx, LAPIS_E_CONFIG,
                           "%s:%d: bad repo id '%s'; use letters, digits and -_.:",
                           rp->path, lineno, section);
        return NULL;
    }
    if (lapis_repo_find(ctx, section)) {
        lapis_log(ctx, LAPIS_LOG_WARNING, "%s:%d: repo '%s' is defined more than once; "
                  "keeping the first", rp->path, lineno, section);
        return NULL;
    }
    rp->cur = lapis_repo_new(section, &ctx->conf.repo);
    rp->cur->source = xstrdup(rp->path);
    ctx->repos = xrealloc(ctx->repos, (ctx->nrepos + 1) * sizeof(*ctx->repos));
    ctx->repos[ctx->nrepos++] = rp->cur;
    return rp->cur;
}

static int repofile_cb(const char *section, const char *key, const char *value, int lineno, void *ud)
{
    struct repofile_parse *rp = ud;
    lapis_ctx *ctx = rp->ctx;
    size_t nvars;
    lapis_var *vars = lapis_ctx_vars(ctx, &nvars);
    _cleanup_free_ char *val = lapis_vars_subst(value, vars, nvars);
    struct lapis_repo *repo;
    int r;

    free(vars);
    repo = repo_for_section(rp, section, lineno, &r);
    if (!repo)
        return r;
    r = lapis_repo_set(ctx, repo, key, val);
    if (r == -ENOENT) {
        lapis_log(ctx, LAPIS_LOG_WARNING, "%s:%d: unknown repo option '%s' ignored",
                  rp->path, lineno, key);
        return 0;
    }
    if (r < 0)
        return lapis_err(ctx, LAPIS_E_CONFIG, "%s:%d: repo %s: invalid value '%s' for '%s'",
                         rp->path, lineno, repo->id, val, key);
    return 0;
}

static int read_repo_file(lapis_ctx *ctx, const char *path)
{
    _cleanup_free_ char *buf = NULL;
    size_t len;
    int errline = 0, r;
    struct repofile_parse rp = { .ctx = ctx, .path = path };

    r = read_file(path, 4 << 20, &buf, &len);
    if (r < 0)
        return lapis_err(ctx, LAPIS_E_CONFIG, "cannot read repo file %s: %s", path, strerror(-r));
    lapis_log(ctx, LAPIS_LOG_DEBUG, "reading repo file %s", path);
    r = lapis_ini_parse(buf, len, repofile_cb, &rp, &errline);
    free(rp.cur_section);
    if (r == -EINVAL)
        return lapis_err(ctx, LAPIS_E_CONFIG,
                         "%s:%d: garbled line; expected [repoid], KEY=VALUE or a comment",
                         path, errline);
    return r;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_repo_dir(lapis_ctx *ctx, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    _cleanup_strv_ char **files = xcalloc(1, sizeof(char *));
    int r = 0;

    if (!d) {
        /* A default reposdir may well be absent; one the user named should exist. */
        if (ctx->reposdir_explicit)
            lapis_log(ctx, LAPIS_LOG_WARNING, "reposdir %s: %s", dir, strerror(errno));
        return 0;
    }
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && str_endswith(de->d_name, ".repo"))
            strv_push(&files, path_join(dir, de->d_name));
    closedir(d);
    qsort(files, strv_length(files), sizeof(char *), cmp_str);
    for (size_t i = 0; files[i] && r >= 0; i++)
        r = read_repo_file(ctx, files[i]);
    return r;
}

/* dnf's rule: if any reposdir exists inside the installroot, use the rooted
 * ones; otherwise the host's. Explicit --setopt=reposdir= paths are host paths. */
int lapis_repos_read_dirs(lapis_ctx *ctx)
{
    const char *root = ctx->installroot;
    bool rooted = false;
    int r = 0;

    if (root && !ctx->reposdir_explicit)
        for (size_t i = 0; ctx->conf.reposdir[i]; i++) {
            _cleanup_free_ char *p = path_in_root(root, ctx->conf.reposdir[i]);
            if (path_exists(p))
                rooted = true;
        }
    for (size_t i = 0; ctx->conf.reposdir[i] && r >= 0; i++) {
        _cleanup_free_ char *p = rooted ? path_in_root(root, ctx->conf.reposdir[i])
                                        : xstrdup(ctx->conf.reposdir[i]);
        r = read_repo_dir(ctx, p);
    }
    return r;
}

/* --repofrompath=ID,PATH: an enabled repo at PATH (a local directory or a URL),
 * with [main]'s defaults: its signatures are checked like any other repo's. */
static int add_from_path(lapis_ctx *ctx, const char *arg)
{
    const char *comma = strchr(arg, ',');
    _cleanup_free_ char *id = comma ? xstrndup(arg, (size_t)(comma - arg)) : NULL;
    const char *path = comma ? comma + 1 : "";
    _cleanup_free_ char *url = NULL;
    struct lapis_repo *repo;

    if (!id || !*path || !lapis_repo_id_valid(id))
        return lapis_err(ctx, LAPIS_E_USAGE, "--repofrompath takes ID,PATH (a repo id of letters, "
                         "digits and -_.:, then a directory or URL), not '%s'", arg);
    if (lapis_repo_find(ctx, id))
        return lapis_err(ctx, LAPIS_E_USAGE, "--repofrompath: repo '%s' is already defined; "
                         "choose another id", id);
    if (strstr(path, "://"))
        url = xstrdup(path);
    else if (path[0] == '/')
        url = xasprintf("file://%s", path);
    else {
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        if (!cwd)
            return lapis_err(ctx, -errno, "--repofrompath %s: cannot tell the current directory", id);
        url = xasprintf("file://%s/%s", cwd, path);
    }
    repo = lapis_repo_new(id, &ctx->conf.repo);
    repo->source = xstrdup("--repofrompath");
    ctx->repos = xrealloc(ctx->repos, (ctx->nrepos + 1) * sizeof(*ctx->repos));
    ctx->repos[ctx->nrepos++] = repo;
    if (lapis_repo_set(ctx, repo, "baseurl", url) < 0 || lapis_repo_set(ctx, repo, "enabled", "1") < 0)
        return lapis_err(ctx, LAPIS_E_USAGE, "--repofrompath %s: bad path '%s'", id, path);
    lapis_log(ctx, LAPIS_LOG_DEBUG, "repo %s from --repofrompath: %s", id, url);
    return 0;
}

int lapis_repos_add_from_paths(lapis_ctx *ctx)
{
    int r = 0;
    for (size_t i = 0; ctx->repofrompath[i] && r >= 0; i++)
        r = add_from_path(ctx, ctx->repofrompath[i]);
    return r;
}

/* ---- public accessors ---------------------------------------------------- */

size_t lapis_repo_count(const lapis_ctx *ctx) { return ctx->nrepos; }
lapis_repo *lapis_repo_at(lapis_ctx *ctx, size_t i) { return i < ctx->nrepos ? ctx->repos[i] : NULL; }
const char *lapis_repo_id(const lapis_repo *r) { return r->id; }
const char *lapis_repo_name(const lapis_repo *r) { return r->name ? r->name : r->id; }
bool lapis_repo_enabled(const lapis_repo *r) { return r->enabled; }
int lapis_repo_priority(const lapis_repo *r) { return r->priority; }
int lapis_repo_npackages(const lapis_repo *r) { return r->npackages; }
long long lapis_repo_timestamp(const lapis_repo *r) { return r->timestamp; }
bool lapis_repo_skipped(const lapis_repo *r) { return r->skipped; }

void lapis_repo_get_settings(const lapis_repo *r, lapis_repo_settings *ret)
{
    *ret = (lapis_repo_settings){
        .cost = r->cost, .metadata_expire = r->opts.metadata_expire,
        .skip_if_unavailable = r->opts.skip_if_unavailable, .gpgcheck = r->opts.gpgcheck,
        .repo_gpgcheck = r->opts.repo_gpgcheck, .config_file = r->source,
        .gpgkeys = r->gpgkeys, .excludepkgs = r->opts.exclude, .includepkgs = r->includepkgs,
    };
}

const char *lapis_repo_baseurl(const lapis_repo *cr)
{
    struct lapis_repo *r = (struct lapis_repo *)cr;
    if (!r->baseurl_text) {
        size_t len = 1;
        for (size_t i = 0; r->baseurls[i]; i++)
            len += strlen(r->baseurls[i]) + 1;
        r->baseurl_text = xcalloc(1, len);
        for (size_t i = 0; r->baseurls[i]; i++) {
            if (i)
                strcat(r->baseurl_text, "\n");
            strcat(r->baseurl_text, r->baseurls[i]);
        }
    }
    return r->baseurl_text;
}

/* Match a repo id against a comma/space separated list of globs. */
bool lapis_repo_matches(const struct lapis_repo *r, const char *glob)
{
    return fnmatch(glob, r->id, 0) == 0;
}

/* Whether an exclude or include filter may hide packages of repo lr. The
 * per-repo exclude starts as a copy of the global one. */
bool lapis_repo_filtered(const lapis_ctx *ctx, const struct lapis_repo *lr)
{
    return (lr->opts.exclude && lr->opts.exclude[0]) || ctx->extra_excludes[0] ||
           lr->includepkgs || (ctx->conf.includepkgs && ctx->conf.includepkgs[0]);
}
