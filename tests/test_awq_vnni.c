/* tests/test_awq_vnni.c: the CPU backend's AVX-512 VNNI path for AWQ
 * weights (kernels/cpu/cpu_awq_vnni.c: repacked INT4 / INT8 codes, x as
 * three integer digit planes per group) against the reference matmul on the
 * dequantised weights (kernels/ref_ops.c, float64), in the cases that path
 * adds to tests/test_qmatmul.c:
 *  - group sizes 8, 16, 40 (a multiple of 8 but not of 16: the half-width
 *    step of the digit preparation) and outputs not a multiple of 64 (the
 *    padded superblock);
 *  - activations with a wide range inside a group (one 1e4 among 1e-3s),
 *    a group below 2^-100 (taken as zero), an all-zero group;
 *  - a NaN or an Inf in x: the call falls back to the float kernel, so the
 *    outputs are non-finite as the reference's, and the other rows stay
 *    right;
 *  - weights in a read-only file mapping (file_mapped = 1): after the
 *    repack the mapping's pages are no longer resident in this process
 *    (/proc/self/smaps) and still read back the same bytes;
 *  - matmul_multi over AWQ weights (one digit preparation, one pool run)
 *    equals separate matmul calls bit for bit.
 * On a CPU without AVX-512 VNNI (or FLAB_CPU_NO_AVX512=1) the same cases
 * run on the float kernels and the page-drop check prints SKIP.
 *
 * Tolerance: as tests/test_qmatmul.c, max |cpu - ref| <= 1e-5 x max |ref| +
 * 1e-6.  The digit planes represent x to 2^-22 of its group's largest |x|;
 * summed over a few hundred products that stays under 1e-6 relative here
 * (measured ~1e-7). */
#include "tests/testlib.h"
#include "tests/xf_quant.h"
#include "tests/xf_testutil.h"
#include "kernels/cpu/cpu_internal.h"
#include "kernels/ref_ops.h"
#include "util/error.h"
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static FlabBackend *BE;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static float rand01(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0));
}

/* y = x W^T on the backend (rows of x), into a malloc'd array. */
static float *run(FlabWeight *W, const float *x, int rows, int in, int out) {
    FlabBuf *xb = BE->alloc(BE, (size_t)rows * in), *yb = BE->alloc(BE, (size_t)rows * out);
    BE->upload(BE, xb, 0, x, (size_t)rows * in);
    float *y = malloc((size_t)rows * out * sizeof(float));
    if (BE->matmul(BE, yb, xb, W, NULL, rows, 0)) {
        free(y);
        y = NULL;
    } else {
        BE->download_f32(BE, y, yb, 0, (size_t)rows * out);
    }
    BE->free_buf(BE, xb);
    BE->free_buf(BE, yb);
    return y;
}

/* 1 if W (from q) times x matches the reference within the tolerance. */
static int close_to_ref(const XfQuant *q, FlabWeight *W, const float *x, int rows,
                        const char *label) {
    int out = (int)q->d.out, in = (int)q->d.in;
    float *ref = malloc((size_t)rows * out * sizeof(float));
    ref_matmul(ref, x, q->deq, NULL, rows, in, out, 0);
    float *got = run(W, x, rows, in, out);
    double err = got ? xf_max_diff(got, ref, (size_t)rows * out) : INFINITY;
    double scale = xf_max_abs(ref, (size_t)rows * out);
    int ok = err <= 1e-5 * scale + 1e-6;
    if (!ok) printf("  %s rows %d: max err %g scale %g\n", label, rows, err, scale);
    free(ref);
    free(got);
    return ok;
}

static float *rand_x(int rows, int in) {
    float *x = malloc((size_t)rows * in * sizeof(float));
    for (int i = 0; i < rows * in; i++) x[i] = rand01() * 2 - 1;
    return x;
}

static void test_group_sizes(void) {
    int cases[6][4] = {{72, 80, 40, 4}, {64, 64, 8, 4}, {40, 96, 16, 4},
                       {24, 64, 8, 8}, {72, 80, 40, 8}, {136, 48, 16, 8}};
    for (int c = 0; c < 6; c++) {
        int out = cases[c][0], in = cases[c][1], group = cases[c][2], bits = cases[c][3];
        XfQuant q = xf_quant_awq(out, in, bits, group, rand01);
        FlabWeight *W = BE->upload_qweight(BE, "w", &q.d);
        REQUIREF(W, "upload: %s", flab_errmsg());
        char label[80];
        snprintf(label, sizeof label, "int%d [%d, %d] g%d", bits, out, in, group);
        int rows_list[4] = {1, 3, 4, 9};
        for (int i = 0; i < 4; i++) {
            float *x = rand_x(rows_list[i], in);
            CHECKF(close_to_ref(&q, W, x, rows_list[i], label), "%s rows %d", label, rows_list[i]);
            free(x);
        }
        BE->free_weight(BE, W);
        xf_quant_free(&q);
    }
}

