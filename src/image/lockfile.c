/*
 * The image lock file (CONFIG.lock, docs/image.md "The lock file"): the exact
 * package set a config resolved to, as canonical JSON so that the same set
 * always gives the same bytes and a diff of two locks reads well: keys sorted,
 * two-space indent, one trailing newline. Written by hand (cJSON's printer
 * indents with tabs and prints big numbers as doubles); read with cJSON, every
 * field's type checked.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "image/image.h"
#include "lapis/common.h"

#define LOCK_VERSION 1
#define LOCK_MAX_BYTES (64u << 20)

/* ---- writing ------------------------------------------------------------- */

static void out_printf(struct strbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_printf(struct strbuf *o, const char *fmt, ...)
{
    _cleanup_free_ char *s = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    strbuf_add(o, s, (size_t)n);
}

/* A JSON string (RFC 8259 escapes), or null for NULL. */
static void out_str(struct strbuf *o, const char *s)
{
    if (!s) {
        strbuf_add(o, "null", 4);
        return;
    }
    strbuf_add(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            out_printf(o, "\\%c", *p);
        else if (*p == '\n')
            strbuf_add(o, "\\n", 2);
        else if (*p == '\t')
            strbuf_add(o, "\\t", 2);
        else if (*p < 0x20)
            out_printf(o, "\\u%04x", *p);
        else
            strbuf_add(o, (const char *)p, 1);
    }
    strbuf_add(o, "\"", 1);
}

static void field_str(struct strbuf *o, const char *key, const char *v, bool last)
{
    out_printf(o, "      \"%s\": ", key);
    out_str(o, v);
    strbuf_add(o, last ? "\n" : ",\n", last ? 1 : 2);
}

static void field_num(struct strbuf *o, const char *key, unsigned long long v)
{
    out_printf(o, "      \"%s\": %llu,\n", key, v);
}

/* The keys of a package, in sorted order. */
static void out_pkg(struct strbuf *o, const struct lapis_image_pkg *p, bool last)
{
    strbuf_add(o, "    {\n", 6);
    field_str(o, "arch", p->arch, false);
    field_num(o, "buildtime", p->buildtime);
    field_num(o, "epoch", p->epoch);
    field_num(o, "installsize", p->installsize);
    field_str(o, "license", p->license, false);
    field_str(o, "name", p->name, false);
    field_str(o, "release", p->release, false);
    field_str(o, "repo", p->repo, false);
    field_str(o, "sha256", p->sha256, false);
    field_str(o, "sourcerpm", p->sourcerpm, false);
    field_str(o, "url", p->url, false);
    field_str(o, "vendor", p->vendor, false);
    field_str(o, "version", p->version, true);
    strbuf_add(o, last ? "    }\n" : "    },\n", last ? 6 : 7);
}

static char *lock_format(const struct lapis_image_lock *l)
{
    struct strbuf o = { 0 };

    strbuf_add(&o, "{\n  \"configSha256\": ", 20);
    out_str(&o, l->config_sha256);
    out_printf(&o, ",\n  \"lockVersion\": %d,\n  \"packages\": [", LOCK_VERSION);
    strbuf_add(&o, l->npkgs ? "\n" : "", l->npkgs ? 1 : 0);
    for (size_t i = 0; i < l->npkgs; i++)
        out_pkg(&o, &l->pkgs[i], i + 1 == l->npkgs);
    strbuf_add(&o, l->npkgs ? "  ]\n}\n" : "]\n}\n", l->npkgs ? 6 : 4);
    return o.s;
}

int lapis_image_lock_write(struct lapis_diag *d, const char *path, const struct lapis_image_lock *l)
{
    _cleanup_free_ char *text = lock_format(l);
    int r = write_file_atomic(path, text, strlen(text));

    if (r < 0)
        return lapis_err(d, r, "cannot write lock file %s: %s", path, strerror(-r));
    return 0;
}

/* ---- reading ------------------------------------------------------------- */

struct rd {
    struct lapis_diag *d;
    const char *file;
    char where[64];
};

static int lock_bad(struct rd *rd, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int lock_bad(struct rd *rd, const char *key, const char *fmt, ...)
{
    _cleanup_free_ char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    return lapis_err(rd->d, LAPIS_E_CONFIG, "%s: %s%s: %s (run 'lapis image lock' to write it again)",
                     rd->file, rd->where, key, msg ? msg : "invalid");
}

static int get_str(struct rd *rd, const cJSON *obj, const char *key, bool nullable, char **ret)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (nullable && (!v || cJSON_IsNull(v)))
        return *ret = NULL, 0;
    if (!cJSON_IsString(v))
        return lock_bad(rd, key, v ? "expected a string" : "missing");
    *ret = xstrdup(v->valuestring);
    return 0;
}

static int get_num(struct rd *rd, const cJSON *obj, const char *key, double max,
                   unsigned long long *ret)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (!cJSON_IsNumber(v))
        return lock_bad(rd, key, v ? "expected a number" : "missing");
    if (v->valuedouble < 0 || v->valuedouble > max || v->valuedouble != (double)(unsigned long long)v->valuedouble)
        return lock_bad(rd, key, "expected a whole number from 0 to %.0f", max);
    *ret = (unsigned long long)v->valuedouble;
    return 0;
}

