/* rules/eval_common.c: model opening, batched greedy generation with stop
 * strings, and the codegen pass shared by the eval and filter_correct rules.
 * Generation runs batch_size prompts at a time through transformer_generate
 * (KV cache, packed batch); a sequence stops at eos, at max_new_tokens, or
 * as soon as its decoded text contains a stop string, and the text is then
 * cut at that stop. */
#include "rules/eval_common.h"
#include "eval/score.h"
#include "util/error.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double eval_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int eval_model_open(RuleCtx *ctx, EvalModel *m) {
    memset(m, 0, sizeof *m);
    m->dir = rule_input(ctx, "model");
    if (!m->dir) return flab_fail("model: missing");
    if (!(m->tok = flab_tok_load_dir(m->dir))) return -1;
    if (!(m->be = flab_backend_create(rule_str(ctx, "device"), (int)rule_int(ctx, "threads")))) {
        eval_model_close(m);
        return -1;
    }
    rule_device(ctx, m->be->name);
    if (transformer_load(m->dir, m->be, &m->t)) {
        eval_model_close(m);
        return -1;
    }
    return 0;
}

void eval_model_close(EvalModel *m) {
    if (m->t) transformer_free(m->t);
    if (m->be) flab_backend_destroy(m->be);
    if (m->tok) flab_tok_free(m->tok);
    memset(m, 0, sizeof *m);
}

char *eval_model_prompt(const RuleCtx *ctx, const char *prompt) {
    const char *b = prompt, *e = prompt + strlen(prompt);
    if (rule_bool(ctx, "strip_prompt")) {
        while (b < e && isspace((unsigned char)*b)) b++;
        while (e > b && isspace((unsigned char)e[-1])) e--;
    }
    char *s = flab_xmalloc((size_t)(e - b) + 1);
    memcpy(s, b, (size_t)(e - b));
    s[e - b] = 0;
    return s;
}

/* t_first: when the callback first ran in this batch, i.e. when prefill
 * (which yields every sequence's first token) was over. */
typedef struct {
    flab_tokenizer *tok;
    const char *const *stops;
    size_t n_stops;
    double t_first;
} StopCtx;

static int stop_on_string(void *vctx, int seq, const int32_t *gen, int n_gen) {
    (void)seq;
    StopCtx *c = vctx;
    if (c->t_first == 0) c->t_first = eval_now();
    if (c->n_stops == 0) return 0;
    char *text = flab_tok_decode(c->tok, gen, (size_t)n_gen, 1, NULL);
    int hit = text && eval_cut_at_stops(text, c->stops, c->n_stops) < strlen(text);
    free(text);
    return hit;
}

/* One batch [b, e) of prompts. */
static int generate_batch(EvalModel *m, const char *const *prompts, size_t b, size_t e,
                          const TfGenerateOpts *go, char **out, EvalGenStats *st) {
    StopCtx *sc = go->stop_ctx;
    int nb = (int)(e - b), rc = -1;
    int32_t **ids = calloc((size_t)nb, sizeof *ids), **gen = calloc((size_t)nb, sizeof *gen);
    int *lens = calloc((size_t)nb, sizeof *lens), *n_gen = calloc((size_t)nb, sizeof *n_gen);
    flab_tok_encode_opts eo = {1, 1};
    if (!ids || !gen || !lens || !n_gen) { flab_fail("eval: out of memory"); goto done; }
    for (int i = 0; i < nb; i++) {
        size_t n = 0;
        const char *p = prompts[b + (size_t)i];
        if (flab_tok_encode(m->tok, p, strlen(p), eo, &ids[i], &n)) goto done;
        if (n == 0) { flab_fail("eval: prompt %zu tokenizes to no tokens", b + (size_t)i); goto done; }
        lens[i] = (int)n;
        st->prompt_tokens += (long)n;
    }
    TfBatch batch = {nb, (const int32_t *const *)ids, lens};
    sc->t_first = 0;
    double t0 = eval_now();
    if (transformer_generate(m->t, &batch, go, gen, n_gen)) goto done;
    double t1 = eval_now(), tp = sc->t_first > 0 ? sc->t_first : t1;
    st->prefill_seconds += tp - t0;
    st->decode_seconds += t1 - tp;
    for (int i = 0; i < nb; i++) {
        st->gen_tokens += n_gen[i];
        if (sc->t_first > 0 && n_gen[i] > 1) st->decode_tokens += n_gen[i] - 1;
        char *text = flab_tok_decode(m->tok, gen[i], (size_t)n_gen[i], 1, NULL);
        if (!text) goto done;
        out[b + (size_t)i] = eval_cut_completion(text, sc->stops, sc->n_stops);
        free(text);
    }
    rc = 0;
done:
    for (int i = 0; i < nb; i++) {
        if (ids) free(ids[i]);
        if (gen) free(gen[i]);
    }
    free(ids); free(gen); free(lens); free(n_gen);
    return rc;
}

