/*
 * The A/B container host (docs/sysupdate.md). Before the boot stage the
 * composed root's /usr becomes slot a: the factory /etc is copied into
 * /usr/share/factory/etc with a tmpfiles line per entry (so /usr alone
 * defines a version), the update agent's trusted keys and server go to
 * /usr/lib/lapis-sysupdate, the root-grow files go into /usr (the writable
 * root only keeps an empty /usr mount point); then /usr becomes an erofs
 * (real owners, epoch times, fixed UUID) and its dm-verity tree is made the
 * way `lapis-sysupdate bundle` makes it (salt and uuid from the image's
 * sha256), so the image's slot a and the version's bundle share one root
 * hash. The bundle output spawns that tool, built next to lapis: src/image
 * does not link the agent's code.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "image/bootdisk.h"
#include "image/finalize.h"
#include "shared/digest.h"

#define FACTORY "usr/share/factory/etc"

/* ---- factory /etc ---------------------------------------------------------- */

/* tmpfiles expands '%' and splits on blanks; such names (never seen in
 * packages) are left to the copy in the image's own /etc. */
static bool tmpfiles_safe(const char *name)
{
    return !strpbrk(name, " \t\n\\%\"'");
}

/* One line per entry, in name order (the file is part of the verified /usr,
 * so it must not depend on readdir order): "d" keeps a directory's mode and
 * owner, "C" copies a missing file or symlink from the factory tree. */
static int etc_lines(struct lapis_image_build *b, FILE *out, const char *dir, const char *rel)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort), r = 0;

    if (n < 0)
        return lapis_err(&b->diag, -errno, "cannot read %s: %s", dir, strerror(errno));
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        _cleanup_free_ char *path = path_join(dir, name);
        _cleanup_free_ char *sub = xasprintf("%s/%s", rel, name);
        struct stat st;
        if (r == 0 && strcmp(name, ".") && strcmp(name, "..") && tmpfiles_safe(name) &&
            lstat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                fprintf(out, "d %s %04o %u %u -\n", sub, (unsigned)(st.st_mode & 07777),
                        (unsigned)st.st_uid, (unsigned)st.st_gid);
                r = etc_lines(b, out, path, sub);
            } else {
                fprintf(out, "C %s - - - - -\n", sub);
            }
        }
        free(ents[i]);
    }
    free(ents);
    return r;
}

static int factory_etc(struct lapis_image_build *b)
{
    _cleanup_free_ char *src = path_join(b->rootdir, "etc");
    _cleanup_free_ char *parent = path_join(b->rootdir, "usr/share/factory");
    _cleanup_free_ char *dst = path_join(b->rootdir, FACTORY);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    /* -P: never follow a symlink, not even /etc itself (a package's /etc -> /). */
    char *cp[] = { "cp", "-a", "-P", "--reflink=auto", "-T", src, dst, NULL };
    FILE *out;
    int r;

    struct stat st;

    (void)rm_rf(dst, NULL);
    if ((r = fin_mkdir(b, "usr/share/factory", 0755, 0, 0)) < 0 ||
        (r = lapis_image_tool(b, "coreutils", cp, NULL, NULL)) < 0)
        return r;
    if (lstat(dst, &st) < 0 || !S_ISDIR(st.st_mode) || lstat(parent, &st) < 0 || !S_ISDIR(st.st_mode))
        return lapis_err(&b->diag, -EINVAL, "/etc of the image is not a directory: an A/B host "
                         "needs a real /etc to ship as factory defaults");
    out = open_memstream(&text, &len);
    fprintf(out, "# Written by lapis image (docs/sysupdate.md): /etc starts from the factory\n"
                 "# defaults in /usr/share/factory/etc; a file missing from /etc is copied back.\n");
    r = etc_lines(b, out, dst, "/etc");
    fclose(out);
    if (r < 0)
        return r;
    return fin_write(b, "usr/lib/tmpfiles.d/lapis-etc.conf", text, len, 0644, 0, 0);
}

/* ---- the agent's configuration -------------------------------------------- */

