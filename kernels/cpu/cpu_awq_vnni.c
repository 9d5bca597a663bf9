/* kernels/cpu/cpu_awq_vnni.c: AutoAWQ INT4 / INT8 matmul with AVX-512 VNNI
 * integer dot products, on weights repacked once at upload.
 *
 * Why: the float kernels (cpu_qmatmul.c) spend a byte shuffle and an FMA
 * per 8 INT4 weights and top out near 20 G weights/s per core (INT8: ~12
 * GB/s), well under what a core streams from DRAM, so quantized decode was
 * compute bound.  vpdpbusd multiplies 64 unsigned bytes by 64 signed bytes
 * and adds each group of 4 into one of 16 int32 lanes: 64 multiply-adds per
 * instruction.
 *
 * Activations stay float32-accurate.  Per row and group of `group` inputs,
 * x is scaled by a power of two, 2^(22 - e) with e the exponent of the
 * group's largest |x| (max|x| < 2^e), and rounded to an integer xi,
 * |xi| <= 2^22, written as three balanced base-256 digits
 * xi = d0 + 256 d1 + 65536 d2 (each in [-128, 127]).  Each digit plane is one
 * vpdpbusd against the 4-bit codes (0..15 as unsigned bytes); the three
 * int32 sums are exact (|sum| <= group x 15 x 128) and are combined in
 * float.  The representation error is <= 2^-23 x 2^e <= 2^-22 x max|x| of
 * the group per element, the order of float32's own rounding, so results
 * match the dequantise-then-float32 reference at the float kernels'
 * tolerance (tests/test_qmatmul.c: 1e-5 x max|y|).  A call whose x holds a
 * NaN or an infinity returns 1 and the caller uses the float kernel, so
 * those propagate exactly as in the reference.
 *
 * Layout (cpu_awq_pack): outputs padded to a multiple of 64 (a
 * "superblock"), one contiguous, 64-byte aligned chunk per (superblock sb,
 * group g):
 *   group/8 lines (inputs k0 = g group + 8 line ..) of 4 blocks (outputs
 *   o = 64 sb + 16 b + lane i); in a block, byte 4 i + j holds
 *     INT4 (64 bytes): q[k0 + j, o] in the low nibble, q[k0 + 4 + j, o] in
 *       the high one;
 *     INT8 (128 bytes): q[k0 + j, o], and 64 bytes on q[k0 + 4 + j, o];
 *   then 64 f16 scales and 64 u8 zero points of (g, 64 sb ..) (padding 0).
 * Same bytes per weight as the checkpoint (INT4: plus half a byte of zero
 * point per group and output).  A decode task is one superblock over all groups and
 * rows, written straight into y: no per-thread partial sums to reduce, and
 * each task streams one contiguous range.  Prefill dequantises blocks of
 * superblocks into a float32 tile and calls sgemm, as cpu_qmatmul.c does
 * for the checkpoint layout. */
#include "kernels/cpu/cpu_internal.h"
#include "util/error.h"
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define AQ_SB 64                  /* outputs per superblock */
#define AQ_META 192               /* bytes: 64 f16 scales + 64 u8 zeros */
#define AQ_MAX_ROWS 4             /* decode rows (cpu_qmatmul's QGEMV_MAX_ROWS) */
#define AQ_GEMM_SB 4              /* superblocks per prefill task, at most */
#define AQ_TASKS_PER_THREAD 4     /* decode: runs of superblocks per thread (2..8
                                   * measured within noise of each other) */

struct CpuAwqPack {
    int bits, out, in, group, G, L, nsb;   /* L = group / 8 lines per chunk */
    size_t block, line, chunk;             /* bytes: 16 bits, 4 blocks, a chunk */
    uint8_t *data;                   /* nsb x G chunks */
};

/* FLAB_CPU_NO_AVX512=1 (or FLAB_CPU_NO_AVX2=1) keeps the AVX2 / portable
 * kernels (tests run all three ways). */
int cpu_have_avx512(void) {
    static int cached = -1;
    if (cached < 0) {
        const char *off = getenv("FLAB_CPU_NO_AVX512");
        cached = cpu_have_avx2() && !(off && *off && *off != '0') &&
                 __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    }
    return cached;
}