int eval_generate_all(RuleCtx *ctx, EvalModel *m, const char *const *prompts, size_t n,
                      const char *const *stops, size_t n_stops, char **out, EvalGenStats *st) {
    size_t bs = (size_t)rule_int(ctx, "batch_size");
    StopCtx sc = {m->tok, stops, n_stops, 0};
    TfGenerateOpts go = {.max_new_tokens = (int)rule_int(ctx, "max_new_tokens"),
                         .stop = stop_on_string, .stop_ctx = &sc};
    double t0 = eval_now();
    rule_progress(ctx, 0, (double)n);
    for (size_t b = 0; b < n; b += bs) {
        size_t e = b + bs < n ? b + bs : n;
        if (generate_batch(m, prompts, b, e, &go, out, st)) return -1;
        rule_progress(ctx, (double)e, (double)n);
    }
    st->seconds = eval_now() - t0;
    return 0;
}

void eval_sandbox_from_params(const RuleCtx *ctx, EvalSandboxConfig *cfg) {
    eval_sandbox_config_default(cfg);
    cfg->timeout_s = rule_float(ctx, "timeout");
    cfg->jobs = (int)rule_int(ctx, "jobs");
}

size_t eval_limit(const RuleCtx *ctx, size_t n) {
    long long lim = rule_int(ctx, "limit");
    return lim > 0 && (size_t)lim < n ? (size_t)lim : n;
}

int eval_codegen_run(RuleCtx *ctx, EvalModel *m, const char *path, EvalCodegenRun *r) {
    memset(r, 0, sizeof *r);
    if (eval_load_codegen(path, &r->set)) return -1;
    r->n = eval_limit(ctx, r->set.n);
    r->prompts = calloc(r->n + 1, sizeof *r->prompts);
    r->completions = calloc(r->n + 1, sizeof *r->completions);
    r->results = calloc(r->n + 1, sizeof *r->results);
    if (!r->prompts || !r->completions || !r->results) return flab_fail("eval: out of memory");
    for (size_t i = 0; i < r->n; i++) r->prompts[i] = eval_model_prompt(ctx, r->set.items[i].prompt);
    if (eval_generate_all(ctx, m, (const char *const *)r->prompts, r->n, eval_default_stops,
                          eval_default_n_stops, r->completions, &r->gen))
        return -1;
    EvalSandboxConfig cfg;
    eval_sandbox_from_params(ctx, &cfg);
    double t0 = eval_now();
    r->passed = eval_codegen_score(&cfg, &r->set, r->n, (const char *const *)r->completions,
                                   r->results, &r->iso);
    r->score_seconds = eval_now() - t0;
    return r->passed < 0 ? -1 : 0;
}

void eval_codegen_run_free(EvalCodegenRun *r) {
    for (size_t i = 0; i < r->n; i++) {
        if (r->prompts) free(r->prompts[i]);
        if (r->completions) free(r->completions[i]);
        if (r->results) eval_sample_result_free(&r->results[i]);
    }
    free(r->prompts); free(r->completions); free(r->results);
    eval_codegen_set_free(&r->set);
    memset(r, 0, sizeof *r);
}

int eval_write_out(RuleCtx *ctx, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", ctx->out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return flab_fail("%s: cannot create", path);
    size_t len = strlen(text);
    int bad = fwrite(text, 1, len, f) != len;
    if (fclose(f) || bad) return flab_fail("%s: write failed", path);
    return 0;
}
