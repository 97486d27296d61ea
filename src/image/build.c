/*
 * `lapis image build`, end to end (IMAGE-DESIGN.md): config, staging dir in
 * OUTDIR, per arch the stages the asked formats need, SHA256SUMS (+ its
 * signature), then the renames into OUTDIR. Everything is written in the
 * staging dir first: a failure, a signal or a kill leaves no partial output
 * (a dead owner's staging dir is swept by the next build). An unchanged
 * rebuild (same config, files, resolved packages, epoch, formats, arches)
 * copies the finished outputs from CACHEDIR/images/KEY instead.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/strv.h"
#include "image/bootdisk.h"
#include "image/build.h"
#include "image/image.h"
#include "lapis/image.h"
#include "shared/digest.h"

#ifndef LAPIS_VERSION
#define LAPIS_VERSION "0.1.0"
#endif

#define STAGE_PREFIX ".lapis-build-"
#define DEFAULT_CACHEDIR "/var/cache/lapis"

void lapis_image_add_output(struct lapis_image_build *b, const char *name)
{
    if (!strv_contains(b->outputs, name))
        strv_push(&b->outputs, xstrdup(name));
}

/* ---- per-run state ------------------------------------------------------ */

struct run {
    const struct lapis_image_opts *opts;
    struct lapis_diag diag;
    struct lapis_image_config *conf;
    struct lapis_image_lock *lock;
    char *outdir, *cachedir, *stagedir;
    char **arches;
    unsigned formats;
    struct lapis_image_build *builds;
    size_t nbuilds;
    long long epoch;
    char **outputs;                 /* union of the builds' outputs, sorted */
    struct lapis_image_result *res;
    bool set_epoch_env;             /* SOURCE_DATE_EPOCH was ours to set */
};

static void build_free(struct lapis_image_build *b)
{
    lapis_image_compose_free(b);
    lapis_diag_clear(&b->diag);
    free(b->basename);
    free(b->rootdir);
    free(b->workdir);
    free(b->kver);
    free(b->initrd);
    free(b->usr_image);
    free(b->usr_verity);
    free(b->uki);
    lapis_strv_free(b->outputs);
    lapis_strv_free(b->report.setuid_removed);
    for (size_t i = 0; i < b->npkgs; i++)
        lapis_image_pkg_clear(&b->pkgs[i]);
    free(b->pkgs);
}

static void run_free(struct run *r)
{
    if (r->set_epoch_env)
        unsetenv("SOURCE_DATE_EPOCH");
    for (size_t i = 0; i < r->nbuilds; i++)
        build_free(&r->builds[i]);
    free(r->builds);
    if (r->stagedir)
        (void)rm_rf(r->stagedir, NULL);
    free(r->stagedir);
    free(r->outdir);
    free(r->cachedir);
    lapis_strv_free(r->arches);
    lapis_strv_free(r->outputs);
    lapis_image_config_free(r->conf);
    lapis_image_lock_free(r->lock);
    lapis_image_result_free(r->res);
    lapis_diag_clear(&r->diag);
}

static char *host_arch(void)
{
    struct utsname u;
    return xstrdup(uname(&u) == 0 ? u.machine : "x86_64");
}

static int parse_formats(struct run *r, const char *list)
{
    _cleanup_strv_ char **v = strv_split(list, ", ");
    unsigned bits = 0;
    for (size_t i = 0; v[i]; i++) {
        int f = lapis_image_format_from_name(v[i]);
        if (f < 0)
            return lapis_err(&r->diag, LAPIS_E_USAGE, "--format: unknown format '%s' (raw, qcow2, "
                             "vhd, vhdx, iso, oci, oci-archive, bundle)", v[i]);
        bits |= (unsigned)f;
    }
    if (!bits)
        return lapis_err(&r->diag, LAPIS_E_USAGE, "--format: no format given");
    r->formats = bits;
    return 0;
}

