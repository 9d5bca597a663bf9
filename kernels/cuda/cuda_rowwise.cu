/* kernels/cuda/cuda_rowwise.cu: reductions along a row of logits:
 * softmax, log-softmax, fused KL(P || Q) from two logit rows, cross-entropy,
 * argmax with top-1/top-2 margin.  One block per row.
 *
 * Numerics: max-subtracted exponentials in fp32; log-sum-exp sums in fp32;
 * the KL and cross-entropy row results accumulate in fp64 (the pruning
 * objective is a small difference of large terms).  KL(P || P) is exactly 0:
 * both log-sum-exps come from identical code on identical data.
 *
 * In-place softmax / log-softmax is safe: the writing pass touches, in each
 * thread, only elements that thread itself read, after the reductions. */
#include "kernels/cuda/cuda_internal.h"
#include "kernels/cuda/cuda_reduce.h"

#include <limits.h>

#define ROW_THREADS 512

/* Log-sum-exp of one row, returned to every thread of the block. */
__device__ float row_lse(const float *x, int cols, float *red, float *max_out) {
    float mx = -INFINITY;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) mx = fmaxf(mx, x[c]);
    mx = block_max(mx, red);
    float s = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += expf(x[c] - mx);
    s = block_sum(s, red);
    if (max_out) *max_out = mx;
    return mx + logf(s);
}

/* ==== softmax / log-softmax ================================================ */

__global__ void softmax_kernel(float *out, const float *x, int cols, int log_form) {
    __shared__ float red[32];
    const float *xr = x + (size_t)blockIdx.x * cols;
    float *orow = out + (size_t)blockIdx.x * cols;
    float lse = row_lse(xr, cols, red, NULL);
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        orow[c] = log_form ? xr[c] - lse : expf(xr[c] - lse);
}

static int launch_softmax(FlabBackend *be, FlabBuf *out, const FlabBuf *x, int rows,
                          int cols, int log_form, const char *op) {
    if (rows < 0 || cols <= 0) return flab_fail("cuda: %s: bad shape", op);
    size_t n = (size_t)rows * cols;
    if (cuda_check_buf(x, n, op, "x") || cuda_check_buf(out, n, op, "out")) return -1;
    if (rows == 0) return 0;
    CudaState *cs = cuda_state(be);
    softmax_kernel<<<rows, ROW_THREADS, 0, cs->stream>>>(out->d, x->d, cols, log_form);
    return cuda_check_launch(op);
}

int cuda_op_softmax(FlabBackend *be, FlabBuf *out, const FlabBuf *x, int rows, int cols) {
    return launch_softmax(be, out, x, rows, cols, 0, "softmax");
}

int cuda_op_log_softmax(FlabBackend *be, FlabBuf *out, const FlabBuf *x, int rows,
                        int cols) {
    return launch_softmax(be, out, x, rows, cols, 1, "log_softmax");
}

/* Copies `bytes` of per-row results from the result scratch to the host and
 * waits for them. */
static int fetch_results(CudaState *cs, void *host, size_t bytes, const char *op) {
    if (cuda_check(cudaMemcpyAsync(host, cs->result.d, bytes, cudaMemcpyDeviceToHost,
                                   cs->stream), op))
        return -1;
    return cuda_check(cudaStreamSynchronize(cs->stream), op);
}

/* ==== KL(P || Q) ============================================================ */

__global__ void kl_kernel(double *kl, const float *lp, const float *lq, int cols) {
    __shared__ float red[32];
    __shared__ double redd[32];
    const float *p = lp + (size_t)blockIdx.x * cols, *q = lq + (size_t)blockIdx.x * cols;
    float lse_p = row_lse(p, cols, red, NULL);
    float lse_q = row_lse(q, cols, red, NULL);
    double acc = 0.0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float logp = p[c] - lse_p, logq = q[c] - lse_q;
        acc += (double)expf(logp) * (double)(logp - logq);
    }
    acc = block_sum(acc, redd);
    if (threadIdx.x == 0) kl[blockIdx.x] = acc;
}

int cuda_op_kl_rows(FlabBackend *be, double *kl, const FlabBuf *logits_p,
                    const FlabBuf *logits_q, int rows, int cols) {
    if (rows < 0 || cols <= 0) return flab_fail("cuda: kl_rows: bad shape");
    size_t n = (size_t)rows * cols;
    if (cuda_check_buf(logits_p, n, "kl_rows", "logits_p") ||
        cuda_check_buf(logits_q, n, "kl_rows", "logits_q"))
        return -1;
    if (rows == 0) return 0;
    CudaState *cs = cuda_state(be);
    if (cuda_scratch_reserve(cs, &cs->result, (size_t)rows * sizeof(double), "kl_rows"))
        return -1;
    kl_kernel<<<rows, ROW_THREADS, 0, cs->stream>>>((double *)cs->result.d, logits_p->d,
                                                    logits_q->d, cols);
    if (cuda_check_launch("kl_rows")) return -1;
    return fetch_results(cs, kl, (size_t)rows * sizeof(double), "kl_rows");
}

