/*
 * The OCI output (image-spec 1.0): an image layout directory BASENAME.oci/
 * and the same as an oci-archive tar BASENAME.oci.tar. One layer (oci_layer.c),
 * the image config (Entrypoint, Cmd, Env, User, WorkingDir, Labels, history),
 * the manifest and index.json, whose ref.name is the image version, so
 * `oci:DIR:VERSION` names it. All JSON is canonical: cJSON unformatted, keys
 * in a fixed order, integers only; every time is SOURCE_DATE_EPOCH. Built for
 * several arches, lapis_image_write_oci_index adds NAME-VERSION.oci/ (+ .tar)
 * with an index over the per-arch manifests.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "basic/fs.h"
#include "basic/macro.h"
#include "image/image.h"
#include "image/archive_dl.h"
#include "image/oci.h"
#include "shared/digest.h"

#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_LAYER "application/vnd.oci.image.layer.v1.tar"
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define ANN "org.opencontainers.image."

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }
#define _cleanup_json_ _cleanup_(cjson_deletep)

/* The GOARCH-style names OCI uses. */
static int oci_platform(const char *arch, const char **ret_arch, const char **ret_variant)
{
    static const char *const map[][3] = {
        { "x86_64", "amd64", NULL }, { "aarch64", "arm64", "v8" },
        { "ppc64le", "ppc64le", NULL }, { "s390x", "s390x", NULL }, { "riscv64", "riscv64", NULL },
    };
    for (size_t i = 0; i < ARRAY_SIZE(map); i++)
        if (arch && strcmp(arch, map[i][0]) == 0) {
            *ret_arch = map[i][1];
            *ret_variant = map[i][2];
            return 0;
        }
    return -EINVAL;
}

static void rfc3339(long long epoch, char buf[32])
{
    time_t t = (time_t)epoch;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static cJSON *add_platform(cJSON *obj, const char *arch)
{
    const char *oarch, *variant;
    if (oci_platform(arch, &oarch, &variant) < 0)
        return NULL;
    cJSON_AddStringToObject(obj, "architecture", oarch);
    if (variant)
        cJSON_AddStringToObject(obj, "variant", variant);
    cJSON_AddStringToObject(obj, "os", "linux");
    return obj;
}

static cJSON *strv_json(char **v)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && v && v[i]; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static cJSON *env_json(const struct lapis_image_config *c)
{
    bool has_path = false;
    for (size_t i = 0; i < c->nenv; i++)
        has_path |= strcmp(c->env[i].key, "PATH") == 0;
    cJSON *a = cJSON_CreateArray();
    if (!has_path)
        cJSON_AddItemToArray(a, cJSON_CreateString(DEFAULT_PATH));
    for (size_t i = 0; i < c->nenv; i++) {
        _cleanup_free_ char *kv = NULL;
        if (asprintf(&kv, "%s=%s", c->env[i].key, c->env[i].value ? c->env[i].value : "") < 0)
            return cJSON_Delete(a), NULL;
        cJSON_AddItemToArray(a, cJSON_CreateString(kv));
    }
    return a;
}

static int kv_cmp(const void *x, const void *y)
{
    return strcmp(((const struct lapis_image_kv *)x)->key, ((const struct lapis_image_kv *)y)->key);
}

/* The built-in org.opencontainers.image.* labels, then the config's (which
 * win on the same key), sorted by key. */
static cJSON *labels_json(const struct lapis_image_config *c, const char *created)
{
    size_t n = 0;
    struct lapis_image_kv *kv = calloc(c->nlabels + 3, sizeof(*kv));
    if (!kv)
        return NULL;
    const struct lapis_image_kv builtin[] = {
        { (char *)ANN "created", (char *)created },
        { (char *)ANN "title", c->name },
        { (char *)ANN "version", c->version },
    };
    for (size_t i = 0; i < c->nlabels; i++)
        kv[n++] = c->labels[i];
    for (size_t i = 0; i < ARRAY_SIZE(builtin); i++) {
        bool set = !builtin[i].value;
        for (size_t j = 0; j < c->nlabels; j++)
            set |= strcmp(c->labels[j].key, builtin[i].key) == 0;
        if (!set)
            kv[n++] = builtin[i];
    }
    qsort(kv, n, sizeof(*kv), kv_cmp);
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < n; i++)
        cJSON_AddStringToObject(o, kv[i].key, kv[i].value ? kv[i].value : "");
    free(kv);
    return o;
}

