/* model/kvcache.c: the per-layer K/V cache and the incremental step.
 * Layout per layer: [n_slots, max_len, kv_heads, head_dim] (kernels/ops.h).
 * A slot is one sequence; positions 0..p of a slot are valid once rows at
 * those positions have been run through transformer_step. */
#include "model/transformer_internal.h"
#include "util/error.h"
#include <stdlib.h>

TfKvCache *tf_kv_create(Transformer *t, int n_slots, int max_len) {
    const ModelConfig *c = &t->cfg;
    if (n_slots <= 0 || max_len <= 0) {
        flab_fail("model: kv cache: %d slots x %d positions", n_slots, max_len);
        return NULL;
    }
    int L = c->num_hidden_layers;
    TfKvCache *kv = flab_xcalloc(1, sizeof *kv);
    kv->n_slots = n_slots;
    kv->max_len = max_len;
    kv->k = flab_xcalloc((size_t)L, sizeof(FlabBuf *));
    kv->v = flab_xcalloc((size_t)L, sizeof(FlabBuf *));
    size_t n = (size_t)n_slots * max_len * c->num_key_value_heads * c->head_dim;
    for (int l = 0; l < L; l++) {
        kv->k[l] = t->be->alloc(t->be, n);
        kv->v[l] = kv->k[l] ? t->be->alloc(t->be, n) : NULL;
        if (!kv->v[l]) {
            tf_kv_free(t, kv);
            return NULL;
        }
    }
    return kv;
}

void tf_kv_free(Transformer *t, TfKvCache *kv) {
    if (!kv) return;
    for (int l = 0; l < t->cfg.num_hidden_layers; l++) {
        t->be->free_buf(t->be, kv->k[l]);
        t->be->free_buf(t->be, kv->v[l]);
    }
    free(kv->k);
    free(kv->v);
    free(kv);
}

int transformer_step(Transformer *t, TfKvCache *kv, const int32_t *ids,
                     const int32_t *slot, const int32_t *pos, int n,
                     const int32_t *want_rows, int n_want,
                     const TfForwardOpts *opts, const FlabBuf **logits) {
    if (n <= 0) return flab_fail("model: step: no rows");
    if (opts && opts->start_at > 0)
        return flab_fail("model: step: start_at is for transformer_forward only");
    if (tf_work_reserve(t, n, want_rows ? n_want : n)) return -1;
    if (t->be->embedding(t->be, t->w.x, t->embed, ids, n)) return -1;
    FlabRows rows = {n, slot, pos};
    if (tf_run_rows(t, kv, &rows, opts, want_rows, n_want)) return -1;
    *logits = t->w.logits;
    return 0;
}
