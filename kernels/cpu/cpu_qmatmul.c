/* kernels/cpu/cpu_qmatmul.c: y = x W^T + b for weight-only quantized W
 * (kernels/ops.h FlabQuantDesc: AutoAWQ GEMM INT4 / INT8, vLLM FP8), read in
 * place from the checkpoint's bytes; the whole matrix is never expanded.
 *
 * AWQ (qweight [in, out/P] int32, P = 32/bits values per word):
 *  - decode (rows <= QGEMV_MAX_ROWS): qweight is k-major, so the work is
 *    split by input groups: a task is one group g (its rows are contiguous
 *    memory) times a chunk of outputs, processed in panels of up to 5120
 *    outputs whose sums a_o = sum_k q[k,o] x[k] stay in L1 while the
 *    group's rows stream by in contiguous runs (a word is broadcast and
 *    shifted so lane j holds output 8v+j, already in natural order: the AWQ
 *    interleave is undone by the shift vector; INT4 with AVX2 instead turns
 *    nibbles into floats with a byte shuffle, no int->float conversion:
 *    see awq4_panel_slots and NIBF).  At the end of the group it
 *    adds s[g,o] (a_o - z[g,o] S_g), S_g = sum_k x[k] over the group
 *    (computed once per call), to its run of groups' partial y: (q - z) s x
 *    summed over k with the zero point applied once per group, not per
 *    weight.  The runs' partial sums are added at the end, in run order
 *    (the result does not depend on the thread schedule).
 *  - prefill: a task dequantises a block of outputs, all input channels, to
 *    a float32 tile [in, nb] in its scratch (k-major, as qweight is) and
 *    runs sgemm(x, tile) into y's columns of that block.
 * FP8 (weight [out, in] e4m3): decode streams each row converting 8 bytes
 * at a time to f16 bit patterns (e4m3 -> f16 is a shift: same mantissa
 * width pattern, exponent bias 7 vs 15, so the f16 value is 2^-8 times the
 * e4m3 value; the 2^8 is folded into the scale) and F16C to float; prefill
 * dequantises blocks of rows to float32 and calls sgemm, like bf16 in
 * cpu_matmul.c.  The e4m3 NaN pattern (S.1111.111) decodes to 480 on the
 * AVX2 path (no quantizer writes NaN weights).
 * Without AVX2 at run time (FLAB_CPU_NO_AVX2=1 too) portable scalar loops
 * compute the same sums. */
#include "kernels/cpu/cpu_internal.h"
#include "kernels/fp8.h"
#include "util/error.h"
#include <cblas.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define QGEMV_MAX_ROWS 4
#define QGEMV_OUT 64          /* outputs per decode task (8 AVX2 vectors) */
#define QGEMM_BLOCK_MAX 256   /* outputs (AWQ) / rows (FP8) per prefill task */

/* AutoAWQ 4-bit: output j of a word sits in nibble AWQ_SLOT[j]. */
static const int AWQ_SLOT[8] = {0, 4, 1, 5, 2, 6, 3, 7};

/* ---- upload ---------------------------------------------------------------- */

static int check_desc(const char *name, const FlabQuantDesc *q) {
    if (q->out <= 0 || q->in <= 0 || q->out > INT32_MAX || q->in > INT32_MAX)
        return flab_fail("cpu: weight %s: bad shape [%lld, %lld]", name,
                         (long long)q->out, (long long)q->in);
    if (q->kind == FLAB_QUANT_AWQ) {
        if (q->bits != 4 && q->bits != 8)
            return flab_fail("cpu: weight %s: %d-bit AWQ (flab runs 4 and 8)", name, q->bits);
        if (q->group <= 0 || q->in % q->group || q->out % (32 / q->bits))
            return flab_fail("cpu: weight %s: group %d or shape [%lld, %lld] does not fit the "
                             "packing", name, q->group, (long long)q->out, (long long)q->in);
        if (q->scales_dtype != FLAB_F16)
            return flab_fail("cpu: weight %s: AWQ scales must be F16", name);
        return 0;
    }
    if (q->kind == FLAB_QUANT_FP8) {
        if (q->n_scales != 1 && q->n_scales != q->out)
            return flab_fail("cpu: weight %s: %lld FP8 scales (want 1 or %lld)", name,
                             (long long)q->n_scales, (long long)q->out);
        if (q->scales_dtype != FLAB_F32 && q->scales_dtype != FLAB_BF16 &&
            q->scales_dtype != FLAB_F16)
            return flab_fail("cpu: weight %s: FP8 scales must be F32, BF16 or F16", name);
        return 0;
    }
    return flab_fail("cpu: weight %s: unknown quantization kind %d", name, (int)q->kind);
}

