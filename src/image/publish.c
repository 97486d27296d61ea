/*
 * The end of a build: SHA256SUMS (sha256sum -c format, sorted), its detached
 * signature, the unchanged-rebuild cache (CACHEDIR/images/KEY) and the
 * renames from the staging dir into OUTDIR. A same-named output in OUTDIR is
 * swapped with the new one atomically (RENAME_EXCHANGE), so it is replaced
 * only once the whole build has succeeded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/strv.h"
#include "image/build.h"
#include "lapis/image.h"
#include "shared/digest.h"

#ifndef LAPIS_VERSION
#define LAPIS_VERSION "0.1.0"
#endif

#define SUMS "SHA256SUMS"

struct lapis_image_finisher;
static const char *fin_digest_of(const struct lapis_image_finisher *f, const char *rel,
                                 const struct stat *st);
static bool fin_copied(const struct lapis_image_finisher *f, const char *name,
                       const struct stat *st);

/* Every regular file at or under base/rel, as paths relative to base. */
static void list_files(const char *base, const char *rel, char ***files)
{
    _cleanup_free_ char *path = path_join(base, rel);
    struct stat st;
    if (lstat(path, &st) < 0)
        return;
    if (S_ISREG(st.st_mode)) {
        strv_push(files, xstrdup(rel));
        return;
    }
    if (!S_ISDIR(st.st_mode))
        return;
    DIR *d = opendir(path);
    struct dirent *de;
    if (!d)
        return;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            _cleanup_free_ char *sub = path_join(rel, de->d_name);
            list_files(base, sub, files);
        }
    closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int sign_sums(struct lapis_diag *d, const struct lapis_image_config *c,
                     const char *stagedir)
{
    _cleanup_free_ char *home = c->signing_gnupghome ? xasprintf("GNUPGHOME=%s",
                                                                 c->signing_gnupghome) : NULL;
    char *env[] = { home, NULL };
    char *argv[] = { "gpg", "--batch", "--yes", "--local-user", c->signing_key, "--armor",
                     "--detach-sign", "--output", SUMS ".asc", SUMS, NULL };
    struct lapis_spawn_opts o = { .env = home ? env : NULL, .cwd = stagedir, .stdin_fd = -1,
                                  .stdout_fd = -1 };
    _cleanup_free_ char *err = NULL;
    int k = lapis_spawn(argv, &o, NULL, &err);
    if (k == -ENOENT)
        return lapis_err(d, k, "output.signing: gpg is not installed (Debian package gnupg)");
    if (k != 0)
        return lapis_err(d, LAPIS_E_SIGNATURE, "output.signing: gpg could not sign %s with key "
                         "%s: %s", SUMS, c->signing_key, *lapis_spawn_last_line(err) ?
                         lapis_spawn_last_line(err) : "it failed");
    return 0;
}

int lapis_image_write_sums(struct lapis_diag *d, const struct lapis_image_config *c,
                           const char *stagedir, char ***outputs,
                           const struct lapis_image_finisher *fin)
{
    _cleanup_strv_ char **files = NULL;
    _cleanup_free_ char *text = xstrdup("");
    char hex[65];
    int k;

    for (size_t i = 0; (*outputs)[i]; i++)
        list_files(stagedir, (*outputs)[i], &files);
    if (files)
        qsort(files, strv_length(files), sizeof(char *), cmp_str);
    for (size_t i = 0; files && files[i]; i++) {
        _cleanup_free_ char *p = path_join(stagedir, files[i]);
        struct stat st;
        const char *done = lstat(p, &st) == 0 ? fin_digest_of(fin, files[i], &st) : NULL;
        if (done)
            memcpy(hex, done, sizeof(hex));
        else if ((k = lapis_chk_file(p, LAPIS_CHK_SHA256, hex, sizeof(hex))) < 0)
            return lapis_err(d, k, "cannot read %s: %s", p, strerror(-k));
        char *t = xasprintf("%s%s  %s\n", text, hex, files[i]);
        free(text);
        text = t;
    }
    _cleanup_free_ char *sums = path_join(stagedir, SUMS);
    if ((k = write_file_atomic(sums, text, strlen(text))) < 0)
        return lapis_err(d, k, "cannot write %s: %s", sums, strerror(-k));
    strv_push(outputs, xstrdup(SUMS));
    if (c->signing_key) {
        if ((k = sign_sums(d, c, stagedir)) < 0)
            return k;
        strv_push(outputs, xstrdup(SUMS ".asc"));
    }
    return 0;
}

