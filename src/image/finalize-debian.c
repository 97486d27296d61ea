/*
 * What Debian's maintainer scripts did that a server needs (the test
 * distribution drops them; tests/fixtures/testdist/README.md): the sshd
 * config ucf installs, the sshd user openssh-server's postinst adds, host
 * keys made on first boot instead of at install, the alternatives links
 * (awk -> mawk), the CA bundle update-ca-certificates writes, and the
 * services deb-systemd-helper enables. Each applies only when the package's
 * files are in the root and the result is not there already.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "image/finalize.h"

/* Links update-alternatives makes in the postinsts of the Essential and
 * required packages: link, target (relative to the link's directory). */
static const char *const alternatives[][2] = {
    { "/usr/bin/awk", "mawk" },
    { "/usr/bin/nawk", "mawk" },
    { "/usr/bin/which", "which.debianutils" },
    { "/usr/bin/pager", "less" },
    { "/usr/bin/editor", "nano" },
    { "/usr/bin/vi", "vim.tiny" },
};

static int alternative_links(struct lapis_image_build *b)
{
    for (size_t i = 0; i < ARRAY_SIZE(alternatives); i++) {
        const char *link = alternatives[i][0];
        _cleanup_free_ char *target = xasprintf("/usr/bin/%s", alternatives[i][1]);
        if (fin_exists(b, link) || !fin_exists(b, target))
            continue;
        int r = fin_symlink(b, link, alternatives[i][1]);
        if (r < 0)
            return r;
    }
    return 0;
}

static int copy_if_absent(struct lapis_image_build *b, const char *dst, const char *src, mode_t mode)
{
    _cleanup_free_ char *buf = NULL;
    size_t len;

    if (fin_exists(b, dst) || fin_read(b, src, &buf, &len) < 0)
        return 0;
    return fin_write(b, dst, buf, len, mode, 0, 0);
}

static const char keygen_unit[] =
    "# Written by lapis image: host keys are made on first boot, never baked\n"
    "# into the image (every machine gets its own).\n"
    "[Unit]\n"
    "Description=Generate the SSH host keys that are missing\n"
    "Before=ssh.service ssh.socket\n"
    "\n"
    "[Service]\n"
    "Type=oneshot\n"
    "ExecStart=/usr/bin/ssh-keygen -A\n"
    "RemainAfterExit=yes\n";

static const char keygen_dropin[] =
    "[Unit]\n"
    "Wants=lapis-ssh-keygen.service\n"
    "After=lapis-ssh-keygen.service\n";

/* ssh.service runs `sshd -t` first, which fails without host keys; Debian
 * made them in the postinst. Keys found in the root are removed. */
static int sshd_first_boot(struct lapis_image_build *b)
{
    static const char *const units[] = { "ssh.service", "ssh@.service" };
    int r = fin_write_str(b, "/usr/lib/systemd/system/lapis-ssh-keygen.service", keygen_unit);

    for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(units); i++) {
        _cleanup_free_ char *p = xasprintf("/usr/lib/systemd/system/%s.d/50-lapis-keygen.conf",
                                           units[i]);
        r = fin_write_str(b, p, keygen_dropin);
    }
    _cleanup_close_ int dfd = open_dir_in_root(b->rootdir, "/etc/ssh", false);
    DIR *d = dfd >= 0 ? fdopendir(TAKE_FD(dfd)) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (str_startswith(de->d_name, "ssh_host_"))
            unlinkat(dirfd(d), de->d_name, 0);
    if (d)
        closedir(d);
    return r;
}

/* Debian's openssh-server postinst: `adduser --system --home /run/sshd sshd`.
 * Written as a sysusers.d file, so systemd-sysusers allocates it with the
 * others (and a booted system would too). */
static int sshd_user(struct lapis_image_build *b)
{
    return fin_write_str(b, "/usr/lib/sysusers.d/lapis-openssh-server.conf",
                         "# openssh-server's postinst user (written by lapis image)\n"
                         "u sshd - \"sshd privilege separation\" /run/sshd /usr/sbin/nologin\n");
}

/* deb-systemd-helper enabled ssh.service on install; systemd's presets would
 * also enable ssh.socket (which conflicts with it). */
static int sshd_preset(struct lapis_image_build *b)
{
    return fin_write_str(b, "/usr/lib/systemd/system-preset/80-lapis-openssh-server.preset",
                         "enable ssh.service\n"
                         "disable ssh.socket\n");
}

static int sshd(struct lapis_image_build *b)
{
    int r;

    if (!fin_exists(b, "/usr/sbin/sshd"))
        return 0;
    if ((r = copy_if_absent(b, "/etc/ssh/sshd_config", "/usr/share/openssh/sshd_config", 0644)) < 0)
        return r;
    if ((r = sshd_user(b)) < 0 || (r = sshd_preset(b)) < 0)
        return r;
    return sshd_first_boot(b);
}

/* ---- CA bundle ----------------------------------------------------------- */

static int collect_crt(struct lapis_image_build *b, int dfd, const char *name, const char *rel,
                       const struct stat *st, void *data)
{
    (void)b, (void)dfd;
    if (S_ISREG(st->st_mode) && str_endswith(name, ".crt"))
        strv_push(data, xstrdup(rel));
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
    *buf = xrealloc(*buf, *len + n + 2);
    memcpy(*buf + *len, data, n);
    *len += n;
    if (n && data[n - 1] != '\n')
        (*buf)[(*len)++] = '\n';
    (*buf)[*len] = '\0';
}

/* update-ca-certificates (no --root) concatenates the certificates that
 * /etc/ca-certificates.conf selects; the postinst selects all of them. Sorted
 * by path, so the bundle is the same bytes every build. */
static int ca_bundle(struct lapis_image_build *b)
{
    _cleanup_strv_ char **crts = NULL;
    _cleanup_free_ char *out = NULL;
    size_t len = 0;
    int r;

    if (!fin_exists(b, "/usr/share/ca-certificates") ||
        fin_exists(b, "/etc/ssl/certs/ca-certificates.crt"))
        return 0;
    if ((r = fin_walk(b, "/usr/share/ca-certificates", collect_crt, &crts)) < 0)
        return r;
    if (!crts)
        return 0;
    qsort(crts, strv_length(crts), sizeof(char *), cmp_str);
    for (char **c = crts; *c; c++) {
        _cleanup_free_ char *path = xasprintf("/%s", *c), *pem = NULL;
        size_t n;
        if (fin_read(b, path, &pem, &n) >= 0)
            append(&out, &len, pem, n);
    }
    return fin_write(b, "/etc/ssl/certs/ca-certificates.crt", out ? out : "", len, 0644, 0, 0);
}

int fin_debian(struct lapis_image_build *b)
{
    int r;

    if ((r = alternative_links(b)) < 0 || (r = sshd(b)) < 0)
        return r;
    return ca_bundle(b);
}