FlabWeight *cpu_upload_qweight(FlabBackend *be, const char *name,
                               const FlabQuantDesc *q) {
    name = name ? name : "?";
    if (check_desc(name, q)) return NULL;
    FlabWeight *w = flab_xcalloc(1, sizeof *w);
    w->name = flab_xstrdup(name);
    w->dtype = q->kind == FLAB_QUANT_FP8 ? FLAB_F8_E4M3 : FLAB_I32;
    w->ndim = 2;
    w->rows = q->out;
    w->cols = q->in;
    w->data = q->qweight;
    w->quant = 1;
    w->q = *q;
    if (q->kind == FLAB_QUANT_FP8) {
        w->qscale = flab_xmalloc((size_t)q->n_scales * sizeof(float));
        flab_to_f32(w->qscale, q->scales, q->scales_dtype, (size_t)q->n_scales);
    }
    w->awq = cpu_awq_pack(cpu_impl(be), q);
    return w;
}

/* ---- AWQ element access (scalar; also the tails of the AVX2 paths) ------- */

/* Packed value of output o in a row of words (`words` = one qweight or
 * qzeros row). */
static inline int awq_get(const int32_t *words, int64_t o, int bits) {
    uint32_t v = (uint32_t)words[o / (32 / bits)];
    int j = (int)(o % (32 / bits));
    int slot = bits == 4 ? AWQ_SLOT[j] : j;
    return (int)((v >> (slot * bits)) & ((1u << bits) - 1));
}

typedef struct {
    const float *x;
    float *y;
    const FlabWeight *W;
    const float *bias;
    const float *gsum;          /* AWQ: [rows, in/group] sums of x per group */
    const float *xs;            /* AWQ 4-bit decode: x * 2^AWQ4_XEXP (awq4_panel_slots) */
    float *part[1];             /* AWQ decode: the running task's partial y */
    float *parts;               /* AWQ decode: [runs][rows, out] partial y per run of groups */
    int runs;                   /* AWQ decode: runs of groups (awq_gemv_task) */
    int rows, in, out, acc;
    int block;                  /* prefill: outputs / rows per task */
    CpuImpl *impl;
} QCtx;

static inline void store_out(const QCtx *c, int r, int o, float v) {
    float *dst = c->y + (size_t)r * c->out + o;
    v += c->bias ? c->bias[o] : 0.0f;
    *dst = c->acc ? *dst + v : v;
}

/* A decode task: group g of input channels, outputs [o0, o1) (a multiple
 * of 8 wide, or the tail), every x row.  For row r it accumulates
 * a_o = sum_k q[k, o] x[r, k] over the group's qweight rows - contiguous
 * memory, read in order - into `acc` (o1 - o0 floats, L1-resident), then
 * adds s (a - z S_g) to the worker's partial y. */
static void awq_gemv_scalar(const QCtx *c, int g, int o0, int o1, float *acc, float *part) {
    const FlabQuantDesc *q = &c->W->q;
    int W = c->out / (32 / q->bits), G = c->in / q->group;
    const uint16_t *sc = q->scales;
    const int32_t *qz = (const int32_t *)q->qzeros + (size_t)g * W;
    for (int r = 0; r < c->rows; r++) {
        const float *x = c->x + (size_t)r * c->in;
        for (int o = o0; o < o1; o++) acc[o - o0] = 0;
        for (int k = g * q->group; k < (g + 1) * q->group; k++) {
            const int32_t *row = (const int32_t *)q->qweight + (size_t)k * W;
            for (int o = o0; o < o1; o++) acc[o - o0] += (float)awq_get(row, o, q->bits) * x[k];
        }
        float sx = c->gsum[(size_t)r * G + g];
        for (int o = o0; o < o1; o++)
            part[(size_t)r * c->out + o] += flab_f16_to_f32(sc[(size_t)g * c->out + o]) *
                                            (acc[o - o0] - (float)awq_get(qz, o, q->bits) * sx);
    }
}

/* ---- AWQ decode, AVX2 --------------------------------------------------- */

/* 8 consecutive outputs starting at o (o % 8 == 0) of one packed row, as
 * floats in natural order. */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 awq_load8(const int32_t *words, int o, int bits, __m256i shifts) {
    __m256i v;
    if (bits == 4) {
        v = _mm256_srlv_epi32(_mm256_set1_epi32(words[o / 8]), shifts);
        v = _mm256_and_si256(v, _mm256_set1_epi32(15));
    } else {   /* 8-bit, natural order: the 8 bytes of words o/4, o/4+1 */
        v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(words + o / 4)));
    }
    return _mm256_cvtepi32_ps(v);
}

