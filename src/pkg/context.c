/*
 * The context: command-line settings, then lapis_ctx_setup() which reads the
 * configuration and repo files the way dnf does with --installroot (config
 * and reposdir looked up inside the root first, cachedir inside the root
 * unless given explicitly), then applies --setopt and --enablerepo/
 * --disablerepo in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stddef.h>
#include <string.h>
#include <sys/utsname.h>

#include <rpm/rpmlib.h>
#include <solv/pool.h>

#include "pkg/internal.h"
#include "pkg/trust.h"

bool lapis_repo_matches(const struct lapis_repo *r, const char *glob);
int lapis_repo_opts_set(struct lapis_repo_opts *o, const char *key, const char *value);

_Static_assert(offsetof(struct lapis_ctx, diag) == 0, "lapis_err(ctx, ...) needs diag first");

int lapis_ctx_new(lapis_ctx **ret)
{
    lapis_ctx *ctx = xcalloc(1, sizeof(*ctx));
    lapis_config_defaults(&ctx->conf);
    ctx->setopts_main = xcalloc(1, sizeof(char *));
    ctx->setopts_repo = xcalloc(1, sizeof(char *));
    ctx->repo_toggles = xcalloc(1, sizeof(char *));
    ctx->repofrompath = xcalloc(1, sizeof(char *));
    ctx->pending_rpms = xcalloc(1, sizeof(char *));
    ctx->extra_excludes = xcalloc(1, sizeof(char *));
    ctx->lock_fd = -1;
    ctx->cache_lock_fd = -1;
    for (size_t i = 0; i < ARRAY_SIZE(ctx->cache_held); i++)
        ctx->cache_held[i] = F_UNLCK;
    *ret = ctx;
    return 0;
}

void lapis_ctx_free(lapis_ctx *ctx)
{
    if (!ctx)
        return;
    for (size_t i = 0; i < ctx->nrepos; i++)
        lapis_repo_free(ctx->repos[i]);
    free(ctx->repos);
    lapis_sack_free(ctx);
    lapis_strv_free(ctx->pending_rpms);
    lapis_strv_free(ctx->extra_excludes);
    if (ctx->lock_fd >= 0)
        close(ctx->lock_fd); /* releases the lock */
    if (ctx->cache_lock_fd >= 0)
        close(ctx->cache_lock_fd);
    lapis_config_clear(&ctx->conf);
    lapis_strv_free(ctx->setopts_main);
    lapis_strv_free(ctx->setopts_repo);
    lapis_strv_free(ctx->repo_toggles);
    lapis_strv_free(ctx->repofrompath);
    free(ctx->installroot);
    free(ctx->config_file);
    free(ctx->releasever);
    free(ctx->arch);
    free(ctx->basearch);
    lapis_sigpolicy_memo_free(ctx->sigmemo);
    lapis_diag_clear(&ctx->diag);
    free(ctx->setup_errmsg);
    free(ctx);
}

/* One lock per installroot: ROOT/var/lib/lapis/lock (src/shared/lock.c). */
int lapis_ctx_lock(lapis_ctx *ctx)
{
    _cleanup_free_ char *dir = NULL;
    int r;

    if (ctx->lock_fd >= 0)
        return 0;
    if ((r = lapis_ctx_setup(ctx)) < 0)
        return r;
    dir = path_in_root(ctx->installroot, "/var/lib/lapis");
    return lapis_lock_take(&ctx->diag, dir, lapis_ctx_installroot(ctx), ctx->conf.lock_timeout,
                           &ctx->lock_fd);
}

void lapis_ctx_set_confirm(lapis_ctx *ctx, lapis_confirm_fn fn, void *userdata)
{
    ctx->confirm_fn = fn;
    ctx->confirm_data = userdata;
}

void lapis_ctx_set_progress(lapis_ctx *ctx, lapis_progress_fn fn, void *userdata)
{
    ctx->diag.progress_fn = fn;
    ctx->diag.progress_data = userdata;
}

void lapis_ctx_set_interrupt(lapis_ctx *ctx, const volatile sig_atomic_t *flag)
{
    ctx->diag.interrupt = flag;
}

bool lapis_confirm(lapis_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    _cleanup_free_ char *q = NULL;
    va_start(ap, fmt);
    if (vasprintf(&q, fmt, ap) < 0)
        q = NULL;
    va_end(ap);
    return q && ctx->confirm_fn && ctx->confirm_fn(q, ctx->confirm_data);
}

