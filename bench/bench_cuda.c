/* bench/bench_cuda.c: GPU benchmarks of the CUDA backend on a random-weight
 * model with CodeQwen1.5-7B's shape (hidden 4096, 32 layers, 32 heads, 4 KV
 * heads, intermediate 13440, vocab 92416, bf16; Qwen2 architecture).
 *
 * Everything is measured in this one run, on this one GPU:
 *   1. HBM bandwidth: device-to-device cudaMemcpy of 1 GiB (2 x bytes moved).
 *   2. cuBLAS baseline: plain cublasGemmEx bf16 x bf16 -> bf16, fp32 compute,
 *      on exactly the GEMM shapes of one layer at the prefill token count;
 *      aggregate TFLOP/s = their FLOPs / their time.
 *   3. Prefill: transformer_forward of B x T random tokens (logits of the last
 *      rows only, as generation does); model FLOPs (all linear layers, causal
 *      attention, lm_head on the B last rows) / time, as a fraction of (2).
 *   4. Decode at batch 1: transformer_step one token at a time after a T-token
 *      prompt; tokens/s as a fraction of the bandwidth bound (1) / weight
 *      bytes read per token (transformer_weight_bytes).
 *   5. Batched greedy generation (transformer_generate, no eos): tokens/s.
 *
 * The checkpoint (14.5 GB) is written once to --dir (default
 * /tmp/flab-bench-codeqwen7b-shape) and reused while its marker matches.
 * Without a GPU the program prints "SKIP bench_cuda: ..." and exits 0.
 * Usage: bench_cuda [--dir D] [--prompt T] [--batch B] [--decode N]
 *                   [--gen-batch G] [--gen-tokens N] [--layers L] */
#include "kernels/ops.h"
#include "model/transformer.h"
#include "util/error.h"
#include <stdio.h>
#include <stdlib.h>

#ifndef FLAB_HAVE_CUDA
int main(void) {
    printf("SKIP bench_cuda: built without CUDA (FLAB_CUDA=0)\n");
    return 0;
}
#else
#include "model/dtype.h"
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ==== Options and shape ======================================================= */

typedef struct {
    const char *dir;
    int prompt, batch, decode, gen_batch, gen_tokens, layers;
} Opts;

enum { HID = 4096, INTER = 13440, HEADS = 32, KV_HEADS = 4, HEAD_DIM = 128, VOCAB = 92416 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_opts(int argc, char **argv, Opts *o) {
    *o = (Opts){"/tmp/flab-bench-codeqwen7b-shape", 512, 4, 128, 16, 64, 32};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *num = !strcmp(a, "--prompt") ? &o->prompt : !strcmp(a, "--batch") ? &o->batch
                 : !strcmp(a, "--decode") ? &o->decode : !strcmp(a, "--gen-batch") ? &o->gen_batch
                 : !strcmp(a, "--gen-tokens") ? &o->gen_tokens
                 : !strcmp(a, "--layers") ? &o->layers : NULL;
        if (!v || (!num && strcmp(a, "--dir"))) {
            fprintf(stderr, "bench_cuda: bad argument '%s'\n", a);
            return -1;
        }
        if (num) *num = atoi(v);
        else o->dir = v;
        i++;
    }
    if (o->prompt < 1 || o->batch < 1 || o->decode < 1 || o->gen_batch < 1 ||
        o->gen_tokens < 1 || o->layers < 1) {
        fprintf(stderr, "bench_cuda: sizes must be >= 1\n");
        return -1;
    }
    return 0;
}

/* ==== The random-weight checkpoint ============================================ */

typedef struct {
    char name[96];
    int ndim;
    long long shape[2];
    int kind; /* 0 random matrix, 1 ones (norm gain), 2 small random (bias) */
} TensorSpec;

static int add_spec(TensorSpec *t, int n, const char *name, int ndim, long long r,
                    long long c, int kind) {
    snprintf(t[n].name, sizeof t[n].name, "%s", name);
    t[n].ndim = ndim;
    t[n].shape[0] = r;
    t[n].shape[1] = c;
    t[n].kind = kind;
    return n + 1;
}