static const char *const pkg_keys[] = {
    "arch", "buildtime", "epoch", "installsize", "license", "name", "release", "repo", "sha256",
    "sourcerpm", "url", "vendor", "version",
};

static int check_keys(struct rd *rd, const cJSON *obj, const char *const *keys, size_t n)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, obj) {
        size_t i = 0;
        while (i < n && strcmp(keys[i], it->string))
            i++;
        if (i == n)
            return lock_bad(rd, it->string, "unknown key");
    }
    return 0;
}

static bool is_sha256_hex(const char *s)
{
    return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static int read_pkg(struct rd *rd, const cJSON *obj, struct lapis_image_pkg *p)
{
    unsigned long long epoch;
    int r;

    if (!cJSON_IsObject(obj))
        return lock_bad(rd, "", "expected an object");
    if ((r = check_keys(rd, obj, pkg_keys, ARRAY_SIZE(pkg_keys))) < 0 ||
        (r = get_str(rd, obj, "name", false, &p->name)) < 0 ||
        (r = get_num(rd, obj, "epoch", UINT32_MAX, &epoch)) < 0 ||
        (r = get_str(rd, obj, "version", false, &p->version)) < 0 ||
        (r = get_str(rd, obj, "release", false, &p->release)) < 0 ||
        (r = get_str(rd, obj, "arch", false, &p->arch)) < 0 ||
        (r = get_str(rd, obj, "repo", false, &p->repo)) < 0 ||
        (r = get_str(rd, obj, "sha256", false, &p->sha256)) < 0 ||
        (r = get_str(rd, obj, "license", true, &p->license)) < 0 ||
        (r = get_str(rd, obj, "vendor", true, &p->vendor)) < 0 ||
        (r = get_str(rd, obj, "sourcerpm", true, &p->sourcerpm)) < 0 ||
        (r = get_str(rd, obj, "url", true, &p->url)) < 0 ||
        (r = get_num(rd, obj, "installsize", 9007199254740991.0, &p->installsize)) < 0 ||
        (r = get_num(rd, obj, "buildtime", 9007199254740991.0, &p->buildtime)) < 0)
        return r;
    p->epoch = (unsigned)epoch;
    if (!is_sha256_hex(p->sha256))
        return lock_bad(rd, "sha256", "expected 64 lower-case hex digits");
    return 0;
}

static int read_top(struct rd *rd, const cJSON *root, struct lapis_image_lock *l)
{
    static const char *const keys[] = { "configSha256", "lockVersion", "packages" };
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "lockVersion");
    const cJSON *pkgs = cJSON_GetObjectItemCaseSensitive(root, "packages");
    const cJSON *it;
    int r;

    if (!cJSON_IsObject(root))
        return lock_bad(rd, "", "expected a JSON object");
    if (!cJSON_IsNumber(ver) || ver->valuedouble != LOCK_VERSION)
        return lock_bad(rd, "lockVersion", ver ? "unsupported version (this lapis reads version 1)" : "missing");
    if ((r = check_keys(rd, root, keys, ARRAY_SIZE(keys))) < 0 ||
        (r = get_str(rd, root, "configSha256", false, &l->config_sha256)) < 0)
        return r;
    if (!is_sha256_hex(l->config_sha256))
        return lock_bad(rd, "configSha256", "expected 64 lower-case hex digits");
    if (!cJSON_IsArray(pkgs))
        return lock_bad(rd, "packages", pkgs ? "expected a list" : "missing");
    l->pkgs = xcalloc((size_t)cJSON_GetArraySize(pkgs) + 1, sizeof(*l->pkgs));
    cJSON_ArrayForEach(it, pkgs) {
        snprintf(rd->where, sizeof(rd->where), "packages[%zu].", l->npkgs);
        r = read_pkg(rd, it, &l->pkgs[l->npkgs++]);
        if (r < 0)
            return r;
    }
    return 0;
}

int lapis_image_lock_read(struct lapis_diag *d, const char *path, struct lapis_image_lock **ret)
{
    struct rd rd = { .d = d, .file = path };
    _cleanup_free_ char *buf = NULL;
    struct lapis_image_lock *l;
    cJSON *root;
    size_t len;
    int r;

    r = read_file(path, LOCK_MAX_BYTES, &buf, &len);
    if (r < 0)
        return lapis_err(d, LAPIS_E_CONFIG, "cannot read lock file %s: %s (run 'lapis image lock' first)",
                         path, strerror(-r));
    root = cJSON_ParseWithLength(buf, len);
    if (!root)
        return lapis_err(d, LAPIS_E_CONFIG, "%s: not valid JSON near byte %td (run 'lapis image lock' to write it again)",
                         path, cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - buf : (ptrdiff_t)0);
    l = xcalloc(1, sizeof(*l));
    r = read_top(&rd, root, l);
    cJSON_Delete(root);
    if (r < 0) {
        lapis_image_lock_free(l);
        return r;
    }
    *ret = l;
    return 0;
}

/* ---- freeing ------------------------------------------------------------- */

void lapis_image_pkg_clear(struct lapis_image_pkg *p)
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
    memset(p, 0, sizeof(*p));
}

void lapis_image_lock_free(struct lapis_image_lock *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->npkgs; i++)
        lapis_image_pkg_clear(&l->pkgs[i]);
    free(l->pkgs);
    free(l->config_sha256);
    free(l);
}
