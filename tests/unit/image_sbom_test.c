/* The SBOM (src/image/sbom.c) and the provenance record (provenance.c) from a
 * hand-made build object: SPDX ids, purls, the license decision, the
 * document's fixed parts, and image.json written and read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "basic/fs.h"
#include "image/image.h"
#include "image/sbom.h"

/* build.c (the orchestrator) owns the real one; weak so it wins when linked. */
__attribute__((weak)) void lapis_image_add_output(struct lapis_image_build *b, const char *name)
{
    size_t n = 0;

    while (b->outputs && b->outputs[n])
        n++;
    b->outputs = realloc(b->outputs, (n + 2) * sizeof(char *));
    b->outputs[n] = strdup(name);
    b->outputs[n + 1] = NULL;
}

static struct lapis_image_pkg pkgs[] = {
    { .name = "bash", .version = "5.2.15", .release = "2", .arch = "x86_64", .repo = "base",
      .sha256 = "1111111111111111111111111111111111111111111111111111111111111111",
      .license = "GPL-3.0-or-later", .vendor = "Fedora Project", .sourcerpm = "bash-5.2.15-2.src.rpm",
      .url = "https://www.gnu.org/software/bash" },
    { .name = "libstdc++6", .version = "12.2.0", .release = "14", .arch = "x86_64", .repo = "base",
      .sha256 = "2222222222222222222222222222222222222222222222222222222222222222",
      .license = "see /usr/share/doc/libstdc++6/copyright" },
    { .name = "shadow-utils", .epoch = 2, .version = "4.13", .release = "1~rc1", .arch = "x86_64",
      .repo = "base", .sha256 = "3333333333333333333333333333333333333333333333333333333333333333",
      .license = "BSD-3-Clause AND GPL-2.0-or-later", .vendor = "Fedora Project" },
};

static struct lapis_image_config conf = {
    .name = "server", .version = "1.0", .releasever = "40",
    .formats = LAPIS_IMAGE_RAW | LAPIS_IMAGE_OCI,
};

static struct lapis_image_build make_build(void)
{
    struct lapis_image_build b = { .conf = &conf, .arch = "x86_64", .basename = "server-1.0.x86_64",
                                   .epoch = 1700000000, .pkgs = pkgs, .npkgs = 3 };
    return b;
}

static void test_spdxids(void **state)
{
    char *a = lapis_image_sbom_spdxid(&pkgs[0]), *b = lapis_image_sbom_spdxid(&pkgs[1]),
         *c = lapis_image_sbom_spdxid(&pkgs[2]);

    assert_string_equal(a, "SPDXRef-Package-rpm-bash-5.2.15-2.x86-5F64");
    assert_string_equal(b, "SPDXRef-Package-rpm-libstdc-2B-2B6-12.2.0-14.x86-5F64");
    assert_string_equal(c, "SPDXRef-Package-rpm-shadow-utils-2-3A4.13-1-7Erc1.x86-5F64");
    free(a), free(b), free(c);
}

static void test_purls(void **state)
{
    char *a = lapis_image_sbom_purl(&pkgs[0], "40"), *b = lapis_image_sbom_purl(&pkgs[1], NULL),
         *c = lapis_image_sbom_purl(&pkgs[2], "40");

    assert_string_equal(a, "pkg:rpm/fedora%20project/bash@5.2.15-2?arch=x86_64&distro=40");
    assert_string_equal(b, "pkg:rpm/libstdc%2B%2B6@12.2.0-14?arch=x86_64");
    assert_string_equal(c, "pkg:rpm/fedora%20project/shadow-utils@4.13-1~rc1?arch=x86_64&distro=40&epoch=2");
    free(a), free(b), free(c);
}

static void test_license_decision(void **state)
{
    static const char *const yes[] = {
        "MIT", "GPL-2.0+ OR MIT", "(MIT AND BSD-3-Clause) OR Apache-2.0", "mit",
        "GPL-2.0-or-later WITH Classpath-exception-2.0", "LicenseRef-Fedora-Public-Domain",
        "DocumentRef-x:LicenseRef-y", "((MIT))",
    };
    static const char *const no[] = {
        "", "GPL-2+", "see /usr/share/doc/bash/copyright", "MIT and BSD", "MIT AND", "(MIT",
        "MIT)", "MIT BSD-3-Clause", "GPL-2.0 WITH MIT", "LicenseRef-a_b", "Public Domain",
    };

    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
        assert_true(lapis_image_sbom_license_is_spdx(yes[i]));
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
        if (lapis_image_sbom_license_is_spdx(no[i]))
            fail_msg("taken for SPDX: \"%s\"", no[i]);
}

