/* tests/test_eval_rules_inproc.c: the eval and filter_correct rules run
 * in-process (no engine: a RuleCtx filled by hand), so ASan/LSan see their
 * whole run (the engine's build child ends with _exit): eval for each task
 * on a few problems, strip_prompt (the fixture README's 0 pass), filter_correct, and the error paths (a missing
 * benchmark, a malformed jsonl line, a model dir without a checkpoint). */
#include "rules/rule_priv.h"
#include "tests/testlib.h"
#include "util/error.h"
#include "util/file.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const Rule rule_eval, rule_filter_correct;

#define MAXP 16

typedef struct {
    RuleCtx ctx;
    struct RuleCtxPriv priv;
    const char *values[MAXP];
    const char *const *inputs[MAXP];
    const char *in_store[MAXP][1];
    size_t ninputs[MAXP];
} Harness;

static void set(Harness *h, const char *name, const char *value) {
    int i = rule_param_index(h->ctx.rule, name);
    if (i < 0) return;
    h->values[i] = value;
    if (rule_type_is_input(h->ctx.rule->params[i].type)) {
        h->in_store[i][0] = value;
        h->inputs[i] = h->in_store[i];
        h->ninputs[i] = 1;
    }
}

static void init(Harness *h, const Rule *r, const char *out_dir) {
    memset(h, 0, sizeof *h);
    h->ctx.rule = r;
    h->ctx.target = r->name;
    h->ctx.out_dir = out_dir;
    h->ctx.base_dir = "/";
    h->ctx.log = stderr;
    h->ctx.priv = &h->priv;
    for (size_t i = 0; i < rule_nparams(r); i++) h->values[i] = r->params[i].def;
    h->priv.values = h->values;
    h->priv.inputs = h->inputs;
    h->priv.ninputs = h->ninputs;
    h->priv.metrics = cJSON_CreateObject();
    h->priv.progress_fd = -1;
}

static char root[64], fix[4096], data[4096];
static const char *strip_prompt = "false";

static char *path_in(const char *sub) {
    static char buf[8][4200];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, sub);
    return buf[k];
}

/* Runs rule on benchmark with task (eval) into root/out; *metric gets the
 * metric `key` when present. */
static int run_rule(const Rule *r, const char *model, const char *bench, const char *task,
                    const char *out, const char *key, double *metric) {
    Harness h;
    flab_mkdir_p(path_in(out), 0755);
    init(&h, r, path_in(out));
    set(&h, "model", model);
    set(&h, r == &rule_eval ? "benchmark" : "problems", bench);
    if (task) set(&h, "task", task);
    set(&h, "limit", "4");
    set(&h, "max_new_tokens", "32");
    set(&h, "threads", "1");
    set(&h, "batch_size", "3");   /* two batches, the second partial */
    set(&h, "strip_prompt", strip_prompt);
    int rc = r->run(&h.ctx);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(h.priv.metrics, key ? key : "");
    if (metric) *metric = cJSON_IsNumber(v) ? v->valuedouble : -1;
    cJSON_Delete(h.priv.metrics);
    return rc;
}

static char *bench(const char *name) {
    static char buf[4][4200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", data, name);
    return buf[k];
}

static void test_eval_tasks(void) {
    double v;
    REQUIREF(run_rule(&rule_eval, fix, bench("synth-test.jsonl"), "codegen", "cg", "pass@1", &v) == 0,
             "%s", flab_errmsg());
    CHECK(v >= 0 && v <= 1);
    CHECK(flab_path_exists(path_in("cg/metrics.json")) && flab_path_exists(path_in("cg/report.html")));
    REQUIREF(run_rule(&rule_eval, fix, bench("synth-crux-test.jsonl"), "output", "out", "em", &v) == 0,
             "%s", flab_errmsg());
    CHECK(v >= 0 && v <= 1);
    REQUIREF(run_rule(&rule_eval, fix, bench("humaneval_cot.csv"), "cot", "cot", "bleu4", &v) == 0,
             "%s", flab_errmsg());
    CHECK(v >= 0 && v <= 1);
}

/* The fixture README: with prompt.strip() the model solves none of the
 * first 40 synth-test problems (it goes on writing the docstring), while
 * 2 of the first 4 pass unstripped (checked above through filter_correct's n
 * and by tests/test_eval_rule.sh against an independent run). */
static void test_strip_prompt(void) {
    double v;
    strip_prompt = "true";
    int rc = run_rule(&rule_eval, fix, bench("synth-test.jsonl"), "codegen", "strip", "pass@1", &v);
    strip_prompt = "false";
    REQUIREF(rc == 0, "%s", flab_errmsg());
    CHECKF(v == 0, "pass@1 %g with stripped prompts", v);
}

static void test_filter_correct(void) {
    double n;
    REQUIREF(run_rule(&rule_filter_correct, fix, bench("synth-test.jsonl"), NULL, "fc", "n", &n) == 0,
             "%s", flab_errmsg());
    CHECK(n == 4);
    CHECK(flab_path_exists(path_in("fc/correct.jsonl")));
}

static void test_errors(void) {
    CHECK(run_rule(&rule_eval, fix, path_in("nope.jsonl"), "codegen", "e1", NULL, NULL) < 0);
    REQUIRE(flab_write_file_atomic(path_in("bad.jsonl"), "{\"prompt\": 1\n", 13) == 0);
    CHECK(run_rule(&rule_eval, fix, path_in("bad.jsonl"), "codegen", "e2", NULL, NULL) < 0);
    CHECK(strstr(flab_errmsg(), "bad.jsonl") != NULL);
    CHECK(run_rule(&rule_filter_correct, fix, path_in("bad.jsonl"), NULL, "e3", NULL, NULL) < 0);
    REQUIRE(flab_mkdir_p(path_in("empty_model"), 0755) == 0);
    CHECK(run_rule(&rule_eval, path_in("empty_model"), bench("synth-test.jsonl"), "codegen", "e4",
                   NULL, NULL) < 0);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/flab-eval-rules.XXXXXX");
    if (!mkdtemp(root)) return 1;
    if (!realpath("tests/fixtures/tiny-qwen2", fix) || !realpath("data", data)) return 1;
    RUN(test_eval_tasks);
    RUN(test_strip_prompt);
    RUN(test_filter_correct);
    RUN(test_errors);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return TEST_SUMMARY();
}
