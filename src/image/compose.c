/*
 * The compose stage: the config's packages installed into b->rootdir through
 * the public liblapis API, exactly as `lapis install --installroot` would
 * (signatures enforced, keys imported without asking: the config named the
 * repos), but with no scriptlets (finalize does their work) and nothing of the
 * host's configuration: the repos are written into b->workdir.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "image/image.h"
#include "lapis/lapis.h"

struct lapis_image_compose {
    lapis_ctx *ctx;
    lapis_goal *goal;
};

static void forward_log(enum lapis_log_level lvl, const char *msg, void *data)
{
    struct lapis_image_build *b = data;
    lapis_log(&b->diag, lvl, "%s", msg);
}

static void forward_progress(enum lapis_progress_kind k, const char *name,
                             unsigned long long done, unsigned long long total, void *data)
{
    struct lapis_image_build *b = data;
    lapis_progress(&b->diag, k, name, done, total);
}

/* The config chose the repos and their keys: importing a key is part of the
 * build, not a question for whoever runs it. The log says so. */
static bool accept_key(const char *question, void *data)
{
    struct lapis_image_build *b = data;
    _cleanup_free_ char *q = xstrdup(question);
    for (char *p = q; *p; p++)
        if (*p == '\n')
            *p = ' ';
    lapis_log(&b->diag, LAPIS_LOG_INFO, "accepted without asking (the config names this repo "
              "key): %s", q);
    return true;
}

static void put_list(FILE *f, const char *key, char *const *v)
{
    if (!v || !v[0])
        return;
    fprintf(f, "%s=", key);
    for (size_t i = 0; v[i]; i++)
        fprintf(f, "%s%s", i ? " " : "", v[i]);
    fputc('\n', f);
}

static void put_inline_repo(FILE *f, const struct lapis_image_repo *r)
{
    fprintf(f, "[%s]\nname=%s\nenabled=1\n", r->id, r->id);
    put_list(f, "baseurl", r->baseurls);
    put_list(f, "gpgkey", r->gpgkeys);
    if (r->gpgcheck >= 0)
        fprintf(f, "gpgcheck=%d\n", r->gpgcheck);
    if (r->repo_gpgcheck >= 0)
        fprintf(f, "repo_gpgcheck=%d\n", r->repo_gpgcheck);
    if (r->priority)
        fprintf(f, "priority=%d\n", r->priority);
    fputc('\n', f);
}

static int copy_repo_file(struct lapis_image_build *b, const char *src, const char *dst)
{
    _cleanup_free_ char *buf = NULL;
    size_t len;
    int r = read_file(src, 1 << 20, &buf, &len);
    if (r < 0)
        return lapis_err(&b->diag, LAPIS_E_CONFIG, "%s: repos: cannot read %s: %s", b->conf->path,
                         src, strerror(-r));
    if ((r = write_file_atomic(dst, buf, len)) < 0)
        return lapis_err(&b->diag, r, "cannot write %s: %s", dst, strerror(-r));
    return 0;
}

/* workdir/repos.d: the .repo files named by the config plus one for the inline repos. */
static int write_reposdir(struct lapis_image_build *b, char **ret_dir)
{
    const struct lapis_image_config *c = b->conf;
    char *dir = path_join(b->workdir, "repos.d");
    int r;

    *ret_dir = dir;
    if ((r = mkdir_p(dir, 0755)) < 0)
        return lapis_err(&b->diag, r, "cannot create %s: %s", dir, strerror(-r));
    _cleanup_free_ char *inl = path_join(dir, "image-inline.repo");
    _cleanup_fclose_ FILE *f = fopen(inl, "we");
    if (!f)
        return lapis_err(&b->diag, -errno, "cannot write %s: %s", inl, strerror(errno));
    for (size_t i = 0; i < c->nrepos; i++) {
        if (!c->repos[i].file) {
            put_inline_repo(f, &c->repos[i]);
            continue;
        }
        _cleanup_free_ char *dst = xasprintf("%s/%02zu-%s", dir, i, strrchr(c->repos[i].file, '/')
                                             ? strrchr(c->repos[i].file, '/') + 1 : c->repos[i].file);
        if (!str_endswith(dst, ".repo")) {
            char *d2 = xasprintf("%s.repo", dst);
            free(dst);
            dst = d2;
        }
        if ((r = copy_repo_file(b, c->repos[i].file, dst)) < 0)
            return r;
    }
    return fflush(f) == 0 ? 0 : lapis_err(&b->diag, -EIO, "cannot write %s", inl);
}

