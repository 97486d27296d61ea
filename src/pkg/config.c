/*
 * lapis.conf: the [main] options, their defaults (dnf's, except where a
 * careful security engineer wants otherwise) and their parsers. Options a
 * .repo section may override live in struct lapis_repo_opts and share one
 * table, so "gpgcheck" means the same thing in both places.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "lapis/term.h"
#include "pkg/internal.h"

enum opt_type { OPT_BOOL, OPT_INT, OPT_SECONDS, OPT_STR, OPT_PATH, OPT_PATH_OR_EMPTY, OPT_PATH_LIST,
                OPT_LIST, OPT_LIST_APPEND, OPT_SIGPOLICY, OPT_CACHEONLY, OPT_COLOR };

struct opt_def {
    const char *name;
    enum opt_type type;
    size_t offset;
    long long min, max;
};

#define RO(field) offsetof(struct lapis_repo_opts, field)
static const struct opt_def repo_opt_table[] = {
    { "gpgcheck",            OPT_BOOL,    RO(gpgcheck),            0, 1 },
    { "repo_gpgcheck",       OPT_BOOL,    RO(repo_gpgcheck),       0, 1 },
    { "skip_if_unavailable", OPT_BOOL,    RO(skip_if_unavailable), 0, 1 },
    { "sslverify",           OPT_BOOL,    RO(sslverify),           0, 1 },
    { "metadata_expire",     OPT_SECONDS, RO(metadata_expire),     -1, LLONG_MAX },
    { "sslcacert",           OPT_PATH_OR_EMPTY, RO(sslcacert),     0, 0 },
    { "exclude",             OPT_LIST,    RO(exclude),             0, 0 },
    { "excludepkgs",         OPT_LIST,    RO(exclude),             0, 0 },
    { "timeout",             OPT_SECONDS, RO(net.timeout),         1, 86400 },
    { "retries",             OPT_INT,     RO(net.retries),         0, 1000 },
    { "signature_policy",    OPT_SIGPOLICY, RO(signature_policy),  0, 0 },
    { "pinned_key_reset",    OPT_BOOL,    RO(pinned_key_reset),    0, 1 },
};
#undef RO

#define MO(field) offsetof(struct lapis_config, field)
static const struct opt_def main_opt_table[] = {
    { "reposdir",                     OPT_PATH_LIST,   MO(reposdir),                     0, 0 },
    { "cachedir",                     OPT_PATH,        MO(cachedir),                     0, 0 },
    { "max_parallel_downloads",       OPT_INT,         MO(max_parallel_downloads),       1, 64 },
    { "installonlypkgs",              OPT_LIST_APPEND, MO(installonlypkgs),              0, 0 },
    { "installonly_limit",            OPT_INT,         MO(installonly_limit),            0, 1000 },
    { "install_weak_deps",            OPT_BOOL,        MO(install_weak_deps),            0, 1 },
    { "keepcache",                    OPT_BOOL,        MO(keepcache),                    0, 1 },
    { "best",                         OPT_BOOL,        MO(best),                         0, 1 },
    { "skip_unavailable",             OPT_BOOL,        MO(skip_unavailable),             0, 1 },
    { "obsoletes",                    OPT_BOOL,        MO(obsoletes),                    0, 1 },
    { "protected_packages",           OPT_LIST,        MO(protected_packages),           0, 0 },
    { "includepkgs",                  OPT_LIST,        MO(includepkgs),                  0, 0 },
    { "destdir",                      OPT_STR,         MO(destdir),                      0, 0 },
    { "cacheonly",                    OPT_CACHEONLY,   MO(cacheonly),                    0, 0 },
    { "recent",                       OPT_INT,         MO(recent),                       0, 36500 },
    { "clean_requirements_on_remove", OPT_BOOL,        MO(clean_requirements_on_remove), 0, 1 },
    { "lock_timeout",                 OPT_SECONDS,     MO(lock_timeout),                 0, 86400 },
    { "tsflags",                      OPT_LIST,        MO(tsflags),                      0, 0 },
    { "localpkg_gpgcheck",            OPT_BOOL,        MO(localpkg_gpgcheck),            0, 1 },
    { "color",                        OPT_COLOR,       MO(color),                        0, 0 },
};
#undef MO

static int apply_opt(const struct opt_def *d, void *base, const char *value)
{
    char *field = (char *)base + d->offset;
    long long v;
    int b, r;

    switch (d->type) {
    case OPT_BOOL:
        if ((r = lapis_parse_bool(value, &b)) < 0)
            return r;
        *(int *)field = b;
        return 0;
    case OPT_INT:
        if ((r = lapis_parse_int(value, d->min, d->max, &v)) < 0)
            return r;
        *(int *)field = (int)v;
        return 0;
    case OPT_SECONDS:
        if ((r = lapis_parse_seconds(value, &v)) < 0 || v < d->min || v > d->max)
            return -EINVAL;
        *(long long *)field = v;
        return 0;
    case OPT_STR:
        free(*(char **)field);
        *(char **)field = *value ? xstrdup(value) : NULL;
        return 0;
    case OPT_PATH_OR_EMPTY:
        if (!*value) { /* unset: back to the default */
            free(*(char **)field);
            *(char **)field = NULL;
            return 0;
        }
        /* fall through */
    case OPT_PATH:
        /* Paths must be absolute, as dnf demands; an empty value is not a path. */
        if (value[0] != '/')
            return -EINVAL;
        free(*(char **)field);
        *(char **)field = xstrdup(value);
        return 0;
    case OPT_PATH_LIST: {
        char **paths = strv_split(value, " \t\n,");
        for (size_t i = 0; paths[i]; i++)
            if (paths[i][0] != '/') {
                lapis_strv_free(paths);
                return -EINVAL;
            }
        lapis_strv_free(*(char ***)field);
        *(char ***)field = paths;
        return 0;
    }
    case OPT_LIST:
        lapis_strv_free(*(char ***)field);
        *(char ***)field = strv_split(value, " \t\n,");
        return 0;
    case OPT_SIGPOLICY:
        if (strcmp(value, "default") == 0)
            *(int *)field = LAPIS_SIGPOLICY_DEFAULT;
        else if (strcmp(value, "legacy") == 0)
            *(int *)field = LAPIS_SIGPOLICY_LEGACY;
        else
            return -EINVAL;
        return 0;
    case OPT_CACHEONLY: { /* dnf5: none | metadata | all */
        static const char *const names[] = { "none", "metadata", "all" };
        for (int i = 0; i < 3; i++)
            if (strcmp(value, names[i]) == 0) {
                *(int *)field = i;
                return 0;
            }
        return -EINVAL;
    }
    case OPT_COLOR: { /* dnf 4's color=: the front end decides what it colours */
        enum lapis_color mode;
        if (lapis_color_parse(value, &mode) < 0)
            return -EINVAL;
        *(int *)field = (int)mode;
        return 0;
    }
    case OPT_LIST_APPEND: {
        char **add = strv_split(value, " \t\n,");
        for (size_t i = 0; add[i]; i++)
            if (!strv_contains(*(char ***)field, add[i]))
                strv_push((char ***)field, xstrdup(add[i]));
        lapis_strv_free(add);
        return 0;
    }
    }
    return -EINVAL;
}

