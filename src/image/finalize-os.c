/*
 * The system's identity and the config's own files: hostname, os-release,
 * an empty machine-id (first boot makes one per machine), timezone, locale,
 * the kernel command line the boot stage reads (/etc/kernel/cmdline),
 * os.files / os.dirs, and the provenance record /usr/lib/lapis/image.json.
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
    if (!fin_exists(b, zone)) {
        /* Without tzdata glibc and systemd read a missing /etc/localtime as UTC. */
        if (!strcmp(tz, "UTC") || !strcmp(tz, "Etc/UTC"))
            return 0;
        return lapis_err(&b->diag, -LAPIS_E_CONFIG,
                         "os.timezone: %s is not in the image (add tzdata to packages.install)", tz);
    }
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
    size_t len = 3;
    for (char **a = b->conf ? b->conf->kernel_cmdline : NULL; a && *a; a++)
        len += strlen(*a) + 1;
    _cleanup_free_ char *text = xmalloc(len + 1);
    char *p = stpcpy(text, "rw");
    for (char **a = b->conf ? b->conf->kernel_cmdline : NULL; a && *a; a++)
        p = stpcpy(stpcpy(p, " "), *a);
    strcpy(p, "\n");
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

/* ---- provenance ---------------------------------------------------------- */

static void json_str(char **buf, size_t *len, const char *s)
{
    size_t need = *len + 2 * strlen(s ? s : "") * 3 + 3;
    *buf = xrealloc(*buf, need + 1);
    char *p = *buf + *len;
    *p++ = '"';
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\')
            *p++ = '\\', *p++ = (char)*c;
        else if (*c < 0x20)
            p += sprintf(p, "\\u%04x", *c);
        else
            *p++ = (char)*c;
    }
    *p++ = '"';
    *p = '\0';
    *len = (size_t)(p - *buf);
}

static void json_raw(char **buf, size_t *len, const char *s)
{
    size_t n = strlen(s);
    *buf = xrealloc(*buf, *len + n + 1);
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

static void json_pkg(char **buf, size_t *len, const struct lapis_image_pkg *p, bool first)
{
    char evr[32];
    json_raw(buf, len, first ? "\n    {\"name\": " : ",\n    {\"name\": ");
    json_str(buf, len, p->name);
    snprintf(evr, sizeof(evr), "%u", p->epoch);
    json_raw(buf, len, ", \"epoch\": ");
    json_raw(buf, len, evr);
    json_raw(buf, len, ", \"version\": ");
    json_str(buf, len, p->version);
    json_raw(buf, len, ", \"release\": ");
    json_str(buf, len, p->release);
    json_raw(buf, len, ", \"arch\": ");
    json_str(buf, len, p->arch);
    json_raw(buf, len, ", \"sha256\": ");
    json_str(buf, len, p->sha256);
    json_raw(buf, len, "}");
}

/* What the image is and what went in: enough to find the config and the
 * lock it was built from, read by `lapis image inspect` and by people. */
int fin_provenance(struct lapis_image_build *b)
{
    _cleanup_free_ char *out = NULL, *bid = build_id(b), *epoch = xasprintf("%lld", b->epoch);
    char hex[65];
    size_t len = 0;

    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", b->conf ? b->conf->sha256[i] : 0);
    json_raw(&out, &len, "{\n  \"name\": ");
    json_str(&out, &len, b->conf ? b->conf->name : NULL);
    json_raw(&out, &len, ",\n  \"version\": ");
    json_str(&out, &len, b->conf ? b->conf->version : NULL);
    json_raw(&out, &len, ",\n  \"arch\": ");
    json_str(&out, &len, b->arch);
    json_raw(&out, &len, ",\n  \"build_id\": ");
    json_str(&out, &len, bid);
    json_raw(&out, &len, ",\n  \"config_sha256\": ");
    json_str(&out, &len, hex);
    json_raw(&out, &len, ",\n  \"source_date_epoch\": ");
    json_raw(&out, &len, epoch);
    json_raw(&out, &len, ",\n  \"packages\": [");
    for (size_t i = 0; i < b->npkgs; i++)
        json_pkg(&out, &len, &b->pkgs[i], i == 0);
    json_raw(&out, &len, b->npkgs ? "\n  ]\n}\n" : "]\n}\n");
    return fin_write(b, "/usr/lib/lapis/image.json", out, len, 0644, 0, 0);
}