/* ---- the unchanged-rebuild cache ----------------------------------------- */

static void hash_str(lapis_hasher *h, const char *tag, const char *s)
{
    lapis_hasher_update(h, tag, strlen(tag));
    lapis_hasher_update(h, " ", 1);
    if (s)
        lapis_hasher_update(h, s, strlen(s));
    lapis_hasher_update(h, "\n", 1);
}

static void hash_file(lapis_hasher *h, const char *path)
{
    char hex[65];
    if (lapis_chk_file(path, LAPIS_CHK_SHA256, hex, sizeof(hex)) < 0)
        snprintf(hex, sizeof(hex), "unreadable");
    hash_str(h, path, hex);
}

int lapis_image_cache_key(const struct lapis_image_config *c, const struct lapis_image_build *b,
                          size_t nb, long long epoch, unsigned formats, char **ret)
{
    lapis_hasher *h = lapis_hasher_new(LAPIS_CHK_SHA256);
    char hex[65], buf[64];
    int k;

    if (!h)
        return -ENOMEM;
    hash_str(h, "lapis-image-cache", "1 " LAPIS_VERSION);
    lapis_hasher_update(h, c->sha256, sizeof(c->sha256));
    for (size_t i = 0; i < c->nrepos; i++)
        if (c->repos[i].file)
            hash_file(h, c->repos[i].file);
    for (size_t i = 0; i < c->nfiles; i++)
        if (c->files[i].source)
            hash_file(h, c->files[i].source);
    for (char **key = c->sysupdate_keys; key && *key; key++)   /* a rotated key, same path */
        hash_file(h, *key);
    if (c->sysupdate_signing_key)
        hash_file(h, c->sysupdate_signing_key);
    snprintf(buf, sizeof(buf), "%lld %u", epoch, formats);
    hash_str(h, "epoch-formats", buf);
    for (size_t i = 0; i < nb; i++) {
        hash_str(h, "arch", b[i].arch);
        for (size_t j = 0; j < b[i].npkgs; j++) {
            const struct lapis_image_pkg *p = &b[i].pkgs[j];
            _cleanup_free_ char *line = xasprintf("%s-%u:%s-%s.%s %s", p->name, p->epoch,
                                                  p->version, p->release, p->arch, p->sha256);
            hash_str(h, "pkg", line);
        }
    }
    k = lapis_hasher_final_hex(h, hex, sizeof(hex));
    lapis_hasher_free(h);
    if (k < 0)
        return k;
    *ret = xstrdup(hex);
    return 0;
}

/* cp -a --reflink=auto: keeps sparse files sparse and shares blocks where it can. */
static int copy_tree(struct lapis_diag *d, const char *src, const char *dst)
{
    char *argv[] = { "cp", "-a", "--reflink=auto", "--", (char *)src, (char *)dst, NULL };
    struct lapis_spawn_opts o = { .stdin_fd = -1, .stdout_fd = -1 };
    _cleanup_free_ char *err = NULL;
    int k = lapis_spawn(argv, &o, NULL, &err);
    if (k != 0)
        return lapis_err(d, k < 0 ? k : -EIO, "cannot copy %s to %s: %s", src, dst,
                         k < 0 ? strerror(-k) : lapis_spawn_last_line(err));
    return 0;
}

/* ---- finishing outputs while the build goes on ------------------------------ */

struct fin_digest {
    char *rel;
    char hex[65];
    struct stat st;                /* of the file as hashed */
};

struct fin_copy {
    char *name;
    struct stat st;                /* of the output as copied */
};