static int setup_options(struct run *r)
{
    const struct lapis_image_opts *o = r->opts;
    int k;

    if (o->formats && (k = parse_formats(r, o->formats)) < 0)
        return k;
    /* --format replaces output.formats for every stage: the stages read the config. */
    if (o->formats)
        r->conf->formats = r->formats;
    else
        r->formats = r->conf->formats;
    if (o->arch)
        strv_push(&r->arches, xstrdup(o->arch));
    else if (r->conf->arches && r->conf->arches[0])
        r->arches = strv_copy(r->conf->arches);
    else
        strv_push(&r->arches, host_arch());
    r->cachedir = xstrdup(o->cachedir ? o->cachedir : DEFAULT_CACHEDIR);
    if (r->cachedir[0] != '/') {       /* lapis.conf wants an absolute cachedir */
        char cwd[4096];
        if (!getcwd(cwd, sizeof(cwd)))
            return lapis_err(&r->diag, -errno, "cannot get the current directory: %s",
                             strerror(errno));
        char *abs = path_join(cwd, r->cachedir);
        free(r->cachedir);
        r->cachedir = abs;
    }
    return 0;
}

static int load_lock(struct run *r)
{
    _cleanup_free_ char *path = xasprintf("%s.lock", r->conf->path);
    if (!path_exists(path))
        return lapis_err(&r->diag, LAPIS_E_CONFIG, "--locked: %s does not exist (write it with "
                         "`lapis image lock %s`)", path, r->conf->path);
    return lapis_image_lock_read(&r->diag, path, &r->lock);
}

/* OUTDIR exists (made if missing) and we can write in it. */
static int open_outdir(struct run *r)
{
    const char *dir = r->opts->outdir ? r->opts->outdir : ".";
    int k = mkdir_p(dir, 0755);
    struct stat st;

    if (k < 0 && k != -EEXIST)
        return lapis_err(&r->diag, k, "cannot create the output directory %s: %s (choose "
                         "another with -o)", dir, strerror(-k));
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return lapis_err(&r->diag, -ENOTDIR, "the output directory %s is not a directory "
                         "(choose another with -o)", dir);
    r->outdir = path_resolve(dir);
    if (!r->outdir)
        return lapis_err(&r->diag, -errno, "cannot resolve %s: %s", dir, strerror(errno));
    return 0;
}

static int make_stagedir(struct run *r)
{
    _cleanup_free_ char *tmpl = xasprintf("%s/%s%ld-XXXXXX", r->outdir, STAGE_PREFIX,
                                          (long)getpid());
    int swept = sweep_dead_owner_dirs(r->outdir, STAGE_PREFIX, 0);
    if (swept > 0)
        lapis_log(&r->diag, LAPIS_LOG_INFO, "removed %d staging dir%s of interrupted builds in %s",
                  swept, swept == 1 ? "" : "s", r->outdir);
    if (!mkdtemp(tmpl))
        return lapis_err(&r->diag, -errno, "the output directory %s is not writable: %s "
                         "(choose another with -o)", r->outdir, strerror(errno));
    r->stagedir = xstrdup(tmpl);
    return 0;
}

static void build_init(struct run *r, struct lapis_image_build *b, const char *arch)
{
    b->diag.log_fn = r->opts->log_fn;
    b->diag.log_data = r->opts->log_data;
    b->diag.interrupt = r->opts->interrupt;
    b->conf = r->conf;
    b->lock = r->lock;
    b->arch = arch;
    b->basename = xasprintf("%s-%s.%s", r->conf->name, r->conf->version, arch);
    b->stagedir = r->stagedir;
    _cleanup_free_ char *adir = path_join(r->stagedir, arch);
    b->rootdir = path_join(adir, "root");
    b->workdir = path_join(adir, "work");
    b->cachedir = r->cachedir;
}

/* b's error onto the run's diagnostics, prefixed with the arch when there are several. */
static int build_fail(struct run *r, struct lapis_image_build *b, int k)
{
    if (r->nbuilds > 1)
        return lapis_err(&r->diag, k, "%s: %s", b->arch, lapis_diag_error(&b->diag));
    return lapis_err(&r->diag, k, "%s", lapis_diag_error(&b->diag));
}

static int check_interrupt(struct run *r)
{
    if (lapis_interrupted(&r->diag))
        return lapis_err(&r->diag, LAPIS_E_INTERRUPTED, "interrupted: nothing was written to %s",
                         r->outdir);
    return 0;
}

