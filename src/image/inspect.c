/*
 * `lapis image inspect OUTPUT`: what an output holds, as one JSON document.
 * A disk or ISO: size, sha256, format (qemu-img info), GPT partitions
 * (sgdisk -p) and the packages from the SBOM beside it; an OCI layout (or
 * its archive, unpacked into a temp dir): manifests, configs and layers; an
 * SBOM: its packages.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/strv.h"
#include "lapis/image.h"
#include "shared/digest.h"

static cJSON *read_json(const char *path)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (read_file(path, 64 << 20, &text, &len) < 0)
        return NULL;
    return cJSON_ParseWithLength(text, len);
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *read_blob(const char *layout, const char *digest)
{
    if (!digest || strncmp(digest, "sha256:", 7) != 0 || strchr(digest, '/'))
        return NULL;
    _cleanup_free_ char *p = xasprintf("%s/blobs/sha256/%s", layout, digest + 7);
    return read_json(p);
}

static void add_manifest(cJSON *list, const char *layout, const cJSON *desc, int depth)
{
    const char *digest = jstr(desc, "digest");
    cJSON *m = read_blob(layout, digest);
    if (!m)
        return;
    if (cJSON_GetObjectItemCaseSensitive(m, "manifests") && depth < 2) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(m, "manifests"))
            add_manifest(list, layout, e, depth + 1);
        cJSON_Delete(m);
        return;
    }
    cJSON *o = cJSON_AddObjectToObject(list, digest);
    const cJSON *plat = cJSON_GetObjectItemCaseSensitive(desc, "platform");
    if (plat)
        cJSON_AddItemToObject(o, "platform", cJSON_Duplicate(plat, true));
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(m, "config");
    cJSON_AddStringToObject(o, "config", jstr(cfg, "digest") ? jstr(cfg, "digest") : "");
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(m, "layers")) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "digest", jstr(l, "digest") ? jstr(l, "digest") : "");
        cJSON_AddStringToObject(x, "mediaType", jstr(l, "mediaType") ? jstr(l, "mediaType") : "");
        const cJSON *sz = cJSON_GetObjectItemCaseSensitive(l, "size");
        cJSON_AddNumberToObject(x, "size", cJSON_IsNumber(sz) ? sz->valuedouble : 0);
        cJSON_AddItemToArray(layers, x);
    }
    cJSON_Delete(m);
}

static int inspect_layout(const char *layout, cJSON *doc, char **ret_error)
{
    _cleanup_free_ char *ip = path_join(layout, "index.json");
    cJSON *index = read_json(ip);
    if (!index) {
        *ret_error = xasprintf("%s: no readable index.json (not an OCI image layout)", layout);
        return -LAPIS_E_METADATA;
    }
    cJSON *list = cJSON_AddObjectToObject(doc, "manifests");
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(index, "manifests"))
        add_manifest(list, layout, e, 0);
    cJSON_Delete(index);
    return 0;
}

static int inspect_archive(const char *path, cJSON *doc, char **ret_error)
{
    _cleanup_free_ char *tmp = xasprintf("%s/lapis-inspect-XXXXXX",
                                         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) {
        *ret_error = xasprintf("cannot create a temporary dir: %s", strerror(errno));
        return -errno;
    }
    char *argv[] = { "tar", "-xf", (char *)path, "-C", tmp, "--no-same-owner", NULL };
    struct lapis_spawn_opts o = { .stdin_fd = -1, .stdout_fd = -1 };
    _cleanup_free_ char *err = NULL;
    int k = lapis_spawn(argv, &o, NULL, &err);
    if (k != 0) {
        *ret_error = xasprintf("%s: tar cannot unpack it: %s", path, lapis_spawn_last_line(err));
        (void)rm_rf(tmp, NULL);
        return -LAPIS_E_METADATA;
    }
    k = inspect_layout(tmp, doc, ret_error);
    (void)rm_rf(tmp, NULL);
    return k;
}

static void add_sbom_packages(cJSON *doc, const char *sbom)
{
    cJSON *s = read_json(sbom);
    if (!s)
        return;
    cJSON *pkgs = cJSON_AddArrayToObject(doc, "packages");
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(s, "packages")) {
        const char *name = jstr(p, "name"), *ver = jstr(p, "versionInfo");
        const char *purpose = jstr(p, "primaryPackagePurpose");
        if (!name || (purpose && (strcmp(purpose, "OPERATING-SYSTEM") == 0 ||
                                  strcmp(purpose, "CONTAINER") == 0)))
            continue;   /* the image itself, not one of its packages */
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", name);
        cJSON_AddStringToObject(x, "version", ver ? ver : "");
        cJSON_AddItemToArray(pkgs, x);
    }
    cJSON_AddStringToObject(doc, "sbom", sbom);
    cJSON_Delete(s);
}

