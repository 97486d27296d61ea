/*
 * The fast primary.xml parser (src/pkg/mdfast.c) gives what libsolv's
 * repo_add_rpmmd() gives: byte for byte the same .solv, or the same error
 * with the same line number. Over the fixture repositories' primary.xml,
 * the 63k-package benchmark repo when it is there, and documents built to
 * leave the usual shape (where the fast parser must hand over to libsolv
 * at the right package) or to be refused.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pkg_mdcompare.h"
#include <solv/solv_xfopen.h>

#define HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
             "<metadata xmlns=\"http://linux.duke.edu/metadata/common\" " \
             "xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"2\">\n"
#define TAIL "</metadata>\n"

/* A package as createrepo_c writes it; %s: extra text inside <format>, then
 * inside <package>, so that a case can add what it tests. */
static char *pkg(const char *name, const char *in_format, const char *in_package)
{
    char *s;
    assert_true(asprintf(&s,
        "<package type=\"rpm\">\n"
        "  <name>%s</name>\n  <arch>x86_64</arch>\n"
        "  <version epoch=\"0\" ver=\"1.0\" rel=\"1\"/>\n"
        "  <checksum type=\"sha256\" pkgid=\"YES\">"
        "4d4ebef133bd255755c48aa0f80b82abcf9b4d17e4987ebb3309e4991ef904f8</checksum>\n"
        "  <summary>The %s package</summary>\n"
        "  <description>Line one.\n\nLine &lt;two&gt; &amp; caf\xc3\xa9.</description>\n"
        "  <packager>Lapis &lt;t@lapis.invalid&gt;</packager>\n  <url>https://lapis.invalid/</url>\n"
        "  <time file=\"1796347605\" build=\"1767225600\"/>\n"
        "  <size package=\"6400\" installed=\"17\" archive=\"420\"/>\n"
        "  <location href=\"Packages/%s-1.0-1.x86_64.rpm\"/>\n"
        "  <format>\n"
        "    <rpm:license>MIT</rpm:license>\n    <rpm:vendor>Lapis</rpm:vendor>\n"
        "    <rpm:group>Unspecified</rpm:group>\n    <rpm:buildhost>b</rpm:buildhost>\n"
        "    <rpm:sourcerpm>%s-1.0-1.src.rpm</rpm:sourcerpm>\n"
        "    <rpm:header-range start=\"4504\" end=\"6265\"/>\n"
        "    <rpm:provides>\n"
        "      <rpm:entry name=\"%s\" flags=\"EQ\" epoch=\"0\" ver=\"1.0\" rel=\"1\"/>\n"
        "      <rpm:entry name=\"cap(%s)\"/>\n"
        "    </rpm:provides>\n"
        "    <rpm:requires>\n"
        "      <rpm:entry name=\"/bin/sh\" pre=\"1\"/>\n"
        "      <rpm:entry name=\"libc\" flags=\"GE\" epoch=\"1\" ver=\"2.36\"/>\n"
        "      <rpm:entry name=\"(a or b &gt;= 2)\"/>\n"
        "    </rpm:requires>\n"
        "    <rpm:recommends><rpm:entry name=\"rec\"/></rpm:recommends>\n"
        "    <file>/usr/bin/%s</file>\n    <file type=\"dir\">/usr/share/%s</file>\n"
        "%s"
        "  </format>\n"
        "%s"
        "</package>\n",
        name, name, name, name, name, name, name, name, in_format, in_package) > 0);
    return s;
}

/* HEAD, a good package, a package with the case's text, a good package, TAIL. */
static char *doc3(const char *in_format, const char *in_package)
{
    char *a = pkg("first", "", ""), *b = pkg("second", in_format, in_package),
         *c = pkg("third", "", ""), *s;
    assert_true(asprintf(&s, HEAD "%s%s%s" TAIL, a, b, c) > 0);
    free(a);
    free(b);
    free(c);
    return s;
}