void lapis_ctx_set_log(lapis_ctx *ctx, lapis_log_fn fn, void *userdata)
{
    ctx->diag.log_fn = fn;
    ctx->diag.log_data = userdata;
}

void lapis_ctx_set_debug(lapis_ctx *ctx, bool wanted)
{
    ctx->diag.no_debug = !wanted;
}

static int set_string(char **field, const char *value)
{
    free(*field);
    *field = xstrdup(value);
    return 0;
}

int lapis_ctx_set_installroot(lapis_ctx *ctx, const char *path)
{
    if (!path || !*path)
        return lapis_err(ctx, LAPIS_E_USAGE, "--installroot needs a directory");
    if (path[0] != '/') {
        char cwd[4096];
        if (!getcwd(cwd, sizeof(cwd)))
            return lapis_err(ctx, -errno, "cannot resolve --installroot: %s", strerror(errno));
        free(ctx->installroot);
        ctx->installroot = path_join(cwd, path);
        return 0;
    }
    return set_string(&ctx->installroot, path);
}

int lapis_ctx_set_config_file(lapis_ctx *ctx, const char *path)
{
    ctx->config_explicit = true;
    return set_string(&ctx->config_file, path);
}

int lapis_ctx_set_releasever(lapis_ctx *ctx, const char *v)
{
    return set_string(&ctx->releasever, v);
}

int lapis_ctx_set_arch(lapis_ctx *ctx, const char *arch)
{
    ctx->arch_forced = arch != NULL;
    return set_string(&ctx->arch, arch);
}

int lapis_ctx_add_excludes(lapis_ctx *ctx, const char *globs)
{
    char **v = strv_split(globs, ", ");
    for (size_t i = 0; v[i]; i++)
        strv_push(&ctx->extra_excludes, xstrdup(v[i]));
    lapis_strv_free(v);
    return 0;
}

static int apply_setopt_repo(lapis_ctx *ctx, const char *assignment);
static int apply_toggle(lapis_ctx *ctx, const char *toggle);

/* After lapis_ctx_setup() (and before lapis_load()) repo settings apply at
 * once, so a caller can react to a failed load (skip or disable the repo).
 * [main] options and anything after a load would be silently ignored: refused. */
static int check_late(lapis_ctx *ctx, const char *what, bool repo_level)
{
    if (ctx->setup_done && ctx->setup_rc < 0)
        return lapis_err(ctx, LAPIS_E_USAGE, "%s: the configuration failed to load: %s", what,
                         ctx->setup_errmsg);
    if (ctx->setup_done && (!repo_level || ctx->loaded))
        return lapis_err(ctx, LAPIS_E_USAGE, "%s comes too late: set [main] options before "
                         "lapis_ctx_setup(), repo options before lapis_load()", what);
    return 0;
}

int lapis_ctx_setopt(lapis_ctx *ctx, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    const char *dot;
    int r;

    if (!eq || eq == assignment)
        return lapis_err(ctx, LAPIS_E_USAGE, "--setopt '%s': expected KEY=VALUE or REPOID.KEY=VALUE",
                         assignment);
    dot = memrchr(assignment, '.', (size_t)(eq - assignment));
    if ((r = check_late(ctx, "--setopt", dot != NULL)) < 0)
        return r;
    if (ctx->setup_done)
        return apply_setopt_repo(ctx, assignment);
    strv_push(dot ? &ctx->setopts_repo : &ctx->setopts_main, xstrdup(assignment));
    return 0;
}

static int add_toggles(lapis_ctx *ctx, char sign, const char *list)
{
    _cleanup_strv_ char **globs = strv_split(list, ", ");
    const char *opt = sign == '+' ? "--enablerepo" : "--disablerepo";
    int r;

    if (!globs[0])
        return lapis_err(ctx, LAPIS_E_USAGE, "%s needs a repo id", opt);
    if ((r = check_late(ctx, opt, true)) < 0)
        return r;
    for (size_t i = 0; globs[i]; i++) {
        _cleanup_free_ char *t = xasprintf("%c%s", sign, globs[i]);
        if (ctx->setup_done && (r = apply_toggle(ctx, t)) < 0)
            return r;
        if (!ctx->setup_done)
            strv_push(&ctx->repo_toggles, TAKE_PTR(t));
    }
    return 0;
}