static const struct opt_def *find_opt(const struct opt_def *table, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].name, key) == 0)
            return &table[i];
    return NULL;
}

/* Apply a repo-overridable option; -ENOENT when key is not one. */
int lapis_repo_opts_set(struct lapis_repo_opts *o, const char *key, const char *value)
{
    const struct opt_def *d = find_opt(repo_opt_table, ARRAY_SIZE(repo_opt_table), key);
    return d ? apply_opt(d, o, value) : -ENOENT;
}

int lapis_config_set_main(struct lapis_config *conf, const char *key, const char *value)
{
    const struct opt_def *d = find_opt(main_opt_table, ARRAY_SIZE(main_opt_table), key);
    if (d)
        return apply_opt(d, conf, value);
    return lapis_repo_opts_set(&conf->repo, key, value);
}

void lapis_repo_opts_copy(struct lapis_repo_opts *dst, const struct lapis_repo_opts *src)
{
    *dst = *src;
    dst->sslcacert = xstrdup(src->sslcacert);
    dst->exclude = strv_copy(src->exclude);
}

void lapis_repo_opts_clear(struct lapis_repo_opts *o)
{
    free(o->sslcacert);
    lapis_strv_free(o->exclude);
    o->sslcacert = NULL;
    o->exclude = NULL;
}

int lapis_config_defaults(struct lapis_config *c)
{
    *c = (struct lapis_config){
        .repo = {
            .gpgcheck = 1,
            .repo_gpgcheck = 0,
            .skip_if_unavailable = 0,
            .sslverify = 1,
            .metadata_expire = 48 * 3600,
            .exclude = strv_split("", ","),
            .net = { .timeout = 30, .retries = 10 },
        },
        .reposdir = strv_split("/etc/yum.repos.d,/etc/lapis/repos.d", ","),
        .cachedir = xstrdup("/var/cache/lapis"),
        .max_parallel_downloads = 8,
        .installonlypkgs = strv_split("kernel,kernel-core,installonlypkg(kernel),"
                                      "installonlypkg(kernel-module)", ","),
        .installonly_limit = 3,
        .install_weak_deps = 1,
        .keepcache = 0,
        .best = 1,
        .obsoletes = 1,
        .recent = 7,
        .protected_packages = strv_split("lapis", ","),
        .clean_requirements_on_remove = 1,
        .lock_timeout = 60,
        .tsflags = strv_split("", ","),
        .localpkg_gpgcheck = 0,
    };
    return 0;
}

