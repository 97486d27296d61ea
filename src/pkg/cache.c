/*
 * The metadata cache. Layout per repo (like dnf's):
 *   <cachedir>/<id>-<urlhash>/repodata/   repomd.xml(.asc), primary/updateinfo/
 *                                         filelists files, lapis-*.solv caches
 *   <cachedir>/<id>-<urlhash>/packages/   downloaded packages
 * The url hash makes a changed baseurl start from a clean cache. repodata/
 * is replaced as a whole by an atomic directory exchange, so a reader never
 * sees a mix of old and new files and a failed refresh leaves the old cache.
 *
 * .solv files end with a 64-byte cookie (hex digest of the repomd.xml they
 * were made from and the cache format); a mismatch means "rebuild".
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pkg/internal.h"
#include <solv/chksum.h>
#include <solv/repo_solv.h>
#include <solv/repo_write.h>


#define COOKIE_LEN 64
#define SOLV_IOBUF (128 << 10)
#define SOLV_FORMAT "lapis-solv-1+bt"

/* The cache's directory names and cookies are sha256 digests worked out on
 * every run, warm ones too. libsolv's sha256 needs no setup, where OpenSSL's
 * first digest loads its configuration and providers (5M instructions): same
 * digests as lapis_chk_buf() and lapis_chk_file(), which the cache used. */
static void sha256_hex(Chksum *c, char ret[65])
{
    int n = 0;
    const unsigned char *d = solv_chksum_get(c, &n);
    hex_encode(d, (size_t)n, false, ret);
    solv_chksum_free(c, NULL);
}

static void sha256_buf(const void *buf, size_t len, char ret[65])
{
    Chksum *c = solv_chksum_create(REPOKEY_TYPE_SHA256);
    solv_chksum_add(c, buf, (int)len);
    sha256_hex(c, ret);
}

static int sha256_file(const char *path, char ret[65])
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    char buf[65536];
    ssize_t n;

    if (fd < 0)
        return -errno;
    Chksum *c = solv_chksum_create(REPOKEY_TYPE_SHA256);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        solv_chksum_add(c, buf, (int)n);
    if (n < 0) {
        int r = -errno;
        solv_chksum_free(c, NULL);
        return r;
    }
    sha256_hex(c, ret);
    return 0;
}

int lapis_cache_solv_cookie(lapis_ctx *ctx, const char *repomd_path, const char *kind,
                            char ret[65])
{
    char h[65];
    int r = sha256_file(repomd_path, h);
    /* Without the digest every repo would share one cookie and take any stale .solv. */
    if (r < 0)
        return lapis_err(ctx, r, "cannot read %s: %s; 'lapis makecache --refresh' fetches "
                         "it again", repomd_path, strerror(-r));
    _cleanup_free_ char *s = xasprintf("%s:%s:%s", SOLV_FORMAT, h, kind);
    sha256_buf(s, strlen(s), ret);
    return 0;
}

char *lapis_cache_repo_dir(lapis_ctx *ctx, const struct lapis_repo *r)
{
    char hex[65];
    const char *urls = lapis_repo_baseurl(r);
    sha256_buf(urls, strlen(urls), hex);
    hex[16] = '\0';
    return xasprintf("%s/%s-%s", ctx->conf.cachedir, r->id, hex);
}

bool lapis_cache_expired(const char *repomd_path, long long max_age)
{
    struct stat st;
    if (stat(repomd_path, &st) < 0)
        return true;
    if (max_age < 0)
        return false;
    return time(NULL) - st.st_mtime >= max_age;
}

/* Attributes only shown to people (info, search, --location): kept in a
 * second .solv that is loaded on first use, so solving never pays for them. */
static bool is_detail_key(Id k)
{
    switch (k) {
    case SOLVABLE_SUMMARY: case SOLVABLE_DESCRIPTION: case SOLVABLE_URL: case SOLVABLE_LICENSE:
    case SOLVABLE_PACKAGER: case SOLVABLE_GROUP: case SOLVABLE_BUILDHOST: case SOLVABLE_AUTHORS:
    case SOLVABLE_HEADEREND: case SOLVABLE_MEDIADIR: case SOLVABLE_MEDIAFILE: case SOLVABLE_MEDIANR:
    case SOLVABLE_SOURCENAME: case SOLVABLE_SOURCEEVR: case SOLVABLE_SOURCEARCH:
        return true; /* not BUILDTIME: solvable_identical() needs it to spot reinstalls */
    default:
        return false;
    }
}

static int keyfilter_main(Repo *repo, Repokey *key, void *kfdata)
{
    if (is_detail_key(key->name))
        return KEY_STORAGE_DROPPED;
    return repo_write_stdkeyfilter(repo, key, kfdata);
}

static int keyfilter_details(Repo *repo, Repokey *key, void *kfdata)
{
    if (is_detail_key(key->name))
        return KEY_STORAGE_INCORE;
    if (key->name == SOLVABLE_NAME || key->name == SOLVABLE_EVR || key->name == SOLVABLE_ARCH)
        return KEY_STORAGE_SOLVABLE;
    return KEY_STORAGE_DROPPED;
}

