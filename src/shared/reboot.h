/* The reboot-required sentinel (reboot.c). */
#ifndef LAPIS_SHARED_REBOOT_H
#define LAPIS_SHARED_REBOOT_H

#include "shared/diag.h"

/* Write ROOT/var/run/reboot-required (+ .pkgs, one name per line, written first so
 * a watcher that sees the sentinel can read why); root is "/" for the host. */
int lapis_reboot_required_write(struct lapis_diag *ctx, const char *root, char *const *pkgs);
/* The same in ROOT/DIR: the host updater writes /run itself, the tmpfs, so
 * a root whose /var/run is a plain directory keeps no sentinel past the
 * reboot it asks for. */
int lapis_reboot_required_write_in(struct lapis_diag *ctx, const char *root, const char *dir,
                                   char *const *pkgs);

#endif