int cpu_have_avx512vnni(void) {
    return cpu_have_avx512() && __builtin_cpu_supports("avx512vnni");
}

/* ---- repacking ------------------------------------------------------------ */

/* The code of output o in a row of AutoAWQ words (kernels/ops.h: INT4
 * interleaved, INT8 in natural order). */
static inline int awq_code(const int32_t *words, int o, int bits) {
    static const int SLOT[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    if (bits == 8) return (int)(((uint32_t)words[o / 4] >> (8 * (o % 4))) & 255u);
    return (int)(((uint32_t)words[o / 8] >> (4 * SLOT[o % 8])) & 15u);
}

static inline uint8_t *aq_chunk(const CpuAwqPack *p, int sb, int g) {
    return p->data + ((size_t)sb * p->G + g) * p->chunk;
}

/* The chunk's scales (64 f16) and zero points (64 u8). */
static inline const uint16_t *aq_scales(const CpuAwqPack *p, const uint8_t *ch) {
    return (const uint16_t *)(ch + (size_t)p->L * p->line);
}
static inline const uint8_t *aq_zeros(const CpuAwqPack *p, const uint8_t *ch) {
    return ch + (size_t)p->L * p->line + 2 * AQ_SB;
}

typedef struct { const FlabQuantDesc *q; CpuAwqPack *p; } PackCtx;

/* Superblock sb's chunks (the buffer is zeroed: padding stays 0). */
static void pack_task(void *vctx, int sb, int worker) {
    (void)worker;
    const PackCtx *c = vctx;
    const CpuAwqPack *p = c->p;
    const int32_t *qw = c->q->qweight, *qz = c->q->qzeros;
    const uint16_t *sc = c->q->scales;
    int bits = p->bits, W = p->out / (32 / bits), o0 = AQ_SB * sb;
    int n = p->out - o0 < AQ_SB ? p->out - o0 : AQ_SB;
    for (int g = 0; g < p->G; g++) {
        uint8_t *ch = aq_chunk(p, sb, g);
        for (int l = 0; l < p->L; l++)
            for (int kk = 0; kk < 8; kk++) {
                const int32_t *row = qw + (size_t)(g * p->group + 8 * l + kk) * W;
                uint8_t *line = ch + (size_t)l * p->line + (kk & 3);
                for (int i = 0; i < n; i++) {
                    uint8_t *byte = line + (size_t)(i / 16) * p->block + 4 * (i % 16);
                    int v = awq_code(row, o0 + i, bits);
                    if (bits == 4) *byte |= (uint8_t)(v << (kk < 4 ? 0 : 4));
                    else byte[kk < 4 ? 0 : 64] = (uint8_t)v;
                }
            }
        uint16_t *ms = (uint16_t *)aq_scales(p, ch);
        uint8_t *mz = (uint8_t *)aq_zeros(p, ch);
        for (int i = 0; i < n; i++) {
            ms[i] = sc[(size_t)g * p->out + o0 + i];
            mz[i] = (uint8_t)awq_code(qz + (size_t)g * W, o0 + i, bits);
        }
    }
}

/* Drops the resident pages wholly inside [ptr, ptr + n) of a read-only file
 * mapping: they are never written, so a later read refaults them from the
 * file (MADV_DONTNEED on such a mapping loses nothing). */
static void drop_file_pages(const void *ptr, size_t n) {
    uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)ptr + ps - 1) & ~(ps - 1), e = ((uintptr_t)ptr + n) & ~(ps - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_DONTNEED);
}