static int ctx_fail(struct lapis_image_build *b, lapis_ctx *ctx, int r)
{
    return lapis_err(&b->diag, r, "%s", lapis_ctx_error(ctx));
}

static bool is_host_arch(const char *arch)
{
    struct utsname u;
    return uname(&u) == 0 && strcmp(u.machine, arch) == 0;
}

static int setopt(lapis_ctx *ctx, const char *key, const char *value)
{
    _cleanup_free_ char *s = xasprintf("%s=%s", key, value);
    return lapis_ctx_setopt(ctx, s);
}

/* A lapis_ctx for the root: empty lapis.conf, the config's repos, the user's cache. */
static int make_ctx(struct lapis_image_build *b, lapis_ctx *ctx)
{
    const struct lapis_image_config *c = b->conf;
    _cleanup_free_ char *reposdir = NULL;
    _cleanup_free_ char *conf = path_join(b->workdir, "lapis.conf");
    int r;

    if ((r = write_reposdir(b, &reposdir)) < 0)
        return r;
    if ((r = write_file_atomic(conf, "[main]\n", 7)) < 0)
        return lapis_err(&b->diag, r, "cannot write %s: %s", conf, strerror(-r));
    lapis_ctx_set_log(ctx, forward_log, b);
    lapis_ctx_set_progress(ctx, forward_progress, b);
    lapis_ctx_set_confirm(ctx, accept_key, b);
    lapis_ctx_set_interrupt(ctx, b->diag.interrupt);
    if ((r = lapis_ctx_set_installroot(ctx, b->rootdir)) < 0 ||
        (r = lapis_ctx_set_config_file(ctx, conf)) < 0 ||
        (c->releasever && (r = lapis_ctx_set_releasever(ctx, c->releasever)) < 0) ||
        (!is_host_arch(b->arch) && (r = lapis_ctx_set_arch(ctx, b->arch)) < 0) ||
        (r = setopt(ctx, "reposdir", reposdir)) < 0 ||
        (r = setopt(ctx, "cachedir", b->cachedir)) < 0 ||
        (r = setopt(ctx, "install_weak_deps", c->install_weak_deps ? "1" : "0")) < 0 ||
        (r = setopt(ctx, "tsflags", c->nodocs ? "nodocs,noscripts" : "noscripts")) < 0)
        return ctx_fail(b, ctx, r);
    for (size_t i = 0; c->exclude && c->exclude[i]; i++)
        if ((r = lapis_ctx_add_excludes(ctx, c->exclude[i])) < 0)
            return ctx_fail(b, ctx, r);
    if ((r = lapis_ctx_setup(ctx)) < 0)
        return ctx_fail(b, ctx, r);
    return 0;
}

static void pkg_fill(lapis_ctx *ctx, lapis_pkg p, struct lapis_image_pkg *o)
{
    const char *type = NULL;
    const char *sum = lapis_pkg_checksum(ctx, p, &type);
    o->name = xstrdup(lapis_pkg_name(ctx, p));
    o->epoch = lapis_pkg_epoch(ctx, p);
    o->version = xstrdup(lapis_pkg_version(ctx, p));
    o->release = xstrdup(lapis_pkg_release(ctx, p));
    o->arch = xstrdup(lapis_pkg_arch(ctx, p));
    o->repo = xstrdup(lapis_pkg_repoid(ctx, p));
    o->sha256 = strcmp(type, "sha256") == 0 ? xstrdup(sum) : NULL;
    o->license = xstrdup(lapis_pkg_license(ctx, p));
    o->vendor = *lapis_pkg_vendor(ctx, p) ? xstrdup(lapis_pkg_vendor(ctx, p)) : NULL;
    o->sourcerpm = xstrdup(lapis_pkg_sourcerpm(ctx, p));
    o->url = xstrdup(lapis_pkg_url(ctx, p));
    o->installsize = lapis_pkg_installsize(ctx, p);
    o->buildtime = lapis_pkg_buildtime(ctx, p);
}

static int pkg_cmp(const void *a, const void *b)
{
    const struct lapis_image_pkg *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->arch, y->arch);
}

static void free_pkgs(struct lapis_image_build *b)
{
    for (size_t i = 0; i < b->npkgs; i++)
        lapis_image_pkg_clear(&b->pkgs[i]);
    free(b->pkgs);
    b->pkgs = NULL;
    b->npkgs = 0;
}

