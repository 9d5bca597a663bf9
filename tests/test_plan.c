/* tests/test_plan.c: keys, staleness, the plan and explain (engine/keys.c,
 * engine/plan.c, engine/explain.c) against an in-memory fake store: no disk,
 * no cache.  File contents are a table path -> text, the cache is a set of
 * keys, build records are a table target -> (key, explain JSON). */
#include "engine/explain.h"
#include "engine/keys.h"
#include "engine/plan.h"
#include "engine/record_state.h"
#include "util/error.h"
#include "tests/testlib.h"
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>

typedef struct {
    const char *files[8][2];        /* path suffix -> content */
    char keys[64][33];              /* committed artifacts */
    size_t nkeys;
    struct { char target[64], key[33]; char *json; } recs[64];
    size_t nrecs;
    int hash_calls;
} Fake;

static int fake_hash(void *ud, const char *path, char out[33]) {
    Fake *f = ud;
    f->hash_calls++;
    const char *content = path;
    for (int i = 0; i < 8 && f->files[i][0]; i++) {
        size_t a = strlen(path), b = strlen(f->files[i][0]);
        if (a >= b && !strcmp(path + a - b, f->files[i][0])) content = f->files[i][1];
    }
    XXH128_hash_t h = XXH3_128bits(content, strlen(content));
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    return 0;
}

static int fake_has(void *ud, const char *key) {
    Fake *f = ud;
    for (size_t i = 0; i < f->nkeys; i++) if (!strcmp(f->keys[i], key)) return 1;
    return 0;
}

static int fake_last(void *ud, const char *target, char key[33], char **json) {
    Fake *f = ud;
    for (size_t i = f->nrecs; i-- > 0;)
        if (!strcmp(f->recs[i].target, target)) {
            memcpy(key, f->recs[i].key, 33);
            if (json) *json = strdup(f->recs[i].json);
            return 1;
        }
    return 0;
}

static EngineStore store_of(Fake *f) { return (EngineStore){f, fake_hash, fake_has, fake_last}; }

/* "Builds" every target that the plan runs: key committed, record kept. */
static void fake_build(Fake *f, Graph *g, const Plan *p) {
    for (size_t k = 0; k < p->nrun; k++) {
        const Target *t = &g->targets[p->order[k]];
        memcpy(f->keys[f->nkeys++], t->key, 33);
        snprintf(f->recs[f->nrecs].target, 64, "%s", t->name);
        memcpy(f->recs[f->nrecs].key, t->key, 33);
        f->recs[f->nrecs++].json = keys_describe(g, t);
    }
}

static void fake_free(Fake *f) {
    for (size_t i = 0; i < f->nrecs; i++) free(f->recs[i].json);
}

static char base[PATH_MAX];

/* a <- b <- c, and d independent; b's run and a's input are parameters. */
static Graph *pipeline(const char *b_run, const char *a_name, const char *extra_d) {
    char text[2048];
    snprintf(text, sizeof text,
             "[%s]\nrule = command\ninputs = tests/fixtures/tiny-qwen2/config.json\nrun = A\n"
             "[b]\nrule = command\ninputs = @%s\nrun = %s\n"
             "[c]\nrule = command\ninputs = @b @%s\nrun = C\n"
             "[d]\nrule = command\nrun = D%s\n", a_name, a_name, b_run, a_name, extra_d);
    Flabfile *ff;
    Graph *g;
    if (flabfile_parse_string(text, "p.ini", base, &ff) < 0) return NULL;
    return graph_build(ff, &g) < 0 ? NULL : g;
}

static Plan plan_all(Graph *g, Fake *f, int force) {
    int *roots;
    size_t n;
    Plan p;
    memset(&p, 0, sizeof p);
    if (graph_select(g, NULL, 0, &roots, &n) < 0) return p;
    EngineStore s = store_of(f);
    if (plan_make(g, roots, n, force, &s, &p) < 0) memset(&p, 0, sizeof p);
    free(roots);
    return p;
}

static const char *key_of(Graph *g, const char *name) { return g->targets[graph_find(g, name)].key; }

static void test_noop_after_build(void) {
    Fake f = {.files = {{"config.json", "v1"}}};
    Graph *g = pipeline("B", "a", "");
    REQUIRE(g);
    Plan p = plan_all(g, &f, 0);
    CHECK(p.nrun == 4 && p.nwant == 4);
    /* dependencies first */
    CHECK(p.order[0] == graph_find(g, "a") || p.order[0] == graph_find(g, "d"));
    fake_build(&f, g, &p);
    plan_free(&p);
    p = plan_all(g, &f, 0);
    CHECK(p.nrun == 0);
    plan_free(&p);
    graph_free(g);
    fake_free(&f);
}

