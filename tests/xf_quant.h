/* tests/xf_quant.h: random quantized Linear weights for the kernel tests
 * (tests/test_qmatmul.c on the CPU, tests/test_cuda_ops.c on CUDA), written
 * from the format description in kernels/ops.h (FlabQuantDesc) and
 * independent of the kernels: XfQuant holds the checkpoint-layout tensors
 * and `deq`, the dequantised float32 W [out, in] the reference matmul uses.
 * rand01 is the caller's generator of uniform [0, 1) floats. */
#ifndef FLAB_TESTS_XF_QUANT_H
#define FLAB_TESTS_XF_QUANT_H
#include "kernels/fp8.h"
#include "kernels/ops.h"
#include <stdlib.h>

typedef struct {
    FlabQuantDesc d;
    int32_t *qweight, *qzeros;   /* AWQ */
    uint8_t *fp8;                /* FP8 */
    void *scales;
    float *deq;                  /* [out, in] */
} XfQuant;

static const int XF_AWQ_ORDER[8] = {0, 2, 4, 6, 1, 3, 5, 7};

/* Packs value v of output o into row `words` (AutoAWQ order for 4 bits). */
static void xf_awq_put(int32_t *words, int o, int bits, int v) {
    int per = 32 / bits, j = o % per, slot = j;
    if (bits == 4)
        for (int s = 0; s < 8; s++)
            if (XF_AWQ_ORDER[s] == j) slot = s;
    uint32_t *w = (uint32_t *)&words[o / per];
    *w |= (uint32_t)v << (slot * bits);
}

/* AWQ W [out, in]: random q, zero points and f16 scales (~0.01). */
static XfQuant xf_quant_awq(int out, int in, int bits, int group, float (*rand01)(void)) {
    XfQuant q = {0};
    int per = 32 / bits, W = out / per, G = in / group, maxq = (1 << bits) - 1;
    q.qweight = calloc((size_t)in * W, 4);
    q.qzeros = calloc((size_t)G * W, 4);
    uint16_t *sc = malloc((size_t)G * out * 2);
    q.deq = malloc((size_t)out * in * sizeof(float));
    for (int g = 0; g < G; g++)
        for (int o = 0; o < out; o++) {
            int z = (int)(rand01() * (maxq + 1));
            xf_awq_put(q.qzeros + (size_t)g * W, o, bits, z);
            sc[(size_t)g * out + o] = flab_f32_to_f16(0.002f + 0.02f * rand01());
        }
    for (int k = 0; k < in; k++)
        for (int o = 0; o < out; o++) {
            int v = (int)(rand01() * (maxq + 1)), g = k / group;
            xf_awq_put(q.qweight + (size_t)k * W, o, bits, v);
            uint32_t zw = (uint32_t)q.qzeros[(size_t)g * W + o / per];
            int j = o % per, slot = j;
            if (bits == 4)
                for (int s = 0; s < 8; s++)
                    if (XF_AWQ_ORDER[s] == j) slot = s;
            int z = (int)((zw >> (slot * bits)) & (uint32_t)maxq);
            q.deq[(size_t)o * in + k] = (float)(v - z) * flab_f16_to_f32(sc[(size_t)g * out + o]);
        }
    q.scales = sc;
    q.d = (FlabQuantDesc){FLAB_QUANT_AWQ, out, in, bits, group, q.qweight, q.qzeros, sc,
                          FLAB_F16, 0, 0};
    return q;
}

/* FP8 W [out, in]: random e4m3 bytes (NaN codes avoided), per-tensor
 * (per_channel 0) or per-channel scales in dtype sdt. */
static XfQuant xf_quant_fp8(int out, int in, int per_channel, FlabDType sdt,
                            float (*rand01)(void)) {
    XfQuant q = {0};
    int ns = per_channel ? out : 1;
    q.fp8 = malloc((size_t)out * in);
    q.deq = malloc((size_t)out * in * sizeof(float));
    q.scales = malloc((size_t)ns * 4);
    float *sf = malloc((size_t)ns * sizeof(float));
    for (int i = 0; i < ns; i++) {
        float s = 0.0005f + 0.002f * rand01();
        if (sdt == FLAB_F32) ((float *)q.scales)[i] = s;
        else if (sdt == FLAB_BF16) s = flab_bf16_to_f32(((uint16_t *)q.scales)[i] = flab_f32_to_bf16(s));
        else s = flab_f16_to_f32(((uint16_t *)q.scales)[i] = flab_f32_to_f16(s));
        sf[i] = s;
    }
    for (int o = 0; o < out; o++)
        for (int k = 0; k < in; k++) {
            uint8_t b = (uint8_t)(rand01() * 256);
            if ((b & 0x7f) == 0x7f) b ^= 1;      /* no NaN */
            q.fp8[(size_t)o * in + k] = b;
            q.deq[(size_t)o * in + k] = flab_e4m3_to_f32(b) * sf[per_channel ? o : 0];
        }
    free(sf);
    q.d = (FlabQuantDesc){FLAB_QUANT_FP8, out, in, 8, 0, q.fp8, NULL, q.scales, sdt, ns, 0};
    return q;
}

static void xf_quant_free(XfQuant *q) {
    free(q->qweight); free(q->qzeros); free(q->fp8); free(q->scales); free(q->deq);
}
#endif
