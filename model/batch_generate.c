/* model/batch_generate.c: see batch_generate.h.  Invariant: on failure every
 * completions[i] is NULL (what was produced is freed). */
#include "model/batch_generate.h"
#include "util/error.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { flab_tokenizer *tok; const FlabBatchGenOpts *o; } StopCtx;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int flab_gen_stop_hit(flab_tokenizer *tok, const int32_t *gen, int n_gen,
                      const char *const *stops, size_t n_stops) {
    if (n_stops == 0) return 0;
    char *text = flab_tok_decode(tok, gen, (size_t)n_gen, 0, NULL);
    int hit = 0;
    for (size_t i = 0; text && !hit && i < n_stops; i++) hit = strstr(text, stops[i]) != NULL;
    free(text);
    return hit;
}

/* A stop string anywhere in the decoded continuation ends the sequence. */
static int stop_on_string(void *vctx, int seq, const int32_t *gen, int n_gen) {
    (void)seq;
    StopCtx *c = vctx;
    return flab_gen_stop_hit(c->tok, gen, n_gen, c->o->stops, c->o->n_stops);
}

static int encode_prompts(flab_tokenizer *tok, const char *const *prompts, size_t n,
                          int32_t **ids, int *lens) {
    flab_tok_encode_opts eo = {1, 1};
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        if (flab_tok_encode(tok, prompts[i], strlen(prompts[i]), eo, &ids[i], &k)) return -1;
        if (k == 0) return flab_fail("prompt %zu tokenizes to no tokens", i);
        lens[i] = (int)k;
    }
    return 0;
}

/* One batch: timed prefill forward, then generation and decoding. */
static int run_batch(Transformer *t, flab_tokenizer *tok, int32_t **ids, int *lens, int nb,
                     const FlabBatchGenOpts *o, char **out, FlabBatchGenStats *st) {
    TfBatch b = {nb, (const int32_t *const *)ids, lens};
    TfForwardOpts fo = {.last_only = 1};
    const FlabBuf *lg;
    double t0 = now_s();
    if (transformer_forward(t, &b, &fo, &lg)) return -1;
    double t1 = now_s();
    int32_t **gen = flab_xcalloc((size_t)nb, sizeof *gen);
    int *n_gen = flab_xcalloc((size_t)nb, sizeof *n_gen);
    StopCtx sc = {tok, o};
    TfGenerateOpts go = {.max_new_tokens = o->max_new_tokens, .stop = stop_on_string,
                         .stop_ctx = &sc};
    int rc = transformer_generate(t, &b, &go, gen, n_gen);
    double t2 = now_s();
    for (int i = 0; i < nb; i++) {
        if (!rc && !(out[i] = flab_tok_decode(tok, gen[i], (size_t)n_gen[i], 1, NULL))) rc = -1;
        st->samples += 1;
        st->prompt_tokens += lens[i];
        st->generated_tokens += n_gen[i];
        free(gen[i]);
    }
    st->prefill_s += t1 - t0;
    st->generate_s += t2 - t1;
    free(gen);
    free(n_gen);
    return rc;
}

int flab_batch_generate(Transformer *t, flab_tokenizer *tok, const char *const *prompts,
                        size_t n, const FlabBatchGenOpts *o, char **completions,
                        FlabBatchGenStats *st) {
    memset(st, 0, sizeof *st);
    memset(completions, 0, n * sizeof *completions);
    int32_t **ids = flab_xcalloc(n ? n : 1, sizeof *ids);
    int *lens = flab_xcalloc(n ? n : 1, sizeof *lens);
    size_t bs = o->batch_size > 0 ? (size_t)o->batch_size : 8;
    int rc = encode_prompts(tok, prompts, n, ids, lens);
    for (size_t i = 0; !rc && i < n; i += bs) {
        int nb = (int)(n - i < bs ? n - i : bs);
        rc = run_batch(t, tok, ids + i, lens + i, nb, o, completions + i, st);
        if (o->progress) o->progress(o->progress_ctx, i + (size_t)nb, n);
    }
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(lens);
    if (rc) {
        for (size_t i = 0; i < n; i++) { free(completions[i]); completions[i] = NULL; }
        return -1;
    }
    st->prefill_tps = st->prefill_s > 0 ? st->prompt_tokens / st->prefill_s : 0;
    double dec = st->generate_s - st->prefill_s;
    st->decode_tps = dec > 0 ? st->generated_tokens / dec : 0;
    return 0;
}
