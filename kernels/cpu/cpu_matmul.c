/* kernels/cpu/cpu_matmul.c: y = x W^T + b on the CPU, W [out, in] read in
 * place in its checkpoint dtype (bf16 / f16 / f32).
 *
 * Two paths, both split over output features across the thread pool:
 *  - few rows (decode, rows <= GEMV_MAX_ROWS): memory-bound GEMV.  Each W row
 *    is streamed once from memory, converted in registers (bf16 -> f32 is a
 *    16-bit shift, f16 via F16C) and dotted with every x row by an AVX2/FMA
 *    kernel, four x rows per pass (batched decode) so a converted W vector
 *    feeds four FMAs.  Reading bf16 directly halves the bytes per token compared with
 *    a float32 copy of the weights, which is what bounds decode speed.
 *  - many rows (prefill, scoring): each task converts a block of at most
 *    GEMM_BLOCK_MAX W rows to float32 in its scratch (L2-sized) and calls
 *    OpenBLAS sgemm on it; the conversion is amortised over all rows.  f32
 *    weights skip it.  The block size makes the task count a multiple of the
 *    thread count, so no thread idles at the end of a small matrix (k_proj's
 *    128 rows, down_proj's 896 used to leave one of two threads idle for
 *    1/2 resp. 1/8 of the call).
 * Without AVX2/FMA/F16C at run time a portable scalar kernel is used. */
#include "kernels/cpu/cpu_internal.h"
#include "util/error.h"
#include <cblas.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define GEMV_MAX_ROWS 16
#define GEMV_CHUNK 64        /* output features per GEMV task */
#define GEMM_BLOCK_MAX 256   /* most W rows converted per GEMM task */

/* ---- dot kernels ---------------------------------------------------------- */

__attribute__((target("avx2,fma")))
static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma")))
static inline __m256 load_bf16x8(const uint16_t *w) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)w));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

__attribute__((target("avx2,fma,f16c")))
static inline __m256 load_f16x8(const uint16_t *w) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w));
}

/* One dot kernel per dtype, 4 accumulators over 32 elements per step. */
#define DEFINE_DOT(NAME, T, LOAD, SCALAR, TGT)                                  \
    __attribute__((target(TGT)))                                                \
    static float NAME(const float *x, const T *w, int n) {                      \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;             \
        int i = 0;                                                              \
        for (; i + 32 <= n; i += 32) {                                          \
            a0 = _mm256_fmadd_ps(LOAD(w + i), _mm256_loadu_ps(x + i), a0);      \
            a1 = _mm256_fmadd_ps(LOAD(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);   \
            a2 = _mm256_fmadd_ps(LOAD(w + i + 16), _mm256_loadu_ps(x + i + 16), a2); \
            a3 = _mm256_fmadd_ps(LOAD(w + i + 24), _mm256_loadu_ps(x + i + 24), a3); \
        }                                                                       \
        for (; i + 8 <= n; i += 8)                                              \
            a0 = _mm256_fmadd_ps(LOAD(w + i), _mm256_loadu_ps(x + i), a0);      \
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1),                  \
                                        _mm256_add_ps(a2, a3)));                \
        for (; i < n; i++) s += x[i] * SCALAR(w[i]);                            \
        return s;                                                               \
    }

#define LOAD_F32(p) _mm256_loadu_ps(p)
#define ID_F32(v) (v)
DEFINE_DOT(dot_bf16_avx2, uint16_t, load_bf16x8, flab_bf16_to_f32, "avx2,fma")
DEFINE_DOT(dot_f16_avx2, uint16_t, load_f16x8, flab_f16_to_f32, "avx2,fma,f16c")
DEFINE_DOT(dot_f32_avx2, float, LOAD_F32, ID_F32, "avx2,fma")

/* Four x rows against one W row: W is loaded and converted once per 8
 * elements and used for 4 rows; two accumulators per row hide FMA latency. */