static void test_wide_range_x(void) {
    for (int bits = 4; bits <= 8; bits += 4) {
        XfQuant q = xf_quant_awq(128, 256, bits, 64, rand01);
        FlabWeight *W = BE->upload_qweight(BE, "w", &q.d);
        REQUIRE(W);
        float x[2 * 256];
        for (int k = 0; k < 512; k++) {
            int g = (k % 256) / 64;
            x[k] = g == 0 ? (k % 64 == 5 ? 1e4f : (rand01() - 0.5f) * 2e-3f)   /* one outlier */
                 : g == 1 ? (rand01() - 0.5f) * 1e-31f                        /* below 2^-100 */
                 : g == 2 ? 0.0f
                          : rand01() * 2 - 1;
        }
        CHECK(close_to_ref(&q, W, x, 1, "wide range"));
        CHECK(close_to_ref(&q, W, x, 2, "wide range"));
        /* The outlier's group alone: the small values still count at their
         * own scale (error relative to the group's result, not to 1e4). */
        for (int k = 0; k < 512; k++) x[k] = (k % 256) < 64 && k % 64 != 5 ? x[k] : 0.0f;
        CHECK(close_to_ref(&q, W, x, 1, "small values"));
        BE->free_weight(BE, W);
        xf_quant_free(&q);
    }
}

static void test_nonfinite_x(void) {
    XfQuant q = xf_quant_awq(64, 128, 4, 32, rand01);
    FlabWeight *W = BE->upload_qweight(BE, "w", &q.d);
    REQUIRE(W);
    float bad[2] = {NAN, INFINITY};
    for (int b = 0; b < 2; b++) {
        float *x = rand_x(2, 128);
        x[128 + 77] = bad[b];                      /* row 1 only */
        float *got = run(W, x, 2, 128, 64), ref[2 * 64];
        ref_matmul(ref, x, q.deq, NULL, 2, 128, 64, 0);
        REQUIRE(got);
        for (int o = 0; o < 64; o++) {
            CHECKF(!isfinite(got[64 + o]) && !isfinite(ref[64 + o]), "%s: output %d = %g",
                   b ? "inf" : "nan", o, got[64 + o]);
            CHECKF(fabsf(got[o] - ref[o]) <= 1e-5f * fabsf(ref[o]) + 1e-4f,
                   "finite row: output %d = %g, ref %g", o, got[o], ref[o]);
        }
        if (b == 0)
            for (int o = 0; o < 64; o++) CHECKF(isnan(got[64 + o]), "nan: output %d = %g", o, got[64 + o]);
        free(got);
        free(x);
    }
    BE->free_weight(BE, W);
    xf_quant_free(&q);
}

/* Resident kB of the mapping that starts at map (/proc/self/smaps; mincore
 * would report the page cache, which keeps the pages). */
static long mapping_rss_kb(const void *map) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    long kb = -1;
    int in_it = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2) in_it = start == (uintptr_t)map;
        else if (in_it && sscanf(line, "Rss: %ld kB", &kb) == 1) break;
    }
    if (f) fclose(f);
    return kb;
}

