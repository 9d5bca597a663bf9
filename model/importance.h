/* model/importance.h: gradient-based pruning importances on the CPU, from
 * one forward + backward of the LoRA machinery (model/lora.h) with no
 * adapters, over calibration samples.
 *
 * Loss: L = sum over the scored rows of every sample of -log p(next token)
 * divided by the number of scored rows (the mean NLL).
 *
 * taylor (layer_search, LLM-Pruner block-level first-order Taylor):
 *   I_l = | sum over every parameter w of layer l of w * dL/dw |
 *   = |dL/de| for the layer's parameters scaled by (1 + e), at e = 0: the
 *   first-order estimate of the loss change when the layer's weights are
 *   zeroed (L(0 * W) - L(W) ~ -sum w dL/dw).
 * fisher (ffn_search, Kwon et al. 2022):
 *   F_{l,j} = sum over samples s of (dL_s/dm_{l,j})^2, m a mask on neuron j's
 *   SwiGLU output a_j (at 1): dL_s/dm = sum over the rows of s of a_j dL/da_j.
 *
 * skip (may be NULL): layers that the model does not run (a layer plan). */
#ifndef FLAB_MODEL_IMPORTANCE_H
#define FLAB_MODEL_IMPORTANCE_H
#include "model/importance_probe.h"
#include "model/lora.h"

typedef struct {
    int n_seqs;
    const int32_t *const *ids;
    const int *lens;
    const uint8_t *const *score;   /* per sequence, per row; NULL = all rows */
} ImpSamples;

/* Fills a probe (n_layers x inter of m) and *loss (the mean NLL).  Samples
 * are run in batches of about max_rows tokens. */
int imp_compute(LoraModel *m, const uint8_t *skip, const ImpSamples *s, int max_rows,
                ImpProbe *out, double *loss);
/* Mean NLL only (forward + backward without a probe; for tests). */
int imp_loss(LoraModel *m, const uint8_t *skip, const ImpSamples *s, int max_rows, double *loss);
void imp_probe_free(ImpProbe *p);
/* A model with no adapters, for importances. */
int imp_model_open(const char *dir, LoraModel **out);
#endif
