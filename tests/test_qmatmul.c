/* tests/test_qmatmul.c: the CPU backend's quantized matmul
 * (kernels/cpu/cpu_qmatmul.c) against the reference matmul (kernels/ref_ops.c,
 * float64 accumulation) on the dequantised weights (tests/xf_quant.h), on
 * seeded random data: AutoAWQ INT4 and INT8 with several group sizes, output
 * counts that are not multiples of the 64-output decode task or of 8 (INT8:
 * a scalar tail), FP8 per tensor / per channel with F32 / BF16 / F16 scales
 * and an input width with a non-multiple-of-8 tail; rows 1..4 (decode GEMV)
 * and 5, 17 (dequantised tile + sgemm); with and without bias and
 * accumulate.  tests/test_qmatmul_modes.sh runs it again without AVX2 and
 * without AVX-512.
 *
 * Tolerance: max |cpu - ref| <= 1e-5 x max |ref| + 1e-6, as tests/test_ops.c:
 * float32 sums of a few hundred terms; the group-wise zero-point fold
 * (s * (sum q x - z sum x)) cancels at most a factor ~2 of magnitude. */
#include "tests/testlib.h"
#include "tests/xf_quant.h"
#include "tests/xf_testutil.h"
#include "kernels/ops.h"
#include "kernels/ref_ops.h"
#include "util/error.h"

static FlabBackend *BE;
static uint64_t rng = 0x2545F4914F6CDD1Dull;

static float rand01(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0));
}

static float *rand_array(size_t n, float scale) {
    float *a = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) a[i] = (rand01() * 2 - 1) * scale;
    return a;
}

/* Runs W (rows x variants) against ref_matmul on q->deq; 1 if all close. */
static int check_weight(const XfQuant *q, const char *label) {
    int out = (int)q->d.out, in = (int)q->d.in, ok = 1;
    int rows_list[6] = {1, 2, 4, 5, 17, 3};
    FlabWeight *W = BE->upload_qweight(BE, label, &q->d);
    if (!W) { printf("  %s: %s\n", label, flab_errmsg()); return 0; }
    for (int ri = 0; ri < 6; ri++)
        for (int variant = 0; variant < 2; variant++) {
            int rows = rows_list[ri];
            float *x = rand_array((size_t)rows * in, 1), *y = rand_array((size_t)rows * out, 1);
            float *b = rand_array(out, 1);
            int64_t bshape[1] = {out};
            FlabWeight *B = variant ? BE->upload_weight(BE, "b", FLAB_F32, b, 1, bshape) : NULL;
            FlabBuf *xb = BE->alloc(BE, (size_t)rows * in), *yb = BE->alloc(BE, (size_t)rows * out);
            BE->upload(BE, xb, 0, x, (size_t)rows * in);
            BE->upload(BE, yb, 0, y, (size_t)rows * out);
            int rc = BE->matmul(BE, yb, xb, W, B, rows, variant);
            ref_matmul(y, x, q->deq, variant ? b : NULL, rows, in, out, variant);
            float *got = malloc((size_t)rows * out * sizeof(float));
            BE->download_f32(BE, got, yb, 0, (size_t)rows * out);
            double err = xf_max_diff(got, y, (size_t)rows * out);
            double scale = xf_max_abs(y, (size_t)rows * out);
            if (rc || !(err <= 1e-5 * scale + 1e-6)) {
                printf("  %s rows %d variant %d: rc %d max err %g scale %g\n", label, rows,
                       variant, rc, err, scale);
                ok = 0;
            }
            BE->free_weight(BE, B);
            BE->free_buf(BE, xb); BE->free_buf(BE, yb);
            free(x); free(y); free(b); free(got);
        }
    BE->free_weight(BE, W);
    return ok;
}

/* AWQ weights of `bits` bits, one per {out, in, group} of shapes[0..n). */
static void check_awq(int bits, const int (*shapes)[3], int n) {
    for (int i = 0; i < n; i++) {
        XfQuant q = xf_quant_awq(shapes[i][0], shapes[i][1], bits, shapes[i][2], rand01);
        char label[64];
        snprintf(label, sizeof label, "int%d [%d, %d] g%d", bits, shapes[i][0], shapes[i][1],
                 shapes[i][2]);
        CHECKF(check_weight(&q, label), "%s", label);
        xf_quant_free(&q);
    }
}

static void test_awq_int4(void) {
    static const int shapes[4][3] = {{64, 128, 128}, {24, 96, 32}, {136, 192, 64}, {200, 256, 128}};
    check_awq(4, shapes, 4);
}

static void test_awq_int8(void) {
    static const int shapes[3][3] = {{20, 64, 32}, {72, 128, 64}, {132, 256, 128}};
    check_awq(8, shapes, 3);
}

static void test_fp8(void) {
    FlabDType sdt[3] = {FLAB_F32, FLAB_BF16, FLAB_F16};
    for (int pc = 0; pc < 2; pc++)
        for (int d = 0; d < 3; d++) {
            XfQuant q = xf_quant_fp8(33 + 40 * pc, 77 + 64 * d, pc, sdt[d], rand01);
            char label[64];
            snprintf(label, sizeof label, "fp8 [%lld, %lld] per_channel %d scales %d",
                     (long long)q.d.out, (long long)q.d.in, pc, d);
            CHECKF(check_weight(&q, label), "%s", label);
            xf_quant_free(&q);
        }
}

static void test_bad_descriptors(void) {
    XfQuant q = xf_quant_awq(16, 64, 4, 32, rand01);
    FlabQuantDesc d = q.d;
    d.group = 48;                              /* 64 % 48 != 0 */
    CHECK(BE->upload_qweight(BE, "layer.qweight", &d) == NULL);
    CHECK(strstr(flab_errmsg(), "layer.qweight") != NULL);
    d = q.d;
    d.bits = 3;
    CHECK(BE->upload_qweight(BE, "layer.qweight", &d) == NULL);
    d = q.d;
    d.kind = FLAB_QUANT_FP8;
    d.n_scales = 5;
    CHECK(BE->upload_qweight(BE, "layer.weight", &d) == NULL);
    CHECK(strstr(flab_errmsg(), "scales") != NULL);
    xf_quant_free(&q);
}

int main(void) {
    BE = flab_backend_create("cpu", 2);
    if (!BE) { printf("FAIL backend: %s\n", flab_errmsg()); return 1; }
    RUN(test_awq_int4);
    RUN(test_awq_int8);
    RUN(test_fp8);
    RUN(test_bad_descriptors);
    flab_backend_destroy(BE);
    return TEST_SUMMARY();
}
