/*
 * The image's SBOM: SPDX 2.3 JSON, BASENAME.spdx.json in the staging dir.
 * One package for the image, one per installed RPM (name, [E:]V-R, supplier,
 * declared license, the .rpm's sha256, a pkg:rpm purl), the document
 * DESCRIBES the image, the image CONTAINS each package. Everything is derived
 * from the build object and b->epoch, in a fixed order, so the same inputs
 * give the same bytes (no random namespace UUID, no wall clock).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "basic/alloc.h"
#include "basic/strv.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "image/sbom.h"
#include "shared/digest.h"

#ifndef LAPIS_VERSION
#define LAPIS_VERSION "0.0.0"
#endif

/* ---- small string builder ------------------------------------------------ */

static void sbuf_putc(struct strbuf *b, char c)
{
    strbuf_add(b, &c, 1);
}

static void sbuf_puts(struct strbuf *b, const char *s)
{
    for (; s && *s; s++)
        sbuf_putc(b, *s);
}

static void sbuf_hex(struct strbuf *b, const char *pfx, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";

    sbuf_puts(b, pfx);
    sbuf_putc(b, hex[c >> 4]);
    sbuf_putc(b, hex[c & 15]);
}

static char *sbuf_take(struct strbuf *b)
{
    return b->s ? b->s : xstrdup("");
}

/* ---- ids and purls --------------------------------------------------------- */

static bool is_idchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-';
}

/* SPDX idstrings allow only [A-Za-z0-9.-]; anything else becomes -XX. */
static void put_idstring(struct strbuf *b, const char *s)
{
    for (; *s; s++) {
        if (is_idchar((unsigned char)*s))
            sbuf_putc(b, *s);
        else
            sbuf_hex(b, "-", (unsigned char)*s);
    }
}

static char *pkg_evr(const struct lapis_image_pkg *p)
{
    if (p->epoch)
        return xasprintf("%u:%s-%s", p->epoch, p->version, p->release);
    return xasprintf("%s-%s", p->version, p->release);
}

char *lapis_image_sbom_spdxid(const struct lapis_image_pkg *p)
{
    _cleanup_free_ char *evr = pkg_evr(p);
    _cleanup_free_ char *nevra = xasprintf("%s-%s.%s", p->name, evr, p->arch);
    struct strbuf b = { 0 };

    sbuf_puts(&b, "SPDXRef-Package-rpm-");
    put_idstring(&b, nevra);
    return sbuf_take(&b);
}

/* purl components: everything but the RFC 3986 unreserved set is %XX. */
static void put_purl_part(struct strbuf *b, const char *s, bool lower)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (lower && c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (is_idchar(c) || c == '_' || c == '~')
            sbuf_putc(b, (char)c);
        else
            sbuf_hex(b, "%", c);
    }
}

char *lapis_image_sbom_purl(const struct lapis_image_pkg *p, const char *distro)
{
    _cleanup_free_ char *vr = xasprintf("%s-%s", p->version, p->release);
    struct strbuf b = { 0 };

    sbuf_puts(&b, "pkg:rpm/");
    if (p->vendor && *p->vendor) {
        put_purl_part(&b, p->vendor, true);
        sbuf_putc(&b, '/');
    }
    put_purl_part(&b, p->name, false);
    sbuf_putc(&b, '@');
    put_purl_part(&b, vr, false);
    /* qualifiers sorted by key, as the purl spec's canonical form asks */
    sbuf_puts(&b, "?arch=");
    put_purl_part(&b, p->arch, false);
    if (distro && *distro) {
        sbuf_puts(&b, "&distro=");
        put_purl_part(&b, distro, false);
    }
    if (p->epoch) {
        _cleanup_free_ char *e = xasprintf("%u", p->epoch);
        sbuf_puts(&b, "&epoch=");
        sbuf_puts(&b, e);
    }
    return sbuf_take(&b);
}

/* ---- licenses -------------------------------------------------------------- */

/* SPDX license list ids accepted as such (matched case-insensitively, as the
 * spec says). An id not listed here makes the whole string "not SPDX": it is
 * then kept verbatim as a LicenseRef, never passed off as an SPDX id. */
