/* rules/eval_tasks.c: see eval_tasks.h. */
#include "rules/eval_tasks.h"
#include "eval/bleu.h"
#include "eval/score.h"
#include "util/error.h"
#include <stdlib.h>
#include <string.h>

static cJSON *sample_obj(const char *id, const char *prompt, const char *completion,
                         int passed, const char *reason) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "prompt", prompt);
    cJSON_AddStringToObject(o, "completion", completion);
    cJSON_AddBoolToObject(o, "passed", passed);
    cJSON_AddStringToObject(o, "reason", reason);
    return o;
}

static void free_strings(char **s, size_t n) {
    for (size_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

long eval_codegen_generate_and_test(RuleCtx *ctx, EvalRun *r, EvalCodegenSet *set, size_t n,
                                    int strip, char **completions, EvalSampleResult *results) {
    const char **prompts = flab_xcalloc(n ? n : 1, sizeof *prompts);
    for (size_t i = 0; i < n; i++) {
        if (strip) {
            char *s = eval_prompt_text(set->items[i].prompt, 1);
            free(set->items[i].prompt);
            set->items[i].prompt = s;
        }
        prompts[i] = set->items[i].prompt;
    }
    int rc = eval_run_generate(ctx, r, prompts, n, completions, 0.9);
    free(prompts);
    if (rc) return -1;
    long passed = eval_codegen_score(&r->sandbox, set, n, (const char *const *)completions,
                                     results, &r->iso);
    rule_progress(ctx, 1, 1);
    return passed;
}

int eval_task_codegen(RuleCtx *ctx, EvalRun *r, const char *path, cJSON *metrics, cJSON *samples) {
    EvalCodegenSet set = {0};
    if (eval_load_codegen(path, &set)) return -1;
    size_t n = eval_run_limit(ctx, set.n);
    char **comp = flab_xcalloc(n ? n : 1, sizeof *comp);
    EvalSampleResult *res = flab_xcalloc(n ? n : 1, sizeof *res);
    long passed = eval_codegen_generate_and_test(ctx, r, &set, n, rule_bool(ctx, "strip_prompt"),
                                                 comp, res);
    for (size_t i = 0; passed >= 0 && i < n; i++)
        cJSON_AddItemToArray(samples, sample_obj(set.items[i].task_id, set.items[i].prompt,
                                                 comp[i], res[i].passed, res[i].reason));
    if (passed >= 0) {
        cJSON_AddNumberToObject(metrics, "pass@1", n ? (double)passed / n : 0);
        cJSON_AddNumberToObject(metrics, "n", (double)n);
        cJSON_AddNumberToObject(metrics, "passed", (double)passed);
    }
    for (size_t i = 0; i < n; i++) eval_sample_result_free(&res[i]);
    free(res);
    free_strings(comp, n);
    eval_codegen_set_free(&set);
    return passed < 0 ? -1 : 0;
}

/* CoT: no stop strings (a plan has newlines); hypothesis = stripped text. */
int eval_task_cot(RuleCtx *ctx, EvalRun *r, const char *path, cJSON *metrics, cJSON *samples) {
    EvalCotSet set = {0};
    if (eval_load_cot(path, &set)) return -1;
    for (size_t i = 0; i < r->n_stops; i++) free(r->stops[i]);
    r->n_stops = 0;
    size_t n = eval_run_limit(ctx, set.n);
    int strip = rule_bool(ctx, "strip_prompt");
    char **prompts = flab_xcalloc(n ? n : 1, sizeof *prompts);
    char **comp = flab_xcalloc(n ? n : 1, sizeof *comp);
    const char **refs = flab_xcalloc(n ? n : 1, sizeof *refs);
    for (size_t i = 0; i < n; i++) {
        prompts[i] = eval_prompt_text(set.items[i].prompt, strip);
        refs[i] = set.items[i].cot;
    }
    int rc = eval_run_generate(ctx, r, (const char *const *)prompts, n, comp, 1.0);
    for (size_t i = 0; !rc && i < n; i++) {
        char *h = eval_prompt_text(comp[i], 1);
        free(comp[i]);
        comp[i] = h;
        char id[32];
        snprintf(id, sizeof id, "%zu", i);
        cJSON_AddItemToArray(samples, sample_obj(id, prompts[i], comp[i], 1, "scored by corpus BLEU-4"));
    }
    if (!rc) {
        EvalBleu b;
        size_t *nref = flab_xcalloc(n ? n : 1, sizeof *nref);
        const char *const **rr = flab_xcalloc(n ? n : 1, sizeof *rr);
        for (size_t i = 0; i < n; i++) { nref[i] = 1; rr[i] = &refs[i]; }
        eval_bleu_corpus((const char *const *)comp, rr, nref, n, &b);
        cJSON_AddNumberToObject(metrics, "bleu4", b.bleu[3]);
        cJSON_AddNumberToObject(metrics, "bleu1", b.bleu[0]);
        cJSON_AddNumberToObject(metrics, "bleu2", b.bleu[1]);
        cJSON_AddNumberToObject(metrics, "bleu3", b.bleu[2]);
        cJSON_AddNumberToObject(metrics, "n", (double)n);
        cJSON_AddNumberToObject(metrics, "passed", (double)n);
        free(nref);
        free(rr);
    }
    free(refs);
    free_strings(prompts, n);
    free_strings(comp, n);
    eval_cot_set_free(&set);
    return rc;
}

static void output_samples(const EvalOutputSet *set, size_t n, char **prompts, char **pred,
                           const EvalSampleResult *res, cJSON *samples, size_t *n_em) {
    *n_em = 0;
    for (size_t i = 0; i < n; i++) {
        int em = eval_output_exact_match(pred[i], set->items[i].output);
        *n_em += (size_t)em;
        char reason[600];
        snprintf(reason, sizeof reason, "em %s; exec %s", em ? "match" : "mismatch",
                 res[i].reason ? res[i].reason : "?");
        cJSON *o = sample_obj(set->items[i].id, prompts[i], pred[i], res[i].passed, reason);
        cJSON_AddBoolToObject(o, "em", em);
        cJSON_AddStringToObject(o, "gold", set->items[i].output);
        cJSON_AddItemToArray(samples, o);
    }
}

/* Output prediction: generation stops at the end of the first line. */
int eval_task_output(RuleCtx *ctx, EvalRun *r, const char *path, cJSON *metrics, cJSON *samples) {
    EvalOutputSet set = {0};
    if (eval_load_output(path, &set)) return -1;
    for (size_t i = 0; i < r->n_stops; i++) free(r->stops[i]);
    r->stops[0] = strdup("\n");
    r->n_stops = 1;
    size_t n = eval_run_limit(ctx, set.n), n_em = 0, n_exec = 0;
    char **prompts = flab_xcalloc(n ? n : 1, sizeof *prompts);
    char **pred = flab_xcalloc(n ? n : 1, sizeof *pred);
    EvalSampleResult *res = flab_xcalloc(n ? n : 1, sizeof *res);
    for (size_t i = 0; i < n; i++) prompts[i] = eval_output_prompt(&set.items[i]);
    int rc = eval_run_generate(ctx, r, (const char *const *)prompts, n, pred, 0.9);
    for (size_t i = 0; !rc && i < n; i++) {
        char *a = eval_output_answer(pred[i]);
        free(pred[i]);
        pred[i] = a;
    }
    if (!rc) rc = eval_output_score(&r->sandbox, &set, n, (const char *const *)pred, &n_em,
                                    &n_exec, res, &r->iso);
    if (!rc) {
        output_samples(&set, n, prompts, pred, res, samples, &n_em);
        cJSON_AddNumberToObject(metrics, "em", n ? (double)n_em / n : 0);
        cJSON_AddNumberToObject(metrics, "exec_match", n ? (double)n_exec / n : 0);
        cJSON_AddNumberToObject(metrics, "n", (double)n);
        cJSON_AddNumberToObject(metrics, "passed", (double)n_exec);
        cJSON_AddNumberToObject(metrics, "em_passed", (double)n_em);
    }
    rule_progress(ctx, 1, 1);
    for (size_t i = 0; i < n; i++) eval_sample_result_free(&res[i]);
    free(res);
    free_strings(prompts, n);
    free_strings(pred, n);
    eval_output_set_free(&set);
    return rc;
}
