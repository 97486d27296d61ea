/*
 * libarchive looked up at run time (see archive_dl.h): once per process,
 * under pthread_once; the pointers are only read afterwards.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "basic/macro.h"
#include "image/archive_dl.h"

#define ARCHIVE_SONAME "libarchive.so.13"

#define DEFINE_SYM(name) __typeof__(name) *sym_##name;
LAPIS_ARCHIVE_SYMS(DEFINE_SYM)
#undef DEFINE_SYM

static pthread_once_t archive_once = PTHREAD_ONCE_INIT;
static char archive_error[256]; /* why loading failed; empty when loaded */

static void archive_load_once(void)
{
#define SYM_ENTRY(name) { #name, (void **)&sym_##name },
    static const struct { const char *name; void **slot; } syms[] = {
        LAPIS_ARCHIVE_SYMS(SYM_ENTRY)
    };
#undef SYM_ENTRY
    void *h = dlopen(ARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);

    if (!h) {
        snprintf(archive_error, sizeof(archive_error), "%s", dlerror());
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(syms); i++)
        if (!(*syms[i].slot = dlsym(h, syms[i].name))) {
            snprintf(archive_error, sizeof(archive_error), "%s has no %s", ARCHIVE_SONAME,
                     syms[i].name);
            return; /* h stays open: a failed load is not retried */
        }
}

int lapis_archive_load(struct lapis_diag *d)
{
    pthread_once(&archive_once, archive_load_once);
    if (archive_error[0])
        return lapis_err(d, -ELIBACC, "cannot write a tar archive: cannot load %s (%s); "
                         "install libarchive", ARCHIVE_SONAME, archive_error);
    return 0;
}