/* SOURCE_DATE_EPOCH from the environment, else the newest buildtime installed. */
static int choose_epoch(struct run *r)
{
    const char *env = getenv("SOURCE_DATE_EPOCH");
    if (env && *env) {
        char *end;
        long long v = strtoll(env, &end, 10);
        if (*end || v < 0)
            return lapis_err(&r->diag, LAPIS_E_USAGE, "SOURCE_DATE_EPOCH=%s is not a number of "
                             "seconds since 1970", env);
        r->epoch = v;
        return 0;
    }
    r->epoch = 0;
    for (size_t i = 0; i < r->nbuilds; i++)
        for (size_t j = 0; j < r->builds[i].npkgs; j++)
            if ((long long)r->builds[i].pkgs[j].buildtime > r->epoch)
                r->epoch = (long long)r->builds[i].pkgs[j].buildtime;
    return 0;
}

/* The epoch goes into the environment too: rpm stamps the rpmdb's install
 * times with it, and mtools, mkfs and dracut read it. run_free takes it out
 * again when the build put it there. */
static void apply_epoch(struct run *r)
{
    char buf[32];
    for (size_t i = 0; i < r->nbuilds; i++)
        r->builds[i].epoch = r->epoch;
    if (!getenv("SOURCE_DATE_EPOCH")) {
        snprintf(buf, sizeof(buf), "%lld", r->epoch);
        setenv("SOURCE_DATE_EPOCH", buf, 1);
        r->set_epoch_env = true;
    }
}

/* ---- stages -------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void record_stage(struct run *r, const char *arch, const char *stage, double secs)
{
    struct lapis_image_result *res = r->res;
    res->stages = xrealloc(res->stages, (res->nstages + 1) * sizeof(*res->stages));
    res->stages[res->nstages++] = (struct lapis_image_stage_time){ xstrdup(arch), xstrdup(stage),
                                                                   secs };
    if (r->opts->stage_fn)
        r->opts->stage_fn(arch, stage, secs, r->opts->stage_data);
}

static int run_stage_with(struct run *r, struct lapis_image_build *b, const char *stage,
                          int (*fn)(struct lapis_image_build *, void *), void *data)
{
    int k;
    if ((k = check_interrupt(r)) < 0)
        return k;
    if (r->opts->stage_fn)
        r->opts->stage_fn(b->arch, stage, -1, r->opts->stage_data);
    double t0 = now_s();
    k = fn(b, data);
    if (k < 0)
        return build_fail(r, b, k);
    record_stage(r, b->arch, stage, now_s() - t0);
    return check_interrupt(r);
}

typedef int (*plain_stage)(struct lapis_image_build *);

static int call_stage(struct lapis_image_build *b, void *data)
{
    return (*(plain_stage *)data)(b);
}

static int run_stage(struct run *r, struct lapis_image_build *b, const char *stage, plain_stage fn)
{
    return run_stage_with(r, b, stage, call_stage, &fn);
}

/* ---- boot and disk at once ------------------------------------------------ */

/* The boot stage (dracut, mostly one core) runs in a thread on a copy of the
 * build with its own diagnostics while the disk stage makes the root file
 * system; the disk stage waits for it before the ESP. */
struct boot_job {
    struct run *r;
    struct lapis_image_build *b, copy;
    pthread_t thread;
    bool joined;
    int result;
    double secs;
};

static void *boot_thread(void *arg)
{
    struct boot_job *j = arg;
    double t0 = now_s();
    j->result = lapis_image_boot_prepare(&j->copy);
    j->secs = now_s() - t0;
    return NULL;
}

/* The boot stage's results (initrd, ...) go back to the build: until the
 * disk stage waits, it has changed nothing but the diagnostics. */
static int boot_join(void *data)
{
    struct boot_job *j = data;
    struct lapis_diag keep = j->b->diag;

    if (j->joined)
        return j->result;
    pthread_join(j->thread, NULL);
    j->joined = true;
    *j->b = j->copy;
    j->b->diag = keep;
    if (j->result < 0)
        lapis_err(&j->b->diag, j->result, "%s", lapis_diag_error(&j->copy.diag));
    else
        record_stage(j->r, j->b->arch, "boot", j->secs);
    lapis_diag_clear(&j->copy.diag);
    return j->result;
}

static int disk_overlapped(struct lapis_image_build *b, void *data)
{
    (void)b;
    return lapis_image_write_disk_overlapped(((struct boot_job *)data)->b, boot_join, data);
}