static const cJSON *find_by(const cJSON *arr, const char *key, const char *val)
{
    const cJSON *e;

    cJSON_ArrayForEach(e, arr) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);
        if (cJSON_IsString(v) && strcmp(v->valuestring, val) == 0)
            return e;
    }
    fail_msg("no element with %s = %s", key, val);
    return NULL;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static void test_document(void **state)
{
    struct lapis_image_build b = make_build();
    char *text = NULL, *again = NULL;
    cJSON *doc, *pk, *refs, *rels;
    const cJSON *p, *e;
    char *ref = lapis_image_sbom_license_ref(pkgs[1].license);

    assert_int_equal(lapis_image_sbom_render(&b, &text), 0);
    assert_int_equal(lapis_image_sbom_render(&b, &again), 0);
    assert_string_equal(text, again);
    assert_non_null(doc = cJSON_Parse(text));
    assert_string_equal(str_of(doc, "spdxVersion"), "SPDX-2.3");
    assert_string_equal(str_of(doc, "dataLicense"), "CC0-1.0");
    assert_string_equal(str_of(doc, "SPDXID"), "SPDXRef-DOCUMENT");
    assert_string_equal(str_of(doc, "name"), "server-1.0.x86_64");
    assert_true(strncmp(str_of(doc, "documentNamespace"),
                        "https://lapis.invalid/spdxdocs/server-1.0.x86_64-", 49) == 0);
    e = cJSON_GetObjectItemCaseSensitive(doc, "creationInfo");
    assert_string_equal(str_of(e, "created"), "2023-11-14T22:13:20Z");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(e, "creators"), 0)->valuestring,
                        "Tool: lapis-0.1.0");

    pk = cJSON_GetObjectItemCaseSensitive(doc, "packages");
    assert_int_equal(cJSON_GetArraySize(pk), 4);
    /* sorted by SPDXID: "SPDXRef-Image-" < "SPDXRef-Package-" ('_' is encoded) */
    assert_string_equal(str_of(cJSON_GetArrayItem(pk, 0), "SPDXID"),
                        "SPDXRef-Image-server-1.0.x86-5F64");
    assert_string_equal(str_of(cJSON_GetArrayItem(pk, 1), "SPDXID"),
                        "SPDXRef-Package-rpm-bash-5.2.15-2.x86-5F64");
    assert_string_equal(str_of(cJSON_GetArrayItem(pk, 3), "SPDXID"),
                        "SPDXRef-Package-rpm-shadow-utils-2-3A4.13-1-7Erc1.x86-5F64");
    p = find_by(pk, "SPDXID", "SPDXRef-Image-server-1.0.x86-5F64");
    assert_string_equal(str_of(p, "primaryPackagePurpose"), "OPERATING_SYSTEM");
    p = find_by(pk, "name", "shadow-utils");
    assert_string_equal(str_of(p, "versionInfo"), "2:4.13-1~rc1");
    assert_string_equal(str_of(p, "supplier"), "Organization: Fedora Project");
    assert_string_equal(str_of(p, "licenseDeclared"), "BSD-3-Clause AND GPL-2.0-or-later");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(p, "filesAnalyzed")));
    e = cJSON_GetArrayItem(cJSON_GetObjectItem(p, "checksums"), 0);
    assert_string_equal(str_of(e, "algorithm"), "SHA256");
    assert_string_equal(str_of(e, "checksumValue"), pkgs[2].sha256);
    e = cJSON_GetArrayItem(cJSON_GetObjectItem(p, "externalRefs"), 0);
    assert_string_equal(str_of(e, "referenceType"), "purl");
    assert_string_equal(str_of(e, "referenceLocator"),
                        "pkg:rpm/fedora%20project/shadow-utils@4.13-1~rc1?arch=x86_64&distro=40&epoch=2");
    p = find_by(pk, "name", "libstdc++6");
    assert_string_equal(str_of(p, "supplier"), "NOASSERTION");
    assert_string_equal(str_of(p, "licenseDeclared"), ref);
    assert_true(strncmp(ref, "LicenseRef-rpm-", 15) == 0 && strlen(ref) == 31);

    refs = cJSON_GetObjectItemCaseSensitive(doc, "hasExtractedLicensingInfos");
    assert_int_equal(cJSON_GetArraySize(refs), 1);
    e = find_by(refs, "licenseId", ref);
    assert_string_equal(str_of(e, "extractedText"), pkgs[1].license);

    rels = cJSON_GetObjectItemCaseSensitive(doc, "relationships");
    assert_int_equal(cJSON_GetArraySize(rels), 4);
    e = cJSON_GetArrayItem(rels, 0);
    assert_string_equal(str_of(e, "spdxElementId"), "SPDXRef-DOCUMENT");
    assert_string_equal(str_of(e, "relationshipType"), "DESCRIBES");
    assert_string_equal(str_of(e, "relatedSpdxElement"), "SPDXRef-Image-server-1.0.x86-5F64");
    e = find_by(rels, "relatedSpdxElement", "SPDXRef-Package-rpm-libstdc-2B-2B6-12.2.0-14.x86-5F64");
    assert_string_equal(str_of(e, "relationshipType"), "CONTAINS");
    assert_string_equal(str_of(e, "spdxElementId"), "SPDXRef-Image-server-1.0.x86-5F64");
    cJSON_Delete(doc);
    free(text), free(again), free(ref);
}

