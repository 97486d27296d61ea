/*
 * Unit tests for terminal and JSON output of hostile package text
 * (src/pkg/output.c). Summaries, descriptions and file names come from
 * repository metadata and installed headers: nothing in them may drive the
 * terminal (C0/C1 controls, an 8-bit OSC 52 clipboard write, bidi overrides)
 * or make a JSON document invalid (ill-formed UTF-8). Valid text is kept.
 * Also how src/shared/term.c fits text to a terminal: wrapping at blanks,
 * the cut column of a table, and colours added only when asked for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pkg/internal.h"
#include "lapis/output.h"
#include "lapis/term.h"

#define FFFD "\xef\xbf\xbd"

struct text_case {
    const char *in;
    const char *line; /* lapis_sanitize */
    const char *text; /* lapis_sanitize_text (keeps \n and \t) */
};

static const struct text_case text_cases[] = {
    /* valid text is kept byte for byte */
    { "hello world", "hello world", "hello world" },
    { "caf\xc3\xa9", "caf\xc3\xa9", "caf\xc3\xa9" },
    { "\xe4\xb8\xad\xe6\x96\x87 \xe6\x97\xa5\xe6\x9c\xac", "\xe4\xb8\xad\xe6\x96\x87 \xe6\x97\xa5\xe6\x9c\xac",
      "\xe4\xb8\xad\xe6\x96\x87 \xe6\x97\xa5\xe6\x9c\xac" },
    { "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },
    { "nbsp\xc2\xa0" "x", "nbsp\xc2\xa0" "x", "nbsp\xc2\xa0" "x" },          /* U+00A0: first after C1 */
    { "\xe2\x80\xaf\xe2\x81\xaa", "\xe2\x80\xaf\xe2\x81\xaa", "\xe2\x80\xaf\xe2\x81\xaa" }, /* U+202F, U+206A */
    { "\xef\xbf\xbd", FFFD, FFFD },
    /* C0 and DEL */
    { "a\x1b[31mb", "a?[31mb", "a?[31mb" },
    { "a\x7f" "b", "a?b", "a?b" },
    { "l1\nl2\tx\r", "l1?l2?x?", "l1\nl2\tx?" },
    /* C1 controls, UTF-8 encoded: CSI, OSC 52 with ST, and the range ends */
    { "\xc2\x9b" "31mred", "?31mred", "?31mred" },
    { "\xc2\x9d" "52;c;SGVsbG8=\xc2\x9c", "?52;c;SGVsbG8=?", "?52;c;SGVsbG8=?" },
    { "\xc2\x80\xc2\x85\xc2\x9f", "???", "???" },
    /* bidi overrides and isolates */
    { "abc\xe2\x80\xae" "cba", "abc?cba", "abc?cba" },
    { "\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad", "????", "????" },
    { "\xe2\x81\xa6" "x\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9", "?x???", "?x???" },
    /* ill-formed UTF-8: one U+FFFD per maximal subpart */
    { "\x9b" "31m", FFFD "31m", FFFD "31m" },                    /* a raw 8-bit CSI */
    { "\x9d" "52;c;QQ==\x07", FFFD "52;c;QQ==?", FFFD "52;c;QQ==?" },
    { "\xc0\x9b", FFFD FFFD, FFFD FFFD },                         /* overlong CSI */
    { "\xc1\xbf", FFFD FFFD, FFFD FFFD },
    { "\xc0\xaf", FFFD FFFD, FFFD FFFD },                         /* overlong '/' */
    { "\xe0\x80\xaf", FFFD FFFD FFFD, FFFD FFFD FFFD },
    { "\xe0\x82\x9b", FFFD FFFD FFFD, FFFD FFFD FFFD },           /* overlong U+009B */
    { "\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD, FFFD FFFD FFFD FFFD },
    { "\xed\xa0\x80", FFFD FFFD FFFD, FFFD FFFD FFFD },           /* surrogate U+D800 */
    { "\xed\xbf\xbf", FFFD FFFD FFFD, FFFD FFFD FFFD },           /* surrogate U+DFFF */
    { "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD, FFFD FFFD FFFD FFFD }, /* above U+10FFFF */
    { "\xf5\xff\xfe", FFFD FFFD FFFD, FFFD FFFD FFFD },
    { "\xe2\x80", FFFD, FFFD },                                   /* truncated at the end */
    { "\xe2\x80" "x", FFFD "x", FFFD "x" },
    { "\xe2\x80\n", FFFD "?", FFFD "\n" },
    { "\xf0\x9f\x98" "a", FFFD "a", FFFD "a" },
    { "\xc3", FFFD, FFFD },
    { "\x80\xbf", FFFD FFFD, FFFD FFFD },                         /* lone continuations */
    { "\xc3\xa9\x9b\xc3\xa9", "\xc3\xa9" FFFD "\xc3\xa9", "\xc3\xa9" FFFD "\xc3\xa9" },
    { "", "", "" },
};

static void check_one(const char *what, char *(*fn)(const char *), const char *in,
                      const char *expect, size_t i)
{
    char *got = fn(in);
    assert_non_null(got);
    if (strcmp(got, expect) != 0) {
        print_error("case %zu, %s: ", i, what);
        for (const unsigned char *c = (const unsigned char *)in; *c; c++)
            print_error("\\x%02x", *c);
        print_error(" gave ");
        for (const unsigned char *c = (const unsigned char *)got; *c; c++)
            print_error("\\x%02x", *c);
        print_error("\n");
    }
    assert_string_equal(got, expect);
    free(got);
}

static void test_sanitize_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(text_cases); i++) {
        check_one("sanitize", lapis_sanitize, text_cases[i].in, text_cases[i].line, i);
        check_one("sanitize_text", lapis_sanitize_text, text_cases[i].in, text_cases[i].text, i);
    }
}

static void test_sanitize_null(void **state)
{
    (void)state;
    char *s = lapis_sanitize(NULL);
    assert_string_equal(s, "");
    free(s);
    s = lapis_sanitize_text(NULL);
    assert_string_equal(s, "");
    free(s);
}

/* ---- JSON ------------------------------------------------------------------ */

struct json_case {
    const char *in;
    const char *doc; /* what lapis_json_print writes for {"s": in} */
};

static const struct json_case json_cases[] = {
    { "plain", "{\"s\":\"plain\"}" },
    { "caf\xc3\xa9 \xe4\xb8\xad", "{\"s\":\"caf\xc3\xa9 \xe4\xb8\xad\"}" },
    { "\x1b[1m", "{\"s\":\"\\u001b[1m\"}" },
    { "a\x7f", "{\"s\":\"a\\u007f\"}" },
    { "\xc2\x9b" "31m", "{\"s\":\"\\u009b31m\"}" },
    { "\xc2\x9d" "52;c;QQ==\xc2\x9c", "{\"s\":\"\\u009d52;c;QQ==\\u009c\"}" },
    { "\xe2\x80\xae\xe2\x81\xa6", "{\"s\":\"\\u202e\\u2066\"}" },
    { "\x9b" "x", "{\"s\":\"" FFFD "x\"}" },
    { "\xc0\x9b", "{\"s\":\"" FFFD FFFD "\"}" },
    { "\xed\xa0\x80", "{\"s\":\"" FFFD FFFD FFFD "\"}" },
    { "\\\x9b\"", "{\"s\":\"\\\\" FFFD "\\\"\"}" },
};

static char *json_of(const char *key, const char *value)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, key, value);
    lapis_json_print(o, f);
    fclose(f);
    cJSON_Delete(o);
    return buf;
}