/* 8 outputs from a row pointer already at the block: INT4 word v of p,
 * INT8 bytes 8v.. of p (p = row + o / (32 / bits) words). */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 awq_vec(const int32_t *p, int v, int bits, __m256i shifts) {
    __m256i q;
    if (bits == 4)
        q = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(p[v]), shifts),
                             _mm256_set1_epi32(15));
    else
        q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)((const uint8_t *)p + 8 * v)));
    return _mm256_cvtepi32_ps(q);
}

/* part[r, o .. o + 8 NV) += s (a - z S_g) (the group's zero point and
 * scale), a[v] holding the sums of outputs o + 8v ... */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void awq_finish(const QCtx *c, const __m256 *a, int NV, int g, int r, int o,
                              int bits, __m256i shifts) {
    const FlabQuantDesc *q = &c->W->q;
    int P = 32 / bits, W = c->out / P, G = c->in / q->group;
    const int32_t *zp = (const int32_t *)q->qzeros + (size_t)g * W + (size_t)o / P;
    const uint16_t *sp = (const uint16_t *)q->scales + (size_t)g * c->out + o;
    __m256 sx = _mm256_set1_ps(c->gsum[(size_t)r * G + g]);
    float *pr = c->part[0] + (size_t)r * c->out + o;   /* see awq_gemv_task */
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
        __m256 z = awq_vec(zp, v, bits, shifts);
        __m256 s = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp + 8 * v)));
        __m256 d = _mm256_fnmadd_ps(z, sx, a[v]);
        _mm256_storeu_ps(pr + 8 * v, _mm256_fmadd_ps(s, d, _mm256_loadu_ps(pr + 8 * v)));
    }
}

/* Group g, outputs [o, o + 8 nv) (a panel of nv <= PANEL_VECS vectors):
 * the sums live in `acc` (20 KB, L1) and each qweight row of the group is
 * read as one contiguous run of the panel's bytes (up to 2.5 KB INT4, 5 KB
 * INT8), four rows per pass over acc.  Long runs keep the hardware
 * prefetchers and the TLB effective: holding 64 outputs in registers
 * instead (32- or 64-byte strided reads, a row per page) measured up to
 * 1.4x slower from DRAM for all the saved loads and stores of acc. */
#define PANEL_VECS 640         /* 5120 outputs: Qwen2-0.5B's 4864-wide MLP rows in one
                                 * run (512: a 384-byte second pass, ~4% slower) */
#define AWQ_PF_ROWS 8         /* software prefetch distance in qweight rows */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void awq_panel(const QCtx *c, int g, int o, int nv, int bits, __m256i shifts,
                             __m256 *acc) {
    const FlabQuantDesc *q = &c->W->q;
    int P = 32 / bits, W = c->out / P, k0 = g * q->group, k1 = k0 + q->group;
    const int32_t *base = (const int32_t *)q->qweight + (size_t)o / P;
    for (int r = 0; r < c->rows; r++) {
        const float *x = c->x + (size_t)r * c->in;
        for (int v = 0; v < nv; v++) acc[v] = _mm256_setzero_ps();
        int k = k0;
        for (; k + 4 <= k1; k += 4) {
            __m256 x0 = _mm256_broadcast_ss(x + k), x1 = _mm256_broadcast_ss(x + k + 1);
            __m256 x2 = _mm256_broadcast_ss(x + k + 2), x3 = _mm256_broadcast_ss(x + k + 3);
            const int32_t *p0 = base + (size_t)k * W, *p1 = p0 + W, *p2 = p1 + W, *p3 = p2 + W;
            for (int v = 0; v < nv; v++) {
                if (v % (64 / bits) == 0 && k + 4 + AWQ_PF_ROWS <= k1) {  /* a new line */
                    const char *pf = (const char *)p0 + (size_t)bits * v + (size_t)AWQ_PF_ROWS * W * 4;
                    for (int i = 0; i < 4; i++) _mm_prefetch(pf + (size_t)i * W * 4, _MM_HINT_T0);
                }
                __m256 a = _mm256_fmadd_ps(awq_vec(p0, v, bits, shifts), x0, acc[v]);
                a = _mm256_fmadd_ps(awq_vec(p1, v, bits, shifts), x1, a);
                a = _mm256_fmadd_ps(awq_vec(p2, v, bits, shifts), x2, a);
                acc[v] = _mm256_fmadd_ps(awq_vec(p3, v, bits, shifts), x3, a);
            }
        }
        for (; k < k1; k++) {
            __m256 xk = _mm256_broadcast_ss(x + k);
            const int32_t *p0 = base + (size_t)k * W;
            for (int v = 0; v < nv; v++) acc[v] = _mm256_fmadd_ps(awq_vec(p0, v, bits, shifts), xk, acc[v]);
        }
        for (int v = 0; v < nv; v++) awq_finish(c, acc + v, 1, g, r, o + 8 * v, bits, shifts);
    }
}