static void assert_same(const char *xml, size_t len, const char *label)
{
    const char *why = md_compare(xml, len);
    if (why)
        fail_msg("%s: %s", label, why);
}

static void assert_same_doc(char *xml, const char *label)
{
    assert_same(xml, strlen(xml), label);
    free(xml);
}

/* Cases inside the second package: the fast parser reads the first, then
 * hands the rest to libsolv (or reads all three). */
static void test_package_cases(void **state)
{
    static const struct { const char *label, *in_format, *in_package; } cases[] = {
        { "usual shape", "", "" },
        { "comment", "<!-- a comment -->\n", "" },
        { "CDATA", "", "<summary><![CDATA[x < y]]></summary>\n" },
        { "character reference", "", "<summary>&#65;&#x42;</summary>\n" },
        { "undefined entity (an error)", "", "<summary>&bogus;</summary>\n" },
        { "duplicate attribute (an error)", "<file type=\"dir\" type=\"dir\">/x</file>\n", "" },
        { "unknown element", "<rpm:foo a=\"1\">bar<b/></rpm:foo>\n", "<keyword>k</keyword>\n" },
        { "unknown attribute", "<file type=\"dir\" extra=\"1\">/x</file>\n", "" },
        { "bad UTF-8 (an error)", "", "<summary>caf\xe9</summary>\n" },
        { "overlong UTF-8 (an error)", "", "<summary>\xc0\xaf</summary>\n" },
        { "U+FFFE (an error)", "", "<summary>\xef\xbf\xbe</summary>\n" },
        { "surrogate (an error)", "", "<summary>\xed\xa0\x80</summary>\n" },
        { "four-byte UTF-8", "", "<summary>\xf0\x9f\x93\xa6</summary>\n" },
        { "control character (an error)", "", "<summary>a\x01</summary>\n" },
        { "CR", "", "<summary>a\r\nb</summary>\n" },
        { "]]> in text (an error)", "", "<summary>a]]>b</summary>\n" },
        { "] alone in text", "", "<summary>a]b]]c</summary>\n" },
        { "tab in an attribute", "<file type=\"d\tir\">/x</file>\n", "" },
        { "> in an attribute", "<file type=\"d>r\">/x</file>\n", "" },
        { "single quotes", "<file type='dir'>/y</file>\n", "" },
        { "blanks around =", "<file type = \"dir\" >/y</file >\n", "" },
        { "no blank before an attribute (an error)", "<rpm:entry name=\"a\"flags=\"EQ\"/>\n", "" },
        { "entry outside a dependency block", "<rpm:entry name=\"a\"/>\n", "" },
        { "entry without a name", "<rpm:conflicts><rpm:entry flags=\"EQ\"/></rpm:conflicts>\n", "" },
        { "entry with a kind", "<rpm:obsoletes><rpm:entry name=\"p\" kind=\"patch\"/></rpm:obsoletes>\n", "" },
        { "two provides blocks", "<rpm:provides><rpm:entry name=\"again\"/></rpm:provides>\n", "" },
        { "every dependency kind",
          "<rpm:obsoletes><rpm:entry name=\"o\" flags=\"LT\" epoch=\"0\" ver=\"2\"/></rpm:obsoletes>\n"
          "<rpm:conflicts><rpm:entry name=\"c\" flags=\"NE\" ver=\"3\" rel=\"\"/></rpm:conflicts>\n"
          "<rpm:suggests><rpm:entry name=\"s\" flags=\"XX\" ver=\"1\"/></rpm:suggests>\n"
          "<rpm:supplements><rpm:entry name=\"(x if y)\"/></rpm:supplements>\n"
          "<rpm:enhances><rpm:entry name=\"e\" flags=\"LE\" ver=\"2:3\"/></rpm:enhances>\n"
          "<rpm:requires/>\n", "" },
        { "broken rich dependency", "<rpm:suggests><rpm:entry name=\"(a or\"/></rpm:suggests>\n", "" },
        { "files of every shape",
          "<file>noslash</file>\n<file>usr/rel/x</file>\n<file>/trailing/</file>\n"
          "<file>/usr/bin/%s</file>\n<file type=\"ghost\">/usr/bin/g</file>\n<file/>\n"
          "<file>/top</file>\n<file>/</file>\n", "" },
        { "empty and self-closing texts",
          "<rpm:buildhost></rpm:buildhost>\n<rpm:sourcerpm/>\n<rpm:vendor/>\n",
          "<url/>\n<packager></packager>\n<summary/>\n<description></description>\n" },
        { "SUSE author section", "", "<description>Text\nAuthors:\n--------\n  Someone\n</description>\n" },
        { "version shapes", "", "<version epoch=\"\" ver=\"12:3\" rel=\"\"/>\n" },
        { "no version attributes", "", "<version/>\n" },
        { "time and sizes that are not numbers", "",
          "<time build=\"x\"/>\n<size installed=\"-1\" package=\"12abc\"/>\n"
          "<rpm:header-range end=\"0\"/>\n" },
        { "media base", "", "<location xml:base=\"media:/x#2\" href=\"a.rpm\"/>\n" },
        { "location without href", "", "<location xml:base=\"http://m/\"/>\n" },
        { "unknown checksum type (an error)", "", "<checksum type=\"md7\">00</checksum>\n" },
        { "short checksum (an error)", "", "<checksum type=\"sha256\">abcd</checksum>\n" },
        { "checksum with junk (an error)", "",
          "<checksum type=\"sha1\">da39a3ee5e6b4b0d3255bfef95601890afd80709zz</checksum>\n" },
        { "source arch", "", "<arch>src</arch>\n" },
        { "nested format", "<format><file>/n</file></format>\n", "" },
        { "text between elements", "", "stray text\n" },
        { "text in an empty element", "", "<version ver=\"1\">x</version>\n" },
        { "wrong end tag (an error)", "", "<summary>s</summry>\n" },
        { "child in a text element", "", "<summary>a<b/>c</summary>\n" },
        { "processing instruction", "", "<?pi data?>\n" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_same_doc(doc3(cases[i].in_format, cases[i].in_package), cases[i].label);
}

/* <package pkgid="..."> extends a package of the same checksum (other.xml's
 * form): libsolv's, not the usual shape. */
static void test_package_pkgid(void **state)
{
    char *d = doc3("", ""), *second = strstr(d, "<name>second"), *s;
    (void)state;
    *(second - strlen("<package type=\"rpm\">\n  ")) = 0;
    assert_true(asprintf(&s, "%s<package type=\"rpm\" pkgid=\"4d4ebef133bd255755c48aa0f80b82abcf9b4d17e"
                             "4987ebb3309e4991ef904f8\">\n  %s", d, second) > 0);
    assert_same_doc(s, "pkgid");
    free(d);
}

/* Cases around the packages: the prologue, the end, truncation. */
static void test_document_cases(void **state)
{
    char *p = pkg("only", "", ""), *d;
    static const char *const heads[] = {
        HEAD,
        "<?xml version='1.0' encoding='UTF-8'?>\n<metadata packages=\"1\">\n",
        "<metadata>",
        "\xef\xbb\xbf" HEAD,
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<metadata>\n",
        "<?xml version=\"1.0\"?>\n<!DOCTYPE metadata [<!ENTITY e \"x\">]>\n<metadata>\n",
        "<!-- c -->\n" HEAD,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rpmmd><metadata>\n",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns:x=\"1\">\n",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata a=\"1\" a=\"2\">\n",
        /* two declarations (fuzz_mdfast: both were skipped) */
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><?xml version='1.0' encoding='UTF-8'?>\n"
        "<metadata>\n",
    };
    static const char *const tails[] = {
        TAIL, "</metadata>", "</metadata>\n<!-- after -->\n", "</metadata>junk\n",
        "</metadata>\n\n   \n", "", "</metad", "</metadata>\n</metadata>\n",
    };
    (void)state;
    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++)
        for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
            char label[64];
            assert_true(asprintf(&d, "%s%s%s%s", heads[h], p, p, tails[t]) > 0);
            snprintf(label, sizeof(label), "head %zu, tail %zu", h, t);
            assert_same_doc(d, label);
        }
    assert_same("", 0, "empty input");
    assert_same(HEAD TAIL, strlen(HEAD TAIL), "no packages");
    assert_same("<metadata/>", 11, "self-closing root");
    /* a NUL inside a tag name (fuzz_mdfast: "metadata\0..." was taken for "metadata") */
    {
        static const char nul_name[] = "<metadata\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0>\n"
                                       "<package type=\"rpm\"><name>a</name></package>\n</metadata>\n";
        assert_same(nul_name, sizeof(nul_name) - 1, "NUL in a tag name");
    }
    {   /* a NUL after the end (fuzz_mdfast: taken for the end of the input) */
        static const char nul_after[] = HEAD TAIL " \0junk";
        assert_same(nul_after, sizeof(nul_after) - 1, "NUL after the end");
    }
    /* junk on the line of a package with a two-byte character (fuzz_mdfast:
     * the column libsolv named was one off) */
    assert_same_doc(strdup(HEAD "<package type=\"rpm\"><name>caf\xc3\xa9</name></package>junk&\n"
                           TAIL), "column after a multibyte character");
    /* a package start tag without its '<' (fuzz_mdfast: read as a package) */
    assert_same_doc(strdup(HEAD ",package type=\"rpm\"><name>a</name></package>\n" TAIL),
                    "package without <");
    /* Cut everywhere in a two-package document: truncated, one way or another. */
    assert_true(asprintf(&d, HEAD "%s%s" TAIL, p, p) > 0);
    for (size_t cut = 0; cut < strlen(d); cut += 7) {
        char label[64];
        snprintf(label, sizeof(label), "cut at %zu", cut);
        assert_same(d, cut, label);
    }
    free(d);
    free(p);
}