#define DEFINE_DOT4(NAME, T, LOAD, SCALAR, TGT)                                 \
    __attribute__((target(TGT)))                                                \
    static void NAME(const float *x, size_t ldx, const T *w, int n, float *out) { \
        const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx;  \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;             \
        __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;                              \
        int i = 0;                                                              \
        for (; i + 16 <= n; i += 16) {                                          \
            __m256 w0 = LOAD(w + i), w1 = LOAD(w + i + 8);                      \
            a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x0 + i), a0);              \
            a1 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x1 + i), a1);              \
            a2 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x2 + i), a2);              \
            a3 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x3 + i), a3);              \
            b0 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x0 + i + 8), b0);          \
            b1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x1 + i + 8), b1);          \
            b2 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x2 + i + 8), b2);          \
            b3 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x3 + i + 8), b3);          \
        }                                                                       \
        out[0] = hsum256(_mm256_add_ps(a0, b0));                                \
        out[1] = hsum256(_mm256_add_ps(a1, b1));                                \
        out[2] = hsum256(_mm256_add_ps(a2, b2));                                \
        out[3] = hsum256(_mm256_add_ps(a3, b3));                                \
        for (; i < n; i++) {                                                    \
            float wv = SCALAR(w[i]);                                            \
            out[0] += wv * x0[i]; out[1] += wv * x1[i];                         \
            out[2] += wv * x2[i]; out[3] += wv * x3[i];                         \
        }                                                                       \
    }

DEFINE_DOT4(dot4_bf16_avx2, uint16_t, load_bf16x8, flab_bf16_to_f32, "avx2,fma")
DEFINE_DOT4(dot4_f16_avx2, uint16_t, load_f16x8, flab_f16_to_f32, "avx2,fma,f16c")
DEFINE_DOT4(dot4_f32_avx2, float, LOAD_F32, ID_F32, "avx2,fma")

static float dot_scalar(const float *x, const void *w, FlabDType t, int n) {
    float s = 0;
    const uint16_t *h = w;
    const float *f = w;
    for (int i = 0; i < n; i++)
        s += x[i] * (t == FLAB_F32 ? f[i] : t == FLAB_BF16 ? flab_bf16_to_f32(h[i])
                                                            : flab_f16_to_f32(h[i]));
    return s;
}

/* FLAB_CPU_NO_AVX2=1 forces the portable kernels (tested that way too). */
int cpu_have_avx2(void) {
    static int cached = -1;
    if (cached < 0) {
        const char *off = getenv("FLAB_CPU_NO_AVX2");
        cached = !(off && *off && *off != '0') && __builtin_cpu_supports("avx2") &&
                 __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return cached;
}

static float dot_any(const float *x, const void *w, FlabDType t, int n) {
    if (!cpu_have_avx2()) return dot_scalar(x, w, t, n);
    if (t == FLAB_BF16) return dot_bf16_avx2(x, w, n);
    if (t == FLAB_F16) return dot_f16_avx2(x, w, n);
    return dot_f32_avx2(x, w, n);
}

/* out[0..4) = dots of 4 x rows (ldx apart) with one W row (AVX2 only). */
static void dot4_any(const float *x, size_t ldx, const void *w, FlabDType t, int n,
                     float *out) {
    if (t == FLAB_BF16) dot4_bf16_avx2(x, ldx, w, n, out);
    else if (t == FLAB_F16) dot4_f16_avx2(x, ldx, w, n, out);
    else dot4_f32_avx2(x, ldx, w, n, out);
}

/* Float32 copy of n weights, vectorised for bf16 (the GEMM tile).  Same
 * target as load_bf16x8, or GCC cannot inline it (a call per 8 values cost
 * 4% of a prefill). */
__attribute__((target("avx2,fma")))
static void bf16_to_f32_avx2(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_bf16x8(src + i));
    for (; i < n; i++) dst[i] = flab_bf16_to_f32(src[i]);
}

static void to_f32_fast(float *dst, const void *src, FlabDType t, size_t n) {
    if (t == FLAB_BF16 && cpu_have_avx2()) bf16_to_f32_avx2(dst, src, n);
    else flab_to_f32(dst, src, t, n);
}

/* ---- the two paths -------------------------------------------------------- */

typedef struct {
    const float *x;
    float *y;
    const FlabWeight *W;
    const float *bias;
    int rows, in, out, acc;
    int block;                  /* W rows per GEMM task */
    CpuImpl *impl;
} MatmulCtx;

static void gemv_task(void *vctx, int task, int worker) {
    (void)worker;
    MatmulCtx *c = vctx;
    int o0 = task * GEMV_CHUNK, o1 = o0 + GEMV_CHUNK < c->out ? o0 + GEMV_CHUNK : c->out;
    size_t es = flab_dtype_size(c->W->dtype);
    int fast = cpu_have_avx2();
    for (int o = o0; o < o1; o++) {
        const void *wrow = (const char *)c->W->data + (size_t)o * c->in * es;
        float d[4];
        for (int r = 0; r < c->rows;) {
            int nr = fast && c->rows - r >= 4 ? 4 : 1;
            if (nr == 4) dot4_any(c->x + (size_t)r * c->in, (size_t)c->in, wrow, c->W->dtype,
                                  c->in, d);
            else d[0] = dot_any(c->x + (size_t)r * c->in, wrow, c->W->dtype, c->in);
            for (int k = 0; k < nr; k++, r++) {
                float v = d[k] + (c->bias ? c->bias[o] : 0.0f);
                float *dst = c->y + (size_t)r * c->out + o;
                *dst = c->acc ? *dst + v : v;
            }
        }
    }
}

