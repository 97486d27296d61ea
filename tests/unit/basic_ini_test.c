/*
 * Unit tests for the INI parser (src/basic/ini.c): the dnf dialect of
 * lapis.conf and .repo files, and the line numbers reported for garbled
 * input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "basic/alloc.h"
#include "basic/ini.h"
#include "basic/strv.h"

/* ---- a callback that records everything it is given --------------------- */

#define MAX_ENTRIES 32

struct entry {
    char *section;
    char *key;
    char *value;
    int lineno;
};

struct rec {
    struct entry e[MAX_ENTRIES];
    size_t n;
    int stop_at;     /* return stop_rc when called for the stop_at-th time (1-based); 0 = never */
    int stop_rc;
};

static int rec_cb(const char *section, const char *key, const char *value, int lineno, void *ud)
{
    struct rec *r = ud;
    assert_non_null(section);
    assert_non_null(key);
    assert_non_null(value);
    assert_true(r->n < MAX_ENTRIES);
    r->e[r->n].section = xstrdup(section);
    r->e[r->n].key = xstrdup(key);
    r->e[r->n].value = xstrdup(value);
    r->e[r->n].lineno = lineno;
    r->n++;
    if (r->stop_at && (int)r->n == r->stop_at)
        return r->stop_rc;
    return 0;
}

static void rec_clear(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->e[i].section);
        free(r->e[i].key);
        free(r->e[i].value);
    }
    memset(r, 0, sizeof(*r));
}

/* Parse s (without its terminating NUL) into r; returns the parser's result. */
static int parse(const char *s, struct rec *r, int *errline)
{
    return lapis_ini_parse(s, strlen(s), rec_cb, r, errline);
}

static void assert_entry(const struct rec *r, size_t i, const char *section, const char *key,
                         const char *value, int lineno)
{
    assert_true(i < r->n);
    assert_string_equal(r->e[i].section, section);
    assert_string_equal(r->e[i].key, key);
    assert_string_equal(r->e[i].value, value);
    assert_int_equal(r->e[i].lineno, lineno);
}

/* ---- well-formed input -------------------------------------------------- */

static void test_sections_and_keys(void **state)
{
    struct rec r = {0};
    int errline = -1;
    const char *s =
        "[main]\n"
        "gpgcheck=1\n"
        "installonly_limit=3\n"
        "\n"
        "[base]\n"
        "name=Base OS\n"
        "[updates]\n"
        "enabled=0\n";

    assert_int_equal(parse(s, &r, &errline), 0);
    assert_int_equal(r.n, 4);
    assert_entry(&r, 0, "main", "gpgcheck", "1", 2);
    assert_entry(&r, 1, "main", "installonly_limit", "3", 3);
    assert_entry(&r, 2, "base", "name", "Base OS", 6);
    assert_entry(&r, 3, "updates", "enabled", "0", 8);
    rec_clear(&r);
}

static void test_colon_separator(void **state)
{
    struct rec r = {0};
    const char *s =
        "[base]\n"
        "name: Base OS\n"
        "enabled:1\n"
        /* '=' comes first: the ':' belongs to the value */
        "baseurl=http://mirror.example.com/os/\n";

    assert_int_equal(parse(s, &r, NULL), 0);
    assert_int_equal(r.n, 3);
    assert_entry(&r, 0, "base", "name", "Base OS", 2);
    assert_entry(&r, 1, "base", "enabled", "1", 3);
    assert_entry(&r, 2, "base", "baseurl", "http://mirror.example.com/os/", 4);
    rec_clear(&r);
}

static void test_whitespace_trimmed(void **state)
{
    struct rec r = {0};
    const char *s =
        "  [  base  ]  \n"
        "name   =   Base   OS   \n"
        "gpgcheck\t=\t0\t\n";

    assert_int_equal(parse(s, &r, NULL), 0);
    assert_int_equal(r.n, 2);
    /* Inner whitespace of a value is kept, outer is dropped. */
    assert_entry(&r, 0, "base", "name", "Base   OS", 2);
    assert_entry(&r, 1, "base", "gpgcheck", "0", 3);
    rec_clear(&r);

    /* An indented line after a key continues its value even if it looks like a key. */
    assert_int_equal(parse("[base]\nname=x\n\tgpgcheck=0\n", &r, NULL), 0);
    assert_int_equal(r.n, 1);
    assert_entry(&r, 0, "base", "name", "x\ngpgcheck=0", 2);
    rec_clear(&r);
}