/* Only when boot leaves the root alone: it runs depmod there if finalize did
 * not, and for an ISO it puts the live dracut module dir in the root. */
static bool can_overlap(struct run *r, struct lapis_image_build *b)
{
    /* The A/B host's disk stage sets the root's /usr aside, which dracut reads. */
    if (!b->kver || (r->formats & LAPIS_IMAGE_ISO) || b->conf->ab)
        return false;
    _cleanup_free_ char *dep = xasprintf("usr/lib/modules/%s/modules.dep", b->kver);
    int fd = lapis_image_open_in_root(b, dep);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}


static int boot_and_disk(struct run *r, struct lapis_image_build *b)
{
    struct boot_job j = { .r = r, .b = b, .copy = *b };
    int k;

    memset(&j.copy.diag, 0, sizeof(j.copy.diag));
    j.copy.diag.log_fn = b->diag.log_fn;
    j.copy.diag.log_data = b->diag.log_data;
    j.copy.diag.interrupt = b->diag.interrupt;
    if ((k = check_interrupt(r)) < 0)
        return k;
    if (r->opts->stage_fn)
        r->opts->stage_fn(b->arch, "boot", -1, r->opts->stage_data);
    if (pthread_create(&j.thread, NULL, boot_thread, &j) != 0) {
        if ((k = run_stage(r, b, "boot", lapis_image_boot_prepare)) < 0)
            return k;
        return run_stage(r, b, "disk", lapis_image_write_disk);
    }
    k = run_stage_with(r, b, "disk", disk_overlapped, &j);
    if (!j.joined) {                    /* the disk stage failed first: its error counts */
        pthread_join(j.thread, NULL);
        free(j.copy.initrd);
        lapis_diag_clear(&j.copy.diag);
    }
    return k;
}

static int build_arch(struct run *r, struct lapis_image_build *b)
{
    unsigned f = r->formats;
    int k;

    bool ab = b->conf->ab && (f & (LAPIS_IMAGE_BOOT_FORMATS | LAPIS_IMAGE_BUNDLE));

    if ((k = run_stage(r, b, "compose", lapis_image_compose)) < 0 ||
        (k = run_stage(r, b, "finalize", lapis_image_finalize)) < 0)
        return k;
    if (ab && (k = run_stage(r, b, "usr", lapis_image_write_usr)) < 0)
        return k;
    if ((f & LAPIS_IMAGE_DISK_FORMATS) && can_overlap(r, b)) {
        if ((k = boot_and_disk(r, b)) < 0)
            return k;
    } else {
        if ((f & (LAPIS_IMAGE_BOOT_FORMATS | LAPIS_IMAGE_BUNDLE)) &&
            (k = run_stage(r, b, "boot", lapis_image_boot_prepare)) < 0)
            return k;
        if ((f & LAPIS_IMAGE_DISK_FORMATS) && (k = run_stage(r, b, "disk", lapis_image_write_disk)) < 0)
            return k;
    }
    if ((f & LAPIS_IMAGE_ISO) && (k = run_stage(r, b, "iso", lapis_image_write_iso)) < 0)
        return k;
    if ((f & LAPIS_IMAGE_BUNDLE) && (k = run_stage(r, b, "bundle", lapis_image_write_bundle)) < 0)
        return k;
    if ((f & (LAPIS_IMAGE_OCI | LAPIS_IMAGE_OCI_ARCHIVE)) &&
        (k = run_stage(r, b, "oci", lapis_image_write_oci)) < 0)
        return k;
    return run_stage(r, b, "sbom", lapis_image_write_sbom);
}

static int resolve_all(struct run *r)
{
    int k;
    r->nbuilds = strv_length(r->arches);
    r->builds = xcalloc(r->nbuilds, sizeof(*r->builds));
    for (size_t i = 0; i < r->nbuilds; i++) {
        struct lapis_image_build *b = &r->builds[i];
        build_init(r, b, r->arches[i]);
        if (r->opts->stage_fn)
            r->opts->stage_fn(b->arch, "resolve", -1, r->opts->stage_data);
        double t0 = now_s();
        if ((k = lapis_image_resolve(b)) < 0)
            return build_fail(r, b, k);
        record_stage(r, b->arch, "resolve", now_s() - t0);
        if ((k = check_interrupt(r)) < 0)
            return k;
    }
    return 0;
}

