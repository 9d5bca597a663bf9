/* rules/filter_correct.c: the `filter_correct` rule -> D_correct.
 *
 *   [d_correct]
 *   rule = filter_correct
 *   model = tests/fixtures/tiny-qwen2   ; or @target
 *   problems = data/synth-train.jsonl   ; HumanEval-format jsonl
 *   limit = 0
 *
 * The paper's calibration set: the problems the model itself solves.  Each
 * problem's greedy completion (same generation and scoring as the eval
 * rule, rules/eval_common.c) runs in the sandbox; the passing ones are kept
 * in correct.jsonl, one line each, with every original field plus
 * `completion` = the model's own cut completion (replacing any field of
 * that name).  layer_search / ffn_search read <dir>/correct.jsonl.
 * Metrics: n, passed, pass_rate. */
#include "rules/eval_common.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const RuleParam filter_correct_params[] = {
    EVAL_GEN_PARAMS,
    {"problems", RULE_PATH, NULL, 0, -1, NULL, "HumanEval-format jsonl (prompt, test, entry_point, ...)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int is_blank(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* Appends the kept problems: the k-th non-blank line of path is problem k
 * (the loader's numbering, which skips blank lines). */
static int write_kept(const char *path, const EvalCodegenRun *r, FILE *out) {
    char *data;
    size_t len, k = 0, lineno = 0;
    if (flab_read_file(path, &data, &len)) return -1;
    int rc = 0;
    for (char *p = data; p < data + len && k < r->n && rc == 0; lineno++) {
        char *nl = memchr(p, '\n', (size_t)(data + len - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(data + len - p);
        if (!is_blank(p, l)) {
            if (r->results[k].passed) {
                cJSON *j = cJSON_ParseWithLength(p, l);
                if (!cJSON_IsObject(j)) rc = flab_fail("%s:%zu: not a JSON object", path, lineno + 1);
                else {
                    cJSON_DeleteItemFromObjectCaseSensitive(j, "completion");
                    cJSON_AddStringToObject(j, "completion", r->completions[k]);
                    char *s = cJSON_PrintUnformatted(j);
                    fprintf(out, "%s\n", s);
                    free(s);
                }
                cJSON_Delete(j);
            }
            k++;
        }
        p += l + 1;
    }
    free(data);
    return rc;
}

static int filter_correct_run(RuleCtx *ctx) {
    const char *path = rule_input(ctx, "problems");
    EvalModel m;
    EvalCodegenRun r;
    char out_path[4096];
    if (eval_model_open(ctx, &m)) return -1;
    int rc = eval_codegen_run(ctx, &m, path, &r);
    if (rc == 0) {
        snprintf(out_path, sizeof out_path, "%s/correct.jsonl", ctx->out_dir);
        FILE *f = fopen(out_path, "wb");
        if (!f) rc = flab_fail("%s: cannot create", out_path);
        else {
            rc = write_kept(path, &r, f);
            if (fclose(f) && rc == 0) rc = flab_fail("%s: write failed", out_path);
        }
    }
    if (rc == 0) {
        rule_metric_num(ctx, "n", (double)r.n);
        rule_metric_num(ctx, "passed", (double)r.passed);
        rule_metric_num(ctx, "pass_rate", r.n ? (double)r.passed / (double)r.n : 0);
        rule_metric_num(ctx, "generate_seconds", r.gen.seconds);
        rule_metric_num(ctx, "score_seconds", r.score_seconds);
        rule_log(ctx, "kept %ld of %zu problems", r.passed, r.n);
    }
    eval_codegen_run_free(&r);
    eval_model_close(&m);
    return rc;
}

const Rule rule_filter_correct = {
    .name = "filter_correct",
    .version = 1,
    .summary = "keep the problems the model solves, with its own completions -> correct.jsonl",
    .params = filter_correct_params,
    .flags = RULE_EXCLUSIVE,
    .run = filter_correct_run,
    .check = NULL,
};