CpuAwqPack *cpu_awq_pack(CpuImpl *impl, const FlabQuantDesc *q) {
    if (!cpu_have_avx512vnni() || q->kind != FLAB_QUANT_AWQ || q->group % 8) return NULL;
    CpuAwqPack *p = flab_xcalloc(1, sizeof *p);
    p->bits = q->bits;
    p->out = (int)q->out;
    p->in = (int)q->in;
    p->group = q->group;
    p->G = p->in / q->group;
    p->L = q->group / 8;
    p->nsb = (p->out + AQ_SB - 1) / AQ_SB;
    p->block = (size_t)16 * q->bits;
    p->line = 4 * p->block;
    p->chunk = (size_t)p->L * p->line + AQ_META;
    size_t bytes = p->chunk * (size_t)p->G * (size_t)p->nsb;
    p->data = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p->data) {           /* no room for the copy: the float kernel runs in place */
        free(p);
        return NULL;
    }
    memset(p->data, 0, bytes);
    PackCtx c = {q, p};
    cpu_pool_run(impl->pool, p->nsb, pack_task, &c);
    if (q->file_mapped) drop_file_pages(q->qweight, (size_t)q->in * (size_t)q->out * q->bits / 8);
    return p;
}

void cpu_awq_free(CpuAwqPack *p) {
    if (!p) return;
    free(p->data);
    free(p);
}

/* ---- activations as digit planes ----------------------------------------- */

typedef struct {
    int32_t *digits;   /* [rows][G][L][6]: line l's words for digit d and half h
                        * at 2 d + h; byte j of a word = input k0 + 4 h + j */
    float *inv;        /* [rows][G]: 2^(e - 22), the value of one unit of xi */
    float *sum;        /* [rows][G]: sum of xi over the group */
} AqX;

static void aqx_free(AqX *X) {
    free(X->digits);
    free(X->inv);
    free(X->sum);
}

/* One group of x (group % 8 == 0) as digit words at dst (group / 8 lines
 * of 24 bytes); 1 if it holds a NaN or an Inf.  A group whose largest |x|
 * is below 2^-100 is taken as zero: its products are below 1e-30 of a
 * weight scale, far under any tolerance, and 2^(22 - e) must stay finite. */
__attribute__((target("avx512f,avx512bw")))
static int aq_digits_group(const float *xg, int group, int8_t *dst, float *inv, float *sum) {
    const __m512i expo = _mm512_set1_epi32(0x7F800000);
    __m512 mx = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (int k = 0; k < group; k += 16) {
        __m512 v = _mm512_maskz_loadu_ps(group - k >= 16 ? 0xFFFF : 0x00FF, xg + k);
        bad |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v), expo), expo);
        mx = _mm512_max_ps(mx, _mm512_abs_ps(v));
    }
    if (bad) return 1;
    int e = 0;
    frexpf(_mm512_reduce_max_ps(mx), &e);          /* max|x| < 2^e */
    if (e < -100) {
        memset(dst, 0, (size_t)group * 3);
        *inv = 0;
        *sum = 0;
        return 0;
    }
    const __m512 up = _mm512_set1_ps(ldexpf(1.0f, 22 - e));   /* exact scaling */
    const __m512i c128 = _mm512_set1_epi32(128), m255 = _mm512_set1_epi32(255);
    __m512i total = _mm512_setzero_si512();        /* int64 lanes */
    for (int k = 0; k < group; k += 16) {
        __mmask16 m = group - k >= 16 ? 0xFFFF : 0x00FF;
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, xg + k), up));
        total = _mm512_add_epi64(total, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)));
        total = _mm512_add_epi64(total, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1)));
        __m128i d[3];
        for (int i = 0; i < 2; i++) {              /* balanced digits, low first */
            __m512i di = _mm512_sub_epi32(_mm512_and_si512(_mm512_add_epi32(v, c128), m255), c128);
            d[i] = _mm512_cvtepi32_epi8(di);
            v = _mm512_srai_epi32(_mm512_sub_epi32(v, di), 8);   /* exact division */
        }
        d[2] = _mm512_cvtepi32_epi8(v);            /* |v| <= 64 */
        int8_t *line = dst + (size_t)(k / 8) * 24;
        for (int i = 0; i < 3; i++) {              /* words 2 d + h: 8 bytes per digit */
            _mm_storel_epi64((__m128i *)(line + 8 * i), d[i]);
            if (m == 0xFFFF) _mm_storeh_pd((double *)(line + 24 + 8 * i), _mm_castsi128_pd(d[i]));
        }
    }
    *inv = ldexpf(1.0f, e - 22);
    *sum = (float)_mm512_reduce_add_epi64(total);
    return 0;
}

