/*
 * Provenance inside the image: /usr/lib/lapis/image.json says what the image
 * was built from (config digest, the installed set as a lock, the lapis
 * version, the build time), so a running system or `lapis image inspect` can
 * tell. Deterministic like every output: fixed key order, b->epoch as the
 * only time, mode 0644 and mtime b->epoch whatever the umask.
 *
 * {"format": 1, "name", "version", "arch", "config_sha256", "lapis_version",
 *  "build_time": EPOCH, "build_time_utc": "YYYY-MM-DDThh:mm:ssZ",
 *  "lock": {"config_sha256", "packages": [{"name", "epoch", "version",
 *           "release", "arch", "repo", "sha256"}, ...]}}   (packages by name)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "image/image.h"
#include "image/sbom.h"

#ifndef LAPIS_VERSION
#define LAPIS_VERSION "0.0.0"
#endif

#define PROVENANCE_DIR "/usr/lib/lapis"
#define PROVENANCE_MAX (64u << 20)

static void add_s(cJSON *o, const char *key, const char *val)
{
    cJSON_AddItemToObject(o, key, cJSON_CreateString(val ? val : ""));
}

static cJSON *lock_package(const struct lapis_image_pkg *p)
{
    cJSON *o = cJSON_CreateObject();

    add_s(o, "name", p->name);
    cJSON_AddNumberToObject(o, "epoch", p->epoch);
    add_s(o, "version", p->version);
    add_s(o, "release", p->release);
    add_s(o, "arch", p->arch);
    add_s(o, "repo", p->repo);
    add_s(o, "sha256", p->sha256);
    return o;
}

static cJSON *provenance_json(const struct lapis_image_build *b, const char *conf_hex)
{
    cJSON *o = cJSON_CreateObject(), *lock, *pkgs;
    char utc[32];

    lapis_image_format_utc(b->epoch, utc, sizeof(utc));
    cJSON_AddNumberToObject(o, "format", 1);
    add_s(o, "name", b->conf->name);
    add_s(o, "version", b->conf->version);
    add_s(o, "arch", b->arch);
    add_s(o, "config_sha256", conf_hex);
    add_s(o, "lapis_version", LAPIS_VERSION);
    cJSON_AddNumberToObject(o, "build_time", (double)b->epoch);
    add_s(o, "build_time_utc", utc);
    cJSON_AddItemToObject(o, "lock", lock = cJSON_CreateObject());
    add_s(lock, "config_sha256", conf_hex);
    cJSON_AddItemToObject(lock, "packages", pkgs = cJSON_CreateArray());
    for (size_t i = 0; i < b->npkgs; i++)
        cJSON_AddItemToArray(pkgs, lock_package(&b->pkgs[i]));
    return o;
}

static int write_at_epoch(int dfd, const char *name, const char *text, long long epoch)
{
    struct timespec ts[2] = { { .tv_sec = (time_t)epoch }, { .tv_sec = (time_t)epoch } };
    int r = write_file_at(dfd, name, text, strlen(text), 0644);

    if (r < 0)
        return r;
    /* write_file_at's mode is filtered by the umask; the image's must not be */
    if (fchmodat(dfd, name, 0644, 0) < 0 || utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    return 0;
}

int lapis_image_write_provenance(struct lapis_image_build *b)
{
    _cleanup_close_ int dfd = open_dir_in_root(b->rootdir, PROVENANCE_DIR, true);
    _cleanup_free_ char *text = NULL;
    char hex[65];
    cJSON *o;
    char *s;
    int r;

    if (dfd < 0)
        return lapis_err(&b->diag, dfd, "cannot create %s in the image root %s: %s",
                         PROVENANCE_DIR, b->rootdir, strerror(-dfd));
    for (size_t i = 0; i < sizeof(b->conf->sha256); i++)
        sprintf(hex + 2 * i, "%02x", b->conf->sha256[i]);
    o = provenance_json(b, hex);
    s = cJSON_Print(o);
    cJSON_Delete(o);
    if (!s)
        return LAPIS_OOM(&b->diag);
    text = xasprintf("%s\n", s);
    free(s);
    if ((r = write_at_epoch(dfd, "image.json", text, b->epoch)) < 0)
        return lapis_err(&b->diag, r, "cannot write %s/image.json in the image root: %s",
                         PROVENANCE_DIR, strerror(-r));
    return 0;
}