struct lapis_image_finisher {
    char *stagedir, *cache_tmp;    /* cache_tmp NULL: no cache copies */
    pthread_t thread, *removers;
    size_t nremovers;
    bool running, stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char **queue;                  /* names not taken yet, with their sync flags */
    char **seen;                   /* every name ever queued */
    bool *sync;
    size_t nqueue;
    struct fin_digest *dig;        /* the worker's, read only after it stopped */
    size_t ndig;
    struct fin_copy *copies;
    size_t ncopies;
    int sync_err;                  /* first fsync failure, on sync_path */
    char *sync_path;
    char *cache_err;               /* why the cache copy stopped, NULL if it did not */
};

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* sha256 of an open file; st is its state before, and it must not change. */
static int hash_fd(int fd, struct stat *st, char *hex)
{
    struct stat after;
    int r = lapis_chk_fd(fd, LAPIS_CHK_SHA256, hex, 65);
    if (r == 0 && (fstat(fd, &after) < 0 || !same_file(st, &after)))
        r = -EAGAIN;                                /* changed meanwhile: hashed again later */
    return r;
}

static void fin_sync(struct lapis_image_finisher *f, const char *rel)
{
    _cleanup_free_ char *p = path_join(f->stagedir, rel);
    _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if ((fd < 0 || fsync(fd) < 0) && !f->sync_err) {
        f->sync_err = -errno;
        f->sync_path = xstrdup(p);
    }
}

static void fin_hash(struct lapis_image_finisher *f, const char *rel)
{
    _cleanup_free_ char *p = path_join(f->stagedir, rel);
    _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct fin_digest d = { 0 };

    if (fd < 0 || fstat(fd, &d.st) < 0)
        return;
    if (hash_fd(fd, &d.st, d.hex) < 0)
        return;
    d.rel = xstrdup(rel);
    f->dig = xrealloc(f->dig, (f->ndig + 1) * sizeof(*f->dig));
    f->dig[f->ndig++] = d;
}

static void fin_copy(struct lapis_image_finisher *f, const char *name)
{
    _cleanup_free_ char *src = path_join(f->stagedir, name);
    _cleanup_free_ char *dst = path_join(f->cache_tmp, name);
    struct lapis_diag d = { 0 };
    struct fin_copy c = { 0 };

    if (f->cache_err || lstat(src, &c.st) < 0 || !S_ISREG(c.st.st_mode))
        return;                                     /* directories: at the end */
    if (copy_tree(&d, src, dst) < 0) {
        f->cache_err = xstrdup(lapis_diag_error(&d));
        lapis_diag_clear(&d);
        return;
    }
    c.name = xstrdup(name);
    f->copies = xrealloc(f->copies, (f->ncopies + 1) * sizeof(*f->copies));
    f->copies[f->ncopies++] = c;
}

static void fin_one(struct lapis_image_finisher *f, const char *name, bool sync)
{
    _cleanup_strv_ char **files = NULL;
    list_files(f->stagedir, name, &files);
    for (size_t i = 0; files && files[i]; i++)
        fin_hash(f, files[i]);
    if (f->cache_tmp)
        fin_copy(f, name);
    for (size_t i = 0; sync && files && files[i]; i++)   /* last: its writeback runs meanwhile */
        fin_sync(f, files[i]);
}