/* The Qwen2 tensor list of the model; returns the count. */
static int tensor_specs(TensorSpec *t, int layers) {
    int n = 0, kvd = KV_HEADS * HEAD_DIM;
    char s[96];
    n = add_spec(t, n, "model.embed_tokens.weight", 2, VOCAB, HID, 0);
    for (int l = 0; l < layers; l++) {
#define L_(suffix) (snprintf(s, sizeof s, "model.layers.%d.%s", l, suffix), s)
        n = add_spec(t, n, L_("input_layernorm.weight"), 1, HID, 0, 1);
        n = add_spec(t, n, L_("self_attn.q_proj.weight"), 2, HID, HID, 0);
        n = add_spec(t, n, L_("self_attn.q_proj.bias"), 1, HID, 0, 2);
        n = add_spec(t, n, L_("self_attn.k_proj.weight"), 2, kvd, HID, 0);
        n = add_spec(t, n, L_("self_attn.k_proj.bias"), 1, kvd, 0, 2);
        n = add_spec(t, n, L_("self_attn.v_proj.weight"), 2, kvd, HID, 0);
        n = add_spec(t, n, L_("self_attn.v_proj.bias"), 1, kvd, 0, 2);
        n = add_spec(t, n, L_("self_attn.o_proj.weight"), 2, HID, HID, 0);
        n = add_spec(t, n, L_("post_attention_layernorm.weight"), 1, HID, 0, 1);
        n = add_spec(t, n, L_("mlp.gate_proj.weight"), 2, INTER, HID, 0);
        n = add_spec(t, n, L_("mlp.up_proj.weight"), 2, INTER, HID, 0);
        n = add_spec(t, n, L_("mlp.down_proj.weight"), 2, HID, INTER, 0);
#undef L_
    }
    n = add_spec(t, n, "model.norm.weight", 1, HID, 0, 1);
    n = add_spec(t, n, "lm_head.weight", 2, VOCAB, HID, 0);
    return n;
}

static size_t spec_elems(const TensorSpec *t) {
    return (size_t)t->shape[0] * (t->ndim == 2 ? (size_t)t->shape[1] : 1);
}

/* safetensors header: JSON with dtype/shape/offsets, padded to 8 bytes. */
static char *safetensors_header(const TensorSpec *t, int n, size_t *len) {
    size_t cap = (size_t)n * 160 + 64, at = 0, off = 0;
    char *h = flab_xmalloc(cap);
    at += (size_t)snprintf(h + at, cap - at, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        size_t bytes = spec_elems(&t[i]) * 2;
        at += (size_t)snprintf(h + at, cap - at, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld",
                               t[i].name, t[i].shape[0]);
        if (t[i].ndim == 2) at += (size_t)snprintf(h + at, cap - at, ",%lld", t[i].shape[1]);
        at += (size_t)snprintf(h + at, cap - at, "],\"data_offsets\":[%zu,%zu]}", off, off + bytes);
        off += bytes;
    }
    at += (size_t)snprintf(h + at, cap - at, "}");
    while (at % 8) h[at++] = ' ';
    *len = at;
    return h;
}

/* Writes one tensor's bf16 values (xorshift uniform, ~N(0, 0.02) in scale). */
static int write_tensor(FILE *f, const TensorSpec *t, uint64_t *rng, uint16_t *buf,
                        size_t buf_elems) {
    size_t n = spec_elems(t);
    for (size_t at = 0; at < n;) {
        size_t m = n - at < buf_elems ? n - at : buf_elems;
        for (size_t i = 0; i < m; i++) {
            uint64_t x = *rng;
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            *rng = x;
            float u = (float)(x >> 40) / 16777216.0f * 2.f - 1.f; /* [-1, 1) */
            float v = t->kind == 1 ? 1.f : t->kind == 2 ? 0.01f * u : 0.035f * u;
            buf[i] = flab_f32_to_bf16(v);
        }
        if (fwrite(buf, 2, m, f) != m) return flab_fail_errno("write tensor %s", t->name);
        at += m;
    }
    return 0;
}