/* ==== cross-entropy ========================================================= */

__global__ void cross_entropy_kernel(double *ce, const float *logits,
                                     const int32_t *targets, int cols) {
    __shared__ float red[32];
    const float *x = logits + (size_t)blockIdx.x * cols;
    int t = targets[blockIdx.x];
    float lse = row_lse(x, cols, red, NULL); /* every thread: it has barriers */
    if (threadIdx.x == 0) ce[blockIdx.x] = t < 0 ? 0.0 : (double)lse - (double)x[t];
}

int cuda_op_cross_entropy(FlabBackend *be, double *ce, const FlabBuf *logits,
                          const int32_t *targets, int rows, int cols) {
    if (rows < 0 || cols <= 0) return flab_fail("cuda: cross_entropy: bad shape");
    if (cuda_check_buf(logits, (size_t)rows * cols, "cross_entropy", "logits")) return -1;
    for (int r = 0; r < rows; r++)
        if (targets[r] < -1 || targets[r] >= cols)
            return flab_fail("cuda: cross_entropy: target %d (row %d) outside [0, %d) "
                             "and not -1", (int)targets[r], r, cols);
    if (rows == 0) return 0;
    CudaState *cs = cuda_state(be);
    if (cuda_scratch_reserve(cs, &cs->result, (size_t)rows * sizeof(double),
                             "cross_entropy"))
        return -1;
    int32_t *d_t = cuda_upload_i32(cs, &targets, &rows, 1, "cross_entropy targets");
    if (!d_t) return -1;
    cross_entropy_kernel<<<rows, ROW_THREADS, 0, cs->stream>>>((double *)cs->result.d,
                                                               logits->d, d_t, cols);
    if (cuda_check_launch("cross_entropy")) return -1;
    return fetch_results(cs, ce, (size_t)rows * sizeof(double), "cross_entropy");
}

/* ==== argmax + margin ======================================================= */

/* Best value with its (lowest) index, and the second-best value. */
struct Top2 {
    float v1;
    int i1;
    float v2;
};

__device__ __forceinline__ Top2 top2_merge(Top2 a, Top2 b) {
    if (b.v1 > a.v1 || (b.v1 == a.v1 && b.i1 < a.i1)) {
        Top2 t = a;
        a = b;
        b = t;
    }
    Top2 r = {a.v1, a.i1, fmaxf(a.v2, b.v1)}; /* b.v2 <= b.v1 */
    return r;
}

__device__ Top2 top2_warp(Top2 t) {
    for (int off = 16; off > 0; off /= 2) {
        Top2 o = {__shfl_xor_sync(0xffffffffu, t.v1, off),
                  __shfl_xor_sync(0xffffffffu, t.i1, off),
                  __shfl_xor_sync(0xffffffffu, t.v2, off)};
        t = top2_merge(t, o);
    }
    return t;
}

/* out: [rows] int32 indices followed by [rows] float margins. */
__global__ void argmax_kernel(int32_t *idx, float *margin, const float *x, int cols) {
    __shared__ Top2 part[32];
    const float *xr = x + (size_t)blockIdx.x * cols;
    Top2 t = {-INFINITY, INT_MAX, -INFINITY};
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        Top2 e = {xr[c], c, -INFINITY};
        t = top2_merge(t, e);
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
    t = top2_warp(t);
    if (lane == 0) part[warp] = t;
    __syncthreads();
    if (warp == 0) {
        Top2 none = {-INFINITY, INT_MAX, -INFINITY};
        t = top2_warp(lane < nw ? part[lane] : none);
        if (lane == 0) {
            idx[blockIdx.x] = t.i1 == INT_MAX ? 0 : t.i1; /* all NaN: say 0 */
            margin[blockIdx.x] = t.v1 - t.v2;
        }
    }
}

int cuda_op_argmax(FlabBackend *be, int32_t *out, float *margin, const FlabBuf *x,
                   int rows, int cols) {
    if (rows < 0 || cols <= 0) return flab_fail("cuda: argmax: bad shape");
    if (cuda_check_buf(x, (size_t)rows * cols, "argmax", "x")) return -1;
    if (rows == 0) return 0;
    CudaState *cs = cuda_state(be);
    if (cuda_scratch_reserve(cs, &cs->result, (size_t)rows * 8, "argmax")) return -1;
    int32_t *d_idx = (int32_t *)cs->result.d;
    float *d_margin = (float *)(d_idx + rows);
    argmax_kernel<<<rows, ROW_THREADS, 0, cs->stream>>>(d_idx, d_margin, x->d, cols);
    if (cuda_check_launch("argmax")) return -1;
    if (cuda_check(cudaMemcpyAsync(out, d_idx, (size_t)rows * 4, cudaMemcpyDeviceToHost,
                                   cs->stream), "argmax"))
        return -1;
    if (margin && cuda_check(cudaMemcpyAsync(margin, d_margin, (size_t)rows * 4,
                                             cudaMemcpyDeviceToHost, cs->stream),
                             "argmax"))
        return -1;
    return cuda_check(cudaStreamSynchronize(cs->stream), "argmax");
}