static void gemm_task(void *vctx, int task, int worker) {
    MatmulCtx *c = vctx;
    int o0 = task * c->block;
    int nb = o0 + c->block < c->out ? c->block : c->out - o0;
    const float *wb;
    if (c->W->dtype == FLAB_F32) {
        wb = (const float *)c->W->data + (size_t)o0 * c->in;
    } else {
        float *s = c->impl->scratch[worker];
        size_t es = flab_dtype_size(c->W->dtype);
        to_f32_fast(s, (const char *)c->W->data + (size_t)o0 * c->in * es,
                    c->W->dtype, (size_t)nb * c->in);
        wb = s;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->rows, nb, c->in,
                1.0f, c->x, c->in, wb, c->in, c->acc ? 1.0f : 0.0f,
                c->y + o0, c->out);
    if (c->bias)
        for (int r = 0; r < c->rows; r++)
            for (int j = 0; j < nb; j++)
                c->y[(size_t)r * c->out + o0 + j] += c->bias[o0 + j];
}

/* W rows per GEMM task: at most GEMM_BLOCK_MAX, a multiple of 8, and about
 * out / (k * threads) so the tasks spread evenly over the threads. */
static int gemm_block(int out, int threads) {
    int per = threads * ((out + threads * GEMM_BLOCK_MAX - 1) / (threads * GEMM_BLOCK_MAX));
    int block = ((out + per - 1) / per + 7) / 8 * 8;
    return block < out ? block : out;
}

int cpu_matmul(FlabBackend *be, FlabBuf *y, const FlabBuf *x,
               const FlabWeight *W, const FlabWeight *bias, int rows,
               int accumulate) {
    if (W->ndim != 2)
        return flab_fail("cpu: matmul: weight %s is not 2-D", W->name);
    int in = (int)W->cols, out = (int)W->rows;
    if (bias && (bias->ndim != 1 || bias->cols != out))
        return flab_fail("cpu: matmul: bias %s has %lld elements, weight %s has %d rows",
                         bias->name, (long long)bias->cols, W->name, out);
    if ((size_t)rows * in > x->n || (size_t)rows * out > y->n)
        return flab_fail("cpu: matmul %s: %d rows overrun the x or y buffer", W->name, rows);
    if (rows <= 0) return 0;
    if (W->quant) return cpu_qmatmul(be, y, x, W, bias ? bias->f32 : NULL, rows, accumulate);
    CpuImpl *impl = cpu_impl(be);
    MatmulCtx c = {x->data, y->data, W, bias ? bias->f32 : NULL, rows, in, out,
                   accumulate, gemm_block(out, impl->n_threads), impl};
    if (rows <= GEMV_MAX_ROWS) {
        cpu_pool_run(impl->pool, (out + GEMV_CHUNK - 1) / GEMV_CHUNK, gemv_task, &c);
    } else {
        if (W->dtype != FLAB_F32) cpu_scratch_reserve(impl, (size_t)c.block * in);
        cpu_pool_run(impl->pool, (out + c.block - 1) / c.block, gemm_task, &c);
    }
    return 0;
}

/* ---- several weights over one input (matmul_multi) ------------------------ */

/* One parallel run whose task numbers cover every weight's tasks in turn:
 * weight i owns tasks [first[i], first[i+1]).  Each weight keeps the block
 * size and task function a lone cpu_matmul would use, so the outputs are
 * bit-identical to n separate calls; what changes is one barrier instead of
 * n, and a thread that finishes its share of q picks up k or v instead of
 * waiting for the other thread. */
typedef struct {
    MatmulCtx m[FLAB_MATMUL_MULTI_MAX];
    int first[FLAB_MATMUL_MULTI_MAX + 1];
    int gemv;
} MultiCtx;

static void multi_task(void *vctx, int task, int worker) {
    MultiCtx *mc = vctx;
    int i = 0;
    while (task >= mc->first[i + 1]) i++;
    if (mc->gemv) gemv_task(&mc->m[i], task - mc->first[i], worker);
    else gemm_task(&mc->m[i], task - mc->first[i], worker);
}