/* Tool output, or NULL when the tool is missing or fails. */
static char *tool_output(char *const argv[])
{
    struct lapis_spawn_opts o = { .stdin_fd = -1, .stdout_fd = -1 };
    char *out = NULL;
    if (lapis_spawn(argv, &o, &out, NULL) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static void add_partitions(cJSON *doc, const char *path)
{
    char *argv[] = { "sgdisk", "-p", (char *)path, NULL };
    _cleanup_free_ char *out = tool_output(argv);
    if (!out)
        return;
    cJSON *parts = cJSON_AddArrayToObject(doc, "partitions");
    bool table = false;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned num;
        unsigned long long start, end;
        char code[16];
        int name_at = 0;
        if (str_startswith(line, "Number"))
            table = true;
        else if (table && sscanf(line, " %u %llu %llu %*s %*s %15s %n", &num, &start, &end, code,
                                 &name_at) == 4) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "number", num);
            cJSON_AddNumberToObject(x, "start_sector", (double)start);
            cJSON_AddNumberToObject(x, "size", (double)(end - start + 1) * 512);
            cJSON_AddStringToObject(x, "code", code);
            cJSON_AddStringToObject(x, "name", name_at ? line + name_at : "");
            cJSON_AddItemToArray(parts, x);
        }
    }
}

static char *sbom_beside(const char *path)
{
    const char *exts[] = { ".raw", ".qcow2", ".vhdx", ".vhd", ".iso", ".oci.tar", ".oci" };
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
        if (str_endswith(path, exts[i])) {
            _cleanup_free_ char *base = xstrndup(path, strlen(path) - strlen(exts[i]));
            return xasprintf("%s.spdx.json", base);
        }
    return NULL;
}

static void add_disk_info(cJSON *doc, const char *path)
{
    char *argv[] = { "qemu-img", "info", "--output=json", (char *)path, NULL };
    _cleanup_free_ char *out = tool_output(argv);
    cJSON *info = out ? cJSON_Parse(out) : NULL;
    const char *fmt = info ? jstr(info, "format") : NULL;
    cJSON_AddStringToObject(doc, "format", fmt ? fmt : "unknown");
    const cJSON *vs = info ? cJSON_GetObjectItemCaseSensitive(info, "virtual-size") : NULL;
    if (cJSON_IsNumber(vs))
        cJSON_AddNumberToObject(doc, "virtual_size", vs->valuedouble);
    if (fmt && (strcmp(fmt, "raw") == 0 || strcmp(fmt, "vpc") == 0))
        add_partitions(doc, path);
    cJSON_Delete(info);
}

static int inspect_file(const char *path, const struct stat *st, cJSON *doc, char **ret_error)
{
    char hex[65];
    int k = lapis_chk_file(path, LAPIS_CHK_SHA256, hex, sizeof(hex));
    if (k < 0) {
        *ret_error = xasprintf("%s: %s", path, strerror(-k));
        return k;
    }
    cJSON_AddNumberToObject(doc, "size", (double)st->st_size);
    cJSON_AddStringToObject(doc, "sha256", hex);
    if (str_endswith(path, ".spdx.json")) {
        cJSON_AddStringToObject(doc, "type", "sbom");
        add_sbom_packages(doc, path);
        return 0;
    }
    if (str_endswith(path, ".tar")) {
        cJSON_AddStringToObject(doc, "type", "oci-archive");
        k = inspect_archive(path, doc, ret_error);
    } else {
        cJSON_AddStringToObject(doc, "type", str_endswith(path, ".iso") ? "iso" : "disk");
        add_disk_info(doc, path);
    }
    _cleanup_free_ char *sbom = sbom_beside(path);
    if (k == 0 && sbom && path_exists(sbom))
        add_sbom_packages(doc, sbom);
    return k;
}

int lapis_image_inspect(const char *path, char **ret_json, char **ret_error)
{
    struct stat st;
    int k;

    *ret_json = NULL;
    *ret_error = NULL;
    if (stat(path, &st) < 0) {
        *ret_error = xasprintf("%s: %s", path, strerror(errno));
        return -errno;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "path", path);
    if (S_ISDIR(st.st_mode)) {
        cJSON_AddStringToObject(doc, "type", "oci-layout");
        k = inspect_layout(path, doc, ret_error);
        _cleanup_free_ char *sbom = sbom_beside(path);
        if (k == 0 && sbom && path_exists(sbom))
            add_sbom_packages(doc, sbom);
    } else {
        k = inspect_file(path, &st, doc, ret_error);
    }
    if (k == 0)
        *ret_json = cJSON_Print(doc);
    cJSON_Delete(doc);
    return k;
}