static int agent_keys(struct lapis_image_build *b)
{
    const struct lapis_image_config *c = b->conf;
    int r = 0;

    for (char **k = c->sysupdate_keys; r >= 0 && k && *k; k++) {
        _cleanup_free_ char *data = NULL;
        const char *base = strrchr(*k, '/') ? strrchr(*k, '/') + 1 : *k;
        _cleanup_free_ char *dst = xasprintf("usr/lib/lapis-sysupdate/keys.d/%s", base);
        size_t len = 0;
        if ((r = read_file(*k, 1 << 20, &data, &len)) < 0)
            return lapis_err(&b->diag, r, "sysupdate.publicKeys: cannot read %s: %s", *k, strerror(-r));
        if (!strstr(data, "-----BEGIN PUBLIC KEY-----"))
            return lapis_err(&b->diag, -EINVAL, "sysupdate.publicKeys: %s is not a PEM public key "
                             "(make one with openssl pkey -pubout)", *k);
        r = fin_write(b, dst, data, len, 0644, 0, 0);
    }
    if (r >= 0 && (c->sysupdate_url || c->sysupdate_tries)) {
        _cleanup_free_ char *url = c->sysupdate_url ? xasprintf("url=%s\n", c->sysupdate_url) : xstrdup("");
        _cleanup_free_ char *tries = c->sysupdate_tries ? xasprintf("tries=%d\n", c->sysupdate_tries)
                                                        : xstrdup("");
        _cleanup_free_ char *conf = xasprintf("[sysupdate]\n%s%s", url, tries);
        r = fin_write_str(b, "usr/lib/lapis-sysupdate/sysupdate.conf", conf);
    }
    return r;
}

/* ---- /usr as erofs + dm-verity --------------------------------------------- */

/* veritysetup needs whole 4096-byte blocks; mkfs.erofs writes them, but pad anyway. */
static int pad_4k(struct lapis_image_build *b, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return lapis_err(&b->diag, -errno, "mkfs.erofs wrote no %s", path);
    if (st.st_size % 4096 && truncate(path, (st.st_size + 4095) / 4096 * 4096) < 0)
        return lapis_err(&b->diag, -errno, "cannot pad %s: %s", path, strerror(errno));
    return 0;
}

static int make_usr_erofs(struct lapis_image_build *b)
{
    unsigned char raw[16];
    char uuid[37];
    _cleanup_free_ char *t = xasprintf("-T%lld", b->epoch), *u = NULL;
    _cleanup_free_ char *src = path_join(b->rootdir, "usr");
    int r;

    lapis_image_uuid(b, "fs:usr", raw, uuid);
    u = xasprintf("-U%s", uuid);
    free(b->usr_image);
    b->usr_image = path_join(b->workdir, "usr.erofs");
    /* Real owners (no --all-root): /usr holds files of system users. */
    char *argv[] = { "mkfs.erofs", "--quiet", t, u, "-zlz4hc", b->usr_image, src, NULL };
    if ((r = lapis_image_tool(b, "erofs-utils", argv, NULL, NULL)) < 0)
        return r;
    return pad_4k(b, b->usr_image);
}

/* The same veritysetup call as `lapis-sysupdate bundle` (src/sysupdate/bundle.c):
 * salt = sha256 of the image, uuid = its first 128 bits. */
static int make_usr_verity(struct lapis_image_build *b)
{
    char salt[65];
    _cleanup_free_ char *out = NULL, *s = NULL, *u = NULL;
    const char *p;
    int r = lapis_chk_file(b->usr_image, LAPIS_CHK_SHA256, salt, sizeof(salt));

    if (r < 0)
        return lapis_err(&b->diag, r, "cannot read %s: %s", b->usr_image, strerror(-r));
    s = xasprintf("--salt=%s", salt);
    u = xasprintf("--uuid=%.8s-%.4s-%.4s-%.4s-%.12s", salt, salt + 8, salt + 12, salt + 16, salt + 20);
    free(b->usr_verity);
    b->usr_verity = path_join(b->workdir, "usr.verity");
    unlink(b->usr_verity);
    char *argv[] = { "veritysetup", "format", "--hash=sha256", "--format=1", "--data-block-size=4096",
                     "--hash-block-size=4096", s, u, b->usr_image, b->usr_verity, NULL };
    if ((r = lapis_image_tool_out(b, "cryptsetup-bin", argv, &out)) < 0)
        return r;
    if (!(p = strstr(out, "Root hash:")) || sscanf(p, "Root hash: %64[0-9a-f]", b->usrhash) != 1 ||
        strlen(b->usrhash) != 64)
        return lapis_err(&b->diag, -EIO, "veritysetup format printed no root hash");
    return 0;
}

