/* kernels/ops.h: the op table.  One small set of ops that every backend
 * (kernels/cpu: fp32 + OpenBLAS; kernels/cuda: bf16 storage, fp32 accumulate,
 * cuBLAS) implements; the model code (model/forward.c ...) only calls these
 * and cannot tell the backends apart.
 *
 * ---- Objects -------------------------------------------------------------
 *  FlabBackend  a vtable + private state (thread pool, cuBLAS handle, stream).
 *  FlabBuf      an opaque ACTIVATION buffer of `n` logical float elements,
 *               allocated by the backend.  The backend chooses the storage
 *               (cpu: float32; cuda: float32 or bf16, its choice, per buffer
 *               kind is fine) -- the host only sees float32 through upload /
 *               download.  A buffer is always zero-filled by alloc.
 *  FlabWeight   an opaque read-only WEIGHT tensor made once from checkpoint
 *               bytes (bf16 / f16 / f32, little-endian, row-major, usually a
 *               pointer into the safetensors mmap; the backend may keep the
 *               pointer (cpu) or copy (cuda: to device bf16), so the caller
 *               keeps the mmap alive until the weight is freed).  1-D weights
 *               (norm gains, biases) and 2-D weights ([out, in] as in HF
 *               nn.Linear, or the [vocab, hidden] embedding) both use it.
 *
 * ---- Layout conventions (every op) ---------------------------------------
 *  All 2-D activations are row-major and dense: element (r, c) of a
 *  [rows, cols] buffer is at logical index r * cols + c; an op touches the
 *  first rows*cols elements only (buffers may be allocated larger, for the
 *  largest batch, and reused for smaller ones).  No strides, no views.
 *  "Rows" are tokens.  A batch of variable-length sequences is PACKED: rows of
 *  all sequences are concatenated (no padding); each row carries, in the host
 *  FlabRows descriptor, the KV-cache slot of its sequence and its position in
 *  that sequence (also its RoPE position).
 *  Per-head layout of q / k / v / attention output rows: [heads, head_dim]
 *  (head-major, exactly what q_proj/k_proj/v_proj produce in HF).
 *  KV cache (one K and one V FlabBuf per layer, allocated with
 *  n = n_slots * max_len * kv_heads * head_dim): element (slot, t, h, d) at
 *  ((slot * max_len + t) * kv_heads + h) * head_dim + d.
 *  Host-side arrays (ids, positions, slots, targets, outputs) are ordinary
 *  host memory; the backend copies what it needs before the call returns, so
 *  the caller may reuse them immediately.
 *
 * ---- Numerics ------------------------------------------------------------
 *  Accumulations (dot products, RMS, softmax sums) are in at least fp32; KL
 *  and cross-entropy row sums in fp64 on the CPU (CUDA: fp32 is acceptable).
 *  Reference: kernels/ref_ops.c implements every op naively in float64
 *  accumulation on host float32 arrays; tests compare each backend op to it:
 *  cpu within 1e-5 relative to the output's scale, cuda (bf16 storage)
 *  within 2e-2 relative (documented in the CUDA test).
 *
 * ---- Errors and ordering -------------------------------------------------
 *  Every op returns 0, or -1 after flab_fail("...op name: why").  Ops on one
 *  backend execute in call order (a CUDA stream); download_f32 and every op
 *  that writes host memory (kl_rows, cross_entropy, argmax) synchronise.
 *  Ops may not alias `out` with an input unless the op says "in place".
 *
 * ---- What is NOT here on purpose ----------------------------------------
 *  Layer subsets (layer removal) and starting from a captured hidden state
 *  are done by the model (it loops over a layer list; capture = download of
 *  the residual, restart = upload).  FFN neuron subsets are done with
 *  mul_cols (zero the removed neurons of silu(gate)*up before down_proj):
 *  mathematically identical to removing the rows/columns, no weight copies. */
#ifndef FLAB_KERNELS_OPS_H
#define FLAB_KERNELS_OPS_H
#include "model/dtype.h"
#include <stddef.h>
#include <stdint.h>

typedef struct FlabBuf FlabBuf;
typedef struct FlabWeight FlabWeight;
typedef struct FlabBackend FlabBackend;

