/* bench/bench_fp8_gemm.c: FP8 prefill GEMM speed on the GPU, through the
 * backend's matmul op, against the bf16 GEMM of the same shapes.
 *
 * Shapes: the Linear layers of one CodeQwen1.5-7B layer (hidden 4096,
 * intermediate 13440, 4 KV heads x 128): q/o [4096, 4096], k/v [512, 4096],
 * gate/up [13440, 4096], down [4096, 13440], at --rows activation rows
 * (default 2048 = 4 x 512 prefill tokens).  Random weights (FP8 bytes with
 * NaN codes avoided, per-channel f32 scales; bf16 uniform +-0.035), random x.
 * Three backends, each timed over --reps passes of all shapes after one
 * untimed pass (the stream is drained by a 1-float download at the end):
 *   bf16_tflops         dense bf16 weights: cublasGemmEx bf16 x bf16 -> fp32
 *   fp8_tflops          FP8 weights, default path (cuBLASLt E4M3 on sm_89+:
 *                       amax + quantize kernels + cublasLtMatmul + epilogue)
 *   fp8_dequant_tflops  FP8 weights, FLAB_CUDA_FP8=dequant (bf16 tiles)
 * TFLOP/s = 2 rows in out summed over shapes / time.  The backend's stderr
 * line says which FP8 path ran.  Without a GPU (or built without CUDA):
 * one SKIP line, exit 0.
 * usage: bench_fp8_gemm [--rows 2048] [--reps 10] */
#include "kernels/ops.h"
#include "model/dtype.h"
#include "util/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef FLAB_HAVE_CUDA
#define N_SHAPES 7
static const int SHAPE_OUT[N_SHAPES] = {4096, 512, 512, 4096, 13440, 13440, 4096};
static const int SHAPE_IN[N_SHAPES] = {4096, 4096, 4096, 4096, 4096, 4096, 13440};

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float rnd_sym(float a) { return a * ((float)rnd() / 2147483648.0f - 1.0f); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Weight i for backend be: FP8 (fp8 != 0) or bf16. */
static FlabWeight *make_weight(FlabBackend *be, int i, int fp8) {
    int out = SHAPE_OUT[i], in = SHAPE_IN[i];
    size_t n = (size_t)out * in;
    FlabWeight *w;
    if (fp8) {
        uint8_t *q = malloc(n);
        float *s = malloc((size_t)out * sizeof(float));
        for (size_t k = 0; k < n; k++) {
            q[k] = (uint8_t)rnd();
            if ((q[k] & 0x7f) == 0x7f) q[k] ^= 1;
        }
        for (int o = 0; o < out; o++) s[o] = 1e-3f * (1.0f + (float)(rnd() % 100) / 100.0f);
        FlabQuantDesc d = {FLAB_QUANT_FP8, out, in, 8, 0, q, NULL, s, FLAB_F32, out, 0};
        w = be->upload_qweight(be, "bench.fp8", &d);
        free(q); free(s);
    } else {
        uint16_t *b = malloc(n * 2);
        for (size_t k = 0; k < n; k++) b[k] = flab_f32_to_bf16(rnd_sym(0.035f));
        int64_t shape[2] = {out, in};
        w = be->upload_weight(be, "bench.bf16", FLAB_BF16, b, 2, shape);
        free(b);
    }
    return w;
}

/* TFLOP/s of reps passes over all shapes, or -1 + flab_fail. */
static double run_backend(FlabBackend *be, int fp8, int rows, int reps) {
    FlabWeight *w[N_SHAPES] = {0};
    size_t nx = (size_t)rows * 13440;
    float *x = malloc(nx * sizeof(float)), probe;
    for (size_t k = 0; k < nx; k++) x[k] = rnd_sym(1.0f);
    FlabBuf *dx = be->alloc(be, nx), *dy = be->alloc(be, (size_t)rows * 13440);
    double flops = 0, t = -1;
    int rc = !dx || !dy || be->upload(be, dx, 0, x, nx);
    for (int i = 0; !rc && i < N_SHAPES; i++) {
        rc = !(w[i] = make_weight(be, i, fp8));
        flops += 2.0 * rows * SHAPE_OUT[i] * SHAPE_IN[i];
    }
    for (int r = -1; !rc && r < reps; r++) {
        if (r == 0) rc = be->download_f32(be, &probe, dy, 0, 1);
        double t0 = now_s();
        for (int i = 0; !rc && i < N_SHAPES; i++) rc = be->matmul(be, dy, dx, w[i], NULL, rows, 0);
        if (r == 0) t = now_s() - t0;
        else if (r > 0) t += now_s() - t0;
    }
    if (!rc) {
        double t0 = now_s();
        rc = be->download_f32(be, &probe, dy, 0, 1);
        t += now_s() - t0;
    }
    for (int i = 0; i < N_SHAPES; i++) be->free_weight(be, w[i]);
    be->free_buf(be, dx); be->free_buf(be, dy);
    free(x);
    return rc ? -1 : flops * reps / t / 1e12;
}

static double run_one(const char *fp8_env, int fp8, int rows, int reps) {
    if (fp8_env) setenv("FLAB_CUDA_FP8", fp8_env, 1);
    else unsetenv("FLAB_CUDA_FP8");
    FlabBackend *be = flab_backend_create("cuda", 0);
    double tf = be ? run_backend(be, fp8, rows, reps) : -1;
    flab_backend_destroy(be);
    return tf;
}

#endif

int main(int argc, char **argv) {
    int rows = 2048, reps = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rows")) rows = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    if (rows < 5 || reps < 1) {
        fprintf(stderr, "usage: bench_fp8_gemm [--rows N >= 5] [--reps N >= 1]\n");
        return 2;
    }
#ifndef FLAB_HAVE_CUDA
    printf("SKIP bench_fp8_gemm: built without CUDA (FLAB_CUDA=0)\n");
    return 0;
#else
    if (!flab_cuda_available()) {
        printf("SKIP bench_fp8_gemm: no CUDA device\n");
        return 0;
    }
    double bf = run_one(NULL, 0, rows, reps), f8 = run_one(NULL, 1, rows, reps);
    double dq = run_one("dequant", 1, rows, reps);
    unsetenv("FLAB_CUDA_FP8");
    if (bf < 0 || f8 < 0 || dq < 0) {
        fprintf(stderr, "bench_fp8_gemm: %s\n", flab_errmsg());
        return 1;
    }
    printf("rows %d\nbf16_tflops %.1f\nfp8_tflops %.1f\nfp8_dequant_tflops %.1f\n", rows, bf, f8,
           dq);
    printf("RESULT fp8 prefill GEMMs (one CodeQwen1.5-7B layer, %d rows): %.1f TFLOP/s = %.2f x "
           "bf16 cublasGemmEx %.1f; dequantised path %.1f\n", rows, f8, f8 / bf, bf, dq);
    return 0;
#endif
}