static const char *const spdx_ids[] = {
    "0BSD", "AFL-2.1", "AFL-3.0", "AGPL-3.0", "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-1.1",
    "Apache-2.0", "APSL-2.0", "Artistic-1.0", "Artistic-1.0-Perl", "Artistic-2.0", "Beerware",
    "BSD-1-Clause", "BSD-2-Clause", "BSD-2-Clause-Patent", "BSD-3-Clause", "BSD-3-Clause-Clear",
    "BSD-4-Clause", "BSD-4-Clause-UC", "BSD-Source-Code", "BSL-1.0", "bzip2-1.0.6", "CC-BY-3.0",
    "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC0-1.0", "CDDL-1.0", "CDDL-1.1", "CECILL-2.1",
    "curl", "EPL-1.0", "EPL-2.0", "EUPL-1.1", "EUPL-1.2", "FSFAP", "FSFUL", "FSFULLR", "FTL",
    "GFDL-1.1-or-later", "GFDL-1.2-or-later", "GFDL-1.3-only", "GFDL-1.3-or-later", "GPL-1.0",
    "GPL-1.0-only", "GPL-1.0-or-later", "GPL-2.0", "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0",
    "GPL-3.0-only", "GPL-3.0-or-later", "HPND", "HPND-sell-variant", "IJG", "ISC", "LGPL-2.0",
    "LGPL-2.0-only", "LGPL-2.0-or-later", "LGPL-2.1", "LGPL-2.1-only", "LGPL-2.1-or-later",
    "LGPL-3.0", "LGPL-3.0-only", "LGPL-3.0-or-later", "Libpng", "libpng-2.0", "libtiff",
    "LPPL-1.3c", "MirOS", "MIT", "MIT-0", "MIT-CMU", "MIT-open-group", "MPL-1.1", "MPL-2.0",
    "NCSA", "NTP", "OFL-1.1", "OpenSSL", "PHP-3.01", "PostgreSQL", "PSF-2.0", "Python-2.0",
    "Ruby", "Sleepycat", "SMLNJ", "TCL", "Unicode-DFS-2016", "Unicode-3.0", "Unlicense", "UPL-1.0",
    "Vim", "W3C", "WTFPL", "X11", "Xnet", "Zlib", "zlib-acknowledgement", "ZPL-2.1",
};

static const char *const spdx_exceptions[] = {
    "Autoconf-exception-2.0", "Autoconf-exception-3.0", "Bison-exception-2.2",
    "Classpath-exception-2.0", "eCos-exception-2.0", "Font-exception-2.0", "GCC-exception-2.0",
    "GCC-exception-3.1", "GPL-3.0-linking-exception", "LGPL-3.0-linking-exception",
    "Libtool-exception", "Linux-syscall-note", "LLVM-exception", "OpenJDK-assembly-exception-1.0",
    "openvpn-openssl-exception", "Qt-LGPL-exception-1.1", "u-boot-exception-2.0",
    "WxWindows-exception-3.1",
};

static bool in_list(const char *const *list, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && strncasecmp(list[i], s, len) == 0)
            return true;
    return false;
}

struct lexer {
    const char *p;
    const char *tok;
    size_t len;
};

static void lex_next(struct lexer *l)
{
    while (*l->p == ' ')
        l->p++;
    l->tok = l->p;
    if (*l->p == '(' || *l->p == ')')
        l->p++;
    else
        while (*l->p && *l->p != ' ' && *l->p != '(' && *l->p != ')')
            l->p++;
    l->len = (size_t)(l->p - l->tok);
}

static bool lex_is(const struct lexer *l, const char *word)
{
    return l->len == strlen(word) && strncmp(l->tok, word, l->len) == 0;
}

static bool idstring_ok(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_idchar((unsigned char)s[i]))
            return false;
    return true;
}

/* A license id (with an optional "+"), LicenseRef-x or DocumentRef-x:LicenseRef-y. */
static bool simple_ok(const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);

    if (len > 11 && strncmp(s, "LicenseRef-", 11) == 0)
        return idstring_ok(s + 11, len - 11);
    if (colon && len > 12 && strncmp(s, "DocumentRef-", 12) == 0)
        return idstring_ok(s + 12, (size_t)(colon - s) - 12) &&
               simple_ok(colon + 1, len - (size_t)(colon + 1 - s)) &&
               strncmp(colon + 1, "LicenseRef-", 11) == 0;
    if (len > 1 && s[len - 1] == '+')
        len--;
    return in_list(spdx_ids, ARRAY_SIZE(spdx_ids), s, len);
}

static bool parse_or(struct lexer *l, int depth);