/* A package bigger than the read block, and a NUL inside one. */
static void test_big_and_binary(void **state)
{
    size_t n = 3u << 20;
    char *big = xmalloc(n + 1), *d;
    (void)state;
    memset(big, 'x', n);
    big[n] = 0;
    for (size_t i = 4096; i < n; i += 4096)
        big[i] = '\n';
    assert_true(asprintf(&d, "<description>%s</description>\n", big) > 0);
    assert_same_doc(doc3("", d), "3 MB description");
    free(d);
    free(big);
    d = doc3("", "<summary>a_b</summary>\n");
    *strchr(strstr(d, "a_b"), '_') = 0;
    assert_same(d, strlen(d) + 1 + strlen(d + strlen(d) + 1), "NUL in text");
    free(d);
}

/* n packages, the one at index odd (if any) with the case's text: the
 * fast parser cuts the document into repodatas of 4096 packages, and each
 * package's first file is in the directory of the last file before it (the
 * parser's one-entry directory cache must not reach into the next batch). */
static char *doc_n(size_t n, size_t odd, const char *in_format)
{
    size_t cap = n * 2048 + 4096, len = 0;
    char *d = xmalloc(cap);
    len += (size_t)snprintf(d, cap, "%s", HEAD);
    for (size_t i = 0; i < n; i++) {
        char name[32], *p;
        snprintf(name, sizeof(name), "p%zu", i);
        p = pkg(name, i == odd ? in_format : "<file>/usr/bin/also</file>\n", "");
        assert_true(len + strlen(p) + sizeof(TAIL) < cap);
        memcpy(d + len, p, strlen(p) + 1);
        len += strlen(p);
        free(p);
    }
    memcpy(d + len, TAIL, sizeof(TAIL));
    return d;
}