static void test_json_escapes(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(json_cases); i++) {
        char *got = json_of("s", json_cases[i].in);
        char *want = xasprintf("%s\n", json_cases[i].doc);
        if (strcmp(got, want) != 0)
            print_error("json case %zu: got %s", i, got);
        assert_string_equal(got, want);
        free(want);
        free(got);
    }
}

/* Keys are text from packages too (none today, but the writer must not care). */
static void test_json_escapes_keys(void **state)
{
    (void)state;
    char *got = json_of("k\xc2\x9b\x9b", "v");
    assert_string_equal(got, "{\"k\\u009b" FFFD "\":\"v\"}\n");
    free(got);
}

/* The escaped document parses back to the original valid text. */
static void test_json_round_trip(void **state)
{
    (void)state;
    const char *in = "\xc2\x9b\xe2\x80\xae" "caf\xc3\xa9\x7f\xf0\x9f\x98\x80";
    char *got = json_of("s", in);
    cJSON *back = cJSON_Parse(got);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(back, "s");
    assert_true(cJSON_IsString(s));
    assert_string_equal(s->valuestring, in);
    cJSON_Delete(back);
    free(got);
}

/* ---- fitting text to the terminal (src/shared/term.c) --------------------- */

static const struct {
    const char *text;
    size_t width;
    const char *want;
} wrap_cases[] = {
    /* prefix "K : " (4), indent "  : " */
    { "one two three four five six", 0, "K : one two three four five six\n" },
    { "one two three four five six", 31, "K : one two three four five six\n" }, /* just fits */
    { "one two three four five six", 30, "K : one two three four five\n  : six\n" },
    { "one two three four five six", 20, "K : one two three\n  : four five six\n" },
    { "one  two   three four five six", 20, "K : one  two   three\n  : four five six\n" },
    /* a word longer than a line is cut inside */
    { "abcdefghijklmnopqrstuvwxyz", 20, "K : abcdefghijklmnop\n  : qrstuvwxyz\n" },
    /* characters, not bytes: 16 x U+00E9 fit in 16 columns */
    { "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 x", 20,
      "K : \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\n  : x\n" },
    /* too narrow to wrap usefully: left as it is */
    { "one two three four five six", 10, "K : one two three four five six\n" },
    /* controls are replaced before the text is measured */
    { "a\x1b[2Jb", 20, "K : a?[2Jb\n" },
    { "", 20, "K : \n" },
};