static void test_param_change_reruns_dependents_only(void) {
    Fake f = {.files = {{"config.json", "v1"}}};
    Graph *g1 = pipeline("B", "a", "");
    REQUIRE(g1);
    Plan p = plan_all(g1, &f, 0);
    fake_build(&f, g1, &p);
    plan_free(&p);
    Graph *g2 = pipeline("B2", "a", "");
    REQUIRE(g2);
    p = plan_all(g2, &f, 0);
    CHECK(p.nrun == 2 && p.run[graph_find(g2, "b")] && p.run[graph_find(g2, "c")]);
    CHECK(!strcmp(key_of(g1, "a"), key_of(g2, "a")) && !strcmp(key_of(g1, "d"), key_of(g2, "d")));
    CHECK(strcmp(key_of(g1, "b"), key_of(g2, "b")) && strcmp(key_of(g1, "c"), key_of(g2, "c")));
    /* explain names the parameter, and the dependency for c */
    EngineStore s = store_of(&f);
    Explanation e;
    REQUIRE(explain_target(g2, &g2->targets[graph_find(g2, "b")], &s, &e) == 0);
    CHECK(e.state == EXPLAIN_CHANGED && e.nreasons == 1);
    CHECKF(e.nreasons && !strcmp(e.reasons[0], "parameter 'run' changed: 'B' -> 'B2'"), "%s",
           e.nreasons ? e.reasons[0] : "-");
    explanation_free(&e);
    REQUIRE(explain_target(g2, &g2->targets[graph_find(g2, "c")], &s, &e) == 0);
    CHECK(e.state == EXPLAIN_CHANGED && e.nreasons == 1 && strstr(e.reasons[0], "input @b (parameter 'inputs') changed"));
    explanation_free(&e);
    fake_build(&f, g2, &p);
    plan_free(&p);
    /* revert: everything is in the cache again */
    p = plan_all(g1, &f, 0);
    CHECK(p.nrun == 0);
    plan_free(&p);
    graph_free(g1);
    graph_free(g2);
    fake_free(&f);
}

static void test_file_content_change(void) {
    Fake f = {.files = {{"config.json", "v1"}}};
    Graph *g = pipeline("B", "a", "");
    REQUIRE(g);
    Plan p = plan_all(g, &f, 0);
    fake_build(&f, g, &p);
    plan_free(&p);
    f.files[0][1] = "v2";
    p = plan_all(g, &f, 0);
    CHECK(p.nrun == 3 && !p.run[graph_find(g, "d")]);
    EngineStore s = store_of(&f);
    Explanation e;
    REQUIRE(explain_target(g, &g->targets[graph_find(g, "a")], &s, &e) == 0);
    CHECK(e.nreasons == 1 && strstr(e.reasons[0], "input 'tests/fixtures/tiny-qwen2/config.json' "
                                                  "(parameter 'inputs') changed content"));
    explanation_free(&e);
    plan_free(&p);
    graph_free(g);
    fake_free(&f);
}

static void test_rename_keeps_keys(void) {
    Fake f = {0};
    Graph *g1 = pipeline("B", "a", ""), *g2 = pipeline("B", "renamed", "");
    REQUIRE(g1 && g2);
    Plan p1 = plan_all(g1, &f, 0), p2 = plan_all(g2, &f, 0);
    CHECK(!strcmp(key_of(g1, "c"), key_of(g2, "c")) && !strcmp(key_of(g1, "a"), key_of(g2, "renamed")));
    plan_free(&p1);
    plan_free(&p2);
    graph_free(g1);
    graph_free(g2);
}

static void test_whitespace_does_not_change_keys(void) {
    Fake f = {0};
    Graph *g1 = pipeline("B", "a", ""), *g2 = pipeline("  B  ", "a", "");
    REQUIRE(g1 && g2);
    Plan p1 = plan_all(g1, &f, 0), p2 = plan_all(g2, &f, 0);
    CHECK(!strcmp(key_of(g1, "b"), key_of(g2, "b")));
    plan_free(&p1);
    plan_free(&p2);
    graph_free(g1);
    graph_free(g2);
}