int lapis_ctx_add_repofrompath(lapis_ctx *ctx, const char *id_path)
{
    int r = check_late(ctx, "--repofrompath", false);
    if (r == 0)
        strv_push(&ctx->repofrompath, xstrdup(id_path));
    return r;
}

int lapis_ctx_enable_repos(lapis_ctx *ctx, const char *list) { return add_toggles(ctx, '+', list); }
int lapis_ctx_disable_repos(lapis_ctx *ctx, const char *list) { return add_toggles(ctx, '-', list); }
void lapis_ctx_set_cacheonly(lapis_ctx *ctx, bool on) { ctx->cacheonly = on; }
void lapis_ctx_set_nogpgcheck(lapis_ctx *ctx, bool on) { ctx->nogpgcheck = on; }

/* rpm's base architecture families for $basearch. */
static const char *basearch_of(const char *arch)
{
    static const char *const map[][2] = {
        { "i386", "i386" }, { "i486", "i386" }, { "i586", "i386" }, { "i686", "i386" },
        { "athlon", "i386" }, { "x86_64", "x86_64" }, { "amd64", "x86_64" },
        { "aarch64", "aarch64" }, { "armv7hl", "armhfp" }, { "ppc64le", "ppc64le" },
        { "s390x", "s390x" }, { "riscv64", "riscv64" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(map); i++)
        if (strcmp(arch, map[i][0]) == 0)
            return map[i][1];
    return arch;
}

/* Without --releasever, take VERSION_ID from the root's (then host's) os-release. */
static void detect_releasever(lapis_ctx *ctx)
{
    _cleanup_free_ char *path = path_in_root(ctx->installroot, "/etc/os-release");
    _cleanup_free_ char *buf = NULL;
    char *line, *save = NULL;

    if (read_file(path, 1 << 16, &buf, NULL) < 0 &&
        read_file("/etc/os-release", 1 << 16, &buf, NULL) < 0)
        return;
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!str_startswith(line, "VERSION_ID="))
            continue;
        char *v = line + 11;
        size_t n = strlen(v);
        if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
            v[n - 1] = '\0';
            v++;
        }
        if (*v)
            ctx->releasever = xstrdup(v);
        return;
    }
}

static int apply_setopts_main(lapis_ctx *ctx)
{
    for (size_t i = 0; ctx->setopts_main[i]; i++) {
        _cleanup_free_ char *key = xstrdup(ctx->setopts_main[i]);
        char *val = strchr(key, '=');
        *val++ = '\0';
        size_t nvars;
        lapis_var *vars = lapis_ctx_vars(ctx, &nvars);
        _cleanup_free_ char *sval = lapis_vars_subst(strstrip(val), vars, nvars);
        free(vars);
        int r = lapis_config_set_main(&ctx->conf, strstrip(key), sval);
        if (r == -ENOENT)
            return lapis_err(ctx, LAPIS_E_USAGE, "--setopt: unknown option '%s'", key);
        if (r < 0)
            return lapis_err(ctx, LAPIS_E_USAGE, "--setopt: invalid value '%s' for '%s'", val, key);
        if (strcmp(key, "reposdir") == 0)
            ctx->reposdir_explicit = true;
        if (strcmp(key, "cachedir") == 0)
            ctx->cachedir_explicit = true;
    }
    return 0;
}

/* "GLOB.KEY=VALUE" onto every matching repo. */
static int apply_setopt_repo(lapis_ctx *ctx, const char *assignment)
{
    _cleanup_free_ char *s = xstrdup(assignment);
    char *eq = strchr(s, '=');
    *eq = '\0';
    char *dot = strrchr(s, '.');
    *dot = '\0';
    const char *glob = s, *key = dot + 1, *val = eq + 1;
    bool matched = false;

    for (size_t k = 0; k < ctx->nrepos; k++) {
        if (!lapis_repo_matches(ctx->repos[k], glob))
            continue;
        matched = true;
        int r = lapis_repo_set(ctx, ctx->repos[k], key, val);
        if (r == -ENOENT)
            return lapis_err(ctx, LAPIS_E_USAGE, "--setopt: unknown repo option '%s'", key);
        if (r < 0)
            return lapis_err(ctx, LAPIS_E_USAGE, "--setopt: invalid value '%s' for '%s.%s'",
                             val, glob, key);
    }
    if (!matched)
        lapis_log(ctx, LAPIS_LOG_WARNING, "--setopt: no repo matches '%s'", glob);
    return 0;
}