static int write_config(const char *dir, int layers) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return flab_fail_errno("%s", path);
    fprintf(f, "{\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"qwen2\",\n"
               " \"vocab_size\": %d, \"hidden_size\": %d, \"intermediate_size\": %d,\n"
               " \"num_hidden_layers\": %d, \"num_attention_heads\": %d,\n"
               " \"num_key_value_heads\": %d, \"hidden_act\": \"silu\",\n"
               " \"max_position_embeddings\": 65536, \"rms_norm_eps\": 1e-05,\n"
               " \"rope_theta\": 1000000.0, \"tie_word_embeddings\": false,\n"
               " \"torch_dtype\": \"bfloat16\", \"bos_token_id\": 2, \"eos_token_id\": 2}\n",
            VOCAB, HID, INTER, layers, HEADS, KV_HEADS);
    return fclose(f) ? flab_fail_errno("%s", path) : 0;
}

/* Creates dir/config.json + dir/model.safetensors unless dir/.complete says
 * they already hold this shape. */
static int make_checkpoint(const char *dir, int layers) {
    char path[4096], want[64], have[64] = "";
    snprintf(want, sizeof want, "codeqwen7b-shape layers=%d v1\n", layers);
    snprintf(path, sizeof path, "%s/.complete", dir);
    FILE *m = fopen(path, "r");
    if (m) { if (!fgets(have, sizeof have, m)) have[0] = 0; fclose(m); }
    if (!strcmp(have, want)) return 0;
    if (mkdir(dir, 0755) && errno != EEXIST) return flab_fail_errno("mkdir %s", dir);
    TensorSpec *t = flab_xcalloc((size_t)(14 * layers + 8), sizeof *t);
    int n = tensor_specs(t, layers);
    size_t hlen, buf_elems = (size_t)1 << 24;
    char *h = safetensors_header(t, n, &hlen);
    uint16_t *buf = flab_xmalloc(buf_elems * 2);
    uint64_t rng = 0x243f6a8885a308d3ull, len64 = hlen;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    printf("bench_cuda: writing %s (random bf16 weights, once) ...\n", path);
    fflush(stdout);
    FILE *f = fopen(path, "wb");
    int rc = f ? 0 : flab_fail_errno("%s", path);
    if (!rc && (fwrite(&len64, 8, 1, f) != 1 || fwrite(h, 1, hlen, f) != hlen))
        rc = flab_fail_errno("write %s", path);
    for (int i = 0; i < n && !rc; i++) rc = write_tensor(f, &t[i], &rng, buf, buf_elems);
    if (f && fclose(f) && !rc) rc = flab_fail_errno("close %s", path);
    if (!rc) rc = write_config(dir, layers);
    if (!rc) {
        snprintf(path, sizeof path, "%s/.complete", dir);
        m = fopen(path, "w");
        if (!m || fputs(want, m) < 0 || fclose(m)) rc = flab_fail_errno("%s", path);
    }
    free(t); free(h); free(buf);
    return rc;
}

/* ==== 1. HBM bandwidth ======================================================= */

static double measure_hbm_bw(void) {
    size_t bytes = (size_t)1 << 30;
    void *a = NULL, *b = NULL;
    if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) {
        cudaFree(a);
        return -1;
    }
    cudaMemset(a, 1, bytes);
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice); /* warm-up */
    cudaDeviceSynchronize();
    int iters = 20;
    double t0 = now_s();
    for (int i = 0; i < iters; i++) cudaMemcpy(i % 2 ? a : b, i % 2 ? b : a, bytes,
                                               cudaMemcpyDeviceToDevice);
    cudaDeviceSynchronize();
    double dt = now_s() - t0;
    cudaFree(a); cudaFree(b);
    return 2.0 * (double)bytes * iters / dt; /* read + write */
}

/* ==== 2. cuBLAS baseline ====================================================== */

/* Seconds per C[M,N] = A[M,K] B[N,K]^T in bf16 (fp32 compute); -1 on error. */
static double time_gemm(cublasHandle_t h, int M, int N, int K) {
    void *A = NULL, *B = NULL, *C = NULL;
    double sec = -1;
    if (cudaMalloc(&A, (size_t)M * K * 2) || cudaMalloc(&B, (size_t)N * K * 2) ||
        cudaMalloc(&C, (size_t)M * N * 2))
        goto out;
    cudaMemset(A, 0x3c, (size_t)M * K * 2); /* bf16 0x3c3c ~ 0.0115: finite values */
    cudaMemset(B, 0x3c, (size_t)N * K * 2);
    const float alpha = 1.f, beta = 0.f;
    int iters = 10;
    for (int i = -2; i < iters; i++) { /* 2 warm-up calls */
        if (i == 0) { cudaDeviceSynchronize(); sec = now_s(); }
        if (cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, B, CUDA_R_16BF, K, A,
                         CUDA_R_16BF, K, &beta, C, CUDA_R_16BF, N, CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS) {
            sec = -1;
            goto out;
        }
    }
    cudaDeviceSynchronize();
    sec = (now_s() - sec) / iters;
out:
    cudaFree(A); cudaFree(B); cudaFree(C);
    return sec;
}