/* In-register 8x8 transpose: afterwards r[i] lane j = old r[j] lane i. */
__attribute__((target("avx2"), always_inline))
static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20); r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20); r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31); r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31); r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Nibble slot s of 8 words (lane w = word w) as floats: one shift by an
 * immediate and a mask (slot 0: no shift, slot 7: no mask). */
#define NIB(v, s) _mm256_cvtepi32_ps((s) == 7 ? _mm256_srli_epi32(v, 28) \
    : _mm256_and_si256((s) ? _mm256_srli_epi32(v, 4 * (s)) : (v), _mm256_set1_epi32(15)))

/* INT4 weights as floats without a conversion instruction.  Two masks
 * spread a word's 8 nibbles over the bytes of two words, each byte
 * 0x80 | q << 3 (even slots: lo, odd slots: hi); a byte shuffle (or, for
 * byte 2, a mask) puts byte j alone in bits 16..23, which is the float
 * 2^-126 (1 + q / 16): exponent 1, q in the top mantissa bits.  Per 8
 * weights: one shuffle and one FMA (the shift + mask + vcvtdq2ps of NIB
 * cost ~40% more).  The products with x would be subnormal (slow, and
 * imprecise) at that exponent, so the kernel multiplies by
 * x' = x * 2^AWQ4_XEXP (exact: a power of two) and the group's sum is
 *   a = sum x' f = 2^(XEXP - 126) (S + sum q x / 16), so
 *   sum q x = 2^(130 - XEXP) a - 16 S  (S = sum x over the group).
 * XEXP = 64 keeps x' finite for |x| < 2^64 and the products normal for
 * |x| >= 2^-64 (smaller x round to subnormals: below any tolerance). */
#define AWQ4_XEXP 64
#define AWQ4_XSCALE 0x1p64f       /* 2^AWQ4_XEXP */
#define AWQ4_ASCALE 0x1p66f       /* 2^(130 - AWQ4_XEXP) */

/* vpshufb control moving byte j of each dword to byte 2, zeroing the rest
 * (the shuffle indexes bytes within a 128-bit lane: dword d is 4d..4d+3). */
__attribute__((target("avx2"), always_inline))
static inline __m256i nib4_ctl(int j) {
    int c[4];
    for (int d = 0; d < 4; d++) c[d] = (int)(0x80008080u | (uint32_t)(4 * d + j) << 16);
    return _mm256_setr_epi32(c[0], c[1], c[2], c[3], c[0], c[1], c[2], c[3]);
}

/* lo / hi byte words (see above) of 8 qweight words. */
__attribute__((target("avx2"), always_inline))
static inline void nib4_split(__m256i v, __m256i *lo, __m256i *hi) {
    __m256i one = _mm256_set1_epi32((int)0x80808080u);
    *lo = _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x0F0F0F0F)), 3), one);
    *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(v, 1), _mm256_set1_epi32(0x78787878)), one);
}

/* Slot s (s even: byte s/2 of lo, odd: of hi) as floats 2^-126 (1 + q/16). */
#define NIBF(lo, hi, s) _mm256_castsi256_ps((s) / 2 == 2 \
    ? _mm256_and_si256((s) % 2 ? (hi) : (lo), _mm256_set1_epi32(0x00FF0000)) \
    : _mm256_shuffle_epi8((s) % 2 ? (hi) : (lo), nib4_ctl((s) / 2)))

/* INT4 panel of nb blocks of 64 outputs (8 whole words each) starting at
 * o: like awq_panel, but a 32-byte load gives 8 words, split once into
 * lo / hi bytes (nib4_split, 6 ops per 64 weights), and slot s of all 8
 * words is then one shuffle (NIBF) and one FMA: ~2.75 instructions per 8
 * weights (awq_panel: broadcast, variable shift, mask, convert, FMA).
 * acc[8b + s] lane w sums x' f for output o + 64b + 8w + AWQ order[s]; the
 * scales are transposed into that order at the end of the group and the
 * result back.  Qweight rows are prefetched AWQ4_PF_ROWS ahead. */
