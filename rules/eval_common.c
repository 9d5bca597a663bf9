/* rules/eval_common.c: see eval_common.h. */
#include "rules/eval_common.h"
#include "eval/tasks.h"
#include "util/error.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int declared(const RuleCtx *ctx, const char *name) {
    return rule_param_index(ctx->rule, name) >= 0;
}

/* Splits `stop` at unescaped '|' and decodes \n \t \\ \|. */
static int parse_stops(const char *spec, EvalRun *r) {
    size_t len = strlen(spec);
    char *cur = flab_xmalloc(len + 1);
    size_t k = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = spec[i];
        if (c == '\\' && i + 1 < len) {
            char e = spec[++i];
            cur[k++] = e == 'n' ? '\n' : e == 't' ? '\t' : e;
            continue;
        }
        if (c != '|' && c != '\0') { cur[k++] = c; continue; }
        if (k > 0) {
            if (r->n_stops == EVAL_MAX_STOPS) { free(cur); return flab_fail("stop: more than %d strings", EVAL_MAX_STOPS); }
            cur[k] = '\0';
            r->stops[r->n_stops++] = flab_xmalloc(k + 1);
            memcpy(r->stops[r->n_stops - 1], cur, k + 1);
        }
        k = 0;
    }
    free(cur);
    return 0;
}

int eval_run_open(RuleCtx *ctx, EvalRun *r) {
    memset(r, 0, sizeof *r);
    r->t_start = now_s();
    r->model_dir = rule_input(ctx, "model");
    if (!r->model_dir) return flab_fail("model: missing");
    if (parse_stops(declared(ctx, "stop") ? rule_str(ctx, "stop") : EVAL_STOP_DEFAULT, r)) return -1;
    eval_sandbox_config_default(&r->sandbox);
    if (declared(ctx, "timeout")) r->sandbox.timeout_s = rule_float(ctx, "timeout");
    if (declared(ctx, "jobs")) r->sandbox.jobs = (int)rule_int(ctx, "jobs");
    const char *dev = declared(ctx, "device") ? rule_str(ctx, "device") : "auto";
    int threads = declared(ctx, "threads") ? (int)rule_int(ctx, "threads") : 0;
    if (!(r->tok = flab_tok_load_dir(r->model_dir))) return -1;
    if (!(r->be = flab_backend_create(dev, threads))) return -1;
    if (transformer_load(r->model_dir, r->be, &r->t)) return -1;
    rule_device(ctx, r->be->name);
    EvalEnergyConfig ec;
    eval_energy_config_default(&ec);
    ec.use_gpu = !strcmp(r->be->name, "cuda");
    eval_energy_start(&r->energy, &ec);
    return 0;
}

void eval_run_close(EvalRun *r) {
    transformer_free(r->t);
    flab_backend_destroy(r->be);
    flab_tok_free(r->tok);
    for (size_t i = 0; i < r->n_stops; i++) free(r->stops[i]);
    memset(r, 0, sizeof *r);
}

typedef struct { RuleCtx *ctx; double share; } ProgCtx;

static void on_progress(void *vp, size_t done, size_t total) {
    ProgCtx *p = vp;
    rule_progress(p->ctx, p->share * (double)done, (double)total);
}

int eval_run_generate(RuleCtx *ctx, EvalRun *r, const char *const *prompts, size_t n,
                      char **completions, double prog_share) {
    ProgCtx pc = {ctx, prog_share};
    FlabBatchGenOpts o = {
        .max_new_tokens = (int)rule_int(ctx, "max_new_tokens"),
        .batch_size = declared(ctx, "batch_size") ? (int)rule_int(ctx, "batch_size") : 8,
        .stops = (const char *const *)r->stops, .n_stops = r->n_stops,
        .progress = on_progress, .progress_ctx = &pc};
    if (flab_batch_generate(r->t, r->tok, prompts, n, &o, completions, &r->gen)) return -1;
    for (size_t i = 0; i < n; i++) {
        char *cut = eval_cut_completion(completions[i], (const char *const *)r->stops, r->n_stops);
        free(completions[i]);
        completions[i] = cut;
    }
    rule_log(ctx, "generated %zu samples: %.0f prompt + %.0f new tokens, prefill %.1f tok/s, "
             "decode %.1f tok/s", n, r->gen.prompt_tokens, r->gen.generated_tokens,
             r->gen.prefill_tps, r->gen.decode_tps);
    return 0;
}

