/*
 * The reboot-required sentinel: ROOT/var/run/reboot-required and, first,
 * reboot-required.pkgs (one package name per line), the files Debian's
 * update-notifier and Kubernetes' kured watch. Shared by the package manager
 * (lapis automatic) and the on-host updater.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/fs.h"
#include "basic/macro.h"
#include "shared/reboot.h"

int lapis_reboot_required_write(struct lapis_diag *ctx, const char *root, char *const *pkgs)
{
    return lapis_reboot_required_write_in(ctx, root, "/var/run", pkgs);
}

int lapis_reboot_required_write_in(struct lapis_diag *ctx, const char *root, const char *dir,
                                   char *const *pkgs)
{
    static const char banner[] = "*** System restart required ***\n";
    _cleanup_close_ int dfd = open_dir_in_root(root, dir, true);
    _cleanup_free_ char *list = NULL;
    size_t len = 0;
    FILE *f;
    int r;

    if (dfd < 0)
        return lapis_err(ctx, dfd, "cannot open %s%s for the reboot-required sentinel: %s",
                         strcmp(root, "/") ? root : "", dir, strerror(-dfd));
    if (!(f = open_memstream(&list, &len)))
        return LAPIS_OOM(ctx);
    for (size_t i = 0; pkgs && pkgs[i]; i++)
        fprintf(f, "%s\n", pkgs[i]);
    fclose(f);
    /* The .pkgs list first: a watcher that sees the sentinel can read why. */
    if ((r = write_file_at(dfd, "reboot-required.pkgs", list, len, 0644)) < 0 ||
        (r = write_file_at(dfd, "reboot-required", banner, sizeof(banner) - 1, 0644)) < 0)
        return lapis_err(ctx, r, "cannot write the reboot-required sentinel: %s", strerror(-r));
    return 0;
}
