/* tests/test_ops.c: every op of the CPU backend against the reference ops
 * (kernels/ref_ops.c, float64 accumulation) on seeded random data.
 *
 * Tolerance: max |cpu - ref| <= 1e-5 x max |ref| (+1e-6 absolute for
 * outputs that can be ~0), except KL / cross-entropy: 1e-6 relative + 1e-9
 * (both accumulate in float64).  Rationale: the CPU ops compute in float32
 * with float32 or float64 sums; 1e-5 leaves ~100x headroom over the float32
 * rounding of sums of a few thousand terms.  Matmul is checked on the GEMV
 * path (rows <= 16, 4-row kernel + 1-row remainder) and the sgemm path, for bf16, f16 and f32 weights, with
 * and without bias and accumulate. */
#include "tests/testlib.h"
#include "tests/xf_randmodel.h"
#include "tests/xf_testutil.h"
#include "kernels/ops.h"
#include "kernels/ref_ops.h"

static FlabBackend *BE;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static float *rand_array(size_t n, float scale) { return xf_rand_array(&rng, n, scale); }

static FlabBuf *to_buf(const float *a, size_t n) {
    FlabBuf *b = BE->alloc(BE, n);
    BE->upload(BE, b, 0, a, n);
    return b;
}

static float *from_buf(const FlabBuf *b, size_t n) {
    float *a = malloc(n * sizeof(float));
    BE->download_f32(BE, a, b, 0, n);
    return a;
}

/* Compares n floats of buffer b with ref; frees nothing. */
static int close_to(const FlabBuf *b, const float *ref, size_t n, const char *what) {
    float *got = from_buf(b, n);
    double err = xf_max_diff(got, ref, n), scale = xf_max_abs(ref, n);
    free(got);
    if (err <= 1e-5 * scale + 1e-6) return 1;
    printf("  %s: max err %g, scale %g\n", what, err, scale);
    return 0;
}

/* A weight in dtype dt holding the values of w (rounded to dt); w is
 * overwritten with the rounded values so the reference sees the same. */
static FlabWeight *make_weight(float *w, int ndim, int64_t r, int64_t c, FlabDType dt,
                               void **store) {
    size_t n = (size_t)r * c;
    *store = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        if (dt == FLAB_F32) ((float *)*store)[i] = w[i];
        else if (dt == FLAB_BF16) w[i] = flab_bf16_to_f32(((uint16_t *)*store)[i] = flab_f32_to_bf16(w[i]));
        else w[i] = flab_f16_to_f32(((uint16_t *)*store)[i] = flab_f32_to_f16(w[i]));
    }
    int64_t shape[2] = {ndim == 2 ? r : c, c};
    return BE->upload_weight(BE, "w", dt, *store, ndim, shape);
}

static void test_matmul(void) {
    FlabDType dts[3] = {FLAB_BF16, FLAB_F16, FLAB_F32};
    int rows_list[6] = {1, 3, 5, 8, 17, 37}, in = 200, out = 300;   /* odd sizes: tails */
    for (int d = 0; d < 3; d++)
        for (int ri = 0; ri < 6; ri++)
            for (int variant = 0; variant < 2; variant++) {
                int rows = rows_list[ri];
                float *w = rand_array((size_t)out * in, 0.1f), *b = rand_array(out, 1);
                float *x = rand_array((size_t)rows * in, 1), *y = rand_array((size_t)rows * out, 1);
                void *ws, *bs = NULL;
                FlabWeight *W = make_weight(w, 2, out, in, dts[d], &ws);
                FlabWeight *B = variant ? make_weight(b, 1, 1, out, FLAB_F32, &bs) : NULL;
                FlabBuf *xb = to_buf(x, (size_t)rows * in), *yb = to_buf(y, (size_t)rows * out);
                REQUIRE(BE->matmul(BE, yb, xb, W, B, rows, variant) == 0);
                ref_matmul(y, x, w, variant ? b : NULL, rows, in, out, variant);
                char what[64];
                snprintf(what, sizeof what, "dtype %d rows %d variant %d", d, rows, variant);
                CHECKF(close_to(yb, y, (size_t)rows * out, what), "matmul %s", what);
                BE->free_weight(BE, W); BE->free_weight(BE, B);
                BE->free_buf(BE, xb); BE->free_buf(BE, yb);
                free(w); free(b); free(x); free(y); free(ws);
                if (variant) free(bs);
            }
}