#define AWQ4_PF_ROWS AWQ_PF_ROWS
__attribute__((target("avx2,fma,f16c")))
static void awq4_panel_slots(const QCtx *c, int g, int o, int nb, __m256 *acc) {
    static const int ORDER[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    const FlabQuantDesc *q = &c->W->q;
    int W = c->out / 8, G = c->in / q->group, k0 = g * q->group, k1 = k0 + q->group;
    const int32_t *base = (const int32_t *)q->qweight + (size_t)o / 8;
    const int32_t *zp = (const int32_t *)q->qzeros + (size_t)g * W + (size_t)o / 8;
    const uint16_t *sp = (const uint16_t *)q->scales + (size_t)g * c->out + o;
    for (int r = 0; r < c->rows; r++) {
        const float *x = c->xs + (size_t)r * c->in;     /* x * 2^AWQ4_XEXP */
        for (int i = 0; i < 8 * nb; i++) acc[i] = _mm256_setzero_ps();
        int k = k0;
        for (; k + 2 <= k1; k += 2) {
            __m256 x0 = _mm256_broadcast_ss(x + k), x1 = _mm256_broadcast_ss(x + k + 1);
            const int32_t *p0 = base + (size_t)k * W, *p1 = p0 + W;
            for (int b = 0; b < nb; b++) {
                __m256i l0, h0, l1, h1;
                if (!(b & 1) && k + AWQ4_PF_ROWS < k1) {
                    _mm_prefetch((const char *)(p0 + 8 * b + (size_t)AWQ4_PF_ROWS * W), _MM_HINT_T0);
                    _mm_prefetch((const char *)(p1 + 8 * b + (size_t)AWQ4_PF_ROWS * W), _MM_HINT_T0);
                }
                nib4_split(_mm256_loadu_si256((const __m256i *)(p0 + 8 * b)), &l0, &h0);
                nib4_split(_mm256_loadu_si256((const __m256i *)(p1 + 8 * b)), &l1, &h1);
                __m256 *a = acc + 8 * b;
#pragma GCC unroll 8
                for (int s = 0; s < 8; s++)
                    a[s] = _mm256_fmadd_ps(NIBF(l1, h1, s), x1,
                                           _mm256_fmadd_ps(NIBF(l0, h0, s), x0, a[s]));
            }
        }
        for (; k < k1; k++) {
            __m256 x0 = _mm256_broadcast_ss(x + k);
            const int32_t *p0 = base + (size_t)k * W;
            for (int b = 0; b < nb; b++) {
                __m256i l0, h0;
                nib4_split(_mm256_loadu_si256((const __m256i *)(p0 + 8 * b)), &l0, &h0);
#pragma GCC unroll 8
                for (int s = 0; s < 8; s++)
                    acc[8 * b + s] = _mm256_fmadd_ps(NIBF(l0, h0, s), x0, acc[8 * b + s]);
            }
        }
        __m256 sx = _mm256_set1_ps(c->gsum[(size_t)r * G + g]), sixteen = _mm256_set1_ps(16);
        float *pr = c->part[0] + (size_t)r * c->out + o;
        for (int b = 0; b < nb; b++) {
            __m256i vz = _mm256_loadu_si256((const __m256i *)(zp + 8 * b));
            __m256 t[8], d[8];
#pragma GCC unroll 8
            for (int w = 0; w < 8; w++)  /* t[w] lane j = scale of output 64b + 8w + j */
                t[w] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp + 64 * b + 8 * w)));
            transpose8(t);               /* t[j] lane w = the same */
#pragma GCC unroll 8
            for (int s = 0; s < 8; s++)  /* d[j] lane w = result for output 64b + 8w + j */
                d[ORDER[s]] = _mm256_mul_ps(t[ORDER[s]], _mm256_fnmadd_ps(
                    _mm256_add_ps(NIB(vz, s), sixteen), sx,
                    _mm256_mul_ps(acc[8 * b + s], _mm256_set1_ps(AWQ4_ASCALE))));
            transpose8(d);               /* d[w] = outputs 64b + 8w .. + 7 */
#pragma GCC unroll 8
            for (int w = 0; w < 8; w++)
                _mm256_storeu_ps(pr + 64 * b + 8 * w,
                                 _mm256_add_ps(d[w], _mm256_loadu_ps(pr + 64 * b + 8 * w)));
        }
    }
}
#undef NIB

/* Outputs [o0, o1) (o1 - o0 a multiple of 8) of group g, panel by panel. */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void awq_gemv_avx2_bits(const QCtx *c, int g, int o0, int o1, int bits) {
    __m256i shifts = _mm256_setr_epi32(0, 16, 4, 20, 8, 24, 12, 28);  /* 4*AWQ_SLOT */
    __m256 acc[PANEL_VECS];
    int o = o0;
    if (bits == 4)
        for (; o + 64 <= o1; o += 8 * PANEL_VECS) {
            int nb = (o1 - o) / 64 < PANEL_VECS / 8 ? (o1 - o) / 64 : PANEL_VECS / 8;
            awq4_panel_slots(c, g, o, nb, acc);
            if (nb < PANEL_VECS / 8) { o += 64 * nb; break; }
        }
    for (; o < o1; o += 8 * PANEL_VECS) {
        int nv = (o1 - o) / 8 < PANEL_VECS ? (o1 - o) / 8 : PANEL_VECS;
        awq_panel(c, g, o, nv, bits, shifts, acc);
    }
}

