/* rules/filter_correct.c: the `filter_correct` rule -> D_correct.
 * Greedy-generates every problem of a HumanEval-format set with the model
 * and keeps those whose cut completion passes the tests in the sandbox.
 * Artifact: correct.jsonl (each kept problem with all its original fields
 * plus `completion` = the model's own cut completion; layer_search and
 * ffn_search read `prompt` + `completion`), metrics.json (pass_rate, n,
 * passed). */
#include "rules/eval_tasks.h"
#include "util/error.h"
#include "util/file.h"
#include <stdlib.h>
#include <string.h>

static const RuleParam filter_params[] = {
    EVAL_PARAM_MODEL,
    {"problems", RULE_PATH, NULL, 0, -1, NULL, "HumanEval-format jsonl"},
    EVAL_PARAM_LIMIT, EVAL_PARAM_MAXNEW, EVAL_PARAM_STRIP, EVAL_PARAM_STOP,
    EVAL_PARAM_BATCH, EVAL_PARAM_TIMEOUT, EVAL_PARAM_JOBS, EVAL_PARAM_DEVICE,
    EVAL_PARAM_THREADS, EVAL_PARAM_END,
};

/* Writes the kept problems: the original line's object + completion. The
 * file is re-read line by line so every original field is kept. */
static int write_kept(RuleCtx *ctx, const char *path, const EvalCodegenSet *set, size_t n,
                      char **comp, const EvalSampleResult *res) {
    char *text = NULL;
    size_t len = 0, row = 0;
    if (flab_read_file(path, &text, &len)) return -1;
    FILE *f = eval_open_out(ctx, "correct.jsonl");
    int rc = f ? 0 : -1;
    for (char *line = text, *next; rc == 0 && line && row < n; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        cJSON *o = cJSON_Parse(line);
        if (!o) continue;   /* blank line: the loader skipped it too */
        if (res[row].passed) {
            cJSON_DeleteItemFromObject(o, "completion");
            cJSON_AddStringToObject(o, "completion", comp[row]);
            if (rule_bool(ctx, "strip_prompt"))
                cJSON_ReplaceItemInObject(o, "prompt", cJSON_CreateString(set->items[row].prompt));
            eval_jsonl_line(f, o);
        }
        cJSON_Delete(o);
        row++;
    }
    if (f && fclose(f)) rc = flab_fail_errno("correct.jsonl");
    free(text);
    return rc;
}

static int filter_run(RuleCtx *ctx) {
    EvalRun r;
    EvalCodegenSet set = {0};
    const char *path = rule_input(ctx, "problems");
    if (eval_load_codegen(path, &set)) return -1;
    size_t n = eval_run_limit(ctx, set.n);
    char **comp = flab_xcalloc(n ? n : 1, sizeof *comp);
    EvalSampleResult *res = flab_xcalloc(n ? n : 1, sizeof *res);
    int rc = eval_run_open(ctx, &r);
    long passed = rc ? -1 : eval_codegen_generate_and_test(ctx, &r, &set, n,
                                                             rule_bool(ctx, "strip_prompt"), comp, res);
    rc = passed < 0 ? -1 : write_kept(ctx, path, &set, n, comp, res);
    if (!rc) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddNumberToObject(m, "pass_rate", n ? (double)passed / n : 0);
        cJSON_AddNumberToObject(m, "n", (double)n);
        cJSON_AddNumberToObject(m, "passed", (double)passed);
        cJSON_AddItemToObject(m, "efficiency", eval_run_efficiency(&r));
        rc = eval_write_json(ctx, "metrics.json", m);
        cJSON_Delete(m);
        rule_metric_num(ctx, "pass_rate", n ? (double)passed / n : 0);
        rule_metric_num(ctx, "n", (double)n);
        rule_metric_num(ctx, "passed", (double)passed);
    }
    eval_run_close(&r);
    for (size_t i = 0; i < n; i++) { free(comp[i]); eval_sample_result_free(&res[i]); }
    free(comp);
    free(res);
    eval_codegen_set_free(&set);
    return rc;
}

const Rule rule_filter_correct = {
    .name = "filter_correct",
    .version = 1,
    .summary = "keep the problems the model solves (D_correct) with its own completions",
    .params = filter_params,
    .flags = RULE_EXCLUSIVE,
    .run = filter_run,
};