static void test_embedding_rmsnorm(void) {
    int V = 50, D = 96, n = 7;
    float *tab = rand_array((size_t)V * D, 1), *g = rand_array(D, 1), out[7 * 96], ref[7 * 96];
    void *ts, *gs;
    FlabWeight *T = make_weight(tab, 2, V, D, FLAB_BF16, &ts), *G = make_weight(g, 1, 1, D, FLAB_F16, &gs);
    int32_t ids[7] = {0, 49, 3, 3, 17, 8, 1};
    FlabBuf *ob = BE->alloc(BE, (size_t)n * D);
    REQUIRE(BE->embedding(BE, ob, T, ids, n) == 0);
    ref_embedding(ref, tab, D, ids, n);
    CHECK(close_to(ob, ref, (size_t)n * D, "embedding"));
    memcpy(out, ref, sizeof ref);
    REQUIRE(BE->rmsnorm(BE, ob, ob, G, n, D, 1e-6f) == 0);     /* in place */
    ref_rmsnorm(ref, out, g, n, D, 1e-6f);
    CHECK(close_to(ob, ref, (size_t)n * D, "rmsnorm"));
    ids[2] = 50;
    CHECK(BE->embedding(BE, ob, T, ids, n) == -1);
    BE->free_buf(BE, ob); BE->free_weight(BE, T); BE->free_weight(BE, G);
    free(tab); free(g); free(ts); free(gs);
}

/* rope + kv_store + attention on a packed batch of 3 sequences in a cache
 * of 4 slots (GQA 6 heads over 2 kv heads), prefill then decode rows. */
static void test_attention_path(void) {
    int H = 6, KV = 2, hd = 24, max_len = 20, n_slots = 4, n = 12;  /* hd: AVX2 16 + 8 tail */
    int32_t slot[12] = {0, 0, 0, 0, 0, 2, 2, 2, 3, 3, 3, 3};
    int32_t pos[12] = {0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3};
    FlabRows rows = {n, slot, pos};
    size_t qn = (size_t)n * H * hd, kn = (size_t)n * KV * hd;
    size_t cn = (size_t)n_slots * max_len * KV * hd;
    float *q = rand_array(qn, 1), *k = rand_array(kn, 1), *v = rand_array(kn, 1);
    float *ck = calloc(cn, 4), *cv = calloc(cn, 4), *out = calloc(qn, 4);
    FlabBuf *qb = to_buf(q, qn), *kb = to_buf(k, kn), *vb = to_buf(v, kn);
    FlabBuf *ckb = BE->alloc(BE, cn), *cvb = BE->alloc(BE, cn), *ob = BE->alloc(BE, qn);
    REQUIRE(BE->rope(BE, qb, &rows, H, hd, 10000.0f) == 0);
    REQUIRE(BE->rope(BE, kb, &rows, KV, hd, 10000.0f) == 0);
    ref_rope(q, pos, n, H, hd, 10000.0f);
    ref_rope(k, pos, n, KV, hd, 10000.0f);
    CHECK(close_to(qb, q, qn, "rope q"));
    CHECK(close_to(kb, k, kn, "rope k"));
    REQUIRE(BE->kv_store(BE, ckb, cvb, kb, vb, &rows, KV, hd, max_len) == 0);
    ref_kv_store(ck, cv, k, v, slot, pos, n, KV, hd, max_len);
    CHECK(close_to(ckb, ck, cn, "kv_store k"));
    REQUIRE(BE->attention(BE, ob, qb, ckb, cvb, &rows, H, KV, hd, max_len) == 0);
    ref_attention(out, q, ck, cv, slot, pos, n, H, KV, hd, max_len);
    CHECK(close_to(ob, out, qn, "attention"));
    int32_t bad_pos = max_len;
    FlabRows bad = {1, slot, &bad_pos};
    CHECK(BE->attention(BE, ob, qb, ckb, cvb, &bad, H, KV, hd, max_len) == -1);
    FlabBuf *bs[] = {qb, kb, vb, ckb, cvb, ob};
    for (int i = 0; i < 6; i++) BE->free_buf(BE, bs[i]);
    free(q); free(k); free(v); free(ck); free(cv); free(out);
}