static void *fin_worker(void *arg)
{
    struct lapis_image_finisher *f = arg;
    pthread_mutex_lock(&f->lock);
    for (;;) {
        while (!f->nqueue && !f->stop)
            pthread_cond_wait(&f->cond, &f->lock);
        if (!f->nqueue)
            break;
        char *name = f->queue[0];
        bool sync = f->sync[0];
        memmove(f->queue, f->queue + 1, f->nqueue * sizeof(*f->queue));  /* and its NULL */
        memmove(f->sync, f->sync + 1, (f->nqueue - 1) * sizeof(*f->sync));
        f->nqueue--;
        pthread_mutex_unlock(&f->lock);
        fin_one(f, name, sync);
        free(name);
        pthread_mutex_lock(&f->lock);
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

static char *cache_tmp_new(const char *cachedir)
{
    _cleanup_free_ char *images = path_join(cachedir, "images");
    char *tmp = xasprintf("%s/.tmp-%ld-XXXXXX", images, (long)getpid());
    if ((mkdir_p(images, 0755) < 0 && errno != EEXIST) ||
        (sweep_dead_owner_dirs(images, ".tmp-", 0), !mkdtemp(tmp))) {
        free(tmp);
        return NULL;
    }
    return tmp;
}

struct lapis_image_finisher *lapis_image_finisher_new(const char *stagedir, const char *cachedir)
{
    struct lapis_image_finisher *f = xcalloc(1, sizeof(*f));
    f->stagedir = xstrdup(stagedir);
    f->cache_tmp = cachedir ? cache_tmp_new(cachedir) : NULL;
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    f->running = pthread_create(&f->thread, NULL, fin_worker, f) == 0;
    return f;
}

void lapis_image_finisher_add(struct lapis_image_finisher *f, const char *name, bool sync)
{
    if (!f || !f->running)
        return;
    pthread_mutex_lock(&f->lock);
    if (!f->stop && !strv_contains(f->seen, name)) {
        strv_push(&f->seen, xstrdup(name));
        f->queue = xrealloc(f->queue, (f->nqueue + 2) * sizeof(*f->queue));
        f->sync = xrealloc(f->sync, (f->nqueue + 1) * sizeof(*f->sync));
        f->sync[f->nqueue] = sync;
        f->queue[f->nqueue++] = xstrdup(name);
        f->queue[f->nqueue] = NULL;
        pthread_cond_signal(&f->cond);
    }
    pthread_mutex_unlock(&f->lock);
}

static void *remove_tree(void *arg)
{
    (void)rm_rf(arg, NULL);
    free(arg);
    return NULL;
}

void lapis_image_finisher_remove(struct lapis_image_finisher *f, const char *dir)
{
    char *p = xstrdup(dir);
    f->removers = xrealloc(f->removers, (f->nremovers + 1) * sizeof(*f->removers));
    if (pthread_create(&f->removers[f->nremovers], NULL, remove_tree, p) == 0)
        f->nremovers++;
    else
        remove_tree(p);
}

int lapis_image_finisher_stop(struct lapis_diag *d, struct lapis_image_finisher *f)
{
    if (!f)
        return 0;
    if (f->running) {
        pthread_mutex_lock(&f->lock);
        f->stop = true;
        pthread_cond_signal(&f->cond);
        pthread_mutex_unlock(&f->lock);
        pthread_join(f->thread, NULL);
        f->running = false;
    }
    if (f->sync_err && d)
        return lapis_err(d, f->sync_err, "cannot write %s: %s", f->sync_path,
                         strerror(-f->sync_err));
    return 0;
}

/* The worker's digest of stagedir/rel if the file is still the one it hashed. */
static const char *fin_digest_of(const struct lapis_image_finisher *f, const char *rel,
                                 const struct stat *st)
{
    for (size_t i = 0; f && !f->running && i < f->ndig; i++)
        if (!strcmp(f->dig[i].rel, rel) && same_file(&f->dig[i].st, st))
            return f->dig[i].hex;
    return NULL;
}

static bool fin_copied(const struct lapis_image_finisher *f, const char *name,
                       const struct stat *st)
{
    for (size_t i = 0; f && !f->running && i < f->ncopies; i++)
        if (!strcmp(f->copies[i].name, name) && same_file(&f->copies[i].st, st))
            return true;
    return false;
}

void lapis_image_finisher_free(struct lapis_image_finisher *f)
{
    if (!f)
        return;
    (void)lapis_image_finisher_stop(NULL, f);
    for (size_t i = 0; i < f->nremovers; i++)
        pthread_join(f->removers[i], NULL);
    if (f->cache_tmp)
        (void)rm_rf(f->cache_tmp, NULL);
    for (size_t i = 0; i < f->ndig; i++)
        free(f->dig[i].rel);
    for (size_t i = 0; i < f->ncopies; i++)
        free(f->copies[i].name);
    lapis_strv_free(f->queue);
    lapis_strv_free(f->seen);
    free(f->sync);
    free(f->dig);
    free(f->copies);
    free(f->removers);
    free(f->sync_path);
    free(f->cache_err);
    free(f->cache_tmp);
    free(f->stagedir);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
    free(f);
}

/* Each "HEX  PATH" line of stagedir/SHA256SUMS matches the file. */
static bool sums_match(const char *stagedir)
{
    _cleanup_free_ char *sums = path_join(stagedir, SUMS);
    _cleanup_free_ char *text = NULL;
    size_t len;
    char hex[65];
    if (read_file(sums, 64 << 20, &text, &len) < 0)
        return false;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strlen(line) < 67)
            return false;
        _cleanup_free_ char *p = path_join(stagedir, line + 66);
        if (lapis_chk_file(p, LAPIS_CHK_SHA256, hex, sizeof(hex)) < 0 ||
            strncmp(hex, line, 64) != 0)
            return false;
    }
    return true;
}