static void test_file_mapped_pages_dropped(void) {
    int out = 512, in = 1024;                       /* qweight: 256 KB, 64 pages */
    XfQuant q = xf_quant_awq(out, in, 4, 128, rand01);
    size_t nbytes = (size_t)in * out / 2;
    char path[] = "/tmp/flab_awq_vnniXXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, q.qweight, nbytes) == (ssize_t)nbytes);
    void *map = mmap(NULL, nbytes, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    unlink(path);
    REQUIRE(map != MAP_FAILED);
    volatile unsigned sum = 0;
    for (size_t i = 0; i < nbytes; i += 64) sum += ((const unsigned char *)map)[i];  /* fault in */
    long before = mapping_rss_kb(map);
    FlabQuantDesc d = q.d;
    d.qweight = map;
    d.file_mapped = 1;
    FlabWeight *W = BE->upload_qweight(BE, "w", &d);
    REQUIRE(W);
    long after = mapping_rss_kb(map);
    if (cpu_have_avx512vnni())
        CHECKF(before >= 256 && after == 0, "mapping resident %ld kB before the repack, %ld kB "
               "after", before, after);
    else
        printf("SKIP test_file_mapped_pages_dropped: the VNNI path is off (no AVX-512 VNNI, or "
               "FLAB_CPU_NO_AVX512 / FLAB_CPU_NO_AVX2 set): the float kernel reads the mapping\n");
    float *x = rand_x(7, in);
    CHECK(close_to_ref(&q, W, x, 1, "file mapped"));
    CHECK(close_to_ref(&q, W, x, 7, "file mapped"));
    CHECK(memcmp(map, q.qweight, nbytes) == 0);     /* refaulted from the file */
    free(x);
    BE->free_weight(BE, W);
    munmap(map, nbytes);
    xf_quant_free(&q);
}

/* matmul_multi over AWQ weights (q/k/v-like: same in, different out; one
 * with another group size, so not fused) equals separate matmul calls
 * bit for bit, with biases, for decode and prefill rows. */
static void test_matmul_multi(void) {
    int outs[3] = {128, 24, 72}, groups[3] = {32, 32, 64}, in = 128;
    XfQuant q[3];
    FlabWeight *W[3], *B[3];
    float *b[3];
    for (int i = 0; i < 3; i++) {
        q[i] = xf_quant_awq(outs[i], in, i == 1 ? 8 : 4, groups[i], rand01);
        W[i] = BE->upload_qweight(BE, "w", &q[i].d);
        b[i] = rand_x(1, outs[i]);
        int64_t shape[1] = {outs[i]};
        B[i] = BE->upload_weight(BE, "b", FLAB_F32, b[i], 1, shape);
        REQUIRE(W[i] && B[i]);
    }
    int rows_list[3] = {1, 4, 6};
    for (int ri = 0; ri < 3; ri++)
        for (int n = 2; n <= 3; n++) {      /* n = 2: fusable; 3: group 64 joins */
            int rows = rows_list[ri];
            float *x = rand_x(rows, in);
            FlabBuf *xb = BE->alloc(BE, (size_t)rows * in), *yb[3], *sb[3];
            BE->upload(BE, xb, 0, x, (size_t)rows * in);
            for (int i = 0; i < n; i++) {
                yb[i] = BE->alloc(BE, (size_t)rows * outs[i]);
                sb[i] = BE->alloc(BE, (size_t)rows * outs[i]);
                CHECK(BE->matmul(BE, sb[i], xb, W[i], B[i], rows, 0) == 0);
            }
            CHECK(BE->matmul_multi(BE, n, yb, xb, (const FlabWeight *const *)W,
                                   (const FlabWeight *const *)B, rows) == 0);
            for (int i = 0; i < n; i++) {
                size_t m = (size_t)rows * outs[i];
                float *got = malloc(m * sizeof(float)), *want = malloc(m * sizeof(float));
                BE->download_f32(BE, got, yb[i], 0, m);
                BE->download_f32(BE, want, sb[i], 0, m);
                CHECKF(memcmp(got, want, m * sizeof(float)) == 0, "rows %d n %d weight %d", rows,
                       n, i);
                free(got);
                free(want);
                BE->free_buf(BE, yb[i]);
                BE->free_buf(BE, sb[i]);
            }
            BE->free_buf(BE, xb);
            free(x);
        }
    for (int i = 0; i < 3; i++) {
        BE->free_weight(BE, W[i]);
        BE->free_weight(BE, B[i]);
        free(b[i]);
        xf_quant_free(&q[i]);
    }
}

int main(void) {
    (void)xf_quant_fp8;                             /* FP8 is not repacked */
    BE = flab_backend_create("cpu", 2);
    if (!BE) { printf("FAIL backend: %s\n", flab_errmsg()); return 1; }
    printf("# AWQ kernel: %s\n", cpu_have_avx512vnni() ? "AVX-512 VNNI (repacked)"
                                                       : "float (checkpoint layout)");
    RUN(test_group_sizes);
    RUN(test_wide_range_x);
    RUN(test_nonfinite_x);
    RUN(test_file_mapped_pages_dropped);
    RUN(test_matmul_multi);
    flab_backend_destroy(BE);
    return TEST_SUMMARY();
}
