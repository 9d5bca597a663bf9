/* tests/test_cpu_attention.c: the CPU attention's blocked AVX2 paths (8
 * keys per step for the scores, 64 output floats held in registers for the
 * weighted sum of V when head_dim % 64 == 0) against the float64 reference
 * (kernels/ref_ops.c), on sequences long enough to use them.
 *
 * Cases: head_dim 64 (Qwen2-0.5B), 128 (Qwen2-7B / CodeQwen), 40 (multiple
 * of 8, not of 64: blocked scores, plain weighted sum); GQA 6:2; two
 * sequences of 37 and 21 rows packed in one call (prefill: 8-key blocks
 * plus tails) followed by one decode row each at positions 37 and 21.
 * Tolerance as tests/test_ops.c: max |cpu - ref| <= 1e-5 x max |ref| + 1e-6.
 * With FLAB_CPU_NO_AVX2=1 the same cases check the scalar path. */
#include "tests/testlib.h"
#include "tests/xf_randmodel.h"
#include "kernels/ops.h"
#include "kernels/ref_ops.h"
#include <math.h>
#include <stdint.h>

static uint64_t rng = 0x13198A2E03707344ull;

static float *rand_array(size_t n, float scale) { return xf_rand_array(&rng, n, scale); }

/* Stores k/v of `rows` into the cache and compares attention with the
 * reference (which sees the same cache contents). */
static int attend_matches(FlabBackend *be, FlabBuf *ckb, FlabBuf *cvb, float *ck, float *cv,
                          const FlabRows *rows, int H, int KV, int hd, int max_len) {
    size_t qn = (size_t)rows->n * H * hd, kn = (size_t)rows->n * KV * hd;
    float *q = rand_array(qn, 2), *k = rand_array(kn, 2), *v = rand_array(kn, 1);
    float *ref = malloc(qn * 4), *got = malloc(qn * 4);
    FlabBuf *qb = be->alloc(be, qn), *kb = be->alloc(be, kn), *vb = be->alloc(be, kn);
    FlabBuf *ob = be->alloc(be, qn);
    be->upload(be, qb, 0, q, qn);
    be->upload(be, kb, 0, k, kn);
    be->upload(be, vb, 0, v, kn);
    int ok = be->kv_store(be, ckb, cvb, kb, vb, rows, KV, hd, max_len) == 0 &&
             be->attention(be, ob, qb, ckb, cvb, rows, H, KV, hd, max_len) == 0;
    ref_kv_store(ck, cv, k, v, rows->slot, rows->pos, rows->n, KV, hd, max_len);
    ref_attention(ref, q, ck, cv, rows->slot, rows->pos, rows->n, H, KV, hd, max_len);
    be->download_f32(be, got, ob, 0, qn);
    double err = 0, scale = 0;
    for (size_t i = 0; i < qn; i++) {
        err = fmax(err, fabs((double)got[i] - ref[i]));
        scale = fmax(scale, fabs((double)ref[i]));
    }
    if (!(err <= 1e-5 * scale + 1e-6)) {
        printf("  hd %d rows %d: max err %g, scale %g\n", hd, rows->n, err, scale);
        ok = 0;
    }
    FlabBuf *bs[] = {qb, kb, vb, ob};
    for (int i = 0; i < 4; i++) be->free_buf(be, bs[i]);
    free(q); free(k); free(v); free(ref); free(got);
    return ok;
}

static int prefill_then_decode(int hd, int threads) {
    int H = 6, KV = 2, max_len = 40, n_slots = 2, n = 37 + 21;
    FlabBackend *be = flab_backend_create("cpu", threads);
    size_t cn = (size_t)n_slots * max_len * KV * hd;
    float *ck = calloc(cn, 4), *cv = calloc(cn, 4);
    FlabBuf *ckb = be->alloc(be, cn), *cvb = be->alloc(be, cn);
    int32_t slot[58], pos[58];
    for (int r = 0; r < n; r++) {
        slot[r] = r < 37 ? 0 : 1;
        pos[r] = r < 37 ? r : r - 37;
    }
    FlabRows pre = {n, slot, pos};
    int32_t dslot[2] = {0, 1}, dpos[2] = {37, 21};
    FlabRows dec = {2, dslot, dpos};
    int ok = attend_matches(be, ckb, cvb, ck, cv, &pre, H, KV, hd, max_len) &&
             attend_matches(be, ckb, cvb, ck, cv, &dec, H, KV, hd, max_len);
    be->free_buf(be, ckb); be->free_buf(be, cvb);
    free(ck); free(cv);
    flab_backend_destroy(be);
    return ok;
}

static void test_head_dim_64(void) {
    CHECK(prefill_then_decode(64, 2));
    CHECK(prefill_then_decode(64, 1));
}

static void test_head_dim_128(void) { CHECK(prefill_then_decode(128, 2)); }

static void test_head_dim_40(void) { CHECK(prefill_then_decode(40, 2)); }

int main(void) {
    RUN(test_head_dim_64);
    RUN(test_head_dim_128);
    RUN(test_head_dim_40);
    return TEST_SUMMARY();
}
