/*
 * The bundle writer (docs/sysupdate.md "Bundle format"): a usr erofs image,
 * its dm-verity tree (veritysetup format, salt and uuid derived from the
 * image's sha256 so the same image gives the same bytes) and a UKI become
 * DIR/VERSION/{manifest,manifest.sig,*.zst}; `index` signs the list of the
 * bundles in DIR. Payloads are independent zstd frames of chunk-size bytes,
 * each listed with its digest, so the agent verifies and resumes per frame.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/strv.h"
#include "lapis/common.h"
#include "shared/digest.h"
#include "sysupdate/sysupdate.h"

static int tool(struct lapis_diag *d, char **argv, const char *pkg, char **ret_out)
{
    struct lapis_spawn_opts o = { .stdin_fd = -1, .stdout_fd = -1 };
    _cleanup_free_ char *err = NULL;
    int r = lapis_spawn(argv, &o, ret_out, &err);
    if (r == -ENOENT)
        return lapis_err(d, LAPIS_E_CONFIG, "%s is not installed (Debian package %s)", argv[0], pkg);
    if (r != 0)
        return lapis_err(d, LAPIS_E_CONFIG, "%s failed: %s", argv[0],
                         r < 0 ? strerror(-r) : lapis_spawn_last_line(err));
    return 0;
}

/* veritysetup format with a salt and uuid of the image's own digest. */
static int make_verity(struct lapis_diag *d, const char *usr, const char *out, const char *salt,
                       char ret_root[SU_HEX])
{
    _cleanup_free_ char *s = xasprintf("--salt=%s", salt);
    _cleanup_free_ char *u = xasprintf("--uuid=%.8s-%.4s-%.4s-%.4s-%.12s", salt, salt + 8, salt + 12,
                                       salt + 16, salt + 20);
    _cleanup_free_ char *so = NULL;
    char *argv[] = { "veritysetup", "format", "--hash=sha256", "--format=1", "--data-block-size=4096",
                     "--hash-block-size=4096", s, u, (char *)usr, (char *)out, NULL };
    unlink(out);
    int r = tool(d, argv, "cryptsetup-bin", &so);
    if (r < 0)
        return r;
    const char *p = strstr(so, "Root hash:");
    if (!p || sscanf(p, "Root hash: %64[0-9a-f]", ret_root) != 1)
        return lapis_err(d, LAPIS_E_CONFIG, "veritysetup format printed no root hash");
    return 0;
}

struct zout { FILE *f; lapis_hasher *zh, *h; long long size, zsize; FILE *lines; const char *name; };

static int compress_chunk(struct lapis_diag *d, struct zout *z, ZSTD_CCtx *cc, const void *in,
                          size_t n, void *zbuf, size_t zcap)
{
    size_t zn = ZSTD_compress2(cc, zbuf, zcap, in, n);
    if (ZSTD_isError(zn))
        return lapis_err(d, -EIO, "zstd: %s", ZSTD_getErrorName(zn));
    char hex[SU_HEX];
    lapis_chk_buf(zbuf, zn, LAPIS_CHK_SHA256, hex, sizeof(hex));
    if (fwrite(zbuf, 1, zn, z->f) != zn)
        return lapis_err(d, -errno, "cannot write %s.zst: %s", z->name, strerror(errno));
    lapis_hasher_update(z->h, in, n);
    lapis_hasher_update(z->zh, zbuf, zn);
    z->size += (long long)n;
    z->zsize += (long long)zn;
    fprintf(z->lines, "chunk %s %zu %s\n", z->name, zn, hex);
    return 0;
}

/* src -> dir/name.zst; the payload line and its chunk lines go to manifest. */
static int compress_file(struct lapis_diag *d, const struct su_bundle_opts *o, const char *src,
                         const char *dir, const char *name, FILE *manifest)
{
    _cleanup_fclose_ FILE *in = fopen(src, "re");
    _cleanup_free_ char *dst = xasprintf("%s/%s.zst", dir, name), *chunks = NULL;
    size_t clen = 0;
    if (!in)
        return lapis_err(d, -errno, "cannot read %s: %s", src, strerror(errno));
    struct zout z = { .f = fopen(dst, "we"), .zh = lapis_hasher_new(LAPIS_CHK_SHA256),
                      .h = lapis_hasher_new(LAPIS_CHK_SHA256), .lines = open_memstream(&chunks, &clen),
                      .name = name };
    size_t cs = (size_t)o->chunk_size, zcap = ZSTD_compressBound(cs);
    _cleanup_free_ void *buf = xmalloc(cs), *zbuf = xmalloc(zcap);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, o->level);
    int r = z.f ? 0 : lapis_err(d, -errno, "cannot create %s: %s", dst, strerror(errno));
    for (size_t n; r >= 0 && (n = fread(buf, 1, cs, in)) > 0;)
        r = compress_chunk(d, &z, cc, buf, n, zbuf, zcap);
    ZSTD_freeCCtx(cc);
    fclose(z.lines);
    if (z.f && fclose(z.f) != 0 && r >= 0)
        r = lapis_err(d, -errno, "cannot write %s: %s", dst, strerror(errno));
    char h[SU_HEX], zh[SU_HEX];
    lapis_hasher_final_hex(z.h, h, sizeof(h));
    lapis_hasher_final_hex(z.zh, zh, sizeof(zh));
    lapis_hasher_free(z.h);
    lapis_hasher_free(z.zh);
    if (r >= 0)
        fprintf(manifest, "payload %s %s.zst %lld %s %lld %s\n%s", name, name, z.size, h, z.zsize,
                zh, chunks);
    return r;
}

