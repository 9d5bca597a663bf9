/* model/ffn_fisher.c: ffn_search strategy fisher (see model/ffn_search.h):
 * per layer, keep the K neurons of largest Fisher importance
 * F_j = sum over samples s of (dL_s/dm_j)^2 (Kwon et al. 2022; m_j a mask
 * on neuron j's SwiGLU output, at 1), from one CPU forward + backward of the
 * model with the plan's removed layers skipped (model/importance.h).  Ties
 * keep the lower index. */
#include "model/ffn_search.h"
#include "model/importance.h"
#include "util/error.h"
#include <stdlib.h>
#include <string.h>

typedef struct { double s; int32_t i; } Scored;

static int by_score_desc(const void *a, const void *b) {
    const Scored *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int by_index(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void keep_largest(int32_t *keep, const double *score, int I, int K) {
    Scored *v = flab_xmalloc((size_t)I * sizeof *v);
    for (int j = 0; j < I; j++) { v[j].s = score[j]; v[j].i = j; }
    qsort(v, (size_t)I, sizeof *v, by_score_desc);
    for (int k = 0; k < K; k++) keep[k] = v[k].i;
    qsort(keep, (size_t)K, sizeof *keep, by_index);
    free(v);
}

static int check(const LoraModel *m, const FsOptions *o) {
    const ModelConfig *c = lora_model_config(m);
    if (o->neurons < 1 || o->neurons >= c->intermediate_size)
        return flab_fail("ffn search: neurons = %d: must be in [1, %d]", o->neurons,
                         c->intermediate_size - 1);
    for (int i = 0; i < o->n_layers; i++)
        if (o->layers[i] < 0 || o->layers[i] >= c->num_hidden_layers)
            return flab_fail("ffn search: layer %d outside [0, %d)", o->layers[i],
                             c->num_hidden_layers);
    return 0;
}

int fs_fisher_keep(const char *model_dir, const CalibSet *set, const FsOptions *o,
                   int32_t ***keep_out) {
    LoraModel *m;
    if (imp_model_open(model_dir, &m)) return -1;
    const ModelConfig *c = lora_model_config(m);
    int L = c->num_hidden_layers, I = c->intermediate_size, K = I - o->neurons;
    if (check(m, o)) { lora_model_free(m); return -1; }
    uint8_t *skip = flab_xmalloc((size_t)L);
    memset(skip, 1, (size_t)L);
    for (int i = 0; i < o->n_layers; i++) skip[o->layers[i]] = 0;
    ImpSamples sm = {set->n, (const int32_t *const *)set->ids, set->lens,
                     (const uint8_t *const *)set->score};
    ImpProbe p;
    double loss;
    int rc = imp_compute(m, skip, &sm, 4096, &p, &loss);
    free(skip);
    lora_model_free(m);
    if (rc) return -1;
    int32_t **keep = flab_xcalloc((size_t)o->n_layers, sizeof *keep);
    for (int i = 0; i < o->n_layers; i++) {
        keep[i] = flab_xmalloc((size_t)K * sizeof **keep);
        keep_largest(keep[i], p.fisher + (size_t)o->layers[i] * I, I, K);
    }
    imp_probe_free(&p);
    *keep_out = keep;
    return 0;
}
