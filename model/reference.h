/* model/reference.h: the plain reference forward of the transformer.
 *
 * Obviously-correct and slow: every weight converted to float32 when used,
 * every op from kernels/ref_ops.c (float64 accumulation), one sequence, no
 * KV cache, no backend.  Tests check the fast forward (model/forward.c on
 * any backend) against it on shapes the golden fixture does not cover
 * (tied embeddings, Llama flags, other head counts). */
#ifndef FLAB_MODEL_REFERENCE_H
#define FLAB_MODEL_REFERENCE_H
#include "model/config.h"
#include "model/safetensors.h"
#include <stdint.h>

/* logits: host [n, vocab].  layers: the layer list (NULL = all). */
int reference_logits(const ModelConfig *cfg, const SafeTensors *st, const int32_t *ids,
                     int n, const int *layers, int n_layers, float *logits);
#endif
