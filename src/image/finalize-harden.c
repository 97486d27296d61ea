/*
 * sysctl and the hardened default profile (os.hardening, on unless turned
 * off): sshd without root login or passwords, kernel pointer/dmesg/BPF
 * restrictions, fs.protected_*, reverse-path filtering, and no setuid or
 * setgid file beyond an allow-list (the removed ones go to the report).
 * The SELinux mode is written when the config selects one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "basic/alloc.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "image/finalize.h"

static bool hardening(const struct lapis_image_build *b)
{
    return !b->conf || b->conf->hardening;
}

/* The config's own sysctl settings, after the distribution's (90-). */
int fin_sysctl(struct lapis_image_build *b)
{
    _cleanup_free_ char *text = xstrdup("# os.sysctl of the image config (written by lapis image)\n");

    if (!b->conf || !b->conf->nsysctl)
        return 0;
    for (size_t i = 0; i < b->conf->nsysctl; i++) {
        char *t = xasprintf("%s%s = %s\n", text, b->conf->sysctl[i].key, b->conf->sysctl[i].value);
        free(text);
        text = t;
    }
    return fin_write_str(b, "/etc/sysctl.d/90-lapis-image.conf", text);
}

static const char sysctl_hardening[] =
    "# The hardened default profile of lapis image (os.hardening: false leaves it out).\n"
    "# Files in /etc/sysctl.d override these.\n"
    "kernel.kptr_restrict = 2\n"
    "kernel.dmesg_restrict = 1\n"
    "kernel.unprivileged_bpf_disabled = 1\n"
    "net.core.bpf_jit_harden = 2\n"
    "fs.protected_hardlinks = 1\n"
    "fs.protected_symlinks = 1\n"
    "fs.protected_fifos = 2\n"
    "fs.protected_regular = 2\n"
    "net.ipv4.conf.all.rp_filter = 1\n"
    "net.ipv4.conf.default.rp_filter = 1\n";

/* Debian's sshd_config includes sshd_config.d first, and sshd keeps
 * the first value it reads, so this wins over the main file. */
static const char sshd_hardening[] =
    "# The hardened default profile of lapis image (os.hardening: false leaves it out).\n"
    "PermitRootLogin no\n"
    "PasswordAuthentication no\n"
    "KbdInteractiveAuthentication no\n";

int fin_harden(struct lapis_image_build *b)
{
    int r;

    if (!hardening(b))
        return 0;
    if ((r = fin_write_str(b, "/usr/lib/sysctl.d/50-lapis-hardening.conf", sysctl_hardening)) < 0)
        return r;
    if (!fin_exists(b, "/usr/sbin/sshd"))
        return 0;
    return fin_write_str(b, "/etc/ssh/sshd_config.d/50-lapis-hardening.conf", sshd_hardening);
}

/* ---- setuid / setgid ----------------------------------------------------- */

/* Kept: what users need to change their own password and identity, to
 * switch users and to mount what fstab allows them; PAM's password checker;
 * dbus activation. Dropped, among others: ssh-keysign (host-based auth only,
 * off by default), chage/expiry (setgid shadow to show aging info). */
static const char *const setuid_default[] = {
    "/usr/bin/passwd", "/usr/bin/su", "/usr/bin/sudo", "/usr/bin/mount", "/usr/bin/umount",
    "/usr/bin/newgrp", "/usr/bin/chsh", "/usr/bin/chfn", "/usr/bin/gpasswd",
    "/usr/sbin/unix_chkpwd", "/usr/lib/dbus-1.0/dbus-daemon-launch-helper", NULL,
};

/* Allow-list entries in their /usr-merged form (the root is merged). */
static bool allowed(char *const *list, const char *abs)
{
    for (char *const *p = list; p && *p; p++) {
        const char *a = *p;
        if (!strcmp(a, abs))
            return true;
        if ((str_startswith(a, "/bin/") || str_startswith(a, "/sbin/") ||
             str_startswith(a, "/lib/")) && str_startswith(abs, "/usr/") && !strcmp(a, abs + 4))
            return true;
    }
    return false;
}

static int setuid_one(struct lapis_image_build *b, int dfd, const char *name, const char *rel,
                      const struct stat *st, void *data)
{
    char *const *list = data;
    _cleanup_free_ char *abs = xasprintf("/%s", rel);

    if (!S_ISREG(st->st_mode) || !(st->st_mode & (S_ISUID | S_ISGID)) || allowed(list, abs))
        return 0;
    if (fchmodat(dfd, name, st->st_mode & 0777 & ~(mode_t)(S_ISUID | S_ISGID), 0) < 0)
        return lapis_err(&b->diag, -errno, "cannot drop the setuid bit of %s: %m", abs);
    strv_push(&b->report.setuid_removed, TAKE_PTR(abs));
    return 0;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

int fin_setuid(struct lapis_image_build *b)
{
    char *const *list = b->conf && b->conf->setuid_allow ? b->conf->setuid_allow
                                                          : (char *const *)setuid_default;
    int r;

    if (!hardening(b))
        return 0;
    if ((r = fin_walk(b, "/", setuid_one, (void *)list)) < 0)
        return r;
    if (b->report.setuid_removed)
        qsort(b->report.setuid_removed, strv_length(b->report.setuid_removed), sizeof(char *),
              cmp_str);
    return 0;
}

/* ---- SELinux ------------------------------------------------------------- */

int fin_selinux(struct lapis_image_build *b)
{
    const char *mode = b->conf ? b->conf->selinux_mode : NULL;

    if (!mode)
        return 0;
    /* Debian's policy package is "default", Fedora's "targeted". */
    const char *type = fin_exists(b, "/etc/selinux/default") ? "default" : "targeted";
    _cleanup_free_ char *text = xasprintf(
        "# Written by lapis image (os.selinux)\nSELINUX=%s\nSELINUXTYPE=%s\n", mode, type);
    return fin_write_str(b, "/etc/selinux/config", text);
}