static void test_elementwise(void) {
    size_t n = 40000;            /* > 2 swiglu chunks of 16384, the last partial */
    float *g = rand_array(n, 4), *u = rand_array(n, 1), *ref = malloc(n * 4);
    FlabBuf *gb = to_buf(g, n), *ub = to_buf(u, n);
    REQUIRE(BE->swiglu(BE, gb, gb, ub, n) == 0);
    ref_swiglu(ref, g, u, n);
    CHECK(close_to(gb, ref, n, "swiglu"));
    REQUIRE(BE->add(BE, gb, ub, n) == 0);
    for (size_t i = 0; i < n; i++) ref[i] += u[i];
    CHECK(close_to(gb, ref, n, "add"));
    float mask[100];
    for (int c = 0; c < 100; c++) mask[c] = c % 3 ? 1.0f : 0.0f;
    FlabBuf *mb = to_buf(mask, 100);
    REQUIRE(BE->mul_cols(BE, gb, mb, (int)(n / 100), 100) == 0);
    for (size_t i = 0; i < n; i++) ref[i] *= mask[i % 100];
    CHECK(close_to(gb, ref, n, "mul_cols"));
    int32_t idx[3] = {9, 0, 4};
    FlabBuf *ob = BE->alloc(BE, 300);
    REQUIRE(BE->gather_rows(BE, ob, gb, idx, 3, 100) == 0);
    float want[300];
    for (int i = 0; i < 3; i++) memcpy(want + i * 100, ref + idx[i] * 100, 400);
    CHECK(close_to(ob, want, 300, "gather_rows"));
    BE->free_buf(BE, gb); BE->free_buf(BE, ub); BE->free_buf(BE, mb); BE->free_buf(BE, ob);
    free(g); free(u); free(ref);
}

static void test_softmax_family(void) {
    int rows = 9, cols = 3001;
    size_t n = (size_t)rows * cols;
    float *p = rand_array(n, 8), *q = rand_array(n, 8), *ref = malloc(n * 4);
    for (size_t i = 0; i < n; i++) q[i] = 0.7f * p[i] + 0.3f * q[i];   /* KL not huge */
    FlabBuf *pb = to_buf(p, n), *qb = to_buf(q, n), *ob = BE->alloc(BE, n);
    REQUIRE(BE->softmax(BE, ob, pb, rows, cols) == 0);
    ref_softmax(ref, p, rows, cols);
    CHECK(close_to(ob, ref, n, "softmax"));
    REQUIRE(BE->log_softmax(BE, ob, pb, rows, cols) == 0);
    ref_log_softmax(ref, p, rows, cols);
    CHECK(close_to(ob, ref, n, "log_softmax"));
    double kl[9], klr[9], ce[9], cer[9];
    REQUIRE(BE->kl_rows(BE, kl, pb, qb, rows, cols) == 0);
    ref_kl_rows(klr, p, q, rows, cols);
    int32_t tg[9] = {0, 5, 3000, -1, 7, 8, 9, 10, 11}, am[9], amr[9];
    REQUIRE(BE->cross_entropy(BE, ce, pb, tg, rows, cols) == 0);
    ref_cross_entropy(cer, p, tg, rows, cols);
    float margin[9];
    REQUIRE(BE->argmax(BE, am, margin, pb, rows, cols) == 0);
    ref_argmax(amr, p, rows, cols);
    for (int r = 0; r < rows; r++) {
        CHECKF(fabs(kl[r] - klr[r]) <= 1e-6 * fabs(klr[r]) + 1e-9, "kl row %d: %g vs %g", r, kl[r], klr[r]);
        CHECKF(fabs(ce[r] - cer[r]) <= 1e-6 * fabs(cer[r]) + 1e-9, "ce row %d: %g vs %g", r, ce[r], cer[r]);
        CHECK(am[r] == amr[r] && margin[r] >= 0);
    }
    CHECK(ce[3] == 0);
    tg[0] = cols;
    CHECK(BE->cross_entropy(BE, ce, pb, tg, rows, cols) == -1);
    BE->free_buf(BE, pb); BE->free_buf(BE, qb); BE->free_buf(BE, ob);
    free(p); free(q); free(ref);
}

static void test_memory_bounds(void) {
    FlabBuf *b = BE->alloc(BE, 10);
    float x[20] = {0};
    CHECK(BE->upload(BE, b, 5, x, 6) == -1);
    CHECK(BE->download_f32(BE, x, b, 0, 11) == -1);
    CHECK(BE->upload(BE, b, 0, x, 10) == 0);
    BE->free_buf(BE, b);
    CHECK(flab_backend_create("tpu", 1) == NULL && strstr(flab_errmsg(), "tpu"));
    FlabBackend *cu = flab_backend_create("cuda", 1);   /* no GPU: a clear error */
    if (cu) flab_backend_destroy(cu);
    else CHECK(strstr(flab_errmsg(), "--device cuda") != NULL);
    FlabBackend *a = flab_backend_create("auto", 1);   /* cpu here unless a GPU exists */
    CHECK(a != NULL);
    flab_backend_destroy(a);
}

int main(void) {
    BE = flab_backend_create("cpu", 2);
    if (!BE) { printf("FAIL setup: %s\n", flab_errmsg()); return 1; }
    RUN(test_matmul);
    RUN(test_embedding_rmsnorm);
    RUN(test_attention_path);
    RUN(test_elementwise);
    RUN(test_softmax_family);
    RUN(test_memory_bounds);
    flab_backend_destroy(BE);
    return TEST_SUMMARY();
}