/* ---- reading it back --------------------------------------------------------- */

static char *get_str(const cJSON *o, const char *key, bool *ok)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!cJSON_IsString(v)) {
        *ok = false;
        return NULL;
    }
    return xstrdup(v->valuestring);
}

static double get_num(const cJSON *o, const char *key, bool *ok)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
        *ok = false;
        return 0;
    }
    return v->valuedouble;
}

static void pkg_free_fields(struct lapis_image_pkg *p)
{
    free(p->name);
    free(p->version);
    free(p->release);
    free(p->arch);
    free(p->repo);
    free(p->sha256);
    free(p->license);
    free(p->vendor);
    free(p->sourcerpm);
    free(p->url);
}

static bool parse_pkg(const cJSON *o, struct lapis_image_pkg *p)
{
    bool ok = cJSON_IsObject(o);

    p->name = get_str(o, "name", &ok);
    p->epoch = (unsigned)get_num(o, "epoch", &ok);
    p->version = get_str(o, "version", &ok);
    p->release = get_str(o, "release", &ok);
    p->arch = get_str(o, "arch", &ok);
    p->repo = get_str(o, "repo", &ok);
    p->sha256 = get_str(o, "sha256", &ok);
    return ok;
}

static bool parse_lock(const cJSON *o, struct lapis_image_lock *l)
{
    const cJSON *pkgs = cJSON_GetObjectItemCaseSensitive(o, "packages"), *e;
    bool ok = cJSON_IsObject(o) && cJSON_IsArray(pkgs);

    l->config_sha256 = get_str(o, "config_sha256", &ok);
    if (!ok)
        return false;
    l->pkgs = xcalloc((size_t)cJSON_GetArraySize(pkgs) + 1, sizeof(*l->pkgs));
    cJSON_ArrayForEach(e, pkgs)
        if (!parse_pkg(e, &l->pkgs[l->npkgs++]))
            return false;
    return true;
}

static bool parse_top(const cJSON *o, struct lapis_image_provenance *p)
{
    bool ok = cJSON_IsObject(o);

    p->format = (int)get_num(o, "format", &ok);
    p->name = get_str(o, "name", &ok);
    p->version = get_str(o, "version", &ok);
    p->arch = get_str(o, "arch", &ok);
    p->config_sha256 = get_str(o, "config_sha256", &ok);
    p->lapis_version = get_str(o, "lapis_version", &ok);
    p->build_time = (long long)get_num(o, "build_time", &ok);
    return ok && p->format == 1 && parse_lock(cJSON_GetObjectItemCaseSensitive(o, "lock"), &p->lock);
}

int lapis_image_provenance_parse(struct lapis_diag *d, const char *json, size_t len,
                                 struct lapis_image_provenance **ret)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    struct lapis_image_provenance *p = xcalloc(1, sizeof(*p));
    bool ok = o && parse_top(o, p);

    cJSON_Delete(o);
    if (!ok) {
        lapis_image_provenance_free(p);
        return lapis_err(d, -EBADMSG, "image.json is not a lapis image provenance record "
                         "(format 1): the image was not built by this lapis, or the file is damaged");
    }
    *ret = p;
    return 0;
}

int lapis_image_provenance_read(struct lapis_diag *d, const char *path,
                                struct lapis_image_provenance **ret)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r = read_file(path, PROVENANCE_MAX, &buf, &len);

    if (r < 0)
        return lapis_err(d, r, "cannot read %s: %s", path, strerror(-r));
    if ((r = lapis_image_provenance_parse(d, buf, len, ret)) < 0)
        return lapis_err(d, r, "%s: %s", path, lapis_diag_error(d));
    return 0;
}

void lapis_image_provenance_free(struct lapis_image_provenance *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->lock.npkgs; i++)
        pkg_free_fields(&p->lock.pkgs[i]);
    free(p->lock.pkgs);
    free(p->lock.config_sha256);
    free(p->name);
    free(p->version);
    free(p->arch);
    free(p->config_sha256);
    free(p->lapis_version);
    free(p);
}