static bool parse_with(struct lexer *l, int depth)
{
    if (lex_is(l, "(")) {
        lex_next(l);
        if (!parse_or(l, depth + 1) || !lex_is(l, ")"))
            return false;
        lex_next(l);
        return true;
    }
    if (l->len == 0 || !simple_ok(l->tok, l->len))
        return false;
    lex_next(l);
    if (!lex_is(l, "WITH"))
        return true;
    lex_next(l);
    if (!in_list(spdx_exceptions, ARRAY_SIZE(spdx_exceptions), l->tok, l->len))
        return false;
    lex_next(l);
    return true;
}

static bool parse_and(struct lexer *l, int depth)
{
    if (!parse_with(l, depth))
        return false;
    while (lex_is(l, "AND")) {
        lex_next(l);
        if (!parse_with(l, depth))
            return false;
    }
    return true;
}

static bool parse_or(struct lexer *l, int depth)
{
    if (depth > 32 || !parse_and(l, depth))
        return false;
    while (lex_is(l, "OR")) {
        lex_next(l);
        if (!parse_and(l, depth))
            return false;
    }
    return true;
}

bool lapis_image_sbom_license_is_spdx(const char *s)
{
    struct lexer l = { .p = s };

    if (!s || strpbrk(s, "\t\n\r"))
        return false;
    lex_next(&l);
    return parse_or(&l, 0) && l.len == 0;
}

char *lapis_image_sbom_license_ref(const char *text)
{
    char hex[65];

    if (lapis_chk_buf(text, strlen(text), LAPIS_CHK_SHA256, hex, sizeof(hex)) < 0)
        hex[0] = '\0';
    hex[16] = '\0';
    return xasprintf("LicenseRef-rpm-%s", hex);
}

/* ---- the document ---------------------------------------------------------- */

void lapis_image_format_utc(long long epoch, char *buf, size_t len)
{
    time_t t = (time_t)epoch;
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "1970-01-01T00:00:00Z");
}

struct sbom_pkg {
    const struct lapis_image_pkg *p;
    char *spdxid;
};

static int cmp_sbom_pkg(const void *a, const void *b)
{
    return strcmp(((const struct sbom_pkg *)a)->spdxid, ((const struct sbom_pkg *)b)->spdxid);
}

static void add_str(cJSON *o, const char *key, const char *val)
{
    cJSON_AddItemToObject(o, key, cJSON_CreateString(val && *val ? val : "NOASSERTION"));
}

static char *image_spdxid(const struct lapis_image_build *b)
{
    struct strbuf s = { 0 };

    sbuf_puts(&s, "SPDXRef-Image-");
    put_idstring(&s, b->basename);
    return sbuf_take(&s);
}