__attribute__((target("avx2,fma,f16c")))
static void awq_gemv_avx2(const QCtx *c, int g, int o0, int o1) {
    if (c->W->q.bits == 4) awq_gemv_avx2_bits(c, g, o0, o1, 4);
    else awq_gemv_avx2_bits(c, g, o0, o1, 8);
}

/* Tasks: runs of groups x output chunks (c->block outputs, a multiple of
 * 8).  Run i covers groups [i G / R, (i + 1) G / R) in order and sums into
 * its own partial y (c->parts + i rows out); awq_gemv adds the R partials
 * in run order.  So the result does not depend on which worker ran which
 * task (per-worker partials, as before session 3, made decode logits vary
 * from run to run), and the partials stay few (R <= 4 threads).  The
 * worker's scratch holds the scalar tail's acc. */
static void awq_gemv_task(void *vctx, int task, int worker) {
    const QCtx *c = vctx;
    int chunks = (c->out + c->block - 1) / c->block, G = c->in / c->W->q.group;
    int run = task / chunks, o0 = task % chunks * c->block;
    int o1 = o0 + c->block < c->out ? o0 + c->block : c->out;
    int g0 = (int)((long)G * run / c->runs), g1 = (int)((long)G * (run + 1) / c->runs);
    float *part = c->parts + (size_t)run * c->rows * c->out, *acc = c->impl->scratch[worker];
    int mid = cpu_have_avx2() ? o0 + (o1 - o0) / 8 * 8 : o0;
    QCtx cw = *c;                   /* this run's partial y */
    cw.part[0] = part;
    for (int g = g0; g < g1; g++) {
        if (mid > o0) awq_gemv_avx2(&cw, g, o0, mid);
        if (o1 > mid) awq_gemv_scalar(c, g, mid, o1, acc, part);
    }
}

/* ---- AWQ prefill: dequantised tile + sgemm -------------------------------- */

/* tile[k * nb + j] = W[o0 + j, k] for k < in, j < nb. */
__attribute__((target("avx2,fma,f16c")))
static void awq_dequant_tile_avx2(const FlabQuantDesc *q, int o0, int nb, float *tile) {
    int W = (int)(q->out / (32 / q->bits)), nv = nb / 8;
    const uint16_t *sc = q->scales;
    __m256i shifts = _mm256_setr_epi32(0, 16, 4, 20, 8, 24, 12, 28);
    for (int k = 0; k < q->in; k++) {
        int g = k / q->group;
        const int32_t *row = (const int32_t *)q->qweight + (size_t)k * W;
        const int32_t *zrow = (const int32_t *)q->qzeros + (size_t)g * W;
        for (int v = 0; v < nv; v++) {
            int o = o0 + 8 * v;
            __m256 qv = q->bits == 4 ? awq_load8(row, o, 4, shifts) : awq_load8(row, o, 8, shifts);
            __m256 z = q->bits == 4 ? awq_load8(zrow, o, 4, shifts) : awq_load8(zrow, o, 8, shifts);
            __m256 s = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc + (size_t)g * q->out + o)));
            _mm256_storeu_ps(tile + (size_t)k * nb + 8 * v, _mm256_mul_ps(_mm256_sub_ps(qv, z), s));
        }
        for (int j = 8 * nv; j < nb; j++) {
            int o = o0 + j;
            tile[(size_t)k * nb + j] = (float)(awq_get(row, o, q->bits) - awq_get(zrow, o, q->bits)) *
                                       flab_f16_to_f32(sc[(size_t)g * q->out + o]);
        }
    }
}

static void awq_dequant_tile_scalar(const FlabQuantDesc *q, int o0, int nb, float *tile) {
    int W = (int)(q->out / (32 / q->bits));
    const uint16_t *sc = q->scales;
    for (int k = 0; k < q->in; k++) {
        int g = k / q->group;
        const int32_t *row = (const int32_t *)q->qweight + (size_t)k * W;
        const int32_t *zrow = (const int32_t *)q->qzeros + (size_t)g * W;
        for (int j = 0; j < nb; j++) {
            int o = o0 + j;
            tile[(size_t)k * nb + j] = (float)(awq_get(row, o, q->bits) - awq_get(zrow, o, q->bits)) *
                                       flab_f16_to_f32(sc[(size_t)g * q->out + o]);
        }
    }
}

static void add_bias_block(const QCtx *c, int o0, int nb) {
    if (!c->bias) return;
    for (int r = 0; r < c->rows; r++)
        for (int j = 0; j < nb; j++) c->y[(size_t)r * c->out + o0 + j] += c->bias[o0 + j];
}