static cJSON *container_config_json(const struct lapis_image_config *c, const char *created)
{
    cJSON *o = cJSON_CreateObject();
    if (c->user)
        cJSON_AddStringToObject(o, "User", c->user);
    cJSON_AddItemToObject(o, "Env", env_json(c));
    if (c->entrypoint)
        cJSON_AddItemToObject(o, "Entrypoint", strv_json(c->entrypoint));
    if (c->cmd)
        cJSON_AddItemToObject(o, "Cmd", strv_json(c->cmd));
    cJSON_AddStringToObject(o, "WorkingDir", c->workdir ? c->workdir : "/");
    cJSON_AddItemToObject(o, "Labels", labels_json(c, created));
    return o;
}

static cJSON *image_config_json(const struct lapis_image_build *b, const struct oci_layer_result *layer)
{
    char created[32];
    rfc3339(b->epoch, created);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "created", created);
    if (!add_platform(o, b->arch))
        return cJSON_Delete(o), NULL;
    cJSON_AddItemToObject(o, "config", container_config_json(b->conf, created));
    cJSON *rootfs = cJSON_AddObjectToObject(o, "rootfs");
    cJSON_AddStringToObject(rootfs, "type", "layers");
    cJSON *ids = cJSON_AddArrayToObject(rootfs, "diff_ids");
    cJSON_AddItemToArray(ids, cJSON_CreateString(layer->diff_id));
    cJSON *hist = cJSON_AddArrayToObject(o, "history");
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "created", created);
    cJSON_AddStringToObject(h, "created_by", "lapis image build");
    cJSON_AddItemToArray(hist, h);
    return o;
}

static cJSON *descriptor(const char *mediatype, const struct oci_blob *blob)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "mediaType", mediatype);
    cJSON_AddStringToObject(o, "digest", blob->digest);
    cJSON_AddNumberToObject(o, "size", (double)blob->size);
    return o;
}

static cJSON *manifest_json(const struct oci_blob *config, const struct oci_blob *layer,
                            const char *compression)
{
    char layer_mt[80];
    snprintf(layer_mt, sizeof(layer_mt), MT_LAYER "+%s",
             compression && strcmp(compression, "zstd") == 0 ? "zstd" : "gzip");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "schemaVersion", 2);
    cJSON_AddStringToObject(o, "mediaType", MT_MANIFEST);
    cJSON_AddItemToObject(o, "config", descriptor(MT_CONFIG, config));
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    cJSON_AddItemToArray(layers, descriptor(layer_mt, layer));
    return o;
}

/* A manifest's entry in an index: its descriptor, platform and ref name. */
static cJSON *index_entry(const struct oci_blob *manifest, const char *arch, const char *ref)
{
    cJSON *o = descriptor(MT_MANIFEST, manifest);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "platform", p);
    if (!add_platform(p, arch))
        return cJSON_Delete(o), NULL;
    cJSON *ann = cJSON_AddObjectToObject(o, "annotations");
    cJSON_AddStringToObject(ann, ANN "ref.name", ref);
    return o;
}

static cJSON *index_json(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "schemaVersion", 2);
    cJSON_AddStringToObject(o, "mediaType", MT_INDEX);
    cJSON_AddArrayToObject(o, "manifests");
    return o;
}

int oci_blob_put(struct lapis_diag *d, int blobsfd, const char *buf, size_t len, struct oci_blob *ret)
{
    char hex[65];
    int r = lapis_chk_buf(buf, len, LAPIS_CHK_SHA256, hex, sizeof(hex));
    if (r < 0)
        return lapis_err(d, r, "cannot hash an OCI blob");
    snprintf(ret->digest, sizeof(ret->digest), "sha256:%s", hex);
    ret->size = len;
    r = write_file_at(blobsfd, hex, buf, len, 0644);
    if (r >= 0 && fchmodat(blobsfd, hex, 0644, 0) < 0) /* whatever the umask */
        r = -errno;
    return r < 0 ? lapis_err(d, r, "cannot write the OCI blob %s: %s", hex, strerror(-r)) : 0;
}

/* Serialize j (NULL = out of memory while building it) and store it as a blob. */
static int json_blob(struct lapis_diag *d, int blobsfd, cJSON *j, struct oci_blob *ret)
{
    _cleanup_free_ char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    if (!s)
        return LAPIS_OOM(d);
    return oci_blob_put(d, blobsfd, s, strlen(s), ret);
}

static int json_file(struct lapis_diag *d, int dirfd, const char *name, cJSON *j)
{
    _cleanup_free_ char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    if (!s)
        return LAPIS_OOM(d);
    int r = write_file_at(dirfd, name, s, strlen(s), 0644);
    if (r >= 0 && fchmodat(dirfd, name, 0644, 0) < 0)
        r = -errno;
    return r < 0 ? lapis_err(d, r, "cannot write the OCI %s: %s", name, strerror(-r)) : 0;
}

