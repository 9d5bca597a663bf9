/* model/transformer_internal.h: the Transformer's private state, shared by
 * model/transformer.c (load), forward.c, kvcache.c and generate.c. */
#ifndef FLAB_MODEL_TRANSFORMER_INTERNAL_H
#define FLAB_MODEL_TRANSFORMER_INTERNAL_H
#include "model/transformer.h"

typedef struct {
    FlabWeight *in_norm, *post_norm;
    FlabWeight *q, *k, *v, *o, *q_b, *k_b, *v_b, *o_b;
    FlabWeight *gate, *up, *down, *gate_b, *up_b, *down_b;
    FlabBuf *ffn_mask;       /* NULL = all neurons kept */
} TfLayer;

/* Activation workspaces, grown to the largest row count seen. */
typedef struct {
    int cap_rows, cap_out_rows;
    FlabBuf *x, *xn, *q, *k, *v, *att, *gate, *up, *last, *logits;
} TfWork;

struct TfKvCache {
    int n_slots, max_len;
    FlabBuf **k, **v;        /* one per layer */
};

struct Transformer {
    ModelConfig cfg;         /* a copy (cfg.raw borrowed, or owned when own_cfg) */
    int own_cfg;
    const SafeTensors *st;
    SafeTensors *own_st;
    FlabBackend *be;
    FlabWeight *embed, *final_norm, *lm_head;   /* lm_head may == embed (tied) */
    TfLayer *layers;
    size_t weight_bytes;
    TfWork w;
    TfKvCache *batch_kv;     /* scratch cache of transformer_forward */
};

/* Makes the workspace hold `rows` token rows and `out_rows` logits rows. */
int tf_work_reserve(Transformer *t, int rows, int out_rows);
/* Runs the layers of opts over rows already embedded in t->w.x (or resumes
 * from opts->start_hidden), then the final norm and lm_head for out_idx
 * rows (NULL = all rows).  Result in t->w.logits. */
int tf_run_rows(Transformer *t, TfKvCache *kv, const FlabRows *rows,
                const TfForwardOpts *opts, const int32_t *out_idx, int n_out);
#endif