/* Fills X for rows of x; 1 (nothing to free) if x holds a NaN or an Inf. */
static int aq_prepare_x(const CpuAwqPack *p, const float *x, int rows, AqX *X) {
    size_t ng = (size_t)rows * p->G;
    X->digits = flab_xmalloc(ng * p->L * 6 * sizeof(int32_t));
    X->inv = flab_xmalloc(ng * sizeof(float));
    X->sum = flab_xmalloc(ng * sizeof(float));
    for (size_t rg = 0; rg < ng; rg++)             /* rows x in = (rows G) x group */
        if (aq_digits_group(x + rg * p->group, p->group,
                            (int8_t *)(X->digits + rg * p->L * 6), X->inv + rg, X->sum + rg)) {
            aqx_free(X);
            return 1;
        }
    return 0;
}

/* ---- decode ---------------------------------------------------------------- */

typedef struct {
    const CpuAwqPack *p;
    const AqX *X;
    float *y;
    const float *bias;
    int rows, acc, ntask;
} DecodeCtx;

/* acc[3b + d] = the block-b codes of chunk ch times digit plane d, summed
 * over the chunk's lines (xw: the row's digit words for this group). */
__attribute__((target("avx512f,avx512bw,avx512vnni"), always_inline))
static inline void aq_group_dot(const uint8_t *ch, int L, int bits, const int32_t *xw,
                                __m512i acc[12]) {
    const __m512i m = _mm512_set1_epi8(0x0F);
    for (int i = 0; i < 12; i++) acc[i] = _mm512_setzero_si512();
    for (int l = 0; l < L; l++, ch += 64 * bits, xw += 6) {
        /* x0..x2: digits 0..2 of inputs k0..k0+3; x3..x5: of k0+4..k0+7 */
        __m512i x0 = _mm512_set1_epi32(xw[0]), x1 = _mm512_set1_epi32(xw[2]);
        __m512i x2 = _mm512_set1_epi32(xw[4]), x3 = _mm512_set1_epi32(xw[1]);
        __m512i x4 = _mm512_set1_epi32(xw[3]), x5 = _mm512_set1_epi32(xw[5]);
#pragma GCC unroll 4
        for (int b = 0; b < 4; b++) {
            __m512i lo, hi;
            if (bits == 4) {
                __m512i w = _mm512_load_si512((const void *)(ch + 64 * b));
                lo = _mm512_and_si512(w, m);
                hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), m);
            } else {
                lo = _mm512_load_si512((const void *)(ch + 128 * b));
                hi = _mm512_load_si512((const void *)(ch + 128 * b + 64));
            }
            acc[3 * b] = _mm512_dpbusd_epi32(acc[3 * b], lo, x0);
            acc[3 * b + 1] = _mm512_dpbusd_epi32(acc[3 * b + 1], lo, x1);
            acc[3 * b + 2] = _mm512_dpbusd_epi32(acc[3 * b + 2], lo, x2);
            acc[3 * b] = _mm512_dpbusd_epi32(acc[3 * b], hi, x3);
            acc[3 * b + 1] = _mm512_dpbusd_epi32(acc[3 * b + 1], hi, x4);
            acc[3 * b + 2] = _mm512_dpbusd_epi32(acc[3 * b + 2], hi, x5);
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void aq_decode_task(void *vctx, int sb, int worker) {
    (void)worker;
    const DecodeCtx *c = vctx;
    const CpuAwqPack *p = c->p;
    __m512 y[AQ_MAX_ROWS][4];
    for (int r = 0; r < c->rows; r++)
        for (int b = 0; b < 4; b++) y[r][b] = _mm512_setzero_ps();
    const __m512 k256 = _mm512_set1_ps(256.0f), k65536 = _mm512_set1_ps(65536.0f);
    for (int g = 0; g < p->G; g++) {
        const uint8_t *ch = aq_chunk(p, sb, g);
        const uint16_t *ms = aq_scales(p, ch);
        const uint8_t *mz = aq_zeros(p, ch);
        for (int r = 0; r < c->rows; r++) {
            size_t rg = (size_t)r * p->G + g;
            __m512i a[12];
            const int32_t *xw = c->X->digits + rg * p->L * 6;
            if (p->bits == 4) aq_group_dot(ch, p->L, 4, xw, a);   /* constant bits: */
            else aq_group_dot(ch, p->L, 8, xw, a);                /* two loops */
            __m512 inv = _mm512_set1_ps(c->X->inv[rg]), xsum = _mm512_set1_ps(c->X->sum[rg]);
#pragma GCC unroll 4
            for (int b = 0; b < 4; b++) {
                __m512 s = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(ms + 16 * b)));
                __m512 z = _mm512_cvtepi32_ps(
                    _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(mz + 16 * b))));
                __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[3 * b + 1]), k256,
                                           _mm512_cvtepi32_ps(a[3 * b]));
                t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[3 * b + 2]), k65536, t);
                t = _mm512_fnmadd_ps(z, xsum, t);          /* sum (q - z) xi */
                y[r][b] = _mm512_fmadd_ps(_mm512_mul_ps(s, inv), t, y[r][b]);
            }
        }
    }
    for (int r = 0; r < c->rows; r++)
        for (int b = 0; b < 4; b++) {
            int o = AQ_SB * sb + 16 * b, n = p->out - o;
            if (n <= 0) break;
            __mmask16 mk = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
            float *dst = c->y + (size_t)r * p->out + o;
            __m512 v = y[r][b];
            if (c->bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, c->bias + o));
            if (c->acc) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, dst));
            _mm512_mask_storeu_ps(dst, mk, v);
        }
}

