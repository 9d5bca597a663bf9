/* tests/test_cpu_matmul_multi.c: the CPU backend's matmul_multi op (several
 * weights over one input in one thread-pool run).
 *
 * Spec: matmul_multi(n, y, x, W, b, rows) is exactly n matmul calls with
 * accumulate = 0.  The CPU backend keeps each weight's block split and task
 * function, so the outputs are compared BIT-FOR-BIT with separate matmul
 * calls (tolerance 0), on the GEMV path (rows <= 16) and the sgemm path, for
 * bf16 / f16 / f32 weights, mixed dtypes, with and without biases, with 1
 * and 2 threads.  Weights of unequal input width take the per-weight
 * fallback and must still match; bad counts and overrunning buffers are
 * errors. */
#include "tests/testlib.h"
#include "tests/xf_randmodel.h"
#include "kernels/ops.h"
#include "util/error.h"
#include <stdint.h>

static uint64_t rng = 0x243F6A8885A308D3ull;

static float frand(void) { return xf_rand(&rng); }     /* uniform in [-1, 1) */

/* A [rows, cols] weight (or a [cols] vector when rows == 0) of random values
 * in dtype dt; *store owns the bytes. */
static FlabWeight *rand_weight(FlabBackend *be, int64_t rows, int64_t cols, FlabDType dt,
                               void **store) {
    size_t n = (size_t)(rows ? rows : 1) * cols;
    *store = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        float v = frand() * 0.1f;
        if (dt == FLAB_F32) ((float *)*store)[i] = v;
        else if (dt == FLAB_BF16) ((uint16_t *)*store)[i] = flab_f32_to_bf16(v);
        else ((uint16_t *)*store)[i] = flab_f32_to_f16(v);
    }
    int64_t shape[2] = {rows, cols};
    return rows ? be->upload_weight(be, "w", dt, *store, 2, shape)
                : be->upload_weight(be, "b", dt, *store, 1, &shape[1]);
}

static FlabBuf *rand_buf(FlabBackend *be, size_t n) {
    float *a = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) a[i] = frand();
    FlabBuf *b = be->alloc(be, n);
    be->upload(be, b, 0, a, n);
    free(a);
    return b;
}

static int same_bits(FlabBackend *be, const FlabBuf *a, const FlabBuf *b, size_t n) {
    float *x = malloc(n * 4), *y = malloc(n * 4);
    be->download_f32(be, x, a, 0, n);
    be->download_f32(be, y, b, 0, n);
    int same = !memcmp(x, y, n * 4);
    free(x); free(y);
    return same;
}

/* n weights with the given output sizes, input widths and dtypes over one x
 * of `rows` rows: multi vs separate matmul calls, bit for bit. */
static int multi_matches(int threads, int n, const int *outs, const int *ins,
                         const FlabDType *dts, int with_bias, int rows) {
    FlabBackend *be = flab_backend_create("cpu", threads);
    FlabWeight *W[4], *B[4];
    FlabBuf *ym[4], *ys[4];
    void *ws[4], *bs[4];
    int in_max = 0, ok = 1;
    for (int i = 0; i < n; i++) in_max = ins[i] > in_max ? ins[i] : in_max;
    FlabBuf *x = rand_buf(be, (size_t)rows * in_max);
    for (int i = 0; i < n; i++) {
        W[i] = rand_weight(be, outs[i], ins[i], dts[i], &ws[i]);
        B[i] = with_bias && i != 1 ? rand_weight(be, 0, outs[i], FLAB_BF16, &bs[i]) : NULL;
        ym[i] = rand_buf(be, (size_t)rows * outs[i]);      /* garbage: must be overwritten */
        ys[i] = be->alloc(be, (size_t)rows * outs[i]);
        if (be->matmul(be, ys[i], x, W[i], B[i], rows, 0)) ok = 0;
    }
    if (be->matmul_multi(be, n, ym, x, (const FlabWeight *const *)W,
                         with_bias ? (const FlabWeight *const *)B : NULL, rows))
        ok = 0;
    for (int i = 0; i < n; i++) {
        if (!same_bits(be, ym[i], ys[i], (size_t)rows * outs[i])) ok = 0;
        be->free_weight(be, W[i]); free(ws[i]);
        if (B[i]) { be->free_weight(be, B[i]); free(bs[i]); }
        be->free_buf(be, ym[i]); be->free_buf(be, ys[i]);
    }
    be->free_buf(be, x);
    flab_backend_destroy(be);
    return ok;
}

