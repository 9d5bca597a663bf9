/* bench/bench_qgemv.c: single-thread speed of the CPU backend's AWQ decode
 * GEMV (kernels/cpu/cpu_qmatmul.c, rows = 1) on random INT4 / INT8 weights
 * of Qwen2-0.5B's MLP shapes (gate/up [4864, 896], down [896, 4864], group
 * 128), timed in process CPU time so that a loaded shared machine changes
 * the numbers little.
 *   bench_qgemv [BITS=4] [LAYERS=8] [REPS=20]
 * Three cases: "dram" cycles through LAYERS layers' matrices (8 layers of
 * INT4 = 52 MB, more than the L3), "cache" repeats one layer (6.5 MB INT4,
 * L3), "l2" one [896, 896] matrix (0.4 MB INT4: the kernel's compute speed).
 * Prints "name value unit" lines: GB/s of weight bytes (qweight + qzeros +
 * scales) streamed per CPU second, and ns per weight. */
#include "kernels/ops.h"
#include "util/error.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct { FlabQuantDesc d; FlabWeight *W; size_t bytes; } Mat;

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next32(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static Mat make_mat(FlabBackend *be, int out, int in, int bits) {
    Mat m = {0};
    int P = 32 / bits, G = in / 128;
    size_t nq = (size_t)in * out / P, nz = (size_t)G * out / P, ns = (size_t)G * out;
    int32_t *qw = malloc(nq * 4), *qz = malloc(nz * 4);
    uint16_t *sc = malloc(ns * 2);
    for (size_t i = 0; i < nq; i++) qw[i] = (int32_t)next32();
    for (size_t i = 0; i < nz; i++) qz[i] = (int32_t)next32();
    for (size_t i = 0; i < ns; i++) sc[i] = (uint16_t)(0x1C00 + next32() % 0x400); /* ~0.004-0.008 */
    m.d = (FlabQuantDesc){FLAB_QUANT_AWQ, out, in, bits, 128, qw, qz, sc, FLAB_F16, 0, 0};
    m.W = be->upload_qweight(be, "bench", &m.d);
    if (!m.W) { fprintf(stderr, "%s\n", flab_errmsg()); exit(1); }
    m.bytes = nq * 4 + nz * 4 + ns * 2;
    return m;
}

static void run_case(FlabBackend *be, Mat *mats, int n, int reps, const char *name, int bits) {
    FlabBuf *x = be->alloc(be, 4864), *y = be->alloc(be, 4864);
    float xs[4864];
    for (int i = 0; i < 4864; i++) xs[i] = (float)(next32() % 2001) / 1000.0f - 1.0f;
    be->upload(be, x, 0, xs, 4864);
    size_t bytes = 0, weights = 0;
    for (int i = 0; i < n; i++) be->matmul(be, y, x, mats[i].W, NULL, 1, 0);   /* warm-up */
    double t0 = cpu_now();
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < n; i++) {
            be->matmul(be, y, x, mats[i].W, NULL, 1, 0);
            bytes += mats[i].bytes;
            weights += (size_t)mats[i].d.in * mats[i].d.out;
        }
    double t = cpu_now() - t0;
    printf("int%d_%s_gbs %.2f GB/s\n", bits, name, bytes / t / 1e9);
    printf("int%d_%s_ns_per_weight %.4f ns\n", bits, name, t / weights * 1e9);
    be->free_buf(be, x);
    be->free_buf(be, y);
}

int main(int argc, char **argv) {
    int bits = argc > 1 ? atoi(argv[1]) : 4, layers = argc > 2 ? atoi(argv[2]) : 8;
    int reps = argc > 3 ? atoi(argv[3]) : 20;
    if ((bits != 4 && bits != 8) || layers < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_qgemv [BITS=4|8] [LAYERS] [REPS]\n");
        return 2;
    }
    FlabBackend *be = flab_backend_create("cpu", 1);
    if (!be) { fprintf(stderr, "%s\n", flab_errmsg()); return 1; }
    Mat *mats = malloc(sizeof(Mat) * 3 * layers);
    for (int l = 0; l < layers; l++) {
        mats[3 * l] = make_mat(be, 4864, 896, bits);
        mats[3 * l + 1] = make_mat(be, 4864, 896, bits);
        mats[3 * l + 2] = make_mat(be, 896, 4864, bits);
    }
    Mat small = make_mat(be, 896, 896, bits);
    run_case(be, &small, 1, reps * layers * 15, "l2", bits);
    be->free_weight(be, small.W);
    free((void *)small.d.qweight); free((void *)small.d.qzeros); free((void *)small.d.scales);
    run_case(be, mats, 3, reps * layers, "cache", bits);
    run_case(be, mats, 3 * layers, reps, "dram", bits);
    for (int i = 0; i < 3 * layers; i++) {
        be->free_weight(be, mats[i].W);
        free((void *)mats[i].d.qweight); free((void *)mats[i].d.qzeros);
        free((void *)mats[i].d.scales);
    }
    free(mats);
    flab_backend_destroy(be);
    return 0;
}