/* ---- Quantized Linear weights (docs/QUANTIZATION_KERNELS.md) --------------
 * A weight-only quantized W [out, in] as the checkpoint stores it; the
 * backend keeps the pointers (cpu) or copies the bytes (cuda), as for
 * upload_weight.  Dequantised value of W[o, k]:
 *  FLAB_QUANT_AWQ (AutoAWQ GEMM, bits 4 or 8): P = 32 / bits values per int32;
 *    qweight int32 [in, out/P], qzeros int32 [in/group, out/P], scales f16
 *    [in/group, out]; g = k / group; the value of output o = c*P + j sits in
 *    bits [s*bits, (s+1)*bits) of word c, with s = j's slot: 4-bit uses
 *    AutoAWQ's interleave (slot of j is AWQ_SLOT = {0,4,1,5,2,6,3,7}[j],
 *    i.e. slot s holds j = {0,2,4,6,1,3,5,7}[s]), 8-bit the natural order
 *    (slot = j).  W[o, k] = (q[k, o] - z[g, o]) * s[g, o].  in % group == 0
 *    and out % P == 0.
 *  FLAB_QUANT_FP8 (vLLM fp8): weight float8_e4m3fn [out, in]; scales f32
 *    (or bf16/f16) with n_scales == 1 (per tensor) or out (per channel):
 *    W[o, k] = e4m3(weight[o, k]) * scale[n_scales == 1 ? 0 : o]. */
typedef enum { FLAB_QUANT_AWQ = 1, FLAB_QUANT_FP8 = 2 } FlabQuantKind;

typedef struct {
    FlabQuantKind kind;
    int64_t out, in;
    int bits;               /* AWQ: 4 or 8 */
    int group;              /* AWQ: group_size (input channels per scale) */
    const void *qweight;    /* AWQ: int32 [in, out/P]; FP8: uint8 [out, in] */
    const void *qzeros;     /* AWQ: int32 [in/group, out/P]; FP8: NULL */
    const void *scales;     /* AWQ: f16 [in/group, out]; FP8: see above */
    FlabDType scales_dtype; /* AWQ: FLAB_F16; FP8: F32, BF16 or F16 */
    int64_t n_scales;       /* FP8: 1 or out */
    int file_mapped;        /* 1: qweight lies in a read-only file mapping (the
                             * safetensors mmap), so a backend that keeps its own
                             * copy may drop those pages; they reload from the
                             * file if read again.  0: caller's memory, kept. */
} FlabQuantDesc;

/* Per-row metadata of a packed batch (host memory).  slot[r]: KV-cache slot
 * (sequence) of row r, in [0, n_slots); pos[r]: its position in the sequence,
 * in [0, max_len).  Within one call, (slot, pos) pairs are distinct. */
typedef struct {
    int n;                 /* number of rows */
    const int32_t *slot;
    const int32_t *pos;
} FlabRows;

#define FLAB_MATMUL_MULTI_MAX 4     /* most weights per matmul_multi call */

struct FlabBackend {
    const char *name;      /* "cpu" | "cuda" */
    void *impl;            /* backend-private state */

    void (*destroy)(FlabBackend *be);

    /* ---- memory ---------------------------------------------------------- */
    /* n logical float elements, zero-filled; NULL + flab_fail on failure. */
    FlabBuf *(*alloc)(FlabBackend *be, size_t n);
    void (*free_buf)(FlabBackend *be, FlabBuf *b);           /* NULL ok */
    /* b[offset .. offset+n) = src[0..n) (converted to the buffer's storage). */
    int (*upload)(FlabBackend *be, FlabBuf *b, size_t offset,
                  const float *src, size_t n);
    /* dst[0..n) = b[offset .. offset+n) as float32; synchronises. */
    int (*download_f32)(FlabBackend *be, float *dst, const FlabBuf *b,
                        size_t offset, size_t n);
    /* dst[dst_off .. +n) = src[src_off .. +n) (device to device). */
    int (*copy)(FlabBackend *be, FlabBuf *dst, size_t dst_off,
                const FlabBuf *src, size_t src_off, size_t n);