/* Aggregate TFLOP/s of one layer's GEMMs at M tokens. */
static double cublas_layer_tflops(int M) {
    cublasHandle_t h;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return -1;
    static const int shapes[][3] = {{HID, HID, 1}, {KV_HEADS * HEAD_DIM, HID, 2},
                                    {HID, HID, 1}, {INTER, HID, 2}, {HID, INTER, 1}};
    double flops = 0, sec = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        double s = time_gemm(h, M, shapes[i][0], shapes[i][1]);
        if (s < 0) { cublasDestroy(h); return -1; }
        flops += shapes[i][2] * 2.0 * M * shapes[i][0] * shapes[i][1];
        sec += shapes[i][2] * s;
        printf("  cuBLAS bf16 GEMM M=%d N=%d K=%d: %.1f TFLOP/s\n", M, shapes[i][0],
               shapes[i][1], 2.0 * M * shapes[i][0] * shapes[i][1] / s / 1e12);
    }
    cublasDestroy(h);
    return flops / sec / 1e12;
}

/* ==== 3-5. The model ========================================================= */

static double model_linear_params(int layers) {
    double per_layer = 2.0 * HID * HID + 2.0 * KV_HEADS * HEAD_DIM * HID + 3.0 * HID * INTER;
    return per_layer * layers;
}

static int32_t *random_ids(int n, uint64_t seed) {
    int32_t *ids = flab_xmalloc((size_t)n * sizeof *ids);
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((seed >> 33) % 90000);
    }
    return ids;
}

/* Syncs the backend by downloading one logit. */
static int sync_logits(FlabBackend *be, const FlabBuf *lg) {
    float one;
    return be->download_f32(be, &one, lg, 0, 1);
}

static int bench_prefill(Transformer *t, const Opts *o, double *tflops) {
    int B = o->batch, T = o->prompt;
    int32_t **ids = flab_xcalloc((size_t)B, sizeof *ids);
    int *lens = flab_xcalloc((size_t)B, sizeof *lens);
    for (int i = 0; i < B; i++) { ids[i] = random_ids(T, 17 + (uint64_t)i); lens[i] = T; }
    TfBatch b = {B, (const int32_t *const *)ids, lens};
    TfForwardOpts fo = {0};
    fo.last_only = 1;
    const FlabBuf *lg;
    int rc = transformer_forward(t, &b, &fo, &lg) || sync_logits(transformer_backend(t), lg);
    int iters = 3;
    double t0 = now_s();
    for (int i = 0; i < iters && !rc; i++)
        rc = transformer_forward(t, &b, &fo, &lg) || sync_logits(transformer_backend(t), lg);
    double sec = (now_s() - t0) / iters;
    double attn = 4.0 * HEADS * HEAD_DIM * ((double)T * (T + 1) / 2) * B * o->layers;
    double flops = 2.0 * model_linear_params(o->layers) * B * T + attn + 2.0 * B * HID * VOCAB;
    *tflops = flops / sec / 1e12;
    printf("prefill: %d x %d tokens in %.1f ms = %.0f tokens/s, %.1f TFLOP/s\n", B, T,
           sec * 1e3, B * T / sec, *tflops);
    for (int i = 0; i < B; i++) free(ids[i]);
    free(ids); free(lens);
    return rc ? -1 : 0;
}

