/*
 * Reading rpm-md files, shared by the loader that parses verified files from
 * the cache (metadata.c) and the one that parses them while they download
 * (mdstream.c): the size-bounded decompressing reader and the scan that
 * records packages whose location leaves the repository. Both sit below the
 * two loaders so neither depends on the other.
 */
#include <errno.h>
#include <stdio.h>

#include "pkg/internal.h"
#include <solv/solv_xfopen.h>

/* A decompressing reader that refuses to produce more than limit bytes:
 * a compression bomb stops at the size repomd.xml promised. */
static ssize_t bounded_read(void *cookie, char *buf, size_t len)
{
    struct lapis_md_bounded *b = cookie;
    size_t n = fread(buf, 1, len, b->inner);
    if (n == 0 && ferror(b->inner)) {
        errno = EIO;
        return -1;
    }
    b->done += (long long)n;
    if (b->done > b->limit) {
        b->exceeded = true;
        errno = EFBIG;
        return -1;
    }
    return (ssize_t)n;
}

static int bounded_close(void *cookie)
{
    struct lapis_md_bounded *b = cookie;
    return fclose(b->inner);
}

FILE *lapis_md_open_bounded(const char *name, int fd, struct lapis_md_bounded *b)
{
    static const cookie_io_functions_t io = { .read = bounded_read, .close = bounded_close };
    FILE *fp;
    b->inner = fd < 0 ? solv_xfopen(name, "r") : solv_xfopen_fd(name, fd, "r");
    if (!b->inner)
        return NULL;
    fp = fopencookie(b, "r", io);
    if (!fp)
        fclose(b->inner);
    return fp;
}

/* Called once when a repo is parsed from XML (not on .solv loads): record the
 * packages whose location leaves the repository in a meta key that is saved
 * with the .solv cache, so the costly location scan is not repeated. */
void lapis_md_mark_unsafe_locations(Repo *repo)
{
    Pool *pool = repo->pool;
    Id key = pool_str2id(pool, UNSAFE_KEY, 1);
    Repodata *data = repo_last_repodata(repo);
    Solvable *s;
    Id p;

    FOR_REPO_SOLVABLES(repo, p, s) {
        const char *loc = solvable_lookup_location(s, NULL);
        if (loc && !lapis_href_is_safe(loc))
            repodata_add_idarray(data, SOLVID_META, key, p - repo->start + 1);
    }
    repodata_internalize(data);
}