    /* ---- weights --------------------------------------------------------- */
    /* ndim 1 ([n]) or 2 ([rows, cols], row-major).  `data` stays valid until
     * free_weight (cpu reads it in place).  name is for error messages. */
    FlabWeight *(*upload_weight)(FlabBackend *be, const char *name,
                                 FlabDType dtype, const void *data,
                                 int ndim, const int64_t *shape);
    void (*free_weight)(FlabBackend *be, FlabWeight *w);     /* NULL ok */
    /* A quantized 2-D Linear weight [q->out, q->in] (see FlabQuantDesc); it
     * is only valid as matmul's W.  Shapes are checked by the caller; the
     * backend checks what it supports.  NULL + flab_fail on error. */
    FlabWeight *(*upload_qweight)(FlabBackend *be, const char *name,
                                  const FlabQuantDesc *q);

    /* ---- ops ------------------------------------------------------------- */
    /* out[r, :] = table[ids[r], :]  for r < n.  table: 2-D weight [V, D];
     * out: [n, D].  ids are host int32 in [0, V) (checked: -1 otherwise). */
    int (*embedding)(FlabBackend *be, FlabBuf *out, const FlabWeight *table,
                     const int32_t *ids, int n);

    /* y[r, :] = (accumulate ? y[r, :] : 0) + x[r, :] W^T + (bias ? bias : 0)
     * x: [rows, in]; W: 2-D weight [out, in] (HF Linear layout); bias: 1-D
     * weight [out] or NULL; y: [rows, out].  accumulate=1 fuses a residual
     * add (o_proj / down_proj straight into the residual stream).  rows may be
     * 1 (decode GEMV) or many (prefill GEMM). */
    int (*matmul)(FlabBackend *be, FlabBuf *y, const FlabBuf *x,
                  const FlabWeight *W, const FlabWeight *bias, int rows,
                  int accumulate);

    /* Several weights over the same input in one parallel run: for i < n
     * (1 <= n <= FLAB_MATMUL_MULTI_MAX), y[i] = x W[i]^T + bias[i] (bias may
     * be NULL, or bias[i] NULL), exactly as n matmul calls with accumulate =
     * 0 (q/k/v, gate/up: one barrier instead of n, and the threads balance
     * over all the weights' tasks).  Optional: NULL means the caller loops
     * over matmul (cuda).  A backend may itself fall back to n matmul calls
     * for weights it does not fuse (cpu: quantized kinds, unequal in). */
    int (*matmul_multi)(FlabBackend *be, int n, FlabBuf *const *y, const FlabBuf *x,
                        const FlabWeight *const *W, const FlabWeight *const *bias,
                        int rows);

    /* out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * gain   (gain: 1-D
     * weight [dim]).  out and x may alias (in place allowed). */
    int (*rmsnorm)(FlabBackend *be, FlabBuf *out, const FlabBuf *x,
                   const FlabWeight *gain, int rows, int dim, float eps);

    /* In place RoPE, rotate_half form (HF Llama/Qwen2), on x: [rows, heads,
     * head_dim].  For row r, position p = rows->pos[r], i < head_dim/2:
     *   inv_freq_i = theta^(-2i/head_dim);  a = p * inv_freq_i (at least
     *   fp32 as HF does; cpu and the reference compute a, cos, sin in fp64)
     *   x1 = x[i], x2 = x[i + head_dim/2]
     *   x[i]            = x1 cos a - x2 sin a
     *   x[i+head_dim/2] = x2 cos a + x1 sin a                                 */
    int (*rope)(FlabBackend *be, FlabBuf *x, const FlabRows *rows,
                int heads, int head_dim, float theta);

    /* KV-cache write: for each row r, cache_k[slot[r], pos[r], :, :] =
     * k[r, :] and the same for v.  k, v: [rows, kv_heads * head_dim].
     * Cache layout in the header comment; max_len is its time dimension. */
    int (*kv_store)(FlabBackend *be, FlabBuf *cache_k, FlabBuf *cache_v,
                    const FlabBuf *k, const FlabBuf *v, const FlabRows *rows,
                    int kv_heads, int head_dim, int max_len);