size_t eval_run_limit(const RuleCtx *ctx, size_t n) {
    long long lim = declared(ctx, "limit") ? rule_int(ctx, "limit") : 0;
    return lim > 0 && (size_t)lim < n ? (size_t)lim : n;
}

cJSON *eval_run_efficiency(EvalRun *r) {
    cJSON *e = cJSON_CreateObject();
    int64_t params = 0, bytes = 0;
    if (!eval_checkpoint_stats(r->model_dir, &params, &bytes)) {
        cJSON_AddNumberToObject(e, "parameters", (double)params);
        cJSON_AddNumberToObject(e, "checkpoint_bytes", (double)bytes);
    }
    cJSON_AddNumberToObject(e, "peak_rss_bytes", (double)eval_peak_rss_bytes());
    cJSON_AddNumberToObject(e, "prompt_tokens", r->gen.prompt_tokens);
    cJSON_AddNumberToObject(e, "generated_tokens", r->gen.generated_tokens);
    cJSON_AddNumberToObject(e, "prefill_tokens_per_s", r->gen.prefill_tps);
    cJSON_AddNumberToObject(e, "decode_tokens_per_s", r->gen.decode_tps);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", r->model_dir);
    EvalModelShape s;
    if (!eval_model_shape_load(path, &s) && r->gen.generated_tokens > 0) {
        /* mean context of a generated token: P + (G - 1) / 2 per sample */
        double k = r->gen.samples > 0 ? r->gen.samples : 1;
        double ctxlen = r->gen.prompt_tokens / k + (r->gen.generated_tokens / k - 1) / 2;
        cJSON_AddNumberToObject(e, "flops_per_generated_token", eval_flops_per_token(&s, ctxlen));
    }
    EvalEnergySource src;
    double j = eval_energy_stop(&r->energy, &src);
    char label[128];
    cJSON_AddNumberToObject(e, "energy_joules", j);
    cJSON_AddStringToObject(e, "energy_source", eval_energy_label(&r->energy, label, sizeof label));
    cJSON_AddNumberToObject(e, "co2_grams", eval_co2_grams(j, EVAL_DEFAULT_GRID_G_PER_KWH));
    cJSON_AddNumberToObject(e, "grid_g_per_kwh", EVAL_DEFAULT_GRID_G_PER_KWH);
    cJSON_AddNumberToObject(e, "wall_seconds", now_s() - r->t_start);
    return e;
}

int eval_write_json(RuleCtx *ctx, const char *name, const cJSON *json) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", ctx->out_dir, name);
    char *text = cJSON_Print(json);
    FILE *f = fopen(path, "w");
    if (!f) { free(text); return flab_fail_errno("%s", path); }
    fputs(text, f);
    fputc('\n', f);
    free(text);
    if (fclose(f)) return flab_fail_errno("%s", path);
    return 0;
}

void eval_jsonl_line(FILE *f, const cJSON *obj) {
    char *text = cJSON_PrintUnformatted(obj);
    fputs(text, f);
    fputc('\n', f);
    free(text);
}

FILE *eval_open_out(RuleCtx *ctx, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", ctx->out_dir, name);
    FILE *f = fopen(path, "w");
    if (!f) flab_fail_errno("%s", path);
    return f;
}

char *eval_prompt_text(const char *s, int strip) {
    size_t a = 0, b = strlen(s);
    if (strip) {
        while (a < b && isspace((unsigned char)s[a])) a++;
        while (b > a && isspace((unsigned char)s[b - 1])) b--;
    }
    char *p = flab_xmalloc(b - a + 1);
    memcpy(p, s + a, b - a);
    p[b - a] = '\0';
    return p;
}
