/* kernels/cuda/cuda_attention.cu: causal GQA attention against the KV cache
 * (ops.h `attention`), for prefill (many rows per sequence) and decode (one).
 *
 * For query row r (slot s, position p) and head h, kv head g = h / G with
 * G = heads / kv_heads:  out[r, h] = softmax_t(q . K[s, t, g] / sqrt(hd)) V,
 * t = 0..p.  fp32 throughout (q, cache, accumulators).
 *
 * Scheme (flash-decoding style, kept simple):
 *   - grid (rows, kv_heads, n_split): one block per query row and kv head;
 *     its warps take the G query heads that share that kv head, so every K/V
 *     tile loaded into shared memory serves G heads.
 *   - The block walks t in tiles of TILE_T = 32 timesteps: lane t of a warp
 *     computes one score with float4 shared-memory loads (conflict-free
 *     thanks to the padded K tile), the warp does an online-softmax update
 *     (running max m, running sum l), then each lane accumulates the
 *     probability-weighted V for its float4 chunks of the head.
 *   - When there are few rows (decode) the range 0..p is split into n_split
 *     chunks handled by different blocks; each writes its unnormalised
 *     (acc, m, l) and a combine kernel merges them:
 *       M = max m_s,  L = sum l_s e^(m_s - M),  out = sum acc_s e^(m_s - M) / L.
 * Limits: head_dim a multiple of 4, <= MAX_HEAD_DIM (256). */
#include "kernels/cuda/cuda_internal.h"
#include "kernels/cuda/cuda_reduce.h"

#include <math.h>

#define TILE_T 32
#define MAX_HEAD_DIM 256
#define MAX_C4 (MAX_HEAD_DIM / 4 / 32) /* float4 chunks of a head per lane */
#define MAX_WARPS 8
#define MAX_SPLIT 32
#define MIN_SPLIT_LEN 64 /* fewer timesteps per split are not worth a block */

typedef struct {
    const float *q;
    const float *ck, *cv;
    const int32_t *slot, *pos;
    float *out;        /* n_split == 1: the result */
    float *partial;    /* n_split > 1: [rows, heads, n_split, head_dim + 2] */
    int heads, kv_heads, head_dim, max_len, n_split;
} AttnArgs;

static size_t attn_smem_bytes(int head_dim, int warps) {
    return sizeof(float) * ((size_t)TILE_T * (head_dim + 4) + (size_t)TILE_T * head_dim +
                            (size_t)warps * head_dim + (size_t)warps * TILE_T);
}

/* Loads timesteps [t0, t0 + nt) of kv head g of slot s into the tiles, as
 * float4 (head_dim % 4 == 0; cache rows start 16-byte aligned). */
__device__ void load_kv_tile(const AttnArgs &a, int s, int g, int t0, int nt,
                             float *Ks, float *Vs) {
    int hd = a.head_dim, h4 = hd / 4;
    for (int i = threadIdx.x; i < nt * h4; i += blockDim.x) {
        int tt = i / h4, c = i % h4;
        size_t at = (((size_t)s * a.max_len + t0 + tt) * a.kv_heads + g) * hd;
        float4 k = ((const float4 *)(a.ck + at))[c], v = ((const float4 *)(a.cv + at))[c];
        ((float4 *)(Ks + tt * (hd + 4)))[c] = k;
        ((float4 *)(Vs + tt * hd))[c] = v;
    }
}

/* q . K[lane] over head_dim, both in shared memory, 4 floats per load. */
__device__ __forceinline__ float tile_score(const float *qs, const float *krow, int h4) {
    const float4 *q4 = (const float4 *)qs, *k4 = (const float4 *)krow;
    float s = 0.f;
    for (int c = 0; c < h4; c++) {
        float4 q = q4[c], k = k4[c];
        s += q.x * k.x + q.y * k.y + q.z * k.z + q.w * k.w;
    }
    return s;
}