/* Across the batches: directories, the meta key of filtered file lists, an
 * end on a batch boundary, and the hand-over to libsolv in a later batch. */
static void test_batches(void **state)
{
    const size_t none = (size_t)-1;
    (void)state;
    assert_same_doc(doc_n(2 * 4096 + 7, none, ""), "three batches");
    assert_same_doc(doc_n(2 * 4096, none, ""), "two full batches");
    assert_same_doc(doc_n(4096 + 9, 4096, "<!-- libsolv's from here -->\n"),
                    "libsolv's from a batch's first package");
    assert_same_doc(doc_n(4096 + 9, 4100, "<rpm:foo/>\n"), "libsolv's inside a batch");
    /* fuzz_mdfast (UBSan): a slot whose packages have no event has no array */
    assert_same_doc(strdup(HEAD "<package type=\"rpm\">\n  </package>\n" TAIL), "empty package");
}

/* The same without the scan thread (LAPIS_MD_PIPE=0, and the path when no
 * thread can be made). */
static void test_batches_on_one_thread(void **state)
{
    setenv("LAPIS_MD_PIPE", "0", 1);
    test_batches(state);
    assert_same_doc(doc3("", "<!-- -->\n"), "libsolv's from the second package");
    unsetenv("LAPIS_MD_PIPE");
}