/* A fresh layout directory dir (any old one removed); fds of it and its blobs/sha256. */
static int layout_create(struct lapis_diag *d, const char *dir, int *ret_fd, int *ret_blobsfd)
{
    rm_rf(dir, NULL);
    _cleanup_free_ char *blobs = path_join(dir, "blobs/sha256");
    if (!blobs)
        return LAPIS_OOM(d);
    int r = mkdir_p(blobs, 0755);
    if (r < 0)
        return lapis_err(d, r, "cannot create %s: %s", blobs, strerror(-r));
    *ret_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *ret_blobsfd = open(blobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*ret_fd < 0 || *ret_blobsfd < 0 || fchmod(*ret_fd, 0755) < 0 ||
        fchmodat(*ret_fd, "blobs", 0755, 0) < 0 || fchmod(*ret_blobsfd, 0755) < 0)
        return lapis_err(d, -errno, "cannot open %s: %s", blobs, strerror(errno));
    _cleanup_json_ cJSON *layout = cJSON_Parse("{\"imageLayoutVersion\":\"1.0.0\"}");
    return json_file(d, *ret_fd, "oci-layout", layout);
}

/* ---- the oci-archive tar ------------------------------------------------- */

static int archive_add(struct lapis_diag *d, struct archive *a, struct archive_entry *e,
                       int dirfd, const char *name, const char *path, long long epoch)
{
    struct stat st;
    _cleanup_close_ int fd = -1;
    if (name && ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0))
        return lapis_err(d, -errno, "cannot read %s: %s", path, strerror(errno));
    sym_archive_entry_clear(e);
    sym_archive_entry_copy_pathname(e, path);
    sym_archive_entry_set_filetype(e, name ? AE_IFREG : AE_IFDIR);
    sym_archive_entry_set_perm(e, name ? 0644 : 0755);
    sym_archive_entry_set_mtime(e, epoch, 0);
    sym_archive_entry_set_size(e, name ? st.st_size : 0);
    if (sym_archive_write_header(a, e) < ARCHIVE_WARN)
        return lapis_err(d, -EIO, "cannot write the OCI archive: %s", sym_archive_error_string(a));
    char buf[65536];
    ssize_t n = 0;
    while (name && (n = read(fd, buf, sizeof(buf))) > 0)
        if (sym_archive_write_data(a, buf, (size_t)n) != n)
            return lapis_err(d, -EIO, "cannot write the OCI archive: %s", sym_archive_error_string(a));
    return n < 0 ? lapis_err(d, -errno, "cannot read %s: %s", path, strerror(errno)) : 0;
}

static int blob_names(struct lapis_diag *d, int blobsfd, char ***ret, size_t *ret_n)
{
    struct dirent **list;
    int n = scandirat(blobsfd, ".", &list, NULL, alphasort);
    if (n < 0)
        return lapis_err(d, -errno, "cannot list the OCI blobs: %s", strerror(errno));
    char **names = calloc((size_t)n + 1, sizeof(*names));
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (names && list[i]->d_name[0] != '.')
            names[k++] = strdup(list[i]->d_name);
        free(list[i]);
    }
    free(list);
    if (!names)
        return LAPIS_OOM(d);
    *ret = names;
    *ret_n = k;
    return 0;
}

static int archive_entries(struct lapis_diag *d, struct archive *a, int fd, int blobsfd, long long epoch)
{
    struct archive_entry *e = sym_archive_entry_new();
    char **blobs = NULL;
    size_t n = 0;
    int r = e ? blob_names(d, blobsfd, &blobs, &n) : LAPIS_OOM(d);
    if (r >= 0)
        r = archive_add(d, a, e, -1, NULL, "blobs/", epoch);
    if (r >= 0)
        r = archive_add(d, a, e, -1, NULL, "blobs/sha256/", epoch);
    for (size_t i = 0; r >= 0 && i < n; i++) {
        char path[96];
        if (!blobs[i])
            r = LAPIS_OOM(d);
        else if (snprintf(path, sizeof(path), "blobs/sha256/%s", blobs[i]) >= (int)sizeof(path))
            r = lapis_err(d, -EINVAL, "unexpected OCI blob name %s", blobs[i]);
        else
            r = archive_add(d, a, e, blobsfd, blobs[i], path, epoch);
    }
    if (r >= 0)
        r = archive_add(d, a, e, fd, "index.json", "index.json", epoch);
    if (r >= 0)
        r = archive_add(d, a, e, fd, "oci-layout", "oci-layout", epoch);
    for (size_t i = 0; i < n; i++)
        free(blobs[i]);
    free(blobs);
    sym_archive_entry_free(e);
    return r;
}