/* gpt-auto mounts the ESP at an empty /efi (systemd-bless-boot renames the
 * UKI there). It lives in the root partition, whose mtimes mkfs.ext4 copies:
 * the epoch, like every other one finalize clamped. */
static int efi_dir(struct lapis_image_build *b)
{
    _cleanup_free_ char *efi = path_join(b->rootdir, "efi");
    struct timespec ts[2] = { { b->epoch, 0 }, { b->epoch, 0 } };
    int r = fin_mkdir(b, "efi", 0755, 0, 0);

    if (r < 0)
        return r;
    if (utimensat(AT_FDCWD, efi, ts, AT_SYMLINK_NOFOLLOW) < 0 ||
        utimensat(AT_FDCWD, b->rootdir, ts, 0) < 0)
        return lapis_err(&b->diag, -errno, "cannot set the time of %s: %s", efi, strerror(errno));
    return 0;
}

/* /var/run -> ../run, as base-files makes it: the converted Debian packages
 * leave a directory there, and on the A/B host /var is the persistent root,
 * so /var/run/reboot-required (the agent's, kured's) would outlive the reboot
 * it asks for. */
static int epoch_time(struct lapis_image_build *b, const char *path)
{
    struct timespec ts[2] = { { b->epoch, 0 }, { b->epoch, 0 } };
    if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return lapis_err(&b->diag, -errno, "cannot set the time of %s: %s", path, strerror(errno));
    return 0;
}

static int var_run(struct lapis_image_build *b)
{
    _cleanup_free_ char *path = path_join(b->rootdir, "var/run");
    _cleanup_free_ char *var = path_join(b->rootdir, "var");
    struct stat st;
    int r;

    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        return 0;
    (void)rm_rf(path, NULL);
    if ((r = fin_symlink(b, "/var/run", "../run")) < 0)
        return r;
    /* After finalize's clamp: the link and /var get the epoch here, or the root
     * partition (mkfs.ext4 copies mtimes) would carry the build's clock. */
    if ((r = epoch_time(b, path)) < 0)
        return r;
    return epoch_time(b, var);
}

int lapis_image_write_usr(struct lapis_image_build *b)
{
    mode_t old = umask(022);
    int r;

    if ((r = var_run(b)) >= 0 && (r = factory_etc(b)) >= 0 && (r = agent_keys(b)) >= 0 &&
        (r = lapis_image_grow_files(b)) >= 0 && (r = efi_dir(b)) >= 0 &&
        (r = make_usr_erofs(b)) >= 0)
        r = make_usr_verity(b);
    umask(old);
    return r;
}

/* ---- the bundle output ------------------------------------------------------ */

/* lapis-sysupdate next to the running lapis (a build tree or /usr/bin), else PATH. */
static char *sysupdate_tool(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            char *p = path_join(self, "lapis-sysupdate");
            if (access(p, X_OK) == 0)
                return p;
            free(p);
        }
    }
    return xstrdup("lapis-sysupdate");
}

int lapis_image_write_bundle(struct lapis_image_build *b)
{
    const struct lapis_image_config *c = b->conf;
    _cleanup_free_ char *tool = sysupdate_tool();
    _cleanup_free_ char *name = xasprintf("%s.bundle", b->basename);
    _cleanup_free_ char *dir = path_join(b->stagedir, name);
    char *argv[18] = { tool, "bundle", "--key", c->sysupdate_signing_key, "--version",
                       c->version, "--arch", (char *)b->arch, "--usr", b->usr_image, "--uki",
                       b->uki, "-o", dir };
    size_t n = 14;
    int r;

    if (!c->ab || !c->sysupdate_signing_key)
        return lapis_err(&b->diag, -EINVAL, "the bundle format needs usr-a/usr-b partitions and "
                         "sysupdate.signingKey in the config");
    if (!b->usr_image || !b->uki)
        return lapis_err(&b->diag, -EINVAL, "no usr image or UKI to bundle (the boot stage did not run)");
    if (c->sysupdate_min_from) {
        argv[n++] = "--min-from";
        argv[n++] = c->sysupdate_min_from;
    }
    if ((r = lapis_image_tool(b, "lapis-sysupdate (built with lapis)", argv, NULL, NULL)) < 0)
        return r;
    lapis_image_add_output(b, name);
    return 0;
}