static void hex_of(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* The namespace must be unique per document yet reproducible: it is derived
 * from the image's name, version, arch, config digest and the exact package
 * set (a rebuild of the same config against changed repos is another
 * document). The epoch is left out: it only dates the document. */
static char *document_namespace(const struct lapis_image_build *b, const struct sbom_pkg *v,
                                size_t n)
{
    char conf[65], hex[65];
    struct strbuf s = { 0 };

    hex_of(b->conf->sha256, sizeof(b->conf->sha256), conf);
    sbuf_puts(&s, conf);
    for (size_t i = 0; i < n; i++) {
        sbuf_putc(&s, '\n');
        sbuf_puts(&s, v[i].spdxid);
        sbuf_putc(&s, ' ');
        sbuf_puts(&s, v[i].p->sha256);
    }
    if (lapis_chk_buf(s.s, s.len, LAPIS_CHK_SHA256, hex, sizeof(hex)) < 0)
        hex[0] = '\0';
    free(s.s);
    return xasprintf("https://lapis.invalid/spdxdocs/%s-%s", b->basename, hex);
}

static cJSON *image_package(const struct lapis_image_build *b, const char *id)
{
    cJSON *o = cJSON_CreateObject();
    bool bootable = b->conf->formats & LAPIS_IMAGE_BOOT_FORMATS;

    add_str(o, "SPDXID", id);
    add_str(o, "name", b->conf->name);
    add_str(o, "versionInfo", b->conf->version);
    add_str(o, "supplier", NULL);
    add_str(o, "downloadLocation", NULL);
    cJSON_AddFalseToObject(o, "filesAnalyzed");
    add_str(o, "licenseConcluded", NULL);
    add_str(o, "licenseDeclared", NULL);
    add_str(o, "copyrightText", NULL);
    add_str(o, "primaryPackagePurpose", bootable ? "OPERATING_SYSTEM" : "CONTAINER");
    return o;
}

/* The declared license: the RPM's string when it is an SPDX expression, else a
 * LicenseRef whose text is recorded in refs (once per distinct text). */
static char *declared_license(const char *lic, cJSON *refs)
{
    char *ref;
    cJSON *e;

    if (!lic || !*lic)
        return xstrdup("NOASSERTION");
    if (lapis_image_sbom_license_is_spdx(lic))
        return xstrdup(lic);
    ref = lapis_image_sbom_license_ref(lic);
    if (!cJSON_GetObjectItemCaseSensitive(refs, ref)) {
        e = cJSON_CreateObject();
        add_str(e, "licenseId", ref);
        add_str(e, "extractedText", lic);
        add_str(e, "comment", "The RPM License tag, which is not an SPDX license expression.");
        cJSON_AddItemToObject(refs, ref, e);
    }
    return ref;
}

static cJSON *rpm_package(const struct lapis_image_build *b, const struct sbom_pkg *sp,
                          cJSON *refs)
{
    const struct lapis_image_pkg *p = sp->p;
    _cleanup_free_ char *evr = pkg_evr(p);
    _cleanup_free_ char *supplier = p->vendor && *p->vendor
                                        ? xasprintf("Organization: %s", p->vendor) : NULL;
    _cleanup_free_ char *lic = declared_license(p->license, refs);
    _cleanup_free_ char *purl = lapis_image_sbom_purl(p, b->conf->releasever);
    _cleanup_free_ char *src = p->sourcerpm && *p->sourcerpm
                                   ? xasprintf("built from the source RPM %s", p->sourcerpm) : NULL;
    cJSON *o = cJSON_CreateObject(), *a, *e;

    add_str(o, "SPDXID", sp->spdxid);
    add_str(o, "name", p->name);
    add_str(o, "versionInfo", evr);
    add_str(o, "supplier", supplier);
    add_str(o, "downloadLocation", NULL);
    cJSON_AddFalseToObject(o, "filesAnalyzed");
    if (p->sha256 && *p->sha256) {
        cJSON_AddItemToObject(o, "checksums", a = cJSON_CreateArray());
        cJSON_AddItemToArray(a, e = cJSON_CreateObject());
        add_str(e, "algorithm", "SHA256");
        add_str(e, "checksumValue", p->sha256);
    }
    if (p->url && *p->url)
        add_str(o, "homepage", p->url);
    if (src)
        add_str(o, "sourceInfo", src);
    add_str(o, "licenseConcluded", NULL);
    add_str(o, "licenseDeclared", lic);
    add_str(o, "copyrightText", NULL);
    cJSON_AddItemToObject(o, "externalRefs", a = cJSON_CreateArray());
    cJSON_AddItemToArray(a, e = cJSON_CreateObject());
    add_str(e, "referenceCategory", "PACKAGE-MANAGER");
    add_str(e, "referenceType", "purl");
    add_str(e, "referenceLocator", purl);
    return o;
}

static cJSON *relationship(const char *from, const char *type, const char *to)
{
    cJSON *o = cJSON_CreateObject();

    add_str(o, "spdxElementId", from);
    add_str(o, "relationshipType", type);
    add_str(o, "relatedSpdxElement", to);
    return o;
}

static int cmp_json_id(const void *a, const void *b)
{
    const cJSON *x = *(cJSON *const *)a, *y = *(cJSON *const *)b;

    return strcmp(x->string, y->string);
}

/* The extracted licenses, as an array sorted by licenseId. */
static cJSON *sorted_refs(cJSON *refs)
{
    int n = cJSON_GetArraySize(refs);
    _cleanup_free_ cJSON **v = xcalloc((size_t)n + 1, sizeof(*v));
    cJSON *a = cJSON_CreateArray(), *e;
    int i = 0;

    cJSON_ArrayForEach(e, refs)
        v[i++] = e;
    qsort(v, (size_t)n, sizeof(*v), cmp_json_id);
    for (i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_DetachItemViaPointer(refs, v[i]));
    return a;
}

static void add_packages(const struct lapis_image_build *b, cJSON *doc, const char *image_id,
                         const struct sbom_pkg *v, size_t n)
{
    cJSON *pkgs = cJSON_CreateArray(), *rels = cJSON_CreateArray(), *refs = cJSON_CreateObject();
    bool image_done = false;

    /* packages sorted by SPDXID, the image's among them */
    for (size_t i = 0; i <= n; i++) {
        if (!image_done && (i == n || strcmp(image_id, v[i].spdxid) < 0)) {
            cJSON_AddItemToArray(pkgs, image_package(b, image_id));
            image_done = true;
        }
        if (i < n)
            cJSON_AddItemToArray(pkgs, rpm_package(b, &v[i], refs));
    }
    cJSON_AddItemToArray(rels, relationship("SPDXRef-DOCUMENT", "DESCRIBES", image_id));
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(rels, relationship(image_id, "CONTAINS", v[i].spdxid));
    cJSON_AddItemToObject(doc, "packages", pkgs);
    if (cJSON_GetArraySize(refs) > 0)
        cJSON_AddItemToObject(doc, "hasExtractedLicensingInfos", sorted_refs(refs));
    cJSON_AddItemToObject(doc, "relationships", rels);
    cJSON_Delete(refs);
}

static cJSON *document(const struct lapis_image_build *b, const struct sbom_pkg *v, size_t n)
{
    _cleanup_free_ char *ns = document_namespace(b, v, n);
    _cleanup_free_ char *image_id = image_spdxid(b);
    cJSON *doc = cJSON_CreateObject(), *ci, *cr;
    char created[32];

    lapis_image_format_utc(b->epoch, created, sizeof(created));
    add_str(doc, "spdxVersion", "SPDX-2.3");
    add_str(doc, "dataLicense", "CC0-1.0");
    add_str(doc, "SPDXID", "SPDXRef-DOCUMENT");
    add_str(doc, "name", b->basename);
    add_str(doc, "documentNamespace", ns);
    cJSON_AddItemToObject(doc, "creationInfo", ci = cJSON_CreateObject());
    add_str(ci, "created", created);
    cJSON_AddItemToObject(ci, "creators", cr = cJSON_CreateArray());
    cJSON_AddItemToArray(cr, cJSON_CreateString("Tool: lapis-" LAPIS_VERSION));
    add_packages(b, doc, image_id, v, n);
    return doc;
}

static void free_sbom_pkgs(struct sbom_pkg *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].spdxid);
    free(v);
}