static void awq_gemm_task(void *vctx, int task, int worker) {
    const QCtx *c = vctx;
    int o0 = task * c->block, nb = o0 + c->block < c->out ? c->block : c->out - o0;
    float *tile = c->impl->scratch[worker];
    if (cpu_have_avx2()) awq_dequant_tile_avx2(&c->W->q, o0, nb, tile);
    else awq_dequant_tile_scalar(&c->W->q, o0, nb, tile);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->rows, nb, c->in, 1.0f,
                c->x, c->in, tile, nb, c->acc ? 1.0f : 0.0f, c->y + o0, c->out);
    add_bias_block(c, o0, nb);
}

/* ---- FP8 ------------------------------------------------------------------- */

static float fp8_lut[256];
static pthread_once_t fp8_lut_once = PTHREAD_ONCE_INIT;
static void fp8_lut_fill(void) {
    for (int i = 0; i < 256; i++) fp8_lut[i] = flab_e4m3_to_f32((uint8_t)i);
}

/* 8 e4m3 bytes -> 8 floats times 2^-8 (see the header).  Sign-extending
 * the byte to 16 bits and shifting left by 7 puts the magnitude bits where
 * f16 wants them and the sign in bit 15 (and a copy in bit 14, cleared). */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline __m256 fp8_load8(const uint8_t *p) {
    __m128i b = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)p));
    return _mm256_cvtph_ps(_mm_and_si128(_mm_slli_epi16(b, 7), _mm_set1_epi16((short)0xBF80)));
}

