/* model/dtype.c: bulk conversion of checkpoint tensors to float32. */
#include "model/dtype.h"

void flab_to_f32(float *dst, const void *src, FlabDType t, size_t n) {
    if (t == FLAB_F32) { memcpy(dst, src, n * 4); return; }
    const uint16_t *h = src;
    if (t == FLAB_BF16)
        for (size_t i = 0; i < n; i++) dst[i] = flab_bf16_to_f32(h[i]);
    else
        for (size_t i = 0; i < n; i++) dst[i] = flab_f16_to_f32(h[i]);
}
