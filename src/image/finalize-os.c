/*
 * The system's identity and the config's own files: hostname, os-release,
 * an empty machine-id (first boot makes one per machine), timezone, locale,
 * the kernel command line the boot stage reads (/etc/kernel/cmdline),
 * os.files / os.dirs (the provenance record is provenance.c's, a step of
 * finalize).
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "image/finalize.h"

/* os-release's ID and VERSION_ID: lowercase, [a-z0-9._-]. */
static char *os_id(const char *s)
{
    char *r = xstrdup(s && *s ? s : "lapis");
    for (char *p = r; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            *p = '_';
    }
    return r;
}

/* The config's digest and the epoch name this build: same inputs, same id. */
static char *build_id(const struct lapis_image_build *b)
{
    char hex[13];
    for (int i = 0; i < 6; i++)
        snprintf(hex + 2 * i, 3, "%02x", b->conf ? b->conf->sha256[i] : 0);
    return xasprintf("%lld.%s", b->epoch, hex);
}

static int os_release(struct lapis_image_build *b)
{
    const char *name = b->conf && b->conf->name ? b->conf->name : "lapis";
    const char *version = b->conf && b->conf->version ? b->conf->version : "0";
    _cleanup_free_ char *id = os_id(name), *vid = os_id(version), *bid = build_id(b);
    _cleanup_free_ char *text = xasprintf(
        "NAME=\"%s\"\nID=%s\nID_LIKE=fedora\nVERSION=\"%s\"\nVERSION_ID=%s\n"
        "PRETTY_NAME=\"%s %s\"\nIMAGE_ID=%s\nIMAGE_VERSION=%s\nBUILD_ID=%s\n",
        name, id, version, vid, name, version, id, vid, bid);
    int r = fin_write_str(b, "/usr/lib/os-release", text);

    return r < 0 ? r : fin_symlink(b, "/etc/os-release", "../usr/lib/os-release");
}

/* Empty, not absent: systemd then makes it on first boot and treats that
 * boot as the first (presets, ConditionFirstBoot=). */
static int machine_id(struct lapis_image_build *b)
{
    return fin_write(b, "/etc/machine-id", "", 0, 0444, 0, 0);
}

static int timezone_link(struct lapis_image_build *b)
{
    const char *tz = b->conf && b->conf->timezone ? b->conf->timezone : "UTC";
    _cleanup_free_ char *zone = xasprintf("/usr/share/zoneinfo/%s", tz);
    _cleanup_free_ char *target = xasprintf("../usr/share/zoneinfo/%s", tz);
    _cleanup_free_ char *line = xasprintf("%s\n", tz);
    int r;

    if (strstr(tz, ".."))
        return lapis_err(&b->diag, -LAPIS_E_CONFIG, "os.timezone: %s is not a zone name", tz);
    /* Without tzdata a dangling link to UTC still reads as UTC (glibc), and
     * it keeps systemd-firstboot from prompting for a zone on first boot. */
    if (!fin_exists(b, zone) && strcmp(tz, "UTC") && strcmp(tz, "Etc/UTC"))
        return lapis_err(&b->diag, -LAPIS_E_CONFIG,
                         "os.timezone: %s is not in the image (add tzdata to packages.install)", tz);
    if ((r = fin_symlink(b, "/etc/localtime", target)) < 0)
        return r;
    return fin_write_str(b, "/etc/timezone", line);
}

static int locale_conf(struct lapis_image_build *b)
{
    const char *loc = b->conf && b->conf->locale ? b->conf->locale : "C.UTF-8";
    _cleanup_free_ char *text = xasprintf("LANG=%s\n", loc);
    int r = fin_write_str(b, "/etc/locale.conf", text);

    /* Debian's pam_env reads /etc/default/locale. */
    return r < 0 ? r : fin_write_str(b, "/etc/default/locale", text);
}

/* No root=: the boot stage relies on the Discoverable Partitions Spec
 * (systemd-gpt-auto-generator finds the root partition by its type). */
static int kernel_cmdline(struct lapis_image_build *b)
{
    _cleanup_free_ char *args = lapis_image_kernel_args(b->conf, b->arch, "rw");
    _cleanup_free_ char *text = xasprintf("%s\n", args);
    return fin_write_str(b, "/etc/kernel/cmdline", text);
}

static int hostname(struct lapis_image_build *b)
{
    if (!b->conf || !b->conf->hostname)
        return 0;
    _cleanup_free_ char *text = xasprintf("%s\n", b->conf->hostname);
    return fin_write_str(b, "/etc/hostname", text);
}

int fin_os(struct lapis_image_build *b)
{
    int r;

    if ((r = hostname(b)) < 0 || (r = os_release(b)) < 0 || (r = machine_id(b)) < 0)
        return r;
    if ((r = timezone_link(b)) < 0 || (r = locale_conf(b)) < 0)
        return r;
    return kernel_cmdline(b);
}

/* ---- os.files / os.dirs -------------------------------------------------- */

static int one_file(struct lapis_image_build *b, const struct lapis_image_file *f)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r;

    if (f->is_dir)
        return fin_mkdir(b, f->destination, f->mode, f->uid, f->gid);
    if (f->source) {
        if ((r = read_file(f->source, 1ULL << 30, &buf, &len)) < 0)
            return lapis_err(&b->diag, r, "os.files: cannot read %s: %s", f->source, strerror(-r));
        return fin_write(b, f->destination, buf, len, f->mode, f->uid, f->gid);
    }
    const char *c = f->content ? f->content : "";
    return fin_write(b, f->destination, c, strlen(c), f->mode, f->uid, f->gid);
}

int fin_files(struct lapis_image_build *b)
{
    for (size_t i = 0; b->conf && i < b->conf->nfiles; i++) {
        int r = one_file(b, &b->conf->files[i]);
        if (r < 0)
            return r;
    }
    return 0;
}