static char *read_xml(const char *path, size_t *len)
{
    FILE *f = solv_xfopen(path, "r");
    char *buf = NULL;
    size_t cap = 0, got;
    *len = 0;
    if (!f)
        return NULL;
    do {
        if (cap - *len < 65536)
            buf = xrealloc(buf, cap = 2 * cap + 65536);
        got = fread(buf + *len, 1, cap - *len, f);
        *len += got;
    } while (got > 0);
    fclose(f);
    return buf;
}

static size_t compare_dir_primaries(const char *repos)
{
    DIR *d = opendir(repos);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d))) {
        char rd[8192];
        DIR *r;
        struct dirent *f;
        snprintf(rd, sizeof(rd), "%s/%s/repodata", repos, e->d_name);
        if (e->d_name[0] == '.' || !(r = opendir(rd)))
            continue;
        while ((f = readdir(r))) {
            char path[8192 + 512];
            size_t len;
            char *xml;
            if (!strstr(f->d_name, "primary.xml"))
                continue;
            snprintf(path, sizeof(path), "%s/%s", rd, f->d_name);
            if (!(xml = read_xml(path, &len)))
                continue; /* not a compressed file libsolv can open (the corrupt fixture) */
            assert_same(xml, len, path);
            free(xml);
            n++;
        }
        closedir(r);
    }
    closedir(d);
    return n;
}

static void test_fixture_repos(void **state)
{
    const char *fix = getenv("LAPIS_FIXTURES") ? getenv("LAPIS_FIXTURES") : LAPIS_FIXTURES_DEFAULT;
    char repos[4096];
    (void)state;
    snprintf(repos, sizeof(repos), "%s/repos", fix);
    assert_true(compare_dir_primaries(repos) >= 10);
}

/* The benchmark's 63k packages (bench/run makes them): skipped without. */
static void test_bench_repo(void **state)
{
    char path[4096];
    size_t len;
    char *xml;
    (void)state;
    snprintf(path, sizeof(path), "%s/build/bench/debrepo/repodata/primary.xml.gz", SRCDIR);
    if (!(xml = read_xml(path, &len)))
        skip();
    assert_same(xml, len, path);
    free(xml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_package_cases),
        cmocka_unit_test(test_package_pkgid),
        cmocka_unit_test(test_document_cases),
        cmocka_unit_test(test_big_and_binary),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_batches_on_one_thread),
        cmocka_unit_test(test_fixture_repos),
        cmocka_unit_test(test_bench_repo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