static void test_container_and_epoch(void **state)
{
    struct lapis_image_config c = conf;
    struct lapis_image_build b = make_build();
    char *t1 = NULL, *t2 = NULL;
    cJSON *d1, *d2;

    c.formats = LAPIS_IMAGE_OCI;
    b.conf = &c;
    assert_int_equal(lapis_image_sbom_render(&b, &t1), 0);
    assert_non_null(strstr(t1, "\"primaryPackagePurpose\":\t\"CONTAINER\""));
    b.epoch = 0;
    assert_int_equal(lapis_image_sbom_render(&b, &t2), 0);
    assert_non_null(strstr(t2, "\"created\":\t\"1970-01-01T00:00:00Z\""));
    /* only the date differs: same namespace, same everything else */
    d1 = cJSON_Parse(t1), d2 = cJSON_Parse(t2);
    cJSON_DeleteItemFromObject(d1, "creationInfo");
    cJSON_DeleteItemFromObject(d2, "creationInfo");
    assert_true(cJSON_Compare(d1, d2, true));
    cJSON_Delete(d1), cJSON_Delete(d2);
    free(t1), free(t2);
}

static void test_duplicate_nevra(void **state)
{
    struct lapis_image_pkg two[2] = { pkgs[0], pkgs[0] };
    struct lapis_image_build b = make_build();
    char *t = NULL;

    b.pkgs = two, b.npkgs = 2;
    assert_int_equal(lapis_image_sbom_render(&b, &t), -EEXIST);
    assert_non_null(strstr(lapis_diag_error(&b.diag), "SPDXRef-Package-rpm-bash-5.2.15-2.x86-5F64"));
    lapis_diag_clear(&b.diag);
}

static void test_write_sbom(void **state)
{
    char dir[] = "/tmp/lapis-sbom-test-XXXXXX";
    struct lapis_image_build b = make_build();
    char *path, *buf = NULL;
    size_t len;

    assert_non_null(mkdtemp(dir));
    b.stagedir = dir;
    assert_int_equal(lapis_image_write_sbom(&b), 0);
    assert_string_equal(b.outputs[0], "server-1.0.x86_64.spdx.json");
    path = path_join(dir, b.outputs[0]);
    assert_int_equal(read_file(path, 1 << 20, &buf, &len), 0);
    assert_true(len > 100 && buf[len - 1] == '\n');
    rm_rf(dir, NULL);
    free(path), free(buf), free(b.outputs[0]), free(b.outputs);
}

static void test_provenance(void **state)
{
    char dir[] = "/tmp/lapis-prov-test-XXXXXX";
    struct lapis_image_config c = conf;
    struct lapis_image_build b = make_build();
    struct lapis_image_provenance *p = NULL;
    struct stat st;
    char *path;
    mode_t old = umask(077);

    memset(c.sha256, 0xab, sizeof(c.sha256));
    b.conf = &c;
    assert_non_null(mkdtemp(dir));
    b.rootdir = dir;
    assert_int_equal(lapis_image_write_provenance(&b), 0);
    umask(old);
    path = path_join(dir, "usr/lib/lapis/image.json");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(st.st_mtime, 1700000000);
    assert_int_equal(lapis_image_provenance_read(&b.diag, path, &p), 0);
    assert_string_equal(p->name, "server");
    assert_string_equal(p->version, "1.0");
    assert_string_equal(p->arch, "x86_64");
    assert_string_equal(p->lapis_version, "0.1.0");
    assert_int_equal(p->build_time, 1700000000);
    assert_string_equal(p->config_sha256, "abababababababababababababababababababababababababababababababab");
    assert_string_equal(p->lock.config_sha256, p->config_sha256);
    assert_int_equal(p->lock.npkgs, 3);
    assert_string_equal(p->lock.pkgs[2].name, "shadow-utils");
    assert_int_equal(p->lock.pkgs[2].epoch, 2);
    assert_string_equal(p->lock.pkgs[2].release, "1~rc1");
    assert_string_equal(p->lock.pkgs[2].sha256, pkgs[2].sha256);
    lapis_image_provenance_free(p);
    rm_rf(dir, NULL);
    free(path);
}

static void test_provenance_bad(void **state)
{
    struct lapis_diag d = { 0 };
    struct lapis_image_provenance *p = NULL;
    static const char *const bad[] = { "", "[]", "{\"format\": 2}", "{\"format\":1,\"name\":\"x\"}" };

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(lapis_image_provenance_parse(&d, bad[i], strlen(bad[i]), &p), -EBADMSG);
        assert_non_null(strstr(lapis_diag_error(&d), "not a lapis image provenance record"));
    }
    assert_true(lapis_image_provenance_read(&d, "/nonexistent/image.json", &p) < 0);
    assert_non_null(strstr(lapis_diag_error(&d), "/nonexistent/image.json"));
    lapis_diag_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spdxids),
        cmocka_unit_test(test_purls),
        cmocka_unit_test(test_license_decision),
        cmocka_unit_test(test_document),
        cmocka_unit_test(test_container_and_epoch),
        cmocka_unit_test(test_duplicate_nevra),
        cmocka_unit_test(test_write_sbom),
        cmocka_unit_test(test_provenance),
        cmocka_unit_test(test_provenance_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
