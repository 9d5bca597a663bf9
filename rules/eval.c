/* rules/eval.c: the `eval` rule: runs a model on a benchmark and scores it.
 *
 *   [eval/humaneval]
 *   rule = eval
 *   model = @merged            ; or a model directory
 *   benchmark = data/synth-test.jsonl
 *   task = codegen             ; codegen (pass@1) | output (em, exec_match) | cot (bleu4)
 *   limit = 0                  ; first N problems (0: all)
 *
 * Greedy, batched generation (rules/eval_common.c); codegen completions are
 * cut at the paper's stop strings and run in the sandbox; output-prediction
 * answers are the first line of the completion; cot completions are scored
 * by corpus BLEU-4 against the `cot` column.  Artifact: metrics.json
 * (headline fraction + n, passed, timings, throughput, efficiency block),
 * samples.jsonl (id, prompt, completion, passed, reason), report.html. */
#include "eval/bleu.h"
#include "eval/efficiency.h"
#include "eval/score.h"
#include "rules/eval_common.h"
#include "util/error.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const RuleParam eval_params[] = {
    EVAL_GEN_PARAMS,
    {"benchmark", RULE_PATH, NULL, 0, -1, NULL, "benchmark file (HumanEval jsonl, CRUX jsonl, CoT csv)"},
    {"task", RULE_STRING, "codegen", 0, -1, "codegen|cot|output", "what the benchmark measures"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

/* Per-sample outcome, whatever the task. */
typedef struct {
    size_t n;
    char **ids, **prompts, **completions, **reasons;
    int *passed;
    long n_passed;
    EvalGenStats gen;
    double score_seconds;
    EvalIsolation iso;
    int has_iso;
} Outcome;

static void outcome_alloc(Outcome *o, size_t n) {
    memset(o, 0, sizeof *o);
    o->n = n;
    o->ids = flab_xcalloc(n + 1, sizeof *o->ids);
    o->prompts = flab_xcalloc(n + 1, sizeof *o->prompts);
    o->completions = flab_xcalloc(n + 1, sizeof *o->completions);
    o->reasons = flab_xcalloc(n + 1, sizeof *o->reasons);
    o->passed = flab_xcalloc(n + 1, sizeof *o->passed);
}

static void outcome_free(Outcome *o) {
    for (size_t i = 0; i < o->n; i++) {
        free(o->ids[i]); free(o->prompts[i]); free(o->completions[i]); free(o->reasons[i]);
    }
    free(o->ids); free(o->prompts); free(o->completions); free(o->reasons); free(o->passed);
}

static char *dupstr(const char *s) { return flab_xstrdup(s ? s : ""); }

static int run_codegen(RuleCtx *ctx, EvalModel *m, const char *path, Outcome *o, cJSON *met) {
    EvalCodegenRun r;
    int rc = eval_codegen_run(ctx, m, path, &r);
    if (rc == 0) {
        outcome_alloc(o, r.n);
        for (size_t i = 0; i < r.n; i++) {
            o->ids[i] = dupstr(r.set.items[i].task_id);
            o->prompts[i] = dupstr(r.prompts[i]);
            o->completions[i] = dupstr(r.completions[i]);
            o->reasons[i] = dupstr(r.results[i].reason);
            o->passed[i] = r.results[i].passed;
        }
        o->n_passed = r.passed;
        o->gen = r.gen;
        o->score_seconds = r.score_seconds;
        o->iso = r.iso;
        o->has_iso = 1;
        cJSON_AddNumberToObject(met, "pass@1", r.n ? (double)r.passed / (double)r.n : 0);
    }
    eval_codegen_run_free(&r);
    return rc;
}

static const char *const newline_stop[] = {"\n"};

static int run_output(RuleCtx *ctx, EvalModel *m, const char *path, Outcome *o, cJSON *met) {
    EvalOutputSet set;
    if (eval_load_output(path, &set)) return -1;
    size_t n = eval_limit(ctx, set.n), n_em = 0, n_exec = 0;
    int rc = -1;
    outcome_alloc(o, n);
    char **answers = flab_xcalloc(n + 1, sizeof *answers);
    EvalSampleResult *res = flab_xcalloc(n + 1, sizeof *res);
    for (size_t i = 0; i < n; i++) {
        char *p = eval_output_prompt(&set.items[i]);
        o->prompts[i] = eval_model_prompt(ctx, p);
        o->ids[i] = dupstr(set.items[i].id);
        free(p);
    }
    if (eval_generate_all(ctx, m, (const char *const *)o->prompts, n, newline_stop, 1,
                          o->completions, &o->gen))
        goto done;
    for (size_t i = 0; i < n; i++) answers[i] = eval_output_answer(o->completions[i]);
    EvalSandboxConfig cfg;
    eval_sandbox_from_params(ctx, &cfg);
    double t0 = eval_now();
    if (eval_output_score(&cfg, &set, n, (const char *const *)answers, &n_em, &n_exec, res, &o->iso))
        goto done;
    o->score_seconds = eval_now() - t0;
    o->has_iso = 1;
    for (size_t i = 0; i < n; i++) {
        int em = eval_output_exact_match(answers[i], set.items[i].output);
        o->passed[i] = res[i].passed;
        char buf[256];
        snprintf(buf, sizeof buf, "em=%d exec: %s", em, res[i].reason ? res[i].reason : "?");
        o->reasons[i] = dupstr(buf);
    }
    o->n_passed = (long)n_exec;
    cJSON_AddNumberToObject(met, "em", n ? (double)n_em / (double)n : 0);
    cJSON_AddNumberToObject(met, "exec_match", n ? (double)n_exec / (double)n : 0);
    cJSON_AddNumberToObject(met, "em_count", (double)n_em);
    rc = 0;
done:
    for (size_t i = 0; i < n; i++) { free(answers[i]); eval_sample_result_free(&res[i]); }
    free(answers); free(res);
    eval_output_set_free(&set);
    return rc;
}

static int run_cot(RuleCtx *ctx, EvalModel *m, const char *path, Outcome *o, cJSON *met) {
    EvalCotSet set;
    if (eval_load_cot(path, &set)) return -1;
    size_t n = eval_limit(ctx, set.n);
    int rc = -1;
    outcome_alloc(o, n);
    const char **refs = flab_xcalloc(n + 1, sizeof *refs);
    for (size_t i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%zu", i);
        o->ids[i] = dupstr(buf);
        o->prompts[i] = eval_model_prompt(ctx, set.items[i].prompt);
        refs[i] = set.items[i].cot;
    }
    if (eval_generate_all(ctx, m, (const char *const *)o->prompts, n, NULL, 0, o->completions, &o->gen))
        goto done;
    EvalBleu b;
    size_t *nrefs = flab_xcalloc(n + 1, sizeof *nrefs);
    const char *const **refp = flab_xcalloc(n + 1, sizeof *refp);
    for (size_t i = 0; i < n; i++) { nrefs[i] = 1; refp[i] = &refs[i]; }
    eval_bleu_corpus((const char *const *)o->completions, refp, nrefs, n, &b);
    free(nrefs); free(refp);
    for (size_t i = 0; i < n; i++) { o->reasons[i] = dupstr("bleu"); o->passed[i] = 0; }
    cJSON_AddNumberToObject(met, "bleu1", b.bleu[0]);
    cJSON_AddNumberToObject(met, "bleu2", b.bleu[1]);
    cJSON_AddNumberToObject(met, "bleu3", b.bleu[2]);
    cJSON_AddNumberToObject(met, "bleu4", b.bleu[3]);
    rc = 0;
done:
    free(refs);
    eval_cot_set_free(&set);
    return rc;
}

/* params, checkpoint bytes, FLOPs/token, peak RSS, energy, CO2. */
static int efficiency(RuleCtx *ctx, EvalModel *m, const Outcome *o, EvalEnergyMeter *em, cJSON *met) {
    char path[4096], label[128];
    EvalModelShape sh;
    int64_t params = 0, bytes = 0;
    snprintf(path, sizeof path, "%s/config.json", m->dir);
    if (eval_model_shape_load(path, &sh) || eval_checkpoint_stats(m->dir, &params, &bytes)) return -1;
    EvalEnergySource src;
    double joules = eval_energy_stop(em, &src);
    double P = o->n ? (double)o->gen.prompt_tokens / (double)o->n : 0;
    double G = o->n ? (double)o->gen.gen_tokens / (double)o->n : 0;
    cJSON *e = cJSON_AddObjectToObject(met, "efficiency");
    cJSON_AddNumberToObject(e, "params", (double)params);
    cJSON_AddNumberToObject(e, "checkpoint_bytes", (double)bytes);
    cJSON_AddNumberToObject(e, "peak_rss_bytes", (double)eval_peak_rss_bytes());
    cJSON_AddNumberToObject(e, "flops_per_token", eval_flops_per_token(&sh, P + (G > 1 ? (G - 1) / 2 : 0)));
    cJSON_AddNumberToObject(e, "energy_j", joules);
    cJSON_AddStringToObject(e, "energy_source", eval_energy_label(em, label, sizeof label));
    cJSON_AddBoolToObject(e, "energy_estimated", src == EVAL_ENERGY_ESTIMATED);
    cJSON_AddNumberToObject(e, "co2_g", eval_co2_grams(joules, EVAL_DEFAULT_GRID_G_PER_KWH));
    cJSON_AddNumberToObject(e, "grid_g_per_kwh", EVAL_DEFAULT_GRID_G_PER_KWH);
    (void)ctx;
    return 0;
}

static void add_counts(const Outcome *o, double total_s, cJSON *met) {
    cJSON_AddNumberToObject(met, "n", (double)o->n);
    cJSON_AddNumberToObject(met, "passed", (double)o->n_passed);
    cJSON_AddNumberToObject(met, "prompt_tokens", (double)o->gen.prompt_tokens);
    cJSON_AddNumberToObject(met, "generated_tokens", (double)o->gen.gen_tokens);
    cJSON_AddNumberToObject(met, "generate_seconds", o->gen.seconds);
    cJSON_AddNumberToObject(met, "score_seconds", o->score_seconds);
    cJSON_AddNumberToObject(met, "total_seconds", total_s);
    double s = o->gen.seconds > 0 ? o->gen.seconds : 1e-9;
    double ps = o->gen.prefill_seconds > 0 ? o->gen.prefill_seconds : 1e-9;
    double ds = o->gen.decode_seconds > 0 ? o->gen.decode_seconds : 1e-9;
    cJSON_AddNumberToObject(met, "prefill_seconds", o->gen.prefill_seconds);
    cJSON_AddNumberToObject(met, "decode_seconds", o->gen.decode_seconds);
    cJSON_AddNumberToObject(met, "prefill_tokens_per_s", (double)o->gen.prompt_tokens / ps);
    cJSON_AddNumberToObject(met, "decode_tokens_per_s", (double)o->gen.decode_tokens / ds);
    cJSON_AddNumberToObject(met, "generated_tokens_per_s", (double)o->gen.gen_tokens / s);
    if (o->has_iso) cJSON_AddStringToObject(met, "sandbox", o->iso.summary);
}

static char *samples_jsonl(const Outcome *o) {
    size_t cap = 1024, len = 0;
    char *buf = flab_xmalloc(cap);
    buf[0] = 0;
    for (size_t i = 0; i < o->n; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", o->ids[i]);
        cJSON_AddStringToObject(j, "prompt", o->prompts[i]);
        cJSON_AddStringToObject(j, "completion", o->completions[i]);
        cJSON_AddBoolToObject(j, "passed", o->passed[i]);
        cJSON_AddStringToObject(j, "reason", o->reasons[i]);
        char *s = cJSON_PrintUnformatted(j);
        size_t l = strlen(s);
        while (len + l + 2 > cap) buf = flab_xrealloc(buf, cap *= 2);
        memcpy(buf + len, s, l);
        len += l;
        buf[len++] = '\n';
        buf[len] = 0;
        free(s);
        cJSON_Delete(j);
    }
    return buf;
}

static void html_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

static int write_report(RuleCtx *ctx, const Outcome *o, const char *metrics_text, const char *task) {
    char path[4096];
    snprintf(path, sizeof path, "%s/report.html", ctx->out_dir);
    FILE *f = fopen(path, "wb");
    if (!f) return flab_fail("%s: cannot create", path);
    fprintf(f, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>flab eval ");
    html_escape(f, ctx->target);
    fprintf(f, "</title><style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;"
               "padding:.5em;white-space:pre-wrap}</style></head><body><h1>eval ");
    html_escape(f, ctx->target);
    fprintf(f, " (%s)</h1><h2>Metrics</h2><pre>", task);
    html_escape(f, metrics_text);
    fprintf(f, "</pre><h2>Failures</h2>");
    for (size_t i = 0; i < o->n; i++) {
        if (o->passed[i] || !strcmp(task, "cot")) continue;
        fprintf(f, "<h3>");
        html_escape(f, o->ids[i]);
        fprintf(f, ": ");
        html_escape(f, o->reasons[i]);
        fprintf(f, "</h3><pre>");
        html_escape(f, o->prompts[i]);
        fprintf(f, "<b>");
        html_escape(f, o->completions[i]);
        fprintf(f, "</b></pre>");
    }
    fprintf(f, "</body></html>\n");
    if (fclose(f)) return flab_fail("%s: write failed", path);
    return 0;
}

static void headline_metrics(RuleCtx *ctx, cJSON *met) {
    static const char *const keys[] = {"pass@1", "bleu4", "em", "exec_match", "n", "passed"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(met, keys[i]);
        if (cJSON_IsNumber(v)) rule_metric_num(ctx, keys[i], v->valuedouble);
    }
}

static int eval_run(RuleCtx *ctx) {
    const char *task = rule_str(ctx, "task"), *bench = rule_input(ctx, "benchmark");
    EvalModel m;
    Outcome o;
    EvalEnergyMeter em;
    EvalEnergyConfig ec;
    memset(&o, 0, sizeof o);
    double t0 = eval_now();
    if (eval_model_open(ctx, &m)) return -1;
    eval_energy_config_default(&ec);
    ec.use_gpu = !strcmp(m.be->name, "cuda");
    eval_energy_start(&em, &ec);
    cJSON *met = cJSON_CreateObject();
    cJSON_AddStringToObject(met, "task", task);
    int rc = !strcmp(task, "codegen") ? run_codegen(ctx, &m, bench, &o, met)
           : !strcmp(task, "output") ? run_output(ctx, &m, bench, &o, met)
           : run_cot(ctx, &m, bench, &o, met);
    if (rc == 0) {
        add_counts(&o, eval_now() - t0, met);
        rc = efficiency(ctx, &m, &o, &em, met);
    }
    if (rc == 0) {
        char *text = cJSON_Print(met), *samples = samples_jsonl(&o);
        rc = eval_write_out(ctx, "metrics.json", text) || eval_write_out(ctx, "samples.jsonl", samples) ||
             write_report(ctx, &o, text, task) ? -1 : 0;
        headline_metrics(ctx, met);
        rule_log(ctx, "%s: %ld/%zu passed in %.1f s", task, o.n_passed, o.n, eval_now() - t0);
        free(text);
        free(samples);
    }
    cJSON_Delete(met);
    outcome_free(&o);
    eval_model_close(&m);
    return rc;
}

const Rule rule_eval = {
    .name = "eval",
    .version = 1,
    .summary = "generate with a model on a benchmark and score it -> metrics.json, samples.jsonl, report.html",
    .params = eval_params,
    .flags = RULE_EXCLUSIVE,
    .run = eval_run,
    .check = NULL,
};
