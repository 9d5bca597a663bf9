/* model/generate.c: batched greedy decoding with a KV cache.
 *
 * All prompts are prefilled in one packed step (logits of their last rows
 * only); then each step feeds the newest token of every still-active
 * sequence, one row per sequence.  A sequence stops when it emits an eos id
 * (kept in its output), when the stop callback says so, or after
 * max_new_tokens.  Greedy = argmax, ties to the lowest id. */
#include "model/transformer_internal.h"
#include "util/error.h"
#include <stdlib.h>

typedef struct {
    int n;
    int32_t *ids, *slot, *pos, *want, *next;
    int *active;               /* sequence index of each active row */
} StepRows;

static int is_eos(const TfGenerateOpts *o, const ModelConfig *c, int32_t id) {
    const int32_t *e = o->eos_ids;
    int n = o->n_eos;
    if (!e) {
        for (int i = 0; i < c->n_eos; i++) if (c->eos_token_ids[i] == id) return 1;
        return 0;
    }
    for (int i = 0; i < n; i++) if (e[i] == id) return 1;
    return 0;
}

/* Appends tok to sequence s; returns 1 when s is finished. */
static int append_token(const TfGenerateOpts *o, const ModelConfig *c, int s, int32_t tok,
                        int32_t **gen, int *n_gen) {
    gen[s][n_gen[s]++] = tok;
    if (is_eos(o, c, tok) || n_gen[s] >= o->max_new_tokens) return 1;
    return o->stop && o->stop(o->stop_ctx, s, gen[s], n_gen[s]);
}

static int prefill(Transformer *t, TfKvCache *kv, const TfBatch *p,
                   const TfGenerateOpts *o, StepRows *sr) {
    int total = 0;
    for (int s = 0; s < p->n_seqs; s++) total += p->lens[s];
    int32_t *ids = flab_xmalloc((size_t)total * 3 * sizeof(int32_t));
    int32_t *slot = ids + total, *pos = slot + total;
    int r = 0;
    for (int s = 0; s < p->n_seqs; s++) {
        for (int i = 0; i < p->lens[s]; i++, r++) {
            ids[r] = p->ids[s][i]; slot[r] = s; pos[r] = i;
        }
        sr->want[s] = r - 1;
    }
    const FlabBuf *lg;
    int rc = transformer_step(t, kv, ids, slot, pos, total, sr->want, p->n_seqs,
                              o->model_opts, &lg);
    free(ids);
    if (rc) return -1;
    return t->be->argmax(t->be, sr->next, NULL, lg, p->n_seqs, t->cfg.vocab_size);
}

static int decode_loop(Transformer *t, TfKvCache *kv, const TfBatch *p,
                       const TfGenerateOpts *o, StepRows *sr, int32_t **gen, int *n_gen) {
    int n_act = 0;
    for (int s = 0; s < p->n_seqs; s++)
        if (!append_token(o, &t->cfg, s, sr->next[s], gen, n_gen)) sr->active[n_act++] = s;
    while (n_act > 0) {
        for (int i = 0; i < n_act; i++) {
            int s = sr->active[i];
            sr->ids[i] = gen[s][n_gen[s] - 1];
            sr->slot[i] = s;
            sr->pos[i] = p->lens[s] + n_gen[s] - 1;
        }
        const FlabBuf *lg;
        if (transformer_step(t, kv, sr->ids, sr->slot, sr->pos, n_act, NULL, 0,
                             o->model_opts, &lg) ||
            t->be->argmax(t->be, sr->next, NULL, lg, n_act, t->cfg.vocab_size))
            return -1;
        int still = 0;
        for (int i = 0; i < n_act; i++) {
            int s = sr->active[i];
            if (!append_token(o, &t->cfg, s, sr->next[i], gen, n_gen)) sr->active[still++] = s;
        }
        n_act = still;
    }
    return 0;
}

int transformer_generate(Transformer *t, const TfBatch *p, const TfGenerateOpts *o,
                         int32_t **gen, int *n_gen) {
    int n = p->n_seqs, max_len = 0;
    if (n <= 0 || o->max_new_tokens <= 0)
        return flab_fail("model: generate: %d prompts, max_new_tokens %d", n, o->max_new_tokens);
    if (o->model_opts && (o->model_opts->start_at > 0 || o->model_opts->capture))
        return flab_fail("model: generate: start_at / capture are not for generation");
    for (int s = 0; s < n; s++) {
        if (p->lens[s] <= 0) return flab_fail("model: generate: prompt %d is empty", s);
        if (p->lens[s] > max_len) max_len = p->lens[s];
    }
    TfKvCache *kv = tf_kv_create(t, n, max_len + o->max_new_tokens);
    if (!kv) return -1;
    StepRows sr = {0};
    int32_t *mem = flab_xcalloc((size_t)n * 5, sizeof(int32_t));
    sr.ids = mem; sr.slot = mem + n; sr.pos = mem + 2 * n; sr.want = mem + 3 * n;
    sr.next = mem + 4 * n;
    sr.active = flab_xcalloc((size_t)n, sizeof(int));
    for (int s = 0; s < n; s++) {
        gen[s] = flab_xmalloc((size_t)o->max_new_tokens * sizeof(int32_t));
        n_gen[s] = 0;
    }
    int rc = prefill(t, kv, p, o, &sr) ? -1 : decode_loop(t, kv, p, o, &sr, gen, n_gen);
    free(mem);
    free(sr.active);
    tf_kv_free(t, kv);
    if (rc)
        for (int s = 0; s < n; s++) { free(gen[s]); gen[s] = NULL; n_gen[s] = 0; }
    return rc;
}
