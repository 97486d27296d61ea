/*
 * Unit tests for $variable substitution in .repo values (src/basic/vars.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "basic/strv.h"
#include "basic/vars.h"

static const lapis_var std_vars[] = {
    { "releasever", "9" },
    { "basearch", "x86_64" },
    { "arch", "x86_64" },
    { "empty", "" },
};

static void check(const char *in, const char *expect)
{
    char *out = lapis_vars_subst(in, std_vars, ARRAY_SIZE(std_vars));
    assert_non_null(out);
    if (strcmp(out, expect) != 0)
        print_error("input: \"%s\"\n", in);
    assert_string_equal(out, expect);
    free(out);
}

static void test_plain_variables(void **state)
{
    check("$releasever", "9");
    check("$basearch", "x86_64");
    check("$arch", "x86_64");
}

static void test_braced_variables(void **state)
{
    check("${releasever}", "9");
    check("${basearch}", "x86_64");
    check("${releasever}x", "9x");
    /* Braces are how a name is followed by name characters. */
    check("${arch}ive", "x86_64ive");
}

static void test_variables_inside_urls(void **state)
{
    check("https://mirror.example.com/os/$releasever/BaseOS/$basearch/os/",
          "https://mirror.example.com/os/9/BaseOS/x86_64/os/");
    check("https://mirror.example.com/${releasever}/${basearch}/os",
          "https://mirror.example.com/9/x86_64/os");
    check("http://h/repo-$arch.d/", "http://h/repo-x86_64.d/");
    check("file:///srv/el$releasever-$basearch/", "file:///srv/el9-x86_64/");
    check("no variables at all", "no variables at all");
    check("", "");
}

static void test_adjacent_variables(void **state)
{
    check("$releasever$basearch", "9x86_64");
    check("${releasever}${basearch}", "9x86_64");
    check("$releasever${basearch}$arch", "9x86_64x86_64");
    check("$releasever/$releasever", "9/9");
    /* "$$releasever": the first '$' is literal, the second starts a variable. */
    check("$$releasever", "$9");
}

static void test_unknown_variables_left_literal(void **state)
{
    check("$foo", "$foo");
    check("${foo}", "${foo}");
    check("http://h/$foo/$releasever/", "http://h/$foo/9/");
    check("http://h/${foo}/${basearch}/", "http://h/${foo}/x86_64/");
    /* Names are case-sensitive. */
    check("$RELEASEVER", "$RELEASEVER");
    check("${BaseArch}", "${BaseArch}");
}

static void test_lone_dollar(void **state)
{
    check("$", "$");
    check("price: 5$", "price: 5$");
    check("$/x", "$/x");
    check("a $ b", "a $ b");
    check("$-", "$-");
}

static void test_unterminated_braces(void **state)
{
    check("${", "${");
    check("${releasever", "${releasever");
    check("http://h/${basearch/os", "http://h/${basearch/os");
    check("${}", "${}");
    /* Not a name inside the braces: left alone. */
    check("${release ver}", "${release ver}");
    check("${base-arch}", "${base-arch}");
    /* An unterminated brace must not swallow a later, valid variable. */
    check("${x $releasever", "${x 9");
}

static void test_name_prefix_does_not_match(void **state)
{
    /* "archive" is not a known variable although it starts with "arch". */
    check("$archive", "$archive");
    check("http://h/$archive/$arch", "http://h/$archive/x86_64");
    check("$releasever_x", "$releasever_x");
    check("$basearch2", "$basearch2");
    /* A shorter name is not a prefix match for a longer known one either. */
    check("$base", "$base");
    check("${base}arch", "${base}arch");
}

static void test_empty_value(void **state)
{
    check("a$empty/b", "a/b");
    check("a${empty}b", "ab");
    check("$empty", "");
    check("$empty$empty$releasever", "9");
}

static void test_no_variables_defined(void **state)
{
    char *out = lapis_vars_subst("http://h/$releasever/${basearch}", NULL, 0);
    assert_string_equal(out, "http://h/$releasever/${basearch}");
    free(out);
}

static void test_long_values_grow_buffer(void **state)
{
    char big[4096];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const lapis_var vars[] = { { "v", big } };

    char *out = lapis_vars_subst("<$v|${v}|$v>", vars, 1);
    assert_int_equal(strlen(out), 3 * (sizeof(big) - 1) + 4);
    assert_int_equal(out[0], '<');
    assert_int_equal(out[sizeof(big)], '|');
    assert_int_equal(out[2 * sizeof(big)], '|');
    assert_string_equal(out + 3 * (sizeof(big) - 1) + 3, ">");
    free(out);

    /* Many short substitutions in a long input. */
    char in[3000] = "";
    for (int i = 0; i < 200; i++)
        strcat(in, "$releasever/");
    out = lapis_vars_subst(in, std_vars, ARRAY_SIZE(std_vars));
    assert_int_equal(strlen(out), 200 * 2);
    assert_int_equal(strncmp(out, "9/9/9/", 6), 0);
    free(out);
}

static void test_value_is_not_rescanned(void **state)
{
    /* A value that itself contains '$' is inserted as it is. */
    const lapis_var vars[] = { { "a", "$b" }, { "b", "X" } };
    char *out = lapis_vars_subst("$a-${a}", vars, 2);
    assert_string_equal(out, "$b-$b");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_variables),
        cmocka_unit_test(test_braced_variables),
        cmocka_unit_test(test_variables_inside_urls),
        cmocka_unit_test(test_adjacent_variables),
        cmocka_unit_test(test_unknown_variables_left_literal),
        cmocka_unit_test(test_lone_dollar),
        cmocka_unit_test(test_unterminated_braces),
        cmocka_unit_test(test_name_prefix_does_not_match),
        cmocka_unit_test(test_empty_value),
        cmocka_unit_test(test_no_variables_defined),
        cmocka_unit_test(test_long_values_grow_buffer),
        cmocka_unit_test(test_value_is_not_rescanned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