static void test_comments(void **state)
{
    struct rec r = {0};
    const char *s =
        "# leading comment\n"
        "; semicolon comment\n"
        "[base]\n"
        "   # indented comment\n"
        "\t; indented semicolon comment\n"
        "name=x # not a comment: dnf has no inline comments\n"
        "#gpgcheck=0\n"
        ";enabled=0\n";

    assert_int_equal(parse(s, &r, NULL), 0);
    assert_int_equal(r.n, 1);
    assert_entry(&r, 0, "base", "name", "x # not a comment: dnf has no inline comments", 6);
    rec_clear(&r);
}

static void test_continuation_lines(void **state)
{
    struct rec r = {0};
    const char *s =
        "[base]\n"
        "name=Base\n"
        "baseurl=http://a.example.com/os/\n"
        "        http://b.example.com/os/\n"
        "\thttp://c.example.com/os/   \n"
        "gpgcheck=1\n";

    assert_int_equal(parse(s, &r, NULL), 0);
    assert_int_equal(r.n, 3);
    assert_entry(&r, 0, "base", "name", "Base", 2);
    /* Reported at the line of the key, mirrors joined by '\n', each trimmed. */
    assert_entry(&r, 1, "base", "baseurl",
                 "http://a.example.com/os/\nhttp://b.example.com/os/\nhttp://c.example.com/os/", 3);
    assert_entry(&r, 2, "base", "gpgcheck", "1", 6);
    rec_clear(&r);
}

static void test_continuation_after_empty_value(void **state)
{
    struct rec r = {0};
    const char *s =
        "[base]\n"
        "baseurl=\n"
        "  http://a/\n"
        "  http://b/\n";

    assert_int_equal(parse(s, &r, NULL), 0);
    assert_int_equal(r.n, 1);
    /* No leading empty line from the empty first value. */
    assert_entry(&r, 0, "base", "baseurl", "http://a/\nhttp://b/", 2);
    rec_clear(&r);
}

static void test_continuation_skips_comments_and_blank_lines(void **state)
{
    struct rec r = {0};
    const char *s =
        "[base]\n"
        "baseurl=http://a/\n"
        "  # a commented-out mirror\n"
        "\n"
        "  http://b/\n";

    assert_int_equal(parse(s, &r, NULL), 0);
    assert_int_equal(r.n, 1);
    assert_entry(&r, 0, "base", "baseurl", "http://a/\nhttp://b/", 2);
    rec_clear(&r);
}

static void test_indented_line_without_previous_key_is_a_key(void **state)
{
    struct rec r = {0};
    const char *s =
        "[base]\n"
        "   name = indented\n";

    assert_int_equal(parse(s, &r, NULL), 0);
    assert_int_equal(r.n, 1);
    assert_entry(&r, 0, "base", "name", "indented", 2);
    rec_clear(&r);
}

static void test_empty_values(void **state)
{
    struct rec r = {0};
    const char *s =
        "[base]\n"
        "exclude=\n"
        "sslcacert =   \n"
        "name:\n";

    assert_int_equal(parse(s, &r, NULL), 0);
    assert_int_equal(r.n, 3);
    assert_entry(&r, 0, "base", "exclude", "", 2);
    assert_entry(&r, 1, "base", "sslcacert", "", 3);
    assert_entry(&r, 2, "base", "name", "", 4);
    rec_clear(&r);
}

static void test_keys_before_any_section(void **state)
{
    struct rec r = {0};
    const char *s =
        "# header\n"
        "stray=1\n"
        "[main]\n"
        "best=0\n";

    assert_int_equal(parse(s, &r, NULL), 0);
    assert_int_equal(r.n, 2);
    assert_entry(&r, 0, "", "stray", "1", 2);
    assert_entry(&r, 1, "main", "best", "0", 4);
    rec_clear(&r);
}

static void test_crlf_line_endings(void **state)
{
    struct rec r = {0};
    const char *s =
        "[base]\r\n"
        "name = Base\r\n"
        "\r\n"
        "# comment\r\n"
        "baseurl=http://a/\r\n"
        "  http://b/\r\n"
        "enabled=1\r\n";

    assert_int_equal(parse(s, &r, NULL), 0);
    assert_int_equal(r.n, 3);
    assert_entry(&r, 0, "base", "name", "Base", 2);
    assert_entry(&r, 1, "base", "baseurl", "http://a/\nhttp://b/", 5);
    assert_entry(&r, 2, "base", "enabled", "1", 7);
    rec_clear(&r);
}