static int write_signed(struct lapis_diag *d, const char *key, const char *path, const char *text,
                        size_t len)
{
    _cleanup_free_ char *sig = NULL, *sigpath = xasprintf("%s.sig", path);
    int r = su_sig_make(d, key, text, len, &sig);
    if (r >= 0 && ((r = write_file_atomic(path, text, len)) < 0 ||
                   (r = write_file_atomic(sigpath, sig, strlen(sig))) < 0))
        return lapis_err(d, r, "cannot write %s: %s", path, strerror(-r));
    return r;
}

static int bundle_payloads(struct lapis_diag *d, const struct su_bundle_opts *o, const char *dir,
                           const char *salt, FILE *m, char root[SU_HEX])
{
    _cleanup_free_ char *verity = xasprintf("%s/.usr-verity.img", dir);
    int r = make_verity(d, o->usr, verity, salt, root);
    fprintf(m, "verity-root-hash %s\nverity-salt %s\nverity-block-size 4096\nchunk-size %lld\n",
            root, salt, o->chunk_size);
    if (r >= 0)
        r = compress_file(d, o, o->usr, dir, "usr", m);
    if (r >= 0)
        r = compress_file(d, o, verity, dir, "usr-verity", m);
    if (r >= 0)
        r = compress_file(d, o, o->uki, dir, "uki", m);
    unlink(verity);
    return r;
}

int su_bundle_write(struct lapis_diag *d, const struct su_bundle_opts *o, char ret_root[SU_HEX])
{
    struct stat sb;
    char salt[SU_HEX];
    if (!su_version_valid(o->version) || (o->min_from && !su_version_valid(o->min_from)))
        return lapis_err(d, LAPIS_E_USAGE, "a version is digits, letters, '.', '_' and '~', starting "
                         "with a digit");
    if (stat(o->usr, &sb) < 0 || sb.st_size == 0 || sb.st_size % 4096)
        return lapis_err(d, LAPIS_E_USAGE, "%s: the usr image must exist and be a whole number of "
                         "4096-byte blocks", o->usr);
    int r = lapis_chk_file(o->usr, LAPIS_CHK_SHA256, salt, sizeof(salt));
    _cleanup_free_ char *dir = path_join(o->outdir, o->version), *mpath = path_join(dir, "manifest");
    if (r < 0 || (r = mkdir_p(dir, 0755)) < 0)
        return lapis_err(d, r, "cannot prepare %s: %s", dir, strerror(-r));
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    fprintf(m, "lapis-bundle 1\nversion %s\narch %s\n", o->version, o->arch);
    if (o->min_from)
        fprintf(m, "min-from-version %s\n", o->min_from);
    r = bundle_payloads(d, o, dir, salt, m, ret_root);
    fclose(m);
    if (r >= 0)
        r = write_signed(d, o->key, mpath, text, len);
    free(text);
    return r;
}

/* ---- the index ---- */

static int index_entry(struct lapis_diag *d, const char *dir, const char *name, char ***lines)
{
    _cleanup_free_ char *rel = xasprintf("%s/manifest", name), *path = path_join(dir, rel);
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (read_file(path, SU_MANIFEST_MAX, &text, &len) < 0)
        return 0; /* not a bundle directory */
    struct su_manifest m;
    int r = su_manifest_parse(d, text, &m);
    if (r < 0) {
        _cleanup_free_ char *why = xstrdup(lapis_diag_error(d));
        return lapis_err(d, r, "%s: %s", path, why);
    }
    char sha[SU_HEX];
    lapis_chk_buf(text, len, LAPIS_CHK_SHA256, sha, sizeof(sha));
    strv_push(lines, xasprintf("bundle %s %s %s %s\n", m.version, m.arch, rel, sha));
    su_manifest_clear(&m);
    return 0;
}

int su_bundle_index(struct lapis_diag *d, const char *key, const char *dir, long long issued,
                   long long valid)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort), r = 0;
    if (n < 0)
        return lapis_err(d, -errno, "cannot read %s: %s", dir, strerror(errno));
    char **lines = NULL;
    for (int i = 0; i < n; i++) {
        if (r >= 0 && ents[i]->d_name[0] != '.')
            r = index_entry(d, dir, ents[i]->d_name, &lines);
        free(ents[i]);
    }
    free(ents);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fprintf(f, "lapis-index 1\nissued %lld\nexpires %lld\n", issued, issued + valid);
    for (size_t i = 0; lines && lines[i]; i++)
        fputs(lines[i], f);
    fclose(f);
    lapis_strv_free(lines);
    _cleanup_free_ char *path = path_join(dir, "index");
    if (r >= 0)
        r = write_signed(d, key, path, text, len);
    free(text);
    return r;
}