__global__ void attention_kernel(AttnArgs a) {
    extern __shared__ float smem[];
    int hd = a.head_dim, h4 = hd / 4, G = a.heads / a.kv_heads;
    int nwarps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    /* K rows padded to hd + 4 floats: the float4 loads of 8 lanes hit 32
     * distinct banks. */
    float *Ks = smem, *Vs = Ks + TILE_T * (hd + 4);
    float *qs = Vs + TILE_T * hd + warp * hd, *ps = Vs + TILE_T * hd + nwarps * hd + warp * TILE_T;
    int r = blockIdx.x, g = blockIdx.y, split = blockIdx.z;
    int s = a.slot[r], len = a.pos[r] + 1;
    int chunk = (len + a.n_split - 1) / a.n_split;
    int t0 = split * chunk, t1 = min(len, t0 + chunk);
    float scale = 1.f / sqrtf((float)hd);
    for (int round = 0; round * nwarps < G; round++) {
        int hh = round * nwarps + warp, h = g * G + hh;
        bool active = hh < G;
        if (active)
            for (int c = lane; c < h4; c += 32) {
                float4 v = ((const float4 *)(a.q + ((size_t)r * a.heads + h) * hd))[c];
                v.x *= scale; v.y *= scale; v.z *= scale; v.w *= scale;
                ((float4 *)qs)[c] = v;
            }
        /* lane owns float4 chunks c = lane + 32 j of the output head */
        float m = -INFINITY, l = 0.f;
        float4 acc[MAX_C4];
#pragma unroll
        for (int j = 0; j < MAX_C4; j++) acc[j] = make_float4(0.f, 0.f, 0.f, 0.f);
        for (int tile = t0; tile < t1; tile += TILE_T) {
            int nt = min(TILE_T, t1 - tile);
            __syncthreads(); /* everyone is done with the previous tile (and qs is written) */
            load_kv_tile(a, s, g, tile, nt, Ks, Vs);
            __syncthreads();
            if (!active) continue;
            float sc = lane < nt ? tile_score(qs, Ks + lane * (hd + 4), h4) : -INFINITY;
            float m_new = fmaxf(m, warp_max(sc)); /* finite: nt >= 1 */
            float pe = lane < nt ? expf(sc - m_new) : 0.f;
            float corr = expf(m - m_new);         /* 0 on the first tile */
            l = l * corr + warp_sum(pe);
            ps[lane] = pe;
            __syncwarp();
#pragma unroll
            for (int j = 0; j < MAX_C4; j++) {
                acc[j].x *= corr; acc[j].y *= corr; acc[j].z *= corr; acc[j].w *= corr;
            }
            for (int tt = 0; tt < nt; tt++) {
                float pv = ps[tt];
                const float4 *v4 = (const float4 *)(Vs + tt * hd);
#pragma unroll
                for (int j = 0; j < MAX_C4; j++)
                    if (lane + 32 * j < h4) {
                        float4 v = v4[lane + 32 * j];
                        acc[j].x += pv * v.x; acc[j].y += pv * v.y;
                        acc[j].z += pv * v.z; acc[j].w += pv * v.w;
                    }
            }
            __syncwarp(); /* ps is rewritten by the next tile */
            m = m_new;
        }
        if (!active) continue;
        size_t rh = (size_t)r * a.heads + h;
        /* n_split == 1: the normalised result (l >= 1: the max term is e^0);
         * else the unnormalised partial with its m and l (empty split: -inf, 0). */
        float inv = a.n_split == 1 ? 1.f / l : 1.f;
        float *dst = a.n_split == 1 ? a.out + rh * hd
                                    : a.partial + (rh * a.n_split + split) * (hd + 2);
#pragma unroll
        for (int j = 0; j < MAX_C4; j++)
            if (lane + 32 * j < h4) {
                float *d4 = dst + 4 * (lane + 32 * j);
                d4[0] = acc[j].x * inv; d4[1] = acc[j].y * inv;
                d4[2] = acc[j].z * inv; d4[3] = acc[j].w * inv;
            }
        if (a.n_split > 1 && lane == 0) { dst[hd] = m; dst[hd + 1] = l; }
    }
}

/* One block of 32..256 threads per (row, head): merges the n_split partials. */
__global__ void attention_combine_kernel(float *out, const float *partial,
                                         int head_dim, int n_split) {
    size_t rh = blockIdx.x;
    const float *pp = partial + rh * n_split * (head_dim + 2);
    float M = -INFINITY;
    for (int k = 0; k < n_split; k++) M = fmaxf(M, pp[k * (head_dim + 2) + head_dim]);
    float L = 0.f;
    for (int k = 0; k < n_split; k++) {
        const float *pk = pp + k * (head_dim + 2);
        L += pk[head_dim + 1] * expf(pk[head_dim] - M); /* empty: 0 * e^-inf = 0 */
    }
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.f;
        for (int k = 0; k < n_split; k++) {
            const float *pk = pp + k * (head_dim + 2);
            if (pk[head_dim + 1] > 0.f) acc += pk[d] * expf(pk[head_dim] - M);
        }
        out[rh * head_dim + d] = acc / L;
    }
}