/* b->pkgs: what the goal installs (the root starts empty), sorted by name. */
static int fill_pkgs(struct lapis_image_build *b, lapis_ctx *ctx, lapis_goal *goal)
{
    size_t n;
    const lapis_trans_item *it = lapis_goal_items(goal, &n);

    free_pkgs(b);
    b->pkgs = xcalloc(n ? n : 1, sizeof(*b->pkgs));
    for (size_t i = 0; i < n; i++) {
        if (it[i].action != LAPIS_ACT_INSTALL && it[i].action != LAPIS_ACT_INSTALL_DEP &&
            it[i].action != LAPIS_ACT_INSTALL_WEAK)
            continue;
        pkg_fill(ctx, it[i].pkg, &b->pkgs[b->npkgs]);
        if (!b->pkgs[b->npkgs].sha256) {
            b->npkgs++;
            return lapis_err(&b->diag, LAPIS_E_METADATA, "%s: the repo metadata gives no sha256 "
                             "of the package file (the SBOM and lock need one)",
                             lapis_pkg_nevra(ctx, it[i].pkg));
        }
        b->npkgs++;
    }
    qsort(b->pkgs, b->npkgs, sizeof(*b->pkgs), pkg_cmp);
    return 0;
}

static bool lock_pkg_is_ours(const struct lapis_image_build *b, const struct lapis_image_pkg *p)
{
    return strcmp(p->arch, b->arch) == 0 || strcmp(p->arch, "noarch") == 0 ||
           (strcmp(b->arch, "x86_64") == 0 && strcmp(p->arch, "i686") == 0);
}

static char *lock_nevra(const struct lapis_image_pkg *p)
{
    return xasprintf("%s-%u:%s-%s.%s", p->name, p->epoch, p->version, p->release, p->arch);
}

static const struct lapis_image_pkg *find_pkg(const struct lapis_image_build *b,
                                              const struct lapis_image_pkg *want)
{
    for (size_t i = 0; i < b->npkgs; i++) {
        const struct lapis_image_pkg *p = &b->pkgs[i];
        if (strcmp(p->name, want->name) == 0 && strcmp(p->arch, want->arch) == 0 &&
            p->epoch == want->epoch && strcmp(p->version, want->version) == 0 &&
            strcmp(p->release, want->release) == 0)
            return p;
    }
    return NULL;
}

/* --locked: every lock entry installed at its sha256, and nothing else. */
static int check_locked(struct lapis_image_build *b)
{
    size_t want = 0;
    for (size_t i = 0; i < b->lock->npkgs; i++) {
        const struct lapis_image_pkg *l = &b->lock->pkgs[i];
        if (!lock_pkg_is_ours(b, l))
            continue;
        want++;
        const struct lapis_image_pkg *p = find_pkg(b, l);
        _cleanup_free_ char *nevra = lock_nevra(l);
        if (!p)
            return lapis_err(&b->diag, LAPIS_E_NOTFOUND, "--locked: %s from the lock is not "
                             "what the repos give (run `lapis image lock` to update the lock)",
                             nevra);
        if (l->sha256 && strcmp(l->sha256, p->sha256) != 0)
            return lapis_err(&b->diag, LAPIS_E_CHECKSUM, "--locked: %s changed: the lock says "
                             "sha256 %s, the repo %s (the package was rebuilt; run `lapis image "
                             "lock` if that is intended)", nevra, l->sha256, p->sha256);
    }
    if (want != b->npkgs)
        return lapis_err(&b->diag, LAPIS_E_SOLVE, "--locked: the lock's %zu packages for %s need "
                         "%zu more to install (the lock is incomplete; run `lapis image lock`)",
                         want, b->arch, b->npkgs - want);
    return 0;
}

static int goal_requests(struct lapis_image_build *b, lapis_ctx *ctx, lapis_goal *goal)
{
    int r;
    if (b->lock) {
        for (size_t i = 0; i < b->lock->npkgs; i++) {
            if (!lock_pkg_is_ours(b, &b->lock->pkgs[i]))
                continue;
            _cleanup_free_ char *nevra = lock_nevra(&b->lock->pkgs[i]);
            if ((r = lapis_goal_install(goal, nevra)) < 0)
                return lapis_err(&b->diag, r, "--locked: %s from the lock is not in the repos "
                                 "(%s)", nevra, lapis_ctx_error(ctx));
        }
        return 0;
    }
    for (size_t i = 0; b->conf->install && b->conf->install[i]; i++)
        if ((r = lapis_goal_install(goal, b->conf->install[i])) < 0)
            return lapis_err(&b->diag, r, "%s: packages.install: %s", b->conf->path,
                             lapis_ctx_error(ctx));
    return 0;
}