static void test_no_trailing_newline(void **state)
{
    struct rec r = {0};
    const char *s =
        "[base]\n"
        "baseurl=http://a/\n"
        "  http://b/";

    assert_int_equal(parse(s, &r, NULL), 0);
    assert_int_equal(r.n, 1);
    assert_entry(&r, 0, "base", "baseurl", "http://a/\nhttp://b/", 2);
    rec_clear(&r);

    assert_int_equal(parse("[x]\nk=v", &r, NULL), 0);
    assert_int_equal(r.n, 1);
    assert_entry(&r, 0, "x", "k", "v", 2);
    rec_clear(&r);
}

static void test_empty_input(void **state)
{
    struct rec r = {0};
    int errline = 12345;

    assert_int_equal(lapis_ini_parse("", 0, rec_cb, &r, &errline), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(parse("\n\n  \n# only comments\n; here\n", &r, &errline), 0);
    assert_int_equal(r.n, 0);
    /* Only a section header: nothing to report. */
    assert_int_equal(parse("[base]\n", &r, &errline), 0);
    assert_int_equal(r.n, 0);
    rec_clear(&r);
}

static void test_len_is_respected(void **state)
{
    struct rec r = {0};
    const char text[] = "[a]\nk=v\nbroken line\n";
    /* Exactly-sized heap copy without a NUL: ASan catches any read past len. */
    size_t len = strlen("[a]\nk=v\n");
    char *buf = xmalloc(len);
    memcpy(buf, text, len);

    assert_int_equal(lapis_ini_parse(buf, len, rec_cb, &r, NULL), 0);
    assert_int_equal(r.n, 1);
    assert_entry(&r, 0, "a", "k", "v", 2);
    rec_clear(&r);

    /* Stopping in the middle of a line: "k=" is seen, not "k=v". */
    assert_int_equal(lapis_ini_parse(buf, 6, rec_cb, &r, NULL), 0);
    assert_int_equal(r.n, 1);
    assert_entry(&r, 0, "a", "k", "", 2);
    rec_clear(&r);
    free(buf);
}

/* ---- garbled input ------------------------------------------------------ */

static void check_garbled(const char *s, int expect_line)
{
    struct rec r = {0};
    int errline = -1;

    int rc = parse(s, &r, &errline);
    if (rc != -EINVAL || errline != expect_line)
        print_error("input: \"%s\"\n", s);
    assert_int_equal(rc, -EINVAL);
    assert_int_equal(errline, expect_line);
    rec_clear(&r);
}

static void test_garbled_lines(void **state)
{
    check_garbled("no equals sign here\n", 1);
    check_garbled("[base]\nname=x\njunk\n", 3);
    check_garbled("[base]\nname=x\n\n# comment\n[unterminated\n", 5);
    check_garbled("[]\n", 1);
    check_garbled("[base]\n=value\n", 2);
    check_garbled("[base]\n: value\n", 2);
    check_garbled("[base]\nkey with space=1\n", 2);
    check_garbled("[base]\nkey\twith\ttab=1\n", 2);
    check_garbled("[base]\nkey[0]=1\n", 2);
    check_garbled("[base] trailing\n", 1);
    check_garbled("[base]\n[a]b]\n", 2);
    check_garbled("[base]\nname=x\n  http://continued/\n]\n", 4);
    /* The last line, with and without a newline. */
    check_garbled("[base]\nname=x\ngarbage", 3);
    check_garbled("[base]\r\nname=x\r\ngarbage\r\n", 3);
}

/* "[ ]" names no section any more than "[]" does: after trimming, the name is
 * empty, and its keys would silently land in the "no section" bucket. */
static void test_blank_section_name_is_garbled(void **state)
{
    check_garbled("[ ]\n", 1);
    check_garbled("[base]\nk=v\n[\t]\nk=v\n", 3);
}

static void test_garbled_line_stops_parsing(void **state)
{
    struct rec r = {0};
    int errline = 0;

    assert_int_equal(parse("[a]\nk1=v1\nbad line\nk2=v2\n", &r, &errline), -EINVAL);
    assert_int_equal(errline, 3);
    /* k1 was complete before the bad line; k2 after it is never reported. */
    assert_int_equal(r.n, 1);
    assert_entry(&r, 0, "a", "k1", "v1", 2);
    rec_clear(&r);
}

static void test_garbled_without_errline_pointer(void **state)
{
    struct rec r = {0};
    assert_int_equal(parse("[a\n", &r, NULL), -EINVAL);
    rec_clear(&r);
}

static void test_nul_byte_rejected(void **state)
{
    struct rec r = {0};
    int errline = -1;
    const char buf[] = "[base]\nna\0me=x\nk=v\n";

    assert_int_equal(lapis_ini_parse(buf, sizeof(buf) - 1, rec_cb, &r, &errline), -EINVAL);
    assert_int_equal(errline, 2);
    rec_clear(&r);

    /* A NUL in a comment or as a line of its own is still garbage. */
    const char buf2[] = "[base]\nk=v\n#\0\n";
    errline = -1;
    assert_int_equal(lapis_ini_parse(buf2, sizeof(buf2) - 1, rec_cb, &r, &errline), -EINVAL);
    assert_int_equal(errline, 3);
    rec_clear(&r);

    const char buf3[] = "\0";
    errline = -1;
    assert_int_equal(lapis_ini_parse(buf3, 1, rec_cb, &r, &errline), -EINVAL);
    assert_int_equal(errline, 1);
    assert_int_equal(r.n, 0);
    rec_clear(&r);
}

/* ---- callback errors ---------------------------------------------------- */

static void test_callback_error_stops(void **state)
{
    struct rec r = { .stop_at = 2, .stop_rc = -ECANCELED };
    const char *s =
        "[a]\n"
        "k1=v1\n"
        "k2=v2\n"
        "k3=v3\n"
        "k4=v4\n";

    assert_int_equal(parse(s, &r, NULL), -ECANCELED);
    assert_int_equal(r.n, 2);
    assert_entry(&r, 1, "a", "k2", "v2", 3);
    rec_clear(&r);
}

static void test_callback_error_on_last_key(void **state)
{
    struct rec r = { .stop_at = 1, .stop_rc = -1025 };

    assert_int_equal(parse("[a]\nonly=1\n", &r, NULL), -1025);
    assert_int_equal(r.n, 1);
    rec_clear(&r);

    /* Also when the file has no trailing newline and ends in a continuation. */
    r = (struct rec){ .stop_at = 1, .stop_rc = -ENOMEM };
    assert_int_equal(parse("[a]\nk=1\n  2", &r, NULL), -ENOMEM);
    assert_int_equal(r.n, 1);
    assert_entry(&r, 0, "a", "k", "1\n2", 2);
    rec_clear(&r);
}

static void test_callback_error_beats_later_garbage(void **state)
{
    struct rec r = { .stop_at = 1, .stop_rc = -EPERM };

    /* k is delivered when the next line starts; its error wins over that line. */
    assert_int_equal(parse("[a]\nk=v\nthis is garbage\n", &r, NULL), -EPERM);
    assert_int_equal(r.n, 1);
    rec_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sections_and_keys),
        cmocka_unit_test(test_colon_separator),
        cmocka_unit_test(test_whitespace_trimmed),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_continuation_lines),
        cmocka_unit_test(test_continuation_after_empty_value),
        cmocka_unit_test(test_continuation_skips_comments_and_blank_lines),
        cmocka_unit_test(test_indented_line_without_previous_key_is_a_key),
        cmocka_unit_test(test_empty_values),
        cmocka_unit_test(test_keys_before_any_section),
        cmocka_unit_test(test_crlf_line_endings),
        cmocka_unit_test(test_no_trailing_newline),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_len_is_respected),
        cmocka_unit_test(test_garbled_lines),
        cmocka_unit_test(test_blank_section_name_is_garbled),
        cmocka_unit_test(test_garbled_line_stops_parsing),
        cmocka_unit_test(test_garbled_without_errline_pointer),
        cmocka_unit_test(test_nul_byte_rejected),
        cmocka_unit_test(test_callback_error_stops),
        cmocka_unit_test(test_callback_error_on_last_key),
        cmocka_unit_test(test_callback_error_beats_later_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