int lapis_image_cache_restore(struct lapis_diag *d, const char *cachedir, const char *key,
                              const char *stagedir, char ***ret_outputs)
{
    _cleanup_free_ char *dir = xasprintf("%s/images/%s", cachedir, key);
    _cleanup_free_ char *list = path_join(dir, "OUTPUTS");
    _cleanup_free_ char *text = NULL;
    _cleanup_strv_ char **names = NULL;
    size_t len;
    int k;

    if (read_file(list, 1 << 20, &text, &len) < 0)
        return -ENOENT;
    names = strv_split(text, "\n");
    for (size_t i = 0; names[i]; i++) {
        _cleanup_free_ char *src = path_join(dir, names[i]);
        _cleanup_free_ char *dst = path_join(stagedir, names[i]);
        if ((k = copy_tree(d, src, dst)) < 0)
            return k;
    }
    if (!sums_match(stagedir)) {
        lapis_log(d, LAPIS_LOG_WARNING, "the cached image %s does not match its SHA256SUMS; "
                  "building it again", dir);
        (void)rm_rf(dir, NULL);
        for (size_t i = 0; names[i]; i++) {
            _cleanup_free_ char *dst = path_join(stagedir, names[i]);
            (void)rm_rf(dst, NULL);
        }
        return -EBADMSG;
    }
    (void)utimensat(AT_FDCWD, dir, NULL, 0);   /* newest again: pruned last */
    lapis_strv_free(*ret_outputs);
    *ret_outputs = names;
    names = NULL;
    return 0;
}

/* What the finisher copied already, and is still the output, stays. */
static int store_into(struct lapis_diag *d, const char *tmp, const char *stagedir,
                      char *const *outputs, const struct lapis_image_finisher *fin)
{
    _cleanup_free_ char *text = xstrdup("");
    struct stat st;
    int k;
    for (size_t i = 0; outputs[i]; i++) {
        _cleanup_free_ char *src = path_join(stagedir, outputs[i]);
        _cleanup_free_ char *dst = path_join(tmp, outputs[i]);
        if (lstat(src, &st) == 0 && fin_copied(fin, outputs[i], &st))
            goto listed;
        (void)rm_rf(dst, NULL);
        if ((k = copy_tree(d, src, dst)) < 0)
            return k;
    listed:;
        char *t = xasprintf("%s%s\n", text, outputs[i]);
        free(text);
        text = t;
    }
    _cleanup_free_ char *list = path_join(tmp, "OUTPUTS");
    return write_file_atomic(list, text, strlen(text));
}

#define CACHE_KEEP 4   /* finished images kept per cachedir: the newest */

struct entry { char *name; time_t mtime; };

static int newest_first(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return x->mtime < y->mtime ? 1 : x->mtime > y->mtime ? -1 : strcmp(x->name, y->name);
}

/* Keep the CACHE_KEEP newest entries of images/: images are big. */
static void cache_prune(const char *images)
{
    DIR *dir = opendir(images);
    struct dirent *de;
    struct entry *e = NULL;
    size_t n = 0;
    struct stat st;

    if (!dir)
        return;
    while ((de = readdir(dir)))
        if (de->d_name[0] != '.' && fstatat(dirfd(dir), de->d_name, &st, 0) == 0 &&
            S_ISDIR(st.st_mode)) {
            e = xrealloc(e, (n + 1) * sizeof(*e));
            e[n++] = (struct entry){ xstrdup(de->d_name), st.st_mtime };
        }
    closedir(dir);
    if (n)
        qsort(e, n, sizeof(*e), newest_first);
    for (size_t i = 0; i < n; i++) {
        if (i >= CACHE_KEEP) {
            _cleanup_free_ char *p = path_join(images, e[i].name);
            (void)rm_rf(p, NULL);
        }
        free(e[i].name);
    }
    free(e);
}