/* Removing the composed roots (tens of thousands of files: seconds of
 * journal work) overlaps the hashing of the outputs; nothing reads them now. */
static void *remove_roots(void *arg)
{
    struct run *r = arg;
    for (size_t i = 0; i < r->nbuilds; i++)
        (void)rm_rf(r->builds[i].rootdir, NULL);
    return NULL;
}

static int collect_outputs(struct run *r)
{
    for (size_t i = 0; i < r->nbuilds; i++)
        for (size_t j = 0; r->builds[i].outputs && r->builds[i].outputs[j]; j++)
            if (!strv_contains(r->outputs, r->builds[i].outputs[j]))
                strv_push(&r->outputs, xstrdup(r->builds[i].outputs[j]));
    if (!r->outputs)
        return lapis_err(&r->diag, -EINVAL, "the build wrote no output");
    return 0;
}

/* ---- entry points --------------------------------------------------------- */

static int set_error(struct run *r, int k, char **ret_error)
{
    if (ret_error)
        *ret_error = xstrdup(lapis_diag_error(&r->diag));
    return k;
}

static int prepare(struct run *r, const struct lapis_image_opts *o)
{
    int k;
    r->opts = o;
    r->diag.log_fn = o->log_fn;
    r->diag.log_data = o->log_data;
    r->diag.interrupt = o->interrupt;
    if (!o->config)
        return lapis_err(&r->diag, LAPIS_E_USAGE, "no config given");
    if ((k = lapis_image_config_load(&r->diag, o->config, &r->conf)) < 0)
        return k;
    if ((k = setup_options(r)) < 0)
        return k;
    if (o->locked && (k = load_lock(r)) < 0)
        return k;
    return 0;
}

static int build_all(struct run *r)
{
    int k;
    if ((k = open_outdir(r)) < 0 || (k = make_stagedir(r)) < 0 || (k = resolve_all(r)) < 0 ||
        (k = choose_epoch(r)) < 0)
        return k;
    apply_epoch(r);
    r->res->epoch = r->epoch;
    for (size_t i = 0; i < r->nbuilds; i++)
        r->res->npkgs += r->builds[i].npkgs;
    if ((k = lapis_image_cache_key(r->conf, r->builds, r->nbuilds, r->epoch, r->formats,
                                   &r->res->cache_key)) < 0)
        return lapis_err(&r->diag, k, "cannot compute the cache key: %s", strerror(-k));
    if (!r->opts->no_cache &&
        lapis_image_cache_restore(&r->diag, r->cachedir, r->res->cache_key, r->stagedir,
                                  &r->outputs) == 0) {
        r->res->cached = true;
        lapis_log(&r->diag, LAPIS_LOG_INFO, "unchanged inputs: the outputs come from the cache "
                  "(%s/images/%s)", r->cachedir, r->res->cache_key);
        return 0;
    }
    for (size_t i = 0; i < r->nbuilds; i++)
        if ((k = build_arch(r, &r->builds[i])) < 0)
            return k;
    for (size_t i = 0; i < r->nbuilds; i++)
        for (size_t j = 0; r->builds[i].report.setuid_removed &&
                           r->builds[i].report.setuid_removed[j]; j++)
            strv_push(&r->res->setuid_removed, xasprintf("%s %s", r->builds[i].arch,
                                                         r->builds[i].report.setuid_removed[j]));
    pthread_t rm;
    bool removing = pthread_create(&rm, NULL, remove_roots, r) == 0;
    if ((k = collect_outputs(r)) >= 0 &&
        (k = lapis_image_write_sums(&r->diag, r->conf, r->stagedir, &r->outputs)) >= 0 &&
        !r->opts->no_cache)
        lapis_image_cache_store(&r->diag, r->cachedir, r->res->cache_key, r->stagedir, r->outputs);
    if (removing)
        pthread_join(rm, NULL);
    return k < 0 ? k : 0;
}