static int bench_decode(Transformer *t, const Opts *o, double *tok_s) {
    FlabBackend *be = transformer_backend(t);
    int T = o->prompt, N = o->decode;
    TfKvCache *kv = tf_kv_create(t, 1, T + N + 1);
    if (!kv) return -1;
    int32_t *ids = random_ids(T, 99), *slot = flab_xcalloc((size_t)T, 4), *pos = flab_xmalloc((size_t)T * 4);
    for (int i = 0; i < T; i++) pos[i] = i;
    int32_t last = T - 1, next = 0;
    const FlabBuf *lg;
    int rc = transformer_step(t, kv, ids, slot, pos, T, &last, 1, NULL, &lg) ||
             be->argmax(be, &next, NULL, lg, 1, VOCAB);
    double t0 = now_s();
    for (int i = 0; i < N && !rc; i++) {
        int32_t p = T + i, s0 = 0;
        rc = transformer_step(t, kv, &next, &s0, &p, 1, NULL, 0, NULL, &lg) ||
             be->argmax(be, &next, NULL, lg, 1, VOCAB);
    }
    double sec = now_s() - t0;
    *tok_s = N / sec;
    printf("decode (batch 1, after a %d-token prompt): %d tokens in %.1f ms = %.1f tokens/s "
           "(%.2f ms/token)\n", T, N, sec * 1e3, *tok_s, sec * 1e3 / N);
    tf_kv_free(t, kv);
    free(ids); free(slot); free(pos);
    return rc ? -1 : 0;
}

static int bench_generate(Transformer *t, const Opts *o) {
    int G = o->gen_batch, T = 128;
    int32_t **ids = flab_xcalloc((size_t)G, sizeof *ids), **gen = flab_xcalloc((size_t)G, sizeof *gen);
    int *lens = flab_xcalloc((size_t)G, sizeof *lens), *n_gen = flab_xcalloc((size_t)G, sizeof *n_gen);
    for (int i = 0; i < G; i++) { ids[i] = random_ids(T, 1000 + (uint64_t)i); lens[i] = T; }
    TfBatch b = {G, (const int32_t *const *)ids, lens};
    int32_t no_eos = -1;
    TfGenerateOpts go = {o->gen_tokens, &no_eos, 1, NULL, NULL, NULL};
    double t0 = now_s();
    int rc = transformer_generate(t, &b, &go, gen, n_gen);
    double sec = now_s() - t0;
    long total = 0;
    for (int i = 0; i < G; i++) total += rc ? 0 : n_gen[i];
    if (!rc)
        printf("batched greedy generation: %d prompts x %d tokens + %d new: %ld tokens in "
               "%.2f s = %.0f generated tokens/s\n", G, T, o->gen_tokens, total, sec,
               total / sec);
    for (int i = 0; i < G; i++) { free(ids[i]); free(gen[i]); }
    free(ids); free(gen); free(lens); free(n_gen);
    return rc;
}

static int run(const Opts *o) {
    if (make_checkpoint(o->dir, o->layers)) return -1;
    double bw = measure_hbm_bw();
    printf("HBM bandwidth (device memcpy, read + write): %.0f GB/s\n", bw / 1e9);
    double blas = cublas_layer_tflops(o->batch * o->prompt);
    printf("cuBLAS bf16 GEMM, one layer's shapes at M=%d: %.1f TFLOP/s\n",
           o->batch * o->prompt, blas);
    FlabBackend *be = flab_backend_create("cuda", 0);
    Transformer *t = NULL;
    double t0 = now_s();
    if (!be || transformer_load(o->dir, be, &t)) { flab_backend_destroy(be); return -1; }
    printf("loaded %s in %.1f s: %.2f GB of weights read per token\n", o->dir, now_s() - t0,
           transformer_weight_bytes(t) / 1e9);
    double tflops = 0, tok_s = 0;
    int rc = bench_prefill(t, o, &tflops) || bench_decode(t, o, &tok_s) || bench_generate(t, o);
    if (!rc) {
        double bound = bw / (double)transformer_weight_bytes(t);
        printf("RESULT prefill %.1f TFLOP/s = %.2f x cuBLAS (goal >= 0.6)\n", tflops, tflops / blas);
        printf("RESULT decode %.1f tokens/s = %.2f x HBM bound %.1f tokens/s (goal >= 0.7)\n",
               tok_s, tok_s / bound, bound);
    }
    transformer_free(t);
    flab_backend_destroy(be);
    return rc ? -1 : 0;
}

int main(int argc, char **argv) {
    Opts o;
    if (parse_opts(argc, argv, &o)) return 2;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("SKIP bench_cuda: no CUDA device\n");
        return 0;
    }
    if (run(&o)) {
        fprintf(stderr, "bench_cuda: %s\n", flab_errmsg());
        return 1;
    }
    return 0;
}
#endif
