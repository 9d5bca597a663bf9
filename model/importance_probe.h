/* model/importance_probe.h: what the LoRA backward (model/lora_backward.c)
 * records for the gradient-based pruning importances (model/importance.h)
 * when LoraModel.probe is set.  Only base-model quantities are read; with
 * no adapters (target_mask 0) the gradients are those of the plain model.
 *
 *   layer_dot[l]  += sum over every parameter w of layer l (q/k/v/o/gate/
 *                    up/down weights and biases, both RMSNorm gains) of
 *                    w * dL/dw, computed without weight gradients:
 *                    for y = x W^T + b, sum(W .* dL/dW) + b . dL/db =
 *                    sum over rows <dL/dy, y>; for h = xhat * g, sum(g .*
 *                    dL/dg) = sum over rows <dL/dh, h>.
 *   mask_grad[l*I + j] += dL/dm_j (m_j a per-neuron mask on the SwiGLU
 *                    output a, at 1) = sum over rows a_j dL/da_j.
 *   fisher[l*I + j]  += sum over sequences s of (sum over rows of s of
 *                    a_j dL/da_j)^2: the squared per-sample mask gradient
 *                    (sequences never interact in a packed batch, so the
 *                    rows of s carry exactly the gradient of s's loss). */
#ifndef FLAB_MODEL_IMPORTANCE_PROBE_H
#define FLAB_MODEL_IMPORTANCE_PROBE_H
#include <stddef.h>

typedef struct ImpProbe {
    int n_layers, inter;
    double *layer_dot;    /* [n_layers] */
    double *mask_grad;    /* [n_layers * inter] */
    double *fisher;       /* [n_layers * inter] */
} ImpProbe;

/* sum a[i] b[i] in float64. */
double imp_dot(const float *a, const float *b, size_t n);
/* sum over rows of dy_row . b (0 when b is NULL); dy [n, d]. */
double imp_bias_dot(const float *dy, const float *b, int n, int d);
/* Accumulates mask_grad and fisher of layer l from act, dact [rows, I]. */
void imp_probe_ffn(ImpProbe *p, int l, const float *act, const float *dact, const int *off,
                   const int *lens, int n_seqs, int inter);
#endif
