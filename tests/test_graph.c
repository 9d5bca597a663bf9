/* tests/test_graph.c: target graph resolution (engine/graph.c) and
 * parameter validation (engine/params.c): every flabfile error names
 * file:line; defaults, normalisation, order and cycles. */
#include "engine/graph.h"
#include "engine/params.h"
#include "util/error.h"
#include "tests/testlib.h"
#include <limits.h>
#include <stdlib.h>

static char base[PATH_MAX];

static Graph *graph_of(const char *text) {
    Flabfile *ff;
    if (flabfile_parse_string(text, "g.ini", base, &ff) < 0) return NULL;
    Graph *g;
    return graph_build(ff, &g) < 0 ? NULL : g;
}

static int fails_with(const char *text, const char *needle) {
    Graph *g = graph_of(text);
    if (g) { graph_free(g); return 0; }
    if (!strstr(flab_errmsg(), needle)) { printf("# got: %s\n", flab_errmsg()); return 0; }
    return 1;
}

static void test_build_and_order(void) {
    Graph *g = graph_of("[c]\nrule = command\ninputs = @b @a\nrun = x\n"
                        "[b]\nrule = command\ninputs = @a tests/fixtures\nrun = y\n"
                        "[a]\nrule = command\nrun = z\n");
    REQUIRE(g);
    REQUIRE(g->n == 3);
    int a = graph_find(g, "a"), b = graph_find(g, "b"), c = graph_find(g, "c");
    CHECK(a == 2 && b == 1 && c == 0 && graph_find(g, "nope") == -1);
    int pos[3];
    for (int k = 0; k < 3; k++) pos[g->order[k]] = k;
    CHECK(pos[a] < pos[b] && pos[b] < pos[c]);
    const Target *tb = &g->targets[b];
    REQUIRE(tb->ninputs == 2);
    CHECK(tb->inputs[0].dep == a && !tb->inputs[0].abs);
    CHECK(tb->inputs[1].dep == -1 && strstr(tb->inputs[1].abs, "/tests/fixtures"));
    CHECK(g->targets[c].ndeps == 2);
    CHECK(!strcmp(g->targets[a].values[1], ""));   /* default of inputs */
    unsigned char need[3] = {0};
    graph_closure(g, &b, 1, need);
    CHECK(need[a] && need[b] && !need[c]);
    graph_free(g);
}

static void test_cache_dir(void) {
    unsetenv("FLAB_CACHE");
    Graph *g = graph_of("[a]\nrule = command\nrun = z\n");
    REQUIRE(g);
    char want[PATH_MAX + 8];
    snprintf(want, sizeof want, "%s/.flab", base);
    CHECK(!strcmp(g->cache_dir, want));
    graph_free(g);
    g = graph_of("[flab]\ncache = /tmp/xyz\n[a]\nrule = command\nrun = z\n");
    REQUIRE(g);
    CHECK(!strcmp(g->cache_dir, "/tmp/xyz"));
    graph_free(g);
    setenv("FLAB_CACHE", "/tmp/env-cache", 1);
    g = graph_of("[flab]\ncache = /tmp/xyz\n[a]\nrule = command\nrun = z\n");
    REQUIRE(g);
    CHECK(!strcmp(g->cache_dir, "/tmp/env-cache"));
    graph_free(g);
    unsetenv("FLAB_CACHE");
    CHECK(fails_with("[flab]\ncahce = x\n", "g.ini:2: unknown setting 'cahce' in [flab] (did you mean 'cache'?)"));
}

static void test_unknown_rule(void) {
    CHECK(fails_with("[a]\nrule = comand\n", "g.ini:2: unknown rule 'comand' for target [a] (did you mean 'command'?)"));
    CHECK(fails_with("[a]\nrun = x\n", "g.ini:1: target [a] has no 'rule = ...'"));
}

static void test_unknown_param(void) {
    CHECK(fails_with("[a]\nrule = command\nrun = x\ninptus = y\n",
                     "g.ini:4: unknown parameter 'inptus' for rule command in [a] (did you mean 'inputs'?)"));
    CHECK(fails_with("[a]\nrule = command\nrun = x\nzzzzzzzz = y\n", "g.ini:4: unknown parameter 'zzzzzzzz'"));
}

static void test_missing_param(void) {
    CHECK(fails_with("\n[a]\nrule = command\n", "g.ini:2: target [a] misses required parameter 'run'"));
    CHECK(fails_with("[a]\nrule = command\nrun =\n", "g.ini:1: [a]: parameter 'run' is empty"));
}

static void test_missing_input(void) {
    CHECK(fails_with("[a]\nrule = command\nrun = x\ninputs = tests/fixtures no/such/file\n",
                     "g.ini:4: [a]: input 'no/such/file' of parameter 'inputs' does not exist"));
}

static void test_unknown_target(void) {
    CHECK(fails_with("[tokens]\nrule = command\nrun = x\n[b]\nrule = command\nrun = x\ninputs = @tokns\n",
                     "g.ini:7: [b]: parameter 'inputs' names unknown target @tokns (did you mean '@tokens'?)"));
}

