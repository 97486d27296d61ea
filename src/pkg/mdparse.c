/*
 * The rpm-md XML parser seam: primary.xml and filelists.xml (decompressed,
 * already bounded by the caller) go into a libsolv repo here and nowhere
 * else, so that how they are parsed (serially today) can change without the
 * fetch, verification and cache code knowing.
 */
#include "pkg/internal.h"
#include <solv/repo_rpmmd.h>

int lapis_mdparse_rpmmd(Repo *repo, FILE *xml, int flags)
{
    return repo_add_rpmmd(repo, xml, NULL, flags);
}