static void test_qkv_shapes_every_dtype(void) {
    int outs[3] = {112, 24, 24}, ins[3] = {112, 112, 112};     /* 14:2 heads of 8 */
    FlabDType all[3] = {FLAB_BF16, FLAB_F16, FLAB_F32};
    int rows_list[5] = {1, 4, 7, 17, 70};
    for (int d = 0; d < 3; d++)
        for (int r = 0; r < 5; r++)
            for (int t = 1; t <= 2; t++) {
                FlabDType dts[3] = {all[d], all[d], all[d]};
                CHECKF(multi_matches(t, 3, outs, ins, dts, 1, rows_list[r]),
                       "dtype %d rows %d threads %d", d, rows_list[r], t);
            }
}

static void test_gate_up_no_bias_mixed_dtypes(void) {
    int outs[2] = {600, 600}, ins[2] = {96, 96};
    FlabDType dts[2] = {FLAB_BF16, FLAB_F32};
    CHECK(multi_matches(2, 2, outs, ins, dts, 0, 33));
    CHECK(multi_matches(2, 2, outs, ins, dts, 0, 2));
    int outs4[4] = {40, 520, 8, 300}, ins4[4] = {64, 64, 64, 64};
    FlabDType dts4[4] = {FLAB_F16, FLAB_BF16, FLAB_F32, FLAB_BF16};
    CHECK(multi_matches(2, 4, outs4, ins4, dts4, 1, 20));
    CHECK(multi_matches(1, 1, outs4, ins4, dts4, 1, 20));
}

static void test_unequal_inputs_fall_back(void) {
    int outs[2] = {64, 48}, ins[2] = {80, 40};
    FlabDType dts[2] = {FLAB_BF16, FLAB_BF16};
    CHECK(multi_matches(2, 2, outs, ins, dts, 1, 19));
    CHECK(multi_matches(2, 2, outs, ins, dts, 1, 3));
}

static void test_errors(void) {
    FlabBackend *be = flab_backend_create("cpu", 2);
    void *ws, *bs;
    FlabWeight *W = rand_weight(be, 32, 16, FLAB_BF16, &ws);
    FlabWeight *B = rand_weight(be, 0, 31, FLAB_BF16, &bs);     /* wrong size */
    FlabBuf *x = rand_buf(be, 16 * 20), *y = be->alloc(be, 32 * 20);
    FlabBuf *ys[5] = {y, y, y, y, y};
    const FlabWeight *Ws[5] = {W, W, W, W, W}, *Bs[1] = {B};
    CHECK(be->matmul_multi(be, 0, ys, x, Ws, NULL, 20) == -1);
    CHECK(be->matmul_multi(be, 5, ys, x, Ws, NULL, 20) == -1);
    CHECK(strstr(flab_errmsg(), "matmul_multi") != NULL);
    CHECK(be->matmul_multi(be, 1, ys, x, Ws, NULL, 21) == -1);   /* x has 20 rows */
    CHECK(strstr(flab_errmsg(), "overrun") != NULL);
    CHECK(be->matmul_multi(be, 1, ys, x, Ws, Bs, 20) == -1);
    CHECK(strstr(flab_errmsg(), "bias") != NULL);
    CHECK(be->matmul_multi(be, 2, ys, x, Ws, NULL, 0) == 0);
    be->free_weight(be, W); be->free_weight(be, B);
    free(ws); free(bs);
    be->free_buf(be, x); be->free_buf(be, y);
    flab_backend_destroy(be);
}

int main(void) {
    RUN(test_qkv_shapes_every_dtype);
    RUN(test_gate_up_no_bias_mixed_dtypes);
    RUN(test_unequal_inputs_fall_back);
    RUN(test_errors);
    return TEST_SUMMARY();
}