static void test_cycle(void) {
    CHECK(fails_with("[a]\nrule = command\nrun = x\ninputs = @b\n"
                     "[b]\nrule = command\nrun = x\ninputs = @c\n"
                     "[c]\nrule = command\nrun = x\ninputs = @a\n",
                     "dependency cycle: a -> b -> c -> a"));
    CHECK(fails_with("[self]\nrule = command\nrun = x\ninputs = @self\n", "g.ini:1: dependency cycle: self -> self"));
}

static void test_select(void) {
    Graph *g = graph_of("[alpha]\nrule = command\nrun = x\n[beta]\nrule = command\nrun = x\n");
    REQUIRE(g);
    int *v;
    size_t n;
    char *names[] = {"@beta", "alpha"};
    REQUIRE(graph_select(g, names, 2, &v, &n) == 0);
    CHECK(n == 2 && v[0] == 1 && v[1] == 0);
    free(v);
    REQUIRE(graph_select(g, NULL, 0, &v, &n) == 0);
    CHECK(n == 2);
    free(v);
    char *bad[] = {"alpah"};
    CHECK(graph_select(g, bad, 1, &v, &n) < 0 && strstr(flab_errmsg(), "did you mean 'alpha'"));
    graph_free(g);
}

static void test_override_error_says_D(void) {
    Flabfile *ff;
    REQUIRE(flabfile_parse_string("[a]\nrule = command\nrun = x\n", "g.ini", base, &ff) == 0);
    REQUIRE(flabfile_override(ff, "a.inputs=nothere") == 0);
    Graph *g;
    CHECK(graph_build(ff, &g) < 0);
    CHECK(strstr(flab_errmsg(), "-D: [a]: input 'nothere'") != NULL);
}

/* ---- params ------------------------------------------------------------------- */

static int norm(const RuleParam *p, const char *text, const char *want) {
    char *out = NULL;
    int ok = param_normalise(p, text, &out) == 0 && !strcmp(out, want);
    if (!ok) printf("# %s -> %s (%s)\n", text, out ? out : "(err)", flab_errmsg());
    free(out);
    return ok;
}

static int bad(const RuleParam *p, const char *text, const char *needle) {
    char *out = NULL;
    int r = param_normalise(p, text, &out);
    free(out);
    return r < 0 && strstr(flab_errmsg(), needle);
}

static void test_param_types(void) {
    RuleParam i = {"remove", RULE_INT, "4", 0, 32, NULL, ""};
    CHECK(norm(&i, " 04 ", "4") && norm(&i, "32", "32"));
    CHECK(bad(&i, "33", "out of range") && bad(&i, "-1", "out of range"));
    CHECK(bad(&i, "4.5", "must be an integer") && bad(&i, "", "must be an integer"));
    RuleParam f = {"ratio", RULE_FLOAT, NULL, 0, 1, NULL, ""};
    CHECK(norm(&f, "0.50", "0.5") && norm(&f, "1e-1", "0.10000000000000001"));
    CHECK(bad(&f, "1.5", "out of range") && bad(&f, "abc", "must be a number") && bad(&f, "nan", "must be a number"));
    RuleParam u = {"any", RULE_INT, NULL, 1, 0, NULL, ""};   /* no range */
    CHECK(norm(&u, "-123456789012", "-123456789012"));
    RuleParam b = {"flag", RULE_BOOL, "false", 0, 0, NULL, ""};
    CHECK(norm(&b, "Yes", "true") && norm(&b, "0", "false") && norm(&b, "on", "true"));
    CHECK(bad(&b, "maybe", "must be true or false"));
    RuleParam s = {"objective", RULE_STRING, "kl", 0, 0, "kl|cosine|angular", ""};
    CHECK(norm(&s, " cosine ", "cosine") && bad(&s, "cos", "must be one of kl|cosine|angular"));
    RuleParam t = {"model", RULE_TARGET, NULL, 0, 0, NULL, ""};
    CHECK(norm(&t, "@m", "@m") && bad(&t, "dir/x", "must be an @target") && bad(&t, "@a @b", "takes one"));
    RuleParam ps = {"inputs", RULE_PATHS, "", 0, 0, NULL, ""};
    CHECK(norm(&ps, "  a   @b\tc ", "a @b c") && norm(&ps, "", ""));
    RuleParam p1 = {"samples", RULE_PATH, NULL, 0, 0, NULL, ""};
    CHECK(bad(&p1, "a b", "takes one path"));
}

static void test_suggest(void) {
    const char *c[] = {"remove", "objective", "samples"};
    CHECK(suggest_closest("remov", c, 3) == c[0]);
    CHECK(suggest_closest("Samples", c, 3) == c[2]);
    CHECK(suggest_closest("xyzzy", c, 3) == NULL);
}

int main(void) {
    if (!realpath(".", base)) return 1;
    RUN(test_build_and_order);
    RUN(test_cache_dir);
    RUN(test_unknown_rule);
    RUN(test_unknown_param);
    RUN(test_missing_param);
    RUN(test_missing_input);
    RUN(test_unknown_target);
    RUN(test_cycle);
    RUN(test_select);
    RUN(test_override_error_says_D);
    RUN(test_param_types);
    RUN(test_suggest);
    return TEST_SUMMARY();
}