int lapis_cache_solv_write(lapis_ctx *ctx, Repo *repo, Repodata *data, const char *path,
                           const char *cookie)
{
    return lapis_cache_solv_write_part(ctx, repo, data, LAPIS_SOLV_ALL, path, cookie);
}

int lapis_cache_solv_write_file(Repo *repo, Repodata *data, enum lapis_solv_part part,
                                const char *path, const char *cookie)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd, r = 0;
    FILE *fp;

    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 || !(fp = fdopen(fd, "w"))) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (data)
        r = repodata_write(data, fp);
    else if (part == LAPIS_SOLV_MAIN)
        r = repo_write_filtered(repo, fp, keyfilter_main, NULL, NULL);
    else if (part == LAPIS_SOLV_DETAILS)
        r = repo_write_filtered(repo, fp, keyfilter_details, NULL, NULL);
    else
        r = repo_write(repo, fp);
    if (r == 0 && fwrite(cookie, 1, COOKIE_LEN, fp) != COOKIE_LEN)
        r = -1;
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        r = -1;
    if (fclose(fp) != 0)
        r = -1;
    if (r == 0 && rename(tmp, path) == 0)
        return 0;
    unlink(tmp);
    return -1;
}

/* Both writers only read the repo when its ids are the pool's: a repodata
 * with a local string pool would have a writer add to it. The one lazy
 * structure they share, a dirpool's traversal index, is built first. */
static bool split_write_is_read_only(Repo *repo)
{
    Repodata *data;
    int i;
    FOR_REPODATAS(repo, i, data) {
        if (data->localpool || data->state != REPODATA_AVAILABLE)
            return false;
        if (data->dirpool.ndirs && !data->dirpool.dirtraverse)
            dirpool_make_dirtraverse(&data->dirpool);
    }
    return true;
}

struct details_writer {
    Repo *repo;
    const char *path, *cookie;
    int r;
};

static void *details_writer_main(void *arg)
{
    struct details_writer *w = arg;
    w->r = lapis_cache_solv_write_file(w->repo, NULL, LAPIS_SOLV_DETAILS, w->path, w->cookie);
    return NULL;
}

int lapis_cache_solv_write_split(Repo *repo, const char *main_path, const char *main_cookie,
                                 const char *details_path, const char *details_cookie)
{
    struct details_writer w = { .repo = repo, .path = details_path, .cookie = details_cookie };
    pthread_t t;
    bool threaded = split_write_is_read_only(repo) &&
                    lapis_md_start_thread(&t, details_writer_main, &w) == 0;
    int r;

    if (!threaded)
        details_writer_main(&w);
    r = lapis_cache_solv_write_file(repo, NULL, LAPIS_SOLV_MAIN, main_path, main_cookie);
    if (threaded)
        pthread_join(t, NULL);
    if (r == 0 && w.r == 0)
        return 0;
    unlink(main_path); /* a main cache on disk implies its details cache */
    unlink(details_path);
    return -1;
}

int lapis_cache_solv_write_part(lapis_ctx *ctx, Repo *repo, Repodata *data,
                                enum lapis_solv_part part, const char *path, const char *cookie)
{
    /* a cache we cannot write is only slower, not an error */
    if (lapis_cache_solv_write_file(repo, data, part, path, cookie) < 0)
        lapis_log(ctx, LAPIS_LOG_DEBUG, "could not write solv cache %s", path);
    return 0;
}

/* Returns 1 if loaded, 0 if absent or stale (caller rebuilds), <0 on error. */
int lapis_cache_solv_read(lapis_ctx *ctx, Repo *repo, const char *path, const char *cookie,
                          int flags)
{
    /* Declared before fp, so freed after its fclose(). */
    _cleanup_free_ char *iobuf = NULL;
    _cleanup_fclose_ FILE *fp = NULL;
    char buf[COOKIE_LEN];
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return 0;
    fp = fdopen(fd, "r");
    if (!fp) {
        close(fd);
        return 0;
    }
    /* libsolv reads through stdio in small pieces: 840 read()s of 4 KiB for
     * a 63k-package repo, ~55 with this buffer (glibc ignores the size of a
     * buffer it is to allocate itself, hence ours). */
    iobuf = xmalloc(SOLV_IOBUF);
    setvbuf(fp, iobuf, _IOFBF, SOLV_IOBUF);
    if (fseek(fp, -COOKIE_LEN, SEEK_END) != 0 || fread(buf, 1, COOKIE_LEN, fp) != COOKIE_LEN ||
        memcmp(buf, cookie, COOKIE_LEN) != 0)
        return 0;
    rewind(fp);
    if (repo_add_solv(repo, fp, flags) != 0) {
        if (!(flags & REPO_EXTEND_SOLVABLES))
            repo_empty(repo, 1); /* drop a half-read cache before the rebuild */
        lapis_log(ctx, LAPIS_LOG_DEBUG, "ignoring unreadable solv cache %s: %s", path,
                  lapis_sack_errstr(repo->pool, "bad format"));
        return 0;
    }
    return 1;
}