static int solve_failed(struct lapis_image_build *b, lapis_ctx *ctx, lapis_goal *goal, int r)
{
    char *const *probs = lapis_goal_problems(goal);
    /* The context's message is "Failed to resolve the transaction: <the rule that matters>". */
    const char *why = strstr(lapis_ctx_error(ctx), ": ");
    if (r == -LAPIS_E_SOLVE && probs && probs[0] && why)
        return lapis_err(&b->diag, r, "the packages cannot be installed together: %s%s", why + 2,
                         probs[1] ? " (and more problems)" : "");
    return ctx_fail(b, ctx, r);
}

int lapis_image_resolve(struct lapis_image_build *b)
{
    struct lapis_image_compose *s;
    int r;

    lapis_image_compose_free(b);
    if ((r = mkdir_p(b->rootdir, 0755)) < 0 || (r = mkdir_p(b->workdir, 0755)) < 0)
        return lapis_err(&b->diag, r, "cannot create %s: %s", b->stagedir, strerror(-r));
    s = b->compose = xcalloc(1, sizeof(*s));
    if ((r = lapis_ctx_new(&s->ctx)) < 0)
        return LAPIS_OOM(&b->diag);
    if ((r = make_ctx(b, s->ctx)) < 0)
        return r;
    /* Fresh metadata: the resolved set keys build.c's cache, so a repo
     * change must show here (unchanged repos cost a repomd.xml each). */
    if ((r = lapis_load(s->ctx, LAPIS_LOAD_NO_SYSTEM | LAPIS_LOAD_REFRESH)) < 0)
        return ctx_fail(b, s->ctx, r);
    if ((r = lapis_goal_new(s->ctx, &s->goal)) < 0)
        return ctx_fail(b, s->ctx, r);
    if ((r = goal_requests(b, s->ctx, s->goal)) < 0)
        return r;
    if ((r = lapis_goal_resolve(s->goal)) < 0)
        return solve_failed(b, s->ctx, s->goal, r);
    if ((r = fill_pkgs(b, s->ctx, s->goal)) < 0)
        return r;
    return b->lock ? check_locked(b) : 0;
}

/* The newest kernel under rootdir/usr/lib/modules (one with a vmlinuz or modules). */
static void find_kver(struct lapis_image_build *b)
{
    _cleanup_free_ char *dir = path_join(b->rootdir, "usr/lib/modules");
    DIR *d = opendir(dir);
    struct dirent *de;

    free(b->kver);
    b->kver = NULL;
    if (!d)
        return;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (!b->kver || strverscmp(de->d_name, b->kver) > 0) {
            free(b->kver);
            b->kver = xstrdup(de->d_name);
        }
    }
    closedir(d);
}

static void unlink_in_root(struct lapis_image_build *b, const char *rel)
{
    _cleanup_free_ char *p = path_join(b->rootdir, rel);
    (void)unlink(p);
}

/* What lapis itself left in the root: its history and lock (finalize cleans
 * the rest of the root's caches and logs). */
static void remove_own_files(struct lapis_image_build *b)
{
    if (!strv_contains(b->conf->keep, "history")) {
        unlink_in_root(b, "var/lib/lapis/history.sqlite");
        unlink_in_root(b, "var/lib/lapis/history.sqlite-wal");
        unlink_in_root(b, "var/lib/lapis/history.sqlite-shm");
        unlink_in_root(b, "var/lib/lapis/history.sqlite-journal");
    }
    unlink_in_root(b, "var/lib/lapis/lock");
    _cleanup_free_ char *d = path_join(b->rootdir, "var/lib/lapis");
    (void)rmdir(d);
    if (!strv_contains(b->conf->keep, "package-cache")) {
        _cleanup_free_ char *c = path_join(b->rootdir, "var/cache/lapis");
        (void)rm_rf(c, NULL);
    }
}

int lapis_image_compose(struct lapis_image_build *b)
{
    lapis_run_opts o = { .flags = LAPIS_RUN_NOSCRIPTS, .cmdline = "lapis image build",
                         .script_fd = -1 };
    int r;

    if (!b->compose && (r = lapis_image_resolve(b)) < 0)
        return r;
    if (b->conf->nodocs)
        o.flags |= LAPIS_RUN_NODOCS;
    r = lapis_goal_run(b->compose->goal, &o);
    if (r < 0)
        r = ctx_fail(b, b->compose->ctx, r);
    lapis_image_compose_free(b); /* drops the root's lock before its file goes */
    if (r < 0)
        return r;
    remove_own_files(b);
    find_kver(b);
    return 0;
}

void lapis_image_compose_free(struct lapis_image_build *b)
{
    if (!b->compose)
        return;
    lapis_goal_free(b->compose->goal);
    lapis_ctx_free(b->compose->ctx);
    free(b->compose);
    b->compose = NULL;
}