/* Task `task` of c->ntask: a contiguous run of superblocks, so that each
 * thread streams long runs of memory (one task per superblock, handed out
 * dynamically, interleaves the threads' reads: measured 20 vs 26 GB/s). */
static void aq_decode_range(void *vctx, int task, int worker) {
    const DecodeCtx *c = vctx;
    int n = c->p->nsb, a = (int)((long)n * task / c->ntask), b = (int)((long)n * (task + 1) / c->ntask);
    for (int sb = a; sb < b; sb++) aq_decode_task(vctx, sb, worker);
}

/* ---- prefill ----------------------------------------------------------------- */

typedef struct {
    const CpuAwqPack *p;
    const float *x;
    float *y;
    const float *bias;
    int rows, acc, per;   /* per: superblocks per task */
    CpuImpl *impl;
} GemmCtx;

/* tile[k * 64 nsb + 64 s + i] = W[64 (sb0 + s) + i, k] for all k. */
__attribute__((target("avx512f,avx512bw")))
static void aq_dequant_tile(const CpuAwqPack *p, int sb0, int nsb, float *tile) {
    size_t ld = (size_t)AQ_SB * nsb;
    const __m512i mask = _mm512_set1_epi32(p->bits == 4 ? 15 : 255);
    for (int s = 0; s < nsb; s++)
        for (int g = 0; g < p->G; g++) {
            const uint8_t *ch = aq_chunk(p, sb0 + s, g);
            const uint16_t *ms = aq_scales(p, ch);
            const uint8_t *mz = aq_zeros(p, ch);
            for (int b = 0; b < 4; b++) {
                __m512 sc = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(ms + 16 * b)));
                __m512 z = _mm512_cvtepi32_ps(
                    _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(mz + 16 * b))));
                for (int l = 0; l < p->L; l++) {
                    const uint8_t *blk = ch + (size_t)l * p->line + (size_t)b * p->block;
                    __m512i w0 = _mm512_load_si512((const void *)blk);
                    __m512i w1 = p->bits == 4 ? w0 : _mm512_load_si512((const void *)(blk + 64));
                    float *dst = tile + (size_t)(g * p->group + 8 * l) * ld + AQ_SB * s + 16 * b;
                    for (int j = 0; j < 8; j++) {   /* input k0 + j */
                        int sh = p->bits == 4 ? 8 * (j % 4) + 4 * (j / 4) : 8 * (j % 4);
                        __m512i q = _mm512_and_si512(_mm512_srl_epi32(j < 4 ? w0 : w1,
                                                                      _mm_cvtsi32_si128(sh)), mask);
                        _mm512_storeu_ps(dst + (size_t)j * ld,
                                         _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(q), z), sc));
                    }
                }
            }
        }
}