static int apply_setopts_repo(lapis_ctx *ctx)
{
    int r;
    for (size_t i = 0; ctx->setopts_repo[i]; i++)
        if ((r = apply_setopt_repo(ctx, ctx->setopts_repo[i])) < 0)
            return r;
    return 0;
}

/* "+GLOB" enables, "-GLOB" disables. */
static int apply_toggle(lapis_ctx *ctx, const char *t)
{
    bool matched = false;
    for (size_t k = 0; k < ctx->nrepos; k++)
        if (lapis_repo_matches(ctx->repos[k], t + 1)) {
            ctx->repos[k]->enabled = t[0] == '+';
            matched = true;
        }
    if (!matched && t[0] == '+' && !strpbrk(t + 1, "*?["))
        return lapis_err(ctx, LAPIS_E_CONFIG,
                         "unknown repo '%s'; 'lapis repolist all' shows the configured ones", t + 1);
    return 0;
}

static int apply_toggles(lapis_ctx *ctx)
{
    int r;
    for (size_t i = 0; ctx->repo_toggles[i]; i++)
        if ((r = apply_toggle(ctx, ctx->repo_toggles[i])) < 0)
            return r;
    return 0;
}

static int ctx_setup_once(lapis_ctx *ctx);

static int load_main_config(lapis_ctx *ctx)
{
    int r;

    if (ctx->config_explicit)
        return lapis_config_load_file(ctx, ctx->config_file, true);
    if (ctx->installroot) {
        _cleanup_free_ char *p = path_in_root(ctx->installroot, "/etc/lapis/lapis.conf");
        r = lapis_config_load_file(ctx, p, false);
        if (r != 0)
            return r;
    }
    return lapis_config_load_file(ctx, "/etc/lapis/lapis.conf", false);
}

/* Setup runs once: later calls (lapis_load, lapis_clean) return its result,
 * including the same error, instead of re-applying settings. */
int lapis_ctx_setup(lapis_ctx *ctx)
{
    int r;

    if (ctx->setup_done)
        return ctx->setup_rc < 0 ? lapis_err(ctx, ctx->setup_rc, "%s", ctx->setup_errmsg)
                                 : 0;
    r = ctx_setup_once(ctx);
    ctx->setup_done = true;
    ctx->setup_rc = r;
    if (r < 0)
        ctx->setup_errmsg = xstrdup(lapis_ctx_error(ctx));
    return r;
}

static int ctx_setup_once(lapis_ctx *ctx)
{
    struct utsname u;
    int r;

    if (!ctx->arch) {
        if (uname(&u) < 0)
            return lapis_err(ctx, -errno, "uname: %s", strerror(errno));
        ctx->arch = xstrdup(u.machine);
    }
    ctx->basearch = xstrdup(basearch_of(ctx->arch));
    if (ctx->installroot) {
        /* Resolved once: symlinks above the root are the user's business, and
         * sqlite's NOFOLLOW and our own checks then see only those inside it. */
        char *real = path_resolve(ctx->installroot);
        free(ctx->installroot);
        ctx->installroot = real;
    }
    if (!ctx->releasever)
        detect_releasever(ctx);

    if ((r = load_main_config(ctx)) < 0)
        return r;
    if ((r = apply_setopts_main(ctx)) < 0)
        return r;
    if (ctx->cacheonly && ctx->conf.cacheonly == 0)
        ctx->conf.cacheonly = 2; /* -C is dnf5's cacheonly=all */
    ctx->cacheonly = ctx->conf.cacheonly > 0;
    if (ctx->installroot && !ctx->cachedir_explicit) {
        char *c = path_in_root(ctx->installroot, ctx->conf.cachedir);
        free(ctx->conf.cachedir);
        ctx->conf.cachedir = c;
    }
    if ((r = lapis_repos_read_dirs(ctx)) < 0 || (r = lapis_repos_add_from_paths(ctx)) < 0)
        return r;
    if ((r = apply_setopts_repo(ctx)) < 0)
        return r;
    if ((r = apply_toggles(ctx)) < 0)
        return r;
    for (size_t i = 0; i < ctx->nrepos; i++) {
        struct lapis_repo *repo = ctx->repos[i];
        repo->cachedir = lapis_cache_repo_dir(ctx, repo);
        if (ctx->nogpgcheck)
            repo->opts.gpgcheck = repo->opts.repo_gpgcheck = 0;
    }
    return 0;
}