/* The fused path handles plain bf16/f16/f32 weights of one input width;
 * anything else (quantized kinds, unequal in) goes through cpu_matmul. */
static int multi_fusable(int n, const FlabWeight *const *W) {
    for (int i = 0; i < n; i++) {
        FlabDType t = W[i]->dtype;
        if (W[i]->ndim != 2 || W[i]->cols != W[0]->cols ||
            (t != FLAB_BF16 && t != FLAB_F16 && t != FLAB_F32))
            return 0;
    }
    return 1;
}

/* The checks cpu_matmul makes, for one weight of a multi call. */
static int multi_check(const FlabBuf *y, const FlabBuf *x, const FlabWeight *W,
                       const FlabWeight *bias, int rows) {
    if (bias && (bias->ndim != 1 || bias->cols != W->rows))
        return flab_fail("cpu: matmul: bias %s has %lld elements, weight %s has %lld rows",
                         bias->name, (long long)bias->cols, W->name, (long long)W->rows);
    if ((size_t)rows * W->cols > x->n || (size_t)rows * W->rows > y->n)
        return flab_fail("cpu: matmul %s: %d rows overrun the x or y buffer", W->name, rows);
    return 0;
}

/* AWQ weights repacked for VNNI, decoded in one run (cpu_awq_decode_multi);
 * 1 when that does not apply (the caller loops over cpu_matmul). */
static int awq_multi(FlabBackend *be, int n, FlabBuf *const *y, const FlabBuf *x,
                     const FlabWeight *const *W, const FlabWeight *const *bias, int rows) {
    const CpuAwqPack *p[FLAB_MATMUL_MULTI_MAX];
    float *yd[FLAB_MATMUL_MULTI_MAX];
    const float *bd[FLAB_MATMUL_MULTI_MAX];
    if (rows < 1) return 1;
    for (int i = 0; i < n; i++) {
        const FlabWeight *b = bias ? bias[i] : NULL;
        if (!W[i]->quant || !W[i]->awq || multi_check(y[i], x, W[i], b, rows)) return 1;
        p[i] = W[i]->awq;
        yd[i] = y[i]->data;
        bd[i] = b ? b->f32 : NULL;
    }
    return cpu_awq_decode_multi(cpu_impl(be), n, p, yd, x->data, bd, rows, 0);
}

int cpu_matmul_multi(FlabBackend *be, int n, FlabBuf *const *y, const FlabBuf *x,
                     const FlabWeight *const *W, const FlabWeight *const *bias, int rows) {
    if (n < 1 || n > FLAB_MATMUL_MULTI_MAX)
        return flab_fail("cpu: matmul_multi: %d weights (want 1..%d)", n,
                         FLAB_MATMUL_MULTI_MAX);
    if (!multi_fusable(n, W)) {
        if (!awq_multi(be, n, y, x, W, bias, rows)) return 0;
        for (int i = 0; i < n; i++)
            if (cpu_matmul(be, y[i], x, W[i], bias ? bias[i] : NULL, rows, 0)) return -1;
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (multi_check(y[i], x, W[i], bias ? bias[i] : NULL, rows)) return -1;
    if (rows <= 0) return 0;
    CpuImpl *impl = cpu_impl(be);
    MultiCtx mc = {.gemv = rows <= GEMV_MAX_ROWS};
    size_t scratch = 0;
    for (int i = 0; i < n; i++) {
        const FlabWeight *b = bias ? bias[i] : NULL;
        int in = (int)W[i]->cols, out = (int)W[i]->rows;
        MatmulCtx *c = &mc.m[i];
        *c = (MatmulCtx){x->data, y[i]->data, W[i], b ? b->f32 : NULL, rows, in, out, 0,
                         gemm_block(out, impl->n_threads), impl};
        int tasks = mc.gemv ? (out + GEMV_CHUNK - 1) / GEMV_CHUNK
                            : (out + c->block - 1) / c->block;
        mc.first[i + 1] = mc.first[i] + tasks;
        if (W[i]->dtype != FLAB_F32 && (size_t)c->block * in > scratch)
            scratch = (size_t)c->block * in;
    }
    for (int i = n + 1; i <= FLAB_MATMUL_MULTI_MAX; i++) mc.first[i] = mc.first[n];
    if (!mc.gemv && scratch) cpu_scratch_reserve(impl, scratch);
    cpu_pool_run(impl->pool, mc.first[n], multi_task, &mc);
    return 0;
}