void lapis_image_cache_store(struct lapis_diag *d, const char *cachedir, const char *key,
                             const char *stagedir, char *const *outputs,
                             struct lapis_image_finisher *fin)
{
    _cleanup_free_ char *images = path_join(cachedir, "images");
    _cleanup_free_ char *final = path_join(images, key);
    _cleanup_free_ char *tmp = NULL;
    int k;

    if (fin && fin->cache_tmp && !fin->cache_err) {
        tmp = TAKE_PTR(fin->cache_tmp);             /* ours to rename or remove now */
    } else {
        if (fin && fin->cache_err)
            lapis_log(d, LAPIS_LOG_WARNING, "cannot cache the image in %s: %s", images,
                      fin->cache_err);
        if (fin && fin->cache_tmp)
            return;
        if (!(tmp = cache_tmp_new(cachedir))) {
            lapis_log(d, LAPIS_LOG_WARNING, "cannot cache the image in %s: %s", images,
                      strerror(errno));
            return;
        }
        fin = NULL;
    }
    if ((k = store_into(d, tmp, stagedir, outputs, fin)) < 0) {
        lapis_log(d, LAPIS_LOG_WARNING, "cannot cache the image in %s: %s", images,
                  lapis_diag_error(d));
        (void)rm_rf(tmp, NULL);
        return;
    }
    (void)rm_rf(final, NULL);
    if (rename(tmp, final) < 0)
        (void)rm_rf(tmp, NULL);
    cache_prune(images);
}

/* ---- publishing ------------------------------------------------------------- */

static unsigned long long tree_size(const char *path)
{
    _cleanup_strv_ char **files = NULL;
    unsigned long long total = 0;
    struct stat st;
    list_files(path, ".", &files);
    for (size_t i = 0; files && files[i]; i++) {
        _cleanup_free_ char *p = path_join(path, files[i]);
        if (stat(p, &st) == 0)
            total += (unsigned long long)st.st_size;
    }
    return total;
}

static char *sum_of(const char *sums, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = sums; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strlen(l) > 66 && strncmp(l + 66, name, n) == 0 && (l[66 + n] == '\n' || !l[66 + n]))
            return xstrndup(l, 64);
    return NULL;
}

static void list_result(const char *outdir, char *const *outputs, struct lapis_image_result *res)
{
    _cleanup_free_ char *sp = path_join(outdir, SUMS);
    _cleanup_free_ char *sums = NULL;
    size_t len;
    (void)read_file(sp, 64 << 20, &sums, &len);
    res->noutputs = strv_length(outputs);
    res->outputs = xcalloc(res->noutputs ? res->noutputs : 1, sizeof(*res->outputs));
    for (size_t i = 0; i < res->noutputs; i++) {
        _cleanup_free_ char *p = path_join(outdir, outputs[i]);
        struct stat st;
        res->outputs[i].name = xstrdup(outputs[i]);
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            res->outputs[i].size = tree_size(p);
        else
            res->outputs[i].size = stat(p, &st) == 0 ? (unsigned long long)st.st_size : 0;
        res->outputs[i].sha256 = sum_of(sums, outputs[i]);
        char hex[65];
        if (!res->outputs[i].sha256 && S_ISREG(st.st_mode) &&
            lapis_chk_file(p, LAPIS_CHK_SHA256, hex, sizeof(hex)) == 0)
            res->outputs[i].sha256 = xstrdup(hex);   /* SHA256SUMS itself, its .asc */
    }
}

int lapis_image_publish(struct lapis_diag *d, const char *stagedir, const char *outdir,
                        char *const *outputs, struct lapis_image_result *res)
{
    for (size_t i = 0; outputs && outputs[i]; i++) {
        _cleanup_free_ char *src = path_join(stagedir, outputs[i]);
        _cleanup_free_ char *dst = path_join(outdir, outputs[i]);
        int k = renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_EXCHANGE);
        if (k == 0)
            (void)rm_rf(src, NULL);     /* the old output, swapped into the staging dir */
        else if (errno != ENOENT || rename(src, dst) < 0)
            return lapis_err(d, -errno, "cannot move %s into %s: %s", outputs[i], outdir,
                             strerror(errno));
    }
    list_result(outdir, outputs, res);
    return 0;
}