/* The layout at fd as a deterministic tar at path (entries sorted, uid/gid 0,
 * mtime epoch), via a temp file renamed into place. */
static int write_archive(struct lapis_diag *d, int fd, int blobsfd, const char *path, long long epoch)
{
    _cleanup_free_ char *tmp = NULL;
    int r = lapis_archive_load(d);
    if (r < 0)
        return r;
    if (asprintf(&tmp, "%s.tmp", path) < 0)
        return LAPIS_OOM(d);
    struct archive *a = sym_archive_write_new();
    if (!a)
        return LAPIS_OOM(d);
    if (sym_archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        sym_archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        sym_archive_write_open_filename(a, tmp) != ARCHIVE_OK)
        r = lapis_err(d, -EIO, "cannot create %s: %s", tmp, sym_archive_error_string(a));
    if (r >= 0)
        r = archive_entries(d, a, fd, blobsfd, epoch);
    if (r >= 0 && sym_archive_write_close(a) != ARCHIVE_OK)
        r = lapis_err(d, -EIO, "cannot write %s: %s", tmp, sym_archive_error_string(a));
    sym_archive_write_free(a);
    if (r >= 0 && chmod(tmp, 0644) < 0)
        r = lapis_err(d, -errno, "cannot write %s: %s", tmp, strerror(errno));
    if (r >= 0 && rename(tmp, path) < 0)
        r = lapis_err(d, -errno, "cannot create %s: %s", path, strerror(errno));
    if (r < 0)
        unlink(tmp);
    return r;
}

/* ---- outputs ------------------------------------------------------------- */

/* Write index.json, the archive if asked, and record the outputs. */
static int layout_finish(struct lapis_image_build *b, const char *base, int fd, int blobsfd, cJSON *index)
{
    _cleanup_json_ cJSON *idx = index;
    int r = json_file(&b->diag, fd, "index.json", idx);
    if (r < 0)
        return r;
    _cleanup_free_ char *dirname = NULL, *tarname = NULL, *tarpath = NULL;
    if (asprintf(&dirname, "%s.oci", base) < 0 || asprintf(&tarname, "%s.oci.tar", base) < 0 ||
        !(tarpath = path_join(b->stagedir, tarname)))
        return LAPIS_OOM(&b->diag);
    if (b->conf->formats & LAPIS_IMAGE_OCI_ARCHIVE) {
        r = write_archive(&b->diag, fd, blobsfd, tarpath, b->epoch);
        if (r < 0)
            return r;
        lapis_image_add_output(b, tarname);
    }
    if (b->conf->formats & LAPIS_IMAGE_OCI)
        lapis_image_add_output(b, dirname);
    return 0;
}

static char *layout_dir(const struct lapis_image_build *b, const char *base)
{
    char *dir = NULL;
    return asprintf(&dir, "%s/%s.oci", b->stagedir, base) < 0 ? NULL : dir;
}

static int write_image(struct lapis_image_build *b, int blobsfd, struct oci_blob *ret_manifest)
{
    const char *oarch, *variant;
    if (oci_platform(b->arch, &oarch, &variant) < 0)
        return lapis_err(&b->diag, -LAPIS_E_CONFIG,
                         "the arch '%s' has no OCI platform name (use x86_64 or aarch64)", b->arch);
    struct oci_layer_result layer = { 0 };
    int r = oci_layer_write(&b->diag, b->rootdir, blobsfd, b->conf->layer_compression, b->epoch, &layer);
    if (r < 0)
        return r;
    struct oci_blob config;
    _cleanup_json_ cJSON *cj = image_config_json(b, &layer);
    r = json_blob(&b->diag, blobsfd, cj, &config);
    if (r < 0)
        return r;
    _cleanup_json_ cJSON *mj = manifest_json(&config, &layer.blob, b->conf->layer_compression);
    return json_blob(&b->diag, blobsfd, mj, ret_manifest);
}

int lapis_image_write_oci(struct lapis_image_build *b)
{
    _cleanup_free_ char *dir = layout_dir(b, b->basename);
    if (!dir)
        return LAPIS_OOM(&b->diag);
    _cleanup_close_ int fd = -1, blobsfd = -1;
    int r = layout_create(&b->diag, dir, &fd, &blobsfd);
    struct oci_blob manifest;
    if (r >= 0)
        r = write_image(b, blobsfd, &manifest);
    if (r < 0)
        return r;
    cJSON *idx = index_json();
    cJSON *entry = idx ? index_entry(&manifest, b->arch, b->conf->version) : NULL;
    if (!entry)
        return cJSON_Delete(idx), LAPIS_OOM(&b->diag);
    cJSON_AddItemToArray(cJSON_GetObjectItem(idx, "manifests"), entry);
    return layout_finish(b, b->basename, fd, blobsfd, idx);
}