int lapis_image_sbom_render(struct lapis_image_build *b, char **ret)
{
    struct sbom_pkg *v = xcalloc(b->npkgs + 1, sizeof(*v));
    cJSON *doc;
    char *text;
    int r = 0;

    for (size_t i = 0; i < b->npkgs; i++) {
        v[i].p = &b->pkgs[i];
        v[i].spdxid = lapis_image_sbom_spdxid(&b->pkgs[i]);
    }
    qsort(v, b->npkgs, sizeof(*v), cmp_sbom_pkg);
    for (size_t i = 1; i < b->npkgs && r == 0; i++)
        if (strcmp(v[i - 1].spdxid, v[i].spdxid) == 0)
            r = lapis_err(&b->diag, -EEXIST, "SBOM: two installed packages have the SPDX id %s "
                          "(the same NEVRA twice in the package set)", v[i].spdxid);
    if (r == 0) {
        doc = document(b, v, b->npkgs);
        text = cJSON_Print(doc);
        cJSON_Delete(doc);
        if (!text)
            r = LAPIS_OOM(&b->diag);
        else
            *ret = xasprintf("%s\n", text);
        free(text);
    }
    free_sbom_pkgs(v, b->npkgs);
    return r;
}

int lapis_image_write_sbom(struct lapis_image_build *b)
{
    _cleanup_free_ char *name = xasprintf("%s.spdx.json", b->basename);
    _cleanup_free_ char *text = NULL;
    _cleanup_close_ int dfd = -1;
    int r;

    if ((r = lapis_image_sbom_render(b, &text)) < 0)
        return r;
    dfd = open(b->stagedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return lapis_err(&b->diag, -errno, "cannot open the staging dir %s: %s", b->stagedir,
                         strerror(errno));
    if ((r = write_file_at(dfd, name, text, strlen(text), 0644)) < 0)
        return lapis_err(&b->diag, r, "cannot write %s/%s: %s", b->stagedir, name, strerror(-r));
    lapis_image_add_output(b, name);
    return 0;
}
