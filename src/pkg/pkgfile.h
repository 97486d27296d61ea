/* Package files of a transaction: where each incoming package is, how it is checked. */
#ifndef LAPIS_PKGFILE_H
#define LAPIS_PKGFILE_H

#include <rpm/header.h>

#include "pkg/internal.h"

struct lapis_pkgfile {
    Id pkg;
    char *path;               /* cache (or downloaddir) path, or the local file */
    char *href;               /* location in the repo */
    struct lapis_repo *repo;  /* NULL for local files */
    bool local;               /* named on the command line */
    bool downloaded;          /* fetched by this run (not reused from the cache) */
    bool in_memory;           /* a file:// repo's package checked into memfd (path: /proc/self/fd/N) */
    int memfd;
    long long size;
    enum lapis_chk chk;
    char *chk_hex;
    Header hdr;               /* read once at signature check, reused by the transaction */
};

/* in_memory: packages of file:// repos are read into sealed memfds, not the cache. */
int lapis_download_packages(struct lapis_goal *g, const char *downloaddir, bool in_memory,
                            struct lapis_pkgfile **ret, size_t *ret_n);
void lapis_pkgfiles_free(struct lapis_pkgfile *f, size_t n);

#endif