    /* Causal GQA attention against the cache, one query row at a time:
     * for row r (s = slot[r], p = pos[r]) and head h (kvh = h / (heads /
     * kv_heads)):
     *   score_t = (q[r, h, :] . K[s, t, kvh, :]) / sqrt(head_dim), t = 0..p
     *   out[r, h, :] = sum_t softmax(score)_t V[s, t, kvh, :]
     * Covers prefill (all rows of a sequence; call kv_store first for all of
     * them) and decode (one row per sequence).  Cache entries t <= p of slot s
     * must have been stored by this or an earlier kv_store.  q, out:
     * [rows, heads * head_dim]; out must not alias q. */
    int (*attention)(FlabBackend *be, FlabBuf *out, const FlabBuf *q,
                     const FlabBuf *cache_k, const FlabBuf *cache_v,
                     const FlabRows *rows, int heads, int kv_heads,
                     int head_dim, int max_len);

    /* out[i] = silu(gate[i]) * up[i] = gate[i] / (1 + exp(-gate[i])) * up[i]
     * for i < n (n = rows * intermediate).  out may alias gate or up. */
    int (*swiglu)(FlabBackend *be, FlabBuf *out, const FlabBuf *gate,
                  const FlabBuf *up, size_t n);

    /* y[i] += x[i] for i < n (residual add, in place on y). */
    int (*add)(FlabBackend *be, FlabBuf *y, const FlabBuf *x, size_t n);

    /* x[r, c] *= mask[c]  (in place; x: [rows, cols]; mask: a FlabBuf of cols
     * elements, normally 0/1: the FFN keep-mask of a layer). */
    int (*mul_cols)(FlabBackend *be, FlabBuf *x, const FlabBuf *mask,
                    int rows, int cols);

    /* out[i, :] = x[idx[i], :] for i < n; x: [*, cols], out: [n, cols];
     * idx host int32 (e.g. the last row of each sequence before lm_head). */
    int (*gather_rows)(FlabBackend *be, FlabBuf *out, const FlabBuf *x,
                       const int32_t *idx, int n, int cols);

    /* Row-wise softmax / log-softmax of x: [rows, cols] into out (may alias x,
     * in place allowed).  Max-subtracted; sums in >= fp32. */
    int (*softmax)(FlabBackend *be, FlabBuf *out, const FlabBuf *x,
                   int rows, int cols);
    int (*log_softmax)(FlabBackend *be, FlabBuf *out, const FlabBuf *x,
                       int rows, int cols);

    /* Fused: kl[r] = KL(P || Q) = sum_c p_c (log p_c - log q_c) with
     * P = softmax(logits_p[r, :]), Q = softmax(logits_q[r, :]).  Both [rows,
     * cols] LOGITS (not probabilities).  kl: host double[rows].  Synchronises.
     * The pruning objective (P = original model, Q = pruned). */
    int (*kl_rows)(FlabBackend *be, double *kl, const FlabBuf *logits_p,
                   const FlabBuf *logits_q, int rows, int cols);

    /* ce[r] = -log softmax(logits[r, :])[targets[r]]; logits [rows, cols];
     * targets host int32 in [0, cols) or -1 (= ignored: ce[r] = 0).
     * ce: host double[rows].  Synchronises. */
    int (*cross_entropy)(FlabBackend *be, double *ce, const FlabBuf *logits,
                         const int32_t *targets, int rows, int cols);

    /* out[r] = argmax_c x[r, c] (host int32[rows]; ties -> lowest index;
     * also returns the top-1 minus top-2 logit gap in margin[r] when margin
     * is not NULL).  Synchronises. */
    int (*argmax)(FlabBackend *be, int32_t *out, float *margin,
                  const FlabBuf *x, int rows, int cols);
};

/* ---- Backend selection (kernels/backend.c) -------------------------------
 * device: "cpu", "cuda" or "auto" (cuda when a GPU is present and the binary
 * has CUDA, else cpu).  threads: cpu worker threads (0 = number of online
 * CPUs); ignored by cuda.  "cuda" without a usable GPU is an error that says
 * so.  Returns NULL + flab_fail on error. */
FlabBackend *flab_backend_create(const char *device, int threads);
void flab_backend_destroy(FlabBackend *be);

/* Constructors behind flab_backend_create (one per backend). */
FlabBackend *flab_cpu_backend_create(int threads);
#ifdef FLAB_HAVE_CUDA
/* kernels/cuda: returns NULL + flab_fail("cuda: ...") when no GPU/driver. */
FlabBackend *flab_cuda_backend_create(void);
/* 1 if a CUDA device can be used (driver present, >= 1 device), else 0. */
int flab_cuda_available(void);
#endif
#endif