int lapis_image_build_run(const struct lapis_image_opts *o, struct lapis_image_result **ret,
                          char **ret_error)
{
    struct run r = { 0 };
    int k;

    *ret = NULL;
    r.res = xcalloc(1, sizeof(*r.res));
    /* The caller's umask must not reach the image (directories lapis and rpm
     * create): two builds give the same bytes whatever it is. */
    mode_t old_umask = umask(022);
    if ((k = prepare(&r, o)) < 0 || (k = build_all(&r)) < 0 || (k = check_interrupt(&r)) < 0 ||
        (k = lapis_image_publish(&r.diag, r.stagedir, r.outdir, r.outputs, r.res)) < 0) {
        set_error(&r, k, ret_error);
        run_free(&r);
        umask(old_umask);
        return k;
    }
    umask(old_umask);
    r.res->outdir = xstrdup(r.outdir);
    *ret = r.res;
    r.res = NULL;
    run_free(&r);
    return 0;
}

static int lock_order(const void *a, const void *b)
{
    const struct lapis_image_pkg *x = a, *y = b;
    int c = strcmp(x->arch, y->arch);
    if (!c)
        c = strcmp(x->name, y->name);
    if (!c)
        c = strcmp(x->version, y->version);
    return c ? c : strcmp(x->release, y->release);
}

/* Sorted by (arch, name) as the lock wants; a noarch package two arches share once. */
static size_t lock_sort_unique(struct lapis_image_pkg *p, size_t n)
{
    size_t k = 0;
    if (n)
        qsort(p, n, sizeof(*p), lock_order);
    for (size_t i = 0; i < n; i++)
        if (!k || lock_order(&p[k - 1], &p[i]) != 0 || p[k - 1].epoch != p[i].epoch)
            p[k++] = p[i];
    return k;
}

int lapis_image_lock_run(const struct lapis_image_opts *o, char **ret_path, char **ret_error)
{
    struct run r = { 0 };
    struct lapis_image_lock l = { 0 };
    char hex[65];
    int k;

    *ret_path = NULL;
    r.res = xcalloc(1, sizeof(*r.res));
    if ((k = prepare(&r, o)) < 0)
        return set_error(&r, k, ret_error), run_free(&r), k;
    /* The resolve needs a scratch root: a private temp dir, gone at the end. */
    _cleanup_free_ char *tmpl = xasprintf("%s/lapis-lock-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR")
                                                                                  : "/tmp");
    if (!mkdtemp(tmpl)) {
        k = lapis_err(&r.diag, -errno, "cannot create a temporary dir: %s", strerror(errno));
        return set_error(&r, k, ret_error), run_free(&r), k;
    }
    r.stagedir = xstrdup(tmpl);
    if ((k = resolve_all(&r)) < 0)
        return set_error(&r, k, ret_error), run_free(&r), k;
    for (size_t i = 0; i < sizeof(r.conf->sha256); i++)
        sprintf(hex + 2 * i, "%02x", r.conf->sha256[i]);
    l.config_sha256 = hex;
    for (size_t i = 0; i < r.nbuilds; i++)
        l.npkgs += r.builds[i].npkgs;
    l.pkgs = xcalloc(l.npkgs ? l.npkgs : 1, sizeof(*l.pkgs));
    size_t n = 0;
    for (size_t i = 0; i < r.nbuilds; i++)
        for (size_t j = 0; j < r.builds[i].npkgs; j++)
            l.pkgs[n++] = r.builds[i].pkgs[j];     /* borrowed */
    l.npkgs = lock_sort_unique(l.pkgs, n);
    _cleanup_free_ char *path = xasprintf("%s.lock", r.conf->path);
    k = lapis_image_lock_write(&r.diag, path, &l);
    free(l.pkgs);
    if (k < 0)
        return set_error(&r, k, ret_error), run_free(&r), k;
    *ret_path = xstrdup(path);
    run_free(&r);
    return 0;
}

void lapis_image_result_free(struct lapis_image_result *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->noutputs; i++) {
        free(res->outputs[i].name);
        free(res->outputs[i].sha256);
    }
    free(res->outputs);
    for (size_t i = 0; i < res->nstages; i++) {
        free(res->stages[i].arch);
        free(res->stages[i].stage);
    }
    free(res->stages);
    lapis_strv_free(res->setuid_removed);
    free(res->outdir);
    free(res->cache_key);
    free(res);
}