void lapis_config_clear(struct lapis_config *c)
{
    lapis_repo_opts_clear(&c->repo);
    lapis_strv_free(c->reposdir);
    free(c->cachedir);
    lapis_strv_free(c->installonlypkgs);
    lapis_strv_free(c->protected_packages);
    lapis_strv_free(c->includepkgs);
    free(c->destdir);
    lapis_strv_free(c->tsflags);
    memset(c, 0, sizeof(*c));
}

struct conf_parse {
    lapis_ctx *ctx;
    const char *path;
    int r;
};

static int conf_cb(const char *section, const char *key, const char *value, int lineno, void *ud)
{
    struct conf_parse *cp = ud;
    int r;

    if (strcmp(section, "main") != 0) {
        lapis_log(cp->ctx, LAPIS_LOG_WARNING, "%s:%d: ignoring key '%s' outside [main]",
                  cp->path, lineno, key);
        return 0;
    }
    size_t nvars;
    lapis_var *vars = lapis_ctx_vars(cp->ctx, &nvars);
    _cleanup_free_ char *val = lapis_vars_subst(value, vars, nvars);
    free(vars);
    r = lapis_config_set_main(&cp->ctx->conf, key, val);
    if (r == -ENOENT) {
        lapis_log(cp->ctx, LAPIS_LOG_WARNING, "%s:%d: unknown option '%s' ignored",
                  cp->path, lineno, key);
        return 0;
    }
    if (r < 0)
        return lapis_err(cp->ctx, LAPIS_E_CONFIG, "%s:%d: invalid value '%s' for '%s'; fix the line",
                         cp->path, lineno, val, key);
    return 0;
}

int lapis_config_load_file(lapis_ctx *ctx, const char *path, bool must_exist)
{
    _cleanup_free_ char *buf = NULL;
    size_t len;
    int errline = 0, r;
    struct conf_parse cp = { ctx, path, 0 };

    r = read_file(path, 1 << 20, &buf, &len);
    if (r == -ENOENT && !must_exist) {
        lapis_log(ctx, LAPIS_LOG_DEBUG, "config file %s: absent, using defaults", path);
        return 0;
    }
    if (r >= 0)
        lapis_log(ctx, LAPIS_LOG_DEBUG, "reading config file %s", path);
    if (r < 0)
        return lapis_err(ctx, LAPIS_E_CONFIG, "cannot read config file %s: %s", path, strerror(-r));
    r = lapis_ini_parse(buf, len, conf_cb, &cp, &errline);
    if (r == -EINVAL)
        return lapis_err(ctx, LAPIS_E_CONFIG,
                         "%s:%d: garbled line; expected [section], KEY=VALUE or a comment",
                         path, errline);
    return r < 0 ? r : 1;
}

/* ---- the context's accessors, for everything below setup ---------------- */

const char *lapis_ctx_error(const lapis_ctx *ctx)
{
    return lapis_diag_error(ctx ? &ctx->diag : NULL);
}

const char *lapis_ctx_installroot(const lapis_ctx *ctx)
{
    return ctx->installroot ? ctx->installroot : "/";
}

const char *lapis_ctx_cachedir(const lapis_ctx *ctx)
{
    return ctx->conf.cachedir;
}

const char *lapis_ctx_destdir(const lapis_ctx *ctx)
{
    return ctx->conf.destdir;
}

bool lapis_ctx_skip_unavailable(const lapis_ctx *ctx)
{
    return ctx->conf.skip_unavailable;
}

int lapis_ctx_recent_days(const lapis_ctx *ctx)
{
    return ctx->conf.recent;
}

int lapis_ctx_color(const lapis_ctx *ctx)
{
    return ctx->conf.color;
}

lapis_var *lapis_ctx_vars(lapis_ctx *ctx, size_t *ret_n)
{
    lapis_var *v = xcalloc(3, sizeof(*v));
    size_t n = 0;
    if (ctx->releasever)
        v[n++] = (lapis_var){ "releasever", ctx->releasever };
    v[n++] = (lapis_var){ "basearch", ctx->basearch };
    v[n++] = (lapis_var){ "arch", ctx->arch };
    *ret_n = n;
    return v;
}