static void test_fresh_target_does_not_want_deps(void) {
    Fake f = {0};
    Graph *g = pipeline("B", "a", "");
    REQUIRE(g);
    Plan p = plan_all(g, &f, 0);
    fake_build(&f, g, &p);
    plan_free(&p);
    /* a's artifact disappears (gc): c is fresh so building c needs nothing */
    for (size_t i = 0; i < f.nkeys; i++)
        if (!strcmp(f.keys[i], key_of(g, "a"))) f.keys[i][0] = 0;
    int c = graph_find(g, "c"), a = graph_find(g, "a");
    EngineStore s = store_of(&f);
    REQUIRE(plan_make(g, &c, 1, 0, &s, &p) == 0);
    CHECK(p.nrun == 0 && !p.want[a]);
    plan_free(&p);
    REQUIRE(plan_make(g, &a, 1, 0, &s, &p) == 0);
    CHECK(p.nrun == 1 && p.run[a]);
    plan_free(&p);
    Explanation e;
    REQUIRE(explain_target(g, &g->targets[a], &s, &e) == 0);
    CHECK(e.state == EXPLAIN_MISSING);
    explanation_free(&e);
    graph_free(g);
    fake_free(&f);
}

static void test_force_and_never_built(void) {
    Fake f = {0};
    Graph *g = pipeline("B", "a", "");
    REQUIRE(g);
    EngineStore s = store_of(&f);
    Plan p = plan_all(g, &f, 0);
    Explanation e;
    REQUIRE(explain_target(g, &g->targets[0], &s, &e) == 0);
    CHECK(e.state == EXPLAIN_NEVER && !strcmp(explanation_summary(&e), "never built"));
    explanation_free(&e);
    fake_build(&f, g, &p);
    plan_free(&p);
    p = plan_all(g, &f, 1);
    CHECK(p.nrun == 4);
    plan_free(&p);
    REQUIRE(explain_target(g, &g->targets[0], &s, &e) == 0);
    CHECK(e.state == EXPLAIN_FRESH);
    explanation_free(&e);
    graph_free(g);
    fake_free(&f);
}

static void test_only_needed_inputs_hashed(void) {
    Fake f = {0};
    Graph *g = pipeline("B", "a", "");
    REQUIRE(g);
    int d = graph_find(g, "d");
    EngineStore s = store_of(&f);
    Plan p;
    REQUIRE(plan_make(g, &d, 1, 0, &s, &p) == 0);
    CHECK(f.hash_calls == 0 && p.nrun == 1);   /* d has no file inputs; a's file not hashed */
    plan_free(&p);
    graph_free(g);
}

static void test_describe_is_json(void) {
    Fake f = {.files = {{"config.json", "v1"}}};
    Graph *g = pipeline("B", "a", "");
    REQUIRE(g);
    Plan p = plan_all(g, &f, 0);
    char *d = keys_describe(g, &g->targets[graph_find(g, "c")]);
    CHECKF(strstr(d, "\"rule\":\"command\",\"version\":1,\"params\":{\"run\":\"C\",\"inputs\":\"@b @a\",\"shell\":\"sh\"}") != NULL, "%s", d);
    CHECK(strstr(d, "\"ref\":\"@b\"") != NULL);
    free(d);
    plan_free(&p);
    graph_free(g);
}

static void test_record_state(void) {
    Fake f = {0};
    Graph *g1 = pipeline("B", "a", ""), *g2 = pipeline("B2", "a", "");
    REQUIRE(g1 && g2);
    Plan p1 = plan_all(g1, &f, 0), p2 = plan_all(g2, &f, 0);
    char h1[33], h2[33], h1b[33];
    record_state_hash(g1, p1.want, h1);
    record_state_hash(g2, p2.want, h2);
    record_state_hash(g1, p1.want, h1b);
    CHECK(strcmp(h1, h2) && !strcmp(h1, h1b));
    char dir[] = "/tmp/flab-state-XXXXXX";
    REQUIRE(mkdtemp(dir));
    CHECK(!record_state_matches(dir, h1));          /* no file: check every record */
    CHECK(record_state_write(dir, h1) == 0);
    CHECK(record_state_matches(dir, h1) && !record_state_matches(dir, h2));
    CHECK(record_state_invalidate(dir) == 0 && !record_state_matches(dir, h1));
    CHECK(record_state_invalidate(dir) == 0);       /* already gone: fine */
    rmdir(dir);
    plan_free(&p1);
    plan_free(&p2);
    graph_free(g1);
    graph_free(g2);
}

int main(void) {
    if (!realpath(".", base)) return 1;
    RUN(test_noop_after_build);
    RUN(test_param_change_reruns_dependents_only);
    RUN(test_file_content_change);
    RUN(test_rename_keeps_keys);
    RUN(test_whitespace_does_not_change_keys);
    RUN(test_fresh_target_does_not_want_deps);
    RUN(test_force_and_never_built);
    RUN(test_only_needed_inputs_hashed);
    RUN(test_describe_is_json);
    RUN(test_record_state);
    return TEST_SUMMARY();
}