static void aq_gemm_task(void *vctx, int task, int worker) {
    const GemmCtx *c = vctx;
    const CpuAwqPack *p = c->p;
    int sb0 = task * c->per, nsb = sb0 + c->per <= p->nsb ? c->per : p->nsb - sb0;
    int o0 = AQ_SB * sb0, n = p->out - o0 < AQ_SB * nsb ? p->out - o0 : AQ_SB * nsb;
    float *tile = c->impl->scratch[worker];
    aq_dequant_tile(p, sb0, nsb, tile);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->rows, n, p->in, 1.0f, c->x, p->in,
                tile, AQ_SB * nsb, c->acc ? 1.0f : 0.0f, c->y + o0, p->out);
    if (c->bias)
        for (int r = 0; r < c->rows; r++)
            for (int j = 0; j < n; j++) c->y[(size_t)r * p->out + o0 + j] += c->bias[o0 + j];
}

/* Superblocks per prefill task: <= AQ_GEMM_SB, spread evenly over the
 * threads (as cpu_qmatmul.c's qgemm_block). */
static int aq_gemm_per(int nsb, int threads) {
    int rounds = (nsb + threads * AQ_GEMM_SB - 1) / (threads * AQ_GEMM_SB);
    int tasks = threads * rounds;
    return (nsb + tasks - 1) / tasks;
}

/* ---- the op ------------------------------------------------------------------ */

/* Decode of n packs over the same x (q/k/v, gate/up): the digit planes are
 * made once and one pool run covers every pack's tasks (one barrier). */
typedef struct {
    DecodeCtx d[FLAB_MATMUL_MULTI_MAX];
    int first[FLAB_MATMUL_MULTI_MAX + 1];   /* pack i owns tasks [first[i], first[i+1]) */
} MultiDecode;

static void aq_multi_task(void *vctx, int task, int worker) {
    const MultiDecode *m = vctx;
    int i = 0;
    while (task >= m->first[i + 1]) i++;
    aq_decode_range((void *)&m->d[i], task - m->first[i], worker);
}

int cpu_awq_decode_multi(CpuImpl *impl, int n, const CpuAwqPack *const *p, float *const *y,
                         const float *x, const float *const *bias, int rows, int accumulate) {
    if (n < 1 || n > FLAB_MATMUL_MULTI_MAX || rows > AQ_MAX_ROWS) return 1;
    for (int i = 1; i < n; i++)
        if (p[i]->in != p[0]->in || p[i]->group != p[0]->group) return 1;
    AqX X;
    if (aq_prepare_x(p[0], x, rows, &X)) return 1;
    MultiDecode m;
    m.first[0] = 0;
    for (int i = 0; i < n; i++) {
        int ntask = AQ_TASKS_PER_THREAD * impl->n_threads;
        ntask = ntask < p[i]->nsb ? ntask : p[i]->nsb;
        m.d[i] = (DecodeCtx){p[i], &X, y[i], bias ? bias[i] : NULL, rows, accumulate, ntask};
        m.first[i + 1] = m.first[i] + ntask;
    }
    cpu_pool_run(impl->pool, m.first[n], aq_multi_task, &m);
    aqx_free(&X);
    return 0;
}

int cpu_awq_matmul(CpuImpl *impl, const CpuAwqPack *p, float *y, const float *x,
                   const float *bias, int rows, int accumulate) {
    if (rows <= AQ_MAX_ROWS) return cpu_awq_decode_multi(impl, 1, &p, &y, x, &bias, rows, accumulate);
    int per = aq_gemm_per(p->nsb, impl->n_threads);
    cpu_scratch_reserve(impl, (size_t)p->in * AQ_SB * per);
    GemmCtx c = {p, x, y, bias, rows, accumulate, per, impl};
    cpu_pool_run(impl->pool, (p->nsb + per - 1) / per, aq_gemm_task, &c);
    return 0;
}
