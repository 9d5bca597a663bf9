/* rules/recover_data.c: the `recover_data` rule -> recovery training data.
 * For each training problem (HumanEval format) the ORIGINAL model's greedy,
 * cut completion runs against the tests in the sandbox; when it passes the
 * target is that completion (source "model"), otherwise the reference
 * canonical_solution (source "reference", on_fail = keep) or the sample is
 * dropped (on_fail = drop).  Artifact: train.jsonl (task_id, prompt,
 * target, source), metrics.json (replacement_rate = replaced / n, counts). */
#include "rules/eval_tasks.h"
#include "util/error.h"
#include <stdlib.h>
#include <string.h>

static const RuleParam recover_params[] = {
    EVAL_PARAM_MODEL,
    {"data", RULE_PATH, NULL, 0, -1, NULL, "training set, HumanEval-format jsonl"},
    {"on_fail", RULE_STRING, "keep", 0, -1, "keep|drop", "failed samples: reference target or dropped"},
    EVAL_PARAM_LIMIT, EVAL_PARAM_MAXNEW, EVAL_PARAM_STRIP, EVAL_PARAM_STOP,
    EVAL_PARAM_BATCH, EVAL_PARAM_TIMEOUT, EVAL_PARAM_JOBS, EVAL_PARAM_DEVICE,
    EVAL_PARAM_THREADS, EVAL_PARAM_END,
};

static int write_train(RuleCtx *ctx, const EvalCodegenSet *set, size_t n, char **comp,
                       const EvalSampleResult *res, int keep, size_t *n_ref) {
    FILE *f = eval_open_out(ctx, "train.jsonl");
    if (!f) return -1;
    *n_ref = 0;
    for (size_t i = 0; i < n; i++) {
        const EvalCodegenTask *t = &set->items[i];
        if (!res[i].passed && !keep) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "task_id", t->task_id);
        cJSON_AddStringToObject(o, "prompt", t->prompt);
        cJSON_AddStringToObject(o, "target", res[i].passed ? comp[i] : t->canonical_solution);
        cJSON_AddStringToObject(o, "source", res[i].passed ? "model" : "reference");
        *n_ref += !res[i].passed;
        eval_jsonl_line(f, o);
        cJSON_Delete(o);
    }
    if (fclose(f)) return flab_fail_errno("train.jsonl");
    return 0;
}

static void add_metrics(RuleCtx *ctx, cJSON *m, size_t n, long replaced, size_t n_ref, int keep) {
    double rate = n ? (double)replaced / n : 0;
    cJSON_AddNumberToObject(m, "replacement_rate", rate);
    cJSON_AddNumberToObject(m, "n", (double)n);
    cJSON_AddNumberToObject(m, "replaced", (double)replaced);
    cJSON_AddNumberToObject(m, "reference", (double)n_ref);
    cJSON_AddNumberToObject(m, "dropped", keep ? 0 : (double)(n - (size_t)replaced));
    cJSON_AddNumberToObject(m, "written", (double)((size_t)replaced + n_ref));
    rule_metric_num(ctx, "replacement_rate", rate);
    rule_metric_num(ctx, "n", (double)n);
    rule_metric_num(ctx, "replaced", (double)replaced);
}

static int recover_run(RuleCtx *ctx) {
    EvalRun r;
    EvalCodegenSet set = {0};
    if (eval_load_codegen(rule_input(ctx, "data"), &set)) return -1;
    size_t n = eval_run_limit(ctx, set.n), n_ref = 0;
    int keep = !strcmp(rule_str(ctx, "on_fail"), "keep");
    char **comp = flab_xcalloc(n ? n : 1, sizeof *comp);
    EvalSampleResult *res = flab_xcalloc(n ? n : 1, sizeof *res);
    int rc = eval_run_open(ctx, &r);
    long replaced = rc ? -1 : eval_codegen_generate_and_test(ctx, &r, &set, n,
                                                               rule_bool(ctx, "strip_prompt"), comp, res);
    rc = replaced < 0 ? -1 : write_train(ctx, &set, n, comp, res, keep, &n_ref);
    if (!rc) {
        cJSON *m = cJSON_CreateObject();
        add_metrics(ctx, m, n, replaced, n_ref, keep);
        cJSON_AddItemToObject(m, "efficiency", eval_run_efficiency(&r));
        rc = eval_write_json(ctx, "metrics.json", m);
        cJSON_Delete(m);
    }
    eval_run_close(&r);
    for (size_t i = 0; i < n; i++) { free(comp[i]); eval_sample_result_free(&res[i]); }
    free(comp);
    free(res);
    eval_codegen_set_free(&set);
    return rc;
}

const Rule rule_recover_data = {
    .name = "recover_data",
    .version = 1,
    .summary = "recovery data: the original model's passing solutions replace the references",
    .params = recover_params,
    .flags = RULE_EXCLUSIVE,
    .run = recover_run,
};