int cuda_attention_init(void) {
    return cuda_check(cudaFuncSetAttribute(attention_kernel,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int)attn_smem_bytes(MAX_HEAD_DIM, MAX_WARPS)),
                      "attention: shared memory limit");
}

/* Enough blocks to fill the GPU twice over, never splits shorter than
 * MIN_SPLIT_LEN timesteps. */
static int choose_split(const CudaState *cs, const FlabRows *rows, int kv_heads) {
    int max_len_seen = 0;
    for (int r = 0; r < rows->n; r++)
        if (rows->pos[r] + 1 > max_len_seen) max_len_seen = rows->pos[r] + 1;
    long blocks = (long)rows->n * kv_heads, want = 2L * cs->sm_count;
    if (blocks >= want) return 1;
    int n = (int)((want + blocks - 1) / blocks);
    int by_len = max_len_seen / MIN_SPLIT_LEN;
    if (n > by_len) n = by_len;
    if (n > MAX_SPLIT) n = MAX_SPLIT;
    return n < 1 ? 1 : n;
}

static int check_attention_args(const FlabBuf *out, const FlabBuf *q,
                                const FlabBuf *ck, const FlabBuf *cv,
                                const FlabRows *rows, int heads, int kv_heads,
                                int head_dim, int max_len) {
    if (!rows || rows->n < 0 || heads <= 0 || kv_heads <= 0 || heads % kv_heads || max_len <= 0)
        return flab_fail("cuda: attention: bad shape (heads %d, kv_heads %d, max_len %d)",
                         heads, kv_heads, max_len);
    if (head_dim <= 0 || head_dim > MAX_HEAD_DIM || head_dim % 4)
        return flab_fail("cuda: attention: head_dim %d is not a multiple of 4 in [4, %d]",
                         head_dim, MAX_HEAD_DIM);
    size_t qn = (size_t)rows->n * heads * head_dim;
    if (cuda_check_buf(q, qn, "attention", "q") || cuda_check_buf(out, qn, "attention", "out") ||
        cuda_check_buf(ck, (size_t)max_len * kv_heads * head_dim, "attention", "cache_k") ||
        cuda_check_buf(cv, (size_t)max_len * kv_heads * head_dim, "attention", "cache_v"))
        return -1;
    if (out == q) return flab_fail("cuda: attention: out aliases q");
    return 0;
}

int cuda_op_attention(FlabBackend *be, FlabBuf *out, const FlabBuf *q,
                      const FlabBuf *cache_k, const FlabBuf *cache_v,
                      const FlabRows *rows, int heads, int kv_heads,
                      int head_dim, int max_len) {
    if (check_attention_args(out, q, cache_k, cache_v, rows, heads, kv_heads, head_dim,
                             max_len))
        return -1;
    if (rows->n == 0) return 0;
    CudaState *cs = cuda_state(be);
    size_t per_slot = (size_t)max_len * kv_heads * head_dim;
    size_t n_slots = (cache_k->n < cache_v->n ? cache_k->n : cache_v->n) / per_slot;
    int n_split = choose_split(cs, rows, kv_heads);
    if (n_split > 1 &&
        cuda_scratch_reserve(cs, &cs->attn, sizeof(float) * (size_t)rows->n * heads *
                                                n_split * (head_dim + 2),
                             "attention scratch"))
        return -1;
    int32_t *d = cuda_upload_rows(cs, rows, (int)(n_slots > INT32_MAX ? INT32_MAX : n_slots),
                                  max_len, "attention");
    if (!d) return -1;
    AttnArgs a = {q->d, cache_k->d, cache_v->d, d, d + rows->n, out->d,
                  (float *)cs->attn.d, heads, kv_heads, head_dim, max_len, n_split};
    int G = heads / kv_heads, warps = G < MAX_WARPS ? G : MAX_WARPS;
    dim3 grid((unsigned)rows->n, (unsigned)kv_heads, (unsigned)n_split);
    attention_kernel<<<grid, 32 * warps, attn_smem_bytes(head_dim, warps), cs->stream>>>(a);
    if (cuda_check_launch("attention")) return -1;
    if (n_split == 1) return 0;
    int threads = head_dim < 32 ? 32 : (head_dim > 256 ? 256 : (head_dim + 31) / 32 * 32);
    attention_combine_kernel<<<(unsigned)(rows->n * heads), threads, 0, cs->stream>>>(
        out->d, (const float *)cs->attn.d, head_dim, n_split);
    return cuda_check_launch("attention (combine)");
}