/* ---- multi-arch index ---------------------------------------------------- */

/* Hard-link (or copy) every blob of the per-arch layout into blobsfd. */
static int link_blobs(struct lapis_diag *d, const char *srcdir, int blobsfd)
{
    _cleanup_free_ char *src = path_join(srcdir, "blobs/sha256");
    _cleanup_close_ int sfd = src ? open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (sfd < 0)
        return lapis_err(d, -errno, "cannot open %s: %s", src ? src : srcdir, strerror(errno));
    char **names = NULL;
    size_t n = 0;
    int r = blob_names(d, sfd, &names, &n);
    for (size_t i = 0; r >= 0 && i < n; i++) {
        if (!names[i]) {
            r = LAPIS_OOM(d);
        } else if (linkat(sfd, names[i], blobsfd, names[i], 0) < 0 && errno != EEXIST) {
            _cleanup_free_ char *buf = NULL;
            size_t len;
            _cleanup_free_ char *p = path_join(src, names[i]);
            r = p ? read_file(p, 1ULL << 40, &buf, &len) : -ENOMEM;
            r = r < 0 ? lapis_err(d, r, "cannot copy the OCI blob %s: %s", names[i], strerror(-r))
                      : write_file_at(blobsfd, names[i], buf, len, 0644);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return r;
}

/* The manifest entry of a per-arch layout's index.json, detached. */
static int arch_entry(struct lapis_diag *d, const char *dir, cJSON **ret)
{
    _cleanup_free_ char *p = path_join(dir, "index.json"), *buf = NULL;
    size_t len;
    int r = p ? read_file(p, 1 << 20, &buf, &len) : -ENOMEM;
    if (r < 0)
        return lapis_err(d, r, "cannot read %s: %s", p ? p : dir, strerror(-r));
    _cleanup_json_ cJSON *j = cJSON_Parse(buf);
    cJSON *m = cJSON_GetObjectItem(j, "manifests");
    if (!cJSON_GetArrayItem(m, 0))
        return lapis_err(d, -EINVAL, "%s has no manifest", p);
    *ret = cJSON_DetachItemFromArray(m, 0);
    cJSON_DeleteItemFromObject(*ret, "annotations");
    return 0;
}

int lapis_image_write_oci_index(struct lapis_image_build *builds, size_t n)
{
    if (n == 0)
        return -EINVAL;
    struct lapis_image_build *last = &builds[n - 1];
    _cleanup_free_ char *base = NULL;
    if (asprintf(&base, "%s-%s", last->conf->name, last->conf->version) < 0)
        return LAPIS_OOM(&last->diag);
    _cleanup_free_ char *dir = layout_dir(last, base);
    if (!dir)
        return LAPIS_OOM(&last->diag);
    _cleanup_close_ int fd = -1, blobsfd = -1;
    int r = layout_create(&last->diag, dir, &fd, &blobsfd);
    cJSON *idx = r >= 0 ? index_json() : NULL;
    for (size_t i = 0; r >= 0 && i < n; i++) {
        _cleanup_free_ char *archdir = layout_dir(&builds[i], builds[i].basename);
        cJSON *entry = NULL;
        r = archdir ? link_blobs(&last->diag, archdir, blobsfd) : LAPIS_OOM(&last->diag);
        if (r >= 0)
            r = arch_entry(&last->diag, archdir, &entry);
        if (r >= 0)
            cJSON_AddItemToArray(cJSON_GetObjectItem(idx, "manifests"), entry);
    }
    /* The per-arch manifests go into an index blob, which index.json names
     * VERSION: one ref, as `skopeo copy --all` lays out a multi-arch image. */
    struct oci_blob list;
    if (r >= 0)
        r = json_blob(&last->diag, blobsfd, idx, &list);
    cJSON_Delete(idx);
    if (r < 0)
        return r;
    idx = index_json();
    cJSON *entry = idx ? descriptor(MT_INDEX, &list) : NULL;
    if (!entry)
        return cJSON_Delete(idx), LAPIS_OOM(&last->diag);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(entry, "annotations"), ANN "ref.name",
                            last->conf->version);
    cJSON_AddItemToArray(cJSON_GetObjectItem(idx, "manifests"), entry);
    return layout_finish(last, base, fd, blobsfd, idx);
}
