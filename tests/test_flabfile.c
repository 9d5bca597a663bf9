/* tests/test_flabfile.c: the flabfile parser (engine/flabfile.c) on text:
 * sections, line numbers, inih's comment and continuation rules, and every
 * error it reports with file:line. */
#include "engine/flabfile.h"
#include "util/error.h"
#include "tests/testlib.h"

static Flabfile *parse(const char *text) {
    Flabfile *ff = NULL;
    if (flabfile_parse_string(text, "t.ini", "/base", &ff) < 0) return NULL;
    return ff;
}

static int fails_with(const char *text, const char *needle) {
    Flabfile *ff = NULL;
    int r = flabfile_parse_string(text, "t.ini", "/base", &ff);
    flabfile_free(ff);
    return r < 0 && strstr(flab_errmsg(), needle) != NULL;
}

static void test_sections_and_lines(void) {
    Flabfile *ff = parse("[flab]\ncache = .c\n\n[a/b]\nrule = command\nrun = echo hi\n[c]\nrule = x\n");
    REQUIRE(ff);
    CHECK(ff->global.name && ff->global.line == 1);
    CHECK(!strcmp(ff_section_get(&ff->global, "cache")->value, ".c"));
    REQUIRE(ff->ntargets == 2);
    CHECK(!strcmp(ff->targets[0].name, "a/b") && ff->targets[0].line == 4);
    const FfEntry *e = ff_section_get(&ff->targets[0], "run");
    REQUIRE(e);
    CHECK(!strcmp(e->value, "echo hi") && e->line == 6);
    CHECK(ff_find_target(ff, "c") == &ff->targets[1]);
    CHECK(!strcmp(ff->dir, "/base"));
    flabfile_free(ff);
}

/* Debian's libinih: ' ;' starts an inline comment, ';' without a space does not. */
static void test_inline_comment(void) {
    Flabfile *ff = parse("[t]\nrun = echo a; echo b ; echo c\nx = 1 ; comment\n");
    REQUIRE(ff);
    CHECK(!strcmp(ff_section_get(&ff->targets[0], "run")->value, "echo a; echo b"));
    CHECK(!strcmp(ff_section_get(&ff->targets[0], "x")->value, "1"));
    flabfile_free(ff);
}

/* Indented lines continue the previous key, joined with newlines; comment
 * lines and blank lines inside are skipped. */
static void test_continuation_lines(void) {
    Flabfile *ff = parse("[t]\nrun = echo one\n  echo two\n\n  ; a comment\n    echo three\nz = 2\n");
    REQUIRE(ff);
    const FfEntry *e = ff_section_get(&ff->targets[0], "run");
    REQUIRE(e);
    CHECKF(!strcmp(e->value, "echo one\necho two\necho three"), "got '%s'", e->value);
    CHECK(e->line == 2);
    CHECK(ff_section_get(&ff->targets[0], "z")->line == 7);
    flabfile_free(ff);
}

static void test_long_line(void) {
    size_t n = 100000;
    char *text = malloc(n + 64);
    strcpy(text, "[t]\nlong = ");
    size_t off = strlen(text);
    memset(text + off, 'x', n);
    strcpy(text + off + n, "\nafter = 1\n");
    Flabfile *ff = parse(text);
    free(text);
    REQUIRE(ff);
    CHECK(strlen(ff_section_get(&ff->targets[0], "long")->value) == n);
    CHECK(ff_section_get(&ff->targets[0], "after")->line == 3);
    flabfile_free(ff);
}

static void test_duplicate_target(void) {
    CHECK(fails_with("[a]\nrule = command\n\n[a]\nrule = command\n",
                     "t.ini:4: duplicate target [a] (first defined at line 1)"));
    CHECK(fails_with("[flab]\n[flab]\n", "t.ini:2: duplicate [flab]"));
}

static void test_duplicate_key(void) {
    CHECK(fails_with("[a]\nrule = command\nrule = other\n", "t.ini:3: 'rule' set twice in [a] (first at line 2)"));
}

static void test_key_outside_section(void) {
    CHECK(fails_with("x = 1\n[a]\n", "t.ini:1: 'x' outside of any [section]"));
}

static void test_syntax_error(void) {
    CHECK(fails_with("[a]\nrule = command\njust words\n", "t.ini:3: syntax error"));
    CHECK(fails_with("[a]\n[b\n", "t.ini:2: syntax error"));
}

static void test_bad_target_name(void) {
    CHECK(fails_with("[a b]\n", "t.ini:1: bad target name [a b]"));
    CHECK(fails_with("\n[/abs]\n", "t.ini:2: bad target name"));
}

static void test_override(void) {
    Flabfile *ff = parse("[m.v2/plan]\nrule = x\nremove = 4\n");
    REQUIRE(ff);
    CHECK(flabfile_override(ff, "m.v2/plan.remove=6") == 0);
    const FfEntry *e = ff_section_get(&ff->targets[0], "remove");
    CHECK(e && !strcmp(e->value, "6") && e->line == FF_LINE_OVERRIDE);
    CHECK(flabfile_override(ff, "m.v2/plan.extra=a=b") == 0);
    e = ff_section_get(&ff->targets[0], "extra");
    CHECK(e && !strcmp(e->value, "a=b"));
    CHECK(flabfile_override(ff, "nosuch.x=1") < 0 && strstr(flab_errmsg(), "no target [nosuch]"));
    CHECK(flabfile_override(ff, "noequals") < 0 && strstr(flab_errmsg(), "TARGET.PARAM=VALUE"));
    CHECK(flabfile_override(ff, "m.v2/plan.rule=y") < 0);
    char buf[64];
    CHECK(!strcmp(ff_where(ff, FF_LINE_OVERRIDE, buf, sizeof buf), "-D"));
    CHECK(!strcmp(ff_where(ff, 3, buf, sizeof buf), "t.ini:3"));
    flabfile_free(ff);
}

static void test_load_missing_file(void) {
    Flabfile *ff = NULL;
    CHECK(flabfile_load("/nonexistent/flabfile.ini", &ff) < 0);
    CHECK(strstr(flab_errmsg(), "/nonexistent/flabfile.ini") != NULL);
}

int main(void) {
    RUN(test_sections_and_lines);
    RUN(test_inline_comment);
    RUN(test_continuation_lines);
    RUN(test_long_line);
    RUN(test_duplicate_target);
    RUN(test_duplicate_key);
    RUN(test_key_outside_section);
    RUN(test_syntax_error);
    RUN(test_bad_target_name);
    RUN(test_override);
    RUN(test_load_missing_file);
    return TEST_SUMMARY();
}