__attribute__((target("avx2,fma,f16c")))
static float fp8_dot_avx2(const float *x, const uint8_t *w, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(fp8_load8(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(fp8_load8(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(fp8_load8(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(fp8_load8(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(fp8_load8(w + i), _mm256_loadu_ps(x + i), a0);
    __m256 s8 = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float t[8], s = 0;
    _mm256_storeu_ps(t, s8);
    for (int j = 0; j < 8; j++) s += t[j];
    for (; i < n; i++) s += x[i] * fp8_lut[w[i]] * (1.0f / 256.0f);
    return s * 256.0f;
}

/* 16 e4m3 bytes -> 16 floats times 2^-8, as fp8_load8. */
__attribute__((target("avx512f,avx512bw"), always_inline))
static inline __m512 fp8_load16(const uint8_t *p) {
    __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
    return _mm512_cvtph_ps(_mm256_and_si256(_mm256_slli_epi16(b, 7), _mm256_set1_epi16((short)0xBF80)));
}

/* fp8_dot_avx2 with 16-wide vectors: half the instructions per weight (the
 * AVX2 dot measured ~21 GB/s, compute bound, against ~30 GB/s of reads). */
__attribute__((target("avx512f,avx512bw,avx2,fma,f16c")))
static float fp8_dot_avx512(const float *x, const uint8_t *w, int n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(fp8_load16(w + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(fp8_load16(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(fp8_load16(w + i + 32), _mm512_loadu_ps(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(fp8_load16(w + i + 48), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(fp8_load16(w + i), _mm512_loadu_ps(x + i), a0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (; i < n; i++) s += x[i] * fp8_lut[w[i]] * (1.0f / 256.0f);
    return s * 256.0f;
}

static float fp8_dot_scalar(const float *x, const uint8_t *w, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += x[i] * fp8_lut[w[i]];
    return s;
}

static inline float fp8_scale(const FlabWeight *W, int o) {
    return W->qscale[W->q.n_scales == 1 ? 0 : o];
}

static void fp8_gemv_task(void *vctx, int task, int worker) {
    (void)worker;
    const QCtx *c = vctx;
    int o0 = task * QGEMV_OUT, o1 = o0 + QGEMV_OUT < c->out ? o0 + QGEMV_OUT : c->out;
    int fast = cpu_have_avx2(), wide = cpu_have_avx512();
    for (int o = o0; o < o1; o++) {
        const uint8_t *w = (const uint8_t *)c->W->q.qweight + (size_t)o * c->in;
        for (int r = 0; r < c->rows; r++) {
            const float *x = c->x + (size_t)r * c->in;
            float d = wide ? fp8_dot_avx512(x, w, c->in)
                    : fast ? fp8_dot_avx2(x, w, c->in) : fp8_dot_scalar(x, w, c->in);
            store_out(c, r, o, d * fp8_scale(c->W, o));
        }
    }
}

static void fp8_gemm_task(void *vctx, int task, int worker) {
    const QCtx *c = vctx;
    int o0 = task * c->block, nb = o0 + c->block < c->out ? c->block : c->out - o0;
    float *tile = c->impl->scratch[worker];
    const uint8_t *w = (const uint8_t *)c->W->q.qweight + (size_t)o0 * c->in;
    for (int j = 0; j < nb; j++) {
        float s = fp8_scale(c->W, o0 + j);
        for (int k = 0; k < c->in; k++)
            tile[(size_t)j * c->in + k] = fp8_lut[w[(size_t)j * c->in + k]] * s;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->rows, nb, c->in, 1.0f,
                c->x, c->in, tile, c->in, c->acc ? 1.0f : 0.0f, c->y + o0, c->out);
    add_bias_block(c, o0, nb);
}

/* ---- the op ------------------------------------------------------------ */

/* Outputs per prefill task: <= QGEMM_BLOCK_MAX, a multiple of 8, spread
 * evenly over the threads (as cpu_matmul.c's gemm_block). */
static int qgemm_block(int out, int threads) {
    int per = threads * ((out + threads * QGEMM_BLOCK_MAX - 1) / (threads * QGEMM_BLOCK_MAX));
    int block = ((out + per - 1) / per + 7) / 8 * 8;
    return block < out ? block : out;
}

/* gsum[r * G + g] = sum of x[r, k] over group g's input channels. */
static float *group_sums(const float *x, int rows, int in, int group) {
    int G = in / group;
    float *s = flab_xmalloc((size_t)rows * G * sizeof(float));
    for (int r = 0; r < rows; r++)
        for (int g = 0; g < G; g++) {
            float t = 0;
            for (int k = g * group; k < (g + 1) * group; k++) t += x[(size_t)r * in + k];
            s[(size_t)r * G + g] = t;
        }
    return s;
}

/* Output chunk of an AWQ decode task: the whole row when there are enough
 * runs of groups to keep every thread busy, else split so that tasks >= 4 x
 * threads (multiple of 8 outputs). */
static int awq_gemv_chunk(int out, int groups, int threads) {
    int want = 4 * threads, chunks = (want + groups - 1) / groups;
    int chunk = ((out + chunks - 1) / chunks + 7) / 8 * 8;
    return chunk < 64 ? 64 : chunk;
}

static size_t ny_in(const QCtx *c) { return (size_t)c->rows * c->in; }

static void awq_gemv(CpuImpl *impl, QCtx *c) {
    int G = c->in / c->W->q.group, T = impl->n_threads;
    size_t ny = (size_t)c->rows * c->out;
    c->runs = G < 4 * T ? G : 4 * T;
    c->block = awq_gemv_chunk(c->out, c->runs, T);
    float *gs = group_sums(c->x, c->rows, c->in, c->W->q.group), *xs = NULL;
    c->gsum = gs;
    if (c->W->q.bits == 4 && cpu_have_avx2()) {   /* awq4_panel_slots' x' */
        xs = flab_xmalloc(ny_in(c) * sizeof(float));
        for (size_t i = 0; i < ny_in(c); i++) xs[i] = c->x[i] * AWQ4_XSCALE;
        c->xs = xs;
    }
    cpu_scratch_reserve(impl, (size_t)c->block);
    c->parts = flab_xcalloc((size_t)c->runs * ny, sizeof(float));
    int chunks = (c->out + c->block - 1) / c->block;
    cpu_pool_run(impl->pool, c->runs * chunks, awq_gemv_task, c);
    for (size_t i = 0; i < ny; i++) {
        float v = c->bias ? c->bias[i % (size_t)c->out] : 0.0f;
        for (int r = 0; r < c->runs; r++) v += c->parts[(size_t)r * ny + i];
        c->y[i] = c->acc ? c->y[i] + v : v;
    }
    free(c->parts);
    free(gs);
    free(xs);
}

int cpu_qmatmul(FlabBackend *be, FlabBuf *y, const FlabBuf *x,
                const FlabWeight *W, const float *bias, int rows, int accumulate) {
    CpuImpl *impl = cpu_impl(be);
    pthread_once(&fp8_lut_once, fp8_lut_fill);
    QCtx c = {x->data, y->data, W, bias, NULL, NULL, {NULL}, NULL, 0, rows, (int)W->cols,
              (int)W->rows, accumulate, qgemm_block((int)W->rows, impl->n_threads), impl};
    if (W->awq && !cpu_awq_matmul(impl, W->awq, y->data, x->data, bias, rows, accumulate))
        return 0;
    int awq = W->q.kind == FLAB_QUANT_AWQ;
    if (rows <= QGEMV_MAX_ROWS && awq) {
        awq_gemv(impl, &c);
        return 0;
    }
    if (rows <= QGEMV_MAX_ROWS) {
        cpu_pool_run(impl->pool, (c.out + QGEMV_OUT - 1) / QGEMV_OUT, fp8_gemv_task, &c);
        return 0;
    }
    cpu_scratch_reserve(impl, (size_t)c.block * c.in);
    cpu_pool_run(impl->pool, (c.out + c.block - 1) / c.block,
                 awq ? awq_gemm_task : fp8_gemm_task, &c);
    return 0;
}
