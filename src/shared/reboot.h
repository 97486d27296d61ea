/* The reboot-required sentinel (reboot.c). */
#ifndef LAPIS_SHARED_REBOOT_H
#define LAPIS_SHARED_REBOOT_H

#include "shared/diag.h"

/* Write ROOT/var/run/reboot-required (+ .pkgs, one name per line, written first so
 * a watcher that sees the sentinel can read why); root is "/" for the host. */
int lapis_reboot_required_write(struct lapis_diag *ctx, const char *root, char *const *pkgs);

#endif