static void test_wrap_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(wrap_cases) / sizeof(wrap_cases[0]); i++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        lapis_term_print_wrapped(f, "K : ", "  : ", wrap_cases[i].text, wrap_cases[i].width);
        fclose(f);
        if (strcmp(buf, wrap_cases[i].want) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, buf, wrap_cases[i].want);
        free(buf);
    }
}

static char *table_text(size_t width, bool color)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    lapis_table *t = lapis_table_new(3);
    lapis_table_set_width(t, width);
    lapis_table_cut_column(t, 1);
    lapis_table_set_color(t, color);
    lapis_table_highlight(t, (const char *const[]){ "LONG", "x*", NULL }, LAPIS_SGR_GREEN);
    lapis_table_add(t, (const char *const[]){ "1", "a long command line here", "end" });
    lapis_table_color_cell(t, 0, LAPIS_SGR_RED);
    lapis_table_add(t, (const char *const[]){ "22", "short", "x*" });
    lapis_table_print(t, f);
    lapis_table_free(t);
    fclose(f);
    return buf;
}

/* Sorted from row 1 (the heading stays), stable: equal cells keep their order. */
static void test_table_sort(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    lapis_table *t = lapis_table_new(2);
    const char *rows[][2] = { { "Name", "N" }, { "b", "1" }, { "a", "2" }, { "b", "0" }, { "a", "1" } };
    for (size_t i = 0; i < 5; i++)
        lapis_table_add(t, rows[i]);
    lapis_table_sort(t, 0, 1);
    lapis_table_print(t, f);
    lapis_table_free(t);
    fclose(f);
    assert_string_equal(buf, "Name  N\na     2\na     1\nb     1\nb     0\n");
    free(buf);
}

static void test_table_cut_and_colour(void **state)
{
    (void)state;
    char *s = table_text(0, false);
    assert_string_equal(s, "1   a long command line here  end\n22  short                     x*\n");
    free(s);
    /* 20 columns: the cut column keeps 24 - (33 - 20) = 11 characters */
    s = table_text(20, false);
    assert_string_equal(s, "1   a long comm  end\n22  short        x*\n");
    free(s);
    /* narrower than that: the cut column keeps 8 */
    s = table_text(5, false);
    assert_string_equal(s, "1   a long c  end\n22  short     x*\n");
    free(s);
    /* colour: the cell's own, and the term (case-insensitive; the glob is not highlighted) */
    s = table_text(0, true);
    assert_string_equal(s, "\x1b[31m1\x1b[0m   a \x1b[32mlong\x1b[0m command line here  end\n"
                           "22  short                     x*\n");
    free(s);
}

static char *share_table_text(size_t width)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    lapis_table *t = lapis_table_new(4);
    lapis_table_set_width(t, width);
    lapis_table_cut_column_share(t, 1, 0.2);
    lapis_table_cut_column_share(t, 2, 0.1);
    lapis_table_add(t, (const char *const[]){ "N", "Version", "Repository", "S" });
    lapis_table_add(t, (const char *const[]){ "x", "1234567890123456789012345", "abcdefghijkl", "9" });
    lapis_table_print(t, f);
    lapis_table_free(t);
    fclose(f);
    return buf;
}

/* libsmartcols' cut (dnf5's transaction table): 45 wide into 40, one
 * character at a time from each cut column in turn; the Repository column
 * stops at its heading (10), the Version one takes the rest. */
static void test_table_cut_shares(void **state)
{
    (void)state;
    char *s = share_table_text(0);
    assert_string_equal(s, "N  Version                    Repository    S\n"
                           "x  1234567890123456789012345  abcdefghijkl  9\n");
    free(s);
    s = share_table_text(40);
    assert_string_equal(s, "N  Version                 Repository  S\n"
                           "x  1234567890123456789012  abcdefghij  9\n");
    free(s);
    /* narrower: no column under its heading nor its share less one */
    s = share_table_text(20);
    assert_string_equal(s, "N  Version  Repository  S\n"
                           "x  1234567  abcdefghij  9\n");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sanitize_table),
        cmocka_unit_test(test_sanitize_null),
        cmocka_unit_test(test_json_escapes),
        cmocka_unit_test(test_json_escapes_keys),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_wrap_table),
        cmocka_unit_test(test_table_sort),
        cmocka_unit_test(test_table_cut_and_colour),
        cmocka_unit_test(test_table_cut_shares),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
