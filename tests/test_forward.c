/* tests/test_forward.c: the transformer on the CPU backend against the
 * tiny-qwen2 goldens (float64 reference from the bf16 weights, see
 * tests/fixtures/tiny-qwen2/README.md), plus self-consistency.
 *
 * Tolerances (the fixture README's, for a float32 implementation):
 *  logits      max |logit - golden| <= 1e-4 x max |golden logit| per text
 *  hidden      max |h - golden| <= 1e-4 x max |golden h| per text
 *  greedy      ids equal up to the first step whose golden margin <= 1e-3
 *  KL          |kl - golden| <= 1e-4 x golden + 1e-6
 *  batched vs one-at-a-time, KV-cache vs full recompute: 1e-5 x scale
 *    (same math, only summation order differs: GEMV vs sgemm blocking)
 *  f32 weights vs bf16: 1e-5 x scale (bf16 -> f32 is exact);
 *  f16 vs bf16: 1e-3 x scale (f16 holds bf16's 8-bit mantissa exactly but
 *    weights below 6.1e-5 become subnormal and lose bits). */
#include "tests/testlib.h"
#include "tests/xf_testutil.h"
#include "model/transformer.h"
#include "kernels/ref_ops.h"
#include <unistd.h>

static XfGolden G;
static FlabBackend *BE;
static Transformer *T;

static const cJSON *gj(const char *k) { return cJSON_GetObjectItem(G.json, k); }

/* ---- golden forward --------------------------------------------------------- */

static void test_golden_logits(void) {
    const cJSON *f;
    int i = 0;
    cJSON_ArrayForEach(f, gj("forward")) {
        int n;
        int32_t *ids = xf_ids(cJSON_GetObjectItem(f, "ids"), &n);
        size_t cnt;
        const float *gold = xf_blob(&G, cJSON_GetObjectItem(f, "logits"), &cnt);
        REQUIRE(gold && cnt == (size_t)n * 2048);
        float *lg = malloc(cnt * sizeof(float));
        const int32_t *idp = ids;
        TfBatch b = {1, &idp, &n};
        REQUIRE(transformer_logits_host(T, &b, NULL, lg) == 0);
        double err = xf_max_diff(lg, gold, cnt), scale = xf_max_abs(gold, cnt);
        printf("  text %d (%d tokens): max |logit err| %.3g = %.3g x scale\n", i, n, err,
               err / scale);
        CHECKF(err <= 1e-4 * scale, "text %d: err %g > 1e-4 x %g", i, err, scale);
        free(lg); free(ids);
        i++;
    }
    CHECK(i == 4);
}

static void test_golden_hidden(void) {
    const cJSON *f;
    int i = 0, L = 8, H = 192;
    FlabBuf *cap[9];
    cJSON_ArrayForEach(f, gj("forward")) {
        int n;
        int32_t *ids = xf_ids(cJSON_GetObjectItem(f, "ids"), &n);
        const float *gold = xf_blob(&G, cJSON_GetObjectItem(f, "last_hidden_after_layer"), NULL);
        for (int l = 0; l <= L; l++) cap[l] = BE->alloc(BE, (size_t)n * H);
        const int32_t *idp = ids;
        TfBatch b = {1, &idp, &n};
        TfForwardOpts o = {.capture = cap, .last_only = 1};
        const FlabBuf *lg;
        REQUIRE(transformer_forward(T, &b, &o, &lg) == 0);
        float *h = malloc((size_t)L * H * sizeof(float));
        for (int l = 0; l < L; l++)     /* after layer l = entering l + 1 */
            BE->download_f32(BE, h + l * H, cap[l + 1], (size_t)(n - 1) * H, H);
        double err = xf_max_diff(h, gold, (size_t)L * H), scale = xf_max_abs(gold, (size_t)L * H);
        printf("  text %d: max |hidden err| %.3g = %.3g x scale\n", i, err, err / scale);
        CHECKF(err <= 1e-4 * scale, "text %d: hidden err %g > 1e-4 x %g", i, err, scale);
        for (int l = 0; l <= L; l++) BE->free_buf(BE, cap[l]);
        free(h); free(ids);
        i++;
    }
}

static void test_golden_greedy(void) {
    const cJSON *g;
    int n = cJSON_GetArraySize(gj("greedy"));
    int32_t *ids[8], *gen[8];
    const int32_t *idp[8];
    int lens[8], n_gen[8];
    for (int i = 0; i < n; i++) {
        ids[i] = xf_ids(cJSON_GetObjectItem(cJSON_GetArrayItem(gj("greedy"), i), "prompt_ids"),
                        &lens[i]);
        idp[i] = ids[i];
    }
    TfBatch b = {n, idp, lens};
    TfGenerateOpts o = {.max_new_tokens = 48};
    REQUIRE(transformer_generate(T, &b, &o, gen, n_gen) == 0);
    int i = 0;
    cJSON_ArrayForEach(g, gj("greedy")) {
        int ng;
        int32_t *want = xf_ids(cJSON_GetObjectItem(g, "generated_ids"), &ng);
        const cJSON *m = cJSON_GetObjectItem(g, "top1_top2_margin");
        int checked = 0;
        for (int s = 0; s < ng; s++) {
            if (cJSON_GetArrayItem(m, s)->valuedouble <= 1e-3) break;
            CHECKF(s < n_gen[i] && gen[i][s] == want[s], "prompt %d step %d: got %d want %d",
                   i, s, s < n_gen[i] ? gen[i][s] : -1, want[s]);
            checked++;
        }
        if (checked == ng) CHECKF(n_gen[i] == ng, "prompt %d: %d tokens, golden %d", i, n_gen[i], ng);
        printf("  prompt %d: %d of %d golden tokens compared, %d generated\n", i, checked, ng,
               n_gen[i]);
        free(want); free(gen[i]); free(ids[i]);
        i++;
    }
}

/* ---- calibration KL: layer removal, greedy search, FFN keep ------------------ */

typedef struct {
    int n_seqs, len, rows;
    int32_t *ids[8];
    const int32_t *idp[8];
    int lens[8];
    FlabBuf *orig;              /* original logits [rows, V] */
    FlabBuf *cap[9];            /* residual entering each layer of the full model */
} Calib;

static Calib C;

static int calib_setup(void) {
    const cJSON *cal = gj("calibration"), *s;
    int i = 0;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(cal, "ids")) {
        C.ids[i] = xf_ids(s, &C.lens[i]);
        C.idp[i] = C.ids[i];
        C.rows += C.lens[i];
        i++;
    }
    C.n_seqs = i;
    C.orig = BE->alloc(BE, (size_t)C.rows * 2048);
    for (int l = 0; l <= 8; l++) C.cap[l] = BE->alloc(BE, (size_t)C.rows * 192);
    TfBatch b = {C.n_seqs, C.idp, C.lens};
    TfForwardOpts o = {.capture = C.cap};
    const FlabBuf *lg;
    if (transformer_forward(T, &b, &o, &lg)) return -1;
    return BE->copy(BE, C.orig, 0, lg, 0, (size_t)C.rows * 2048);
}

static void calib_free(void) {
    for (int i = 0; i < C.n_seqs; i++) free(C.ids[i]);
    BE->free_buf(BE, C.orig);
    for (int l = 0; l <= 8; l++) BE->free_buf(BE, C.cap[l]);
}

/* Mean KL(orig || model running `layers`), resuming from the captured
 * residual at the first layer that differs from the full model. */
static double calib_kl(const int *layers, int n_layers) {
    int start = 0;
    while (start < n_layers && layers[start] == start) start++;
    if (start == n_layers) start = 0;       /* e.g. only FFN masks changed */
    TfBatch b = {C.n_seqs, C.idp, C.lens};
    TfForwardOpts o = {.layers = layers, .n_layers = n_layers, .start_at = start,
                       .start_hidden = C.cap[start]};
    const FlabBuf *lg;
    if (transformer_forward(T, &b, &o, &lg)) return NAN;
    double *kl = malloc((size_t)C.rows * sizeof(double)), s = 0;
    if (BE->kl_rows(BE, kl, C.orig, lg, C.rows, 2048)) { free(kl); return NAN; }
    for (int r = 0; r < C.rows; r++) s += kl[r];
    free(kl);
    return s / C.rows;
}

static int kl_close(double got, double want) {
    return fabs(got - want) <= 1e-4 * fabs(want) + 1e-6;
}

/* Layer list of 0..7 without the layers in removed[0..n_removed). */
static int layers_without(int *out, const int *removed, int n_removed) {
    int n = 0;
    for (int l = 0; l < 8; l++) {
        int skip = 0;
        for (int j = 0; j < n_removed; j++) skip |= removed[j] == l;
        if (!skip) out[n++] = l;
    }
    return n;
}

static void test_layer_removal_kl(void) {
    const cJSON *want = cJSON_GetObjectItem(gj("calibration"), "layer_removal_kl");
    double worst = 0;
    for (int l = 0; l < 8; l++) {
        int layers[8], n = layers_without(layers, &l, 1);
        double got = calib_kl(layers, n), w = cJSON_GetArrayItem(want, l)->valuedouble;
        worst = fmax(worst, fabs(got - w) / w);
        CHECKF(kl_close(got, w), "layer %d: kl %.9g, golden %.9g", l, got, w);
    }
    printf("  max relative KL error %.3g\n", worst);
}

static void test_greedy_removal_kl(void) {
    const cJSON *round;
    int removed[8], n_removed = 0, checked = 0;
    cJSON_ArrayForEach(round, cJSON_GetObjectItem(gj("calibration"), "greedy_removal")) {
        const cJSON *cand;
        double best = INFINITY;
        int best_l = -1;
        cJSON_ArrayForEach(cand, cJSON_GetObjectItem(round, "candidates")) {
            int l = atoi(cand->string), layers[8];
            removed[n_removed] = l;
            int n = layers_without(layers, removed, n_removed + 1);
            double got = calib_kl(layers, n);
            CHECKF(kl_close(got, cand->valuedouble), "round %d layer %d: kl %.9g, golden %.9g",
                   n_removed, l, got, cand->valuedouble);
            if (got < best) { best = got; best_l = l; }
            checked++;
        }
        int want = cJSON_GetObjectItem(round, "removed")->valueint;
        CHECKF(best_l == want, "round %d: removed %d, golden %d", n_removed, best_l, want);
        removed[n_removed++] = want;
    }
    printf("  %d candidates over %d rounds\n", checked, n_removed);
}

static void test_ffn_keep_kl(void) {
    const char *names[] = {"top", "bottom", "middle"};
    const cJSON *kl = cJSON_GetObjectItem(gj("calibration"), "ffn_remove_128_every_layer_kl");
    const cJSON *kept = cJSON_GetObjectItem(gj("calibration"), "ffn_kept_indices");
    int32_t keep[512];
    int layers[8];
    for (int l = 0; l < 8; l++) layers[l] = l;
    for (int s = 0; s < 3; s++) {
        const cJSON *range = cJSON_GetObjectItem(kept, names[s]);
        int lo = cJSON_GetArrayItem(range, 0)->valueint, hi = cJSON_GetArrayItem(range, 1)->valueint;
        for (int i = lo; i <= hi; i++) keep[i - lo] = i;
        for (int l = 0; l < 8; l++) REQUIRE(transformer_set_ffn_keep(T, l, keep, hi - lo + 1) == 0);
        double got = calib_kl(layers, 8), w = cJSON_GetObjectItem(kl, names[s])->valuedouble;
        CHECKF(kl_close(got, w), "%s: kl %.9g, golden %.9g", names[s], got, w);
        printf("  %s: kl %.9g golden %.9g\n", names[s], got, w);
        for (int l = 0; l < 8; l++) transformer_set_ffn_keep(T, l, NULL, 0);
    }
}

/* The score helpers: mean KL of the model without layer 3 (golden), mean
 * CE against the reference ops on the downloaded logits, scored-row masks. */
static void test_score_helpers(void) {
    TfBatch b = {C.n_seqs, C.idp, C.lens};
    int layers[7] = {0, 1, 2, 4, 5, 6, 7};
    TfForwardOpts o = {.layers = layers, .n_layers = 7};
    double kl, ce, want = cJSON_GetArrayItem(cJSON_GetObjectItem(gj("calibration"),
                                                                 "layer_removal_kl"), 3)->valuedouble;
    REQUIRE(transformer_mean_kl(T, &b, &o, C.orig, NULL, &kl) == 0);
    CHECKF(kl_close(kl, want), "mean_kl %.9g, golden %.9g", kl, want);
    long n;
    REQUIRE(transformer_mean_ce(T, &b, NULL, NULL, &ce, &n) == 0);
    CHECK(n == C.rows - C.n_seqs);
    float *lg = malloc((size_t)C.rows * 2048 * 4);
    int32_t *tg = malloc((size_t)C.rows * 4);
    double *per = malloc((size_t)C.rows * sizeof(double)), sum = 0;
    BE->download_f32(BE, lg, C.orig, 0, (size_t)C.rows * 2048);
    for (int s = 0, r = 0; s < C.n_seqs; s++)
        for (int p = 0; p < C.lens[s]; p++, r++) tg[r] = p + 1 < C.lens[s] ? C.ids[s][p + 1] : -1;
    ref_cross_entropy(per, lg, tg, C.rows, 2048);
    for (int r = 0; r < C.rows; r++) sum += per[r];
    CHECKF(fabs(ce - sum / n) <= 1e-6 * sum / n, "mean_ce %.9g vs reference %.9g", ce, sum / n);
    printf("  mean CE of the full model on calibration: %.6f over %ld rows\n", ce, n);
    uint8_t *score = calloc((size_t)C.rows, 1);
    score[5] = 1;
    REQUIRE(transformer_mean_ce(T, &b, NULL, score, &ce, &n) == 0);
    CHECK(n == 1 && fabs(ce - per[5]) <= 1e-6 * per[5]);
    memset(score, 0, (size_t)C.rows);
    CHECK(transformer_mean_kl(T, &b, NULL, C.orig, score, &kl) == -1);
    free(lg); free(tg); free(per); free(score);
}

/* ---- self-consistency ------------------------------------------------------- */

static void test_batched_equals_single(void) {
    int n = cJSON_GetArraySize(gj("forward")), lens[4], total = 0;
    int32_t *ids[4];
    const int32_t *idp[4];
    for (int i = 0; i < n; i++) {
        ids[i] = xf_ids(cJSON_GetObjectItem(cJSON_GetArrayItem(gj("forward"), i), "ids"), &lens[i]);
        idp[i] = ids[i];
        total += lens[i];
    }
    float *all = malloc((size_t)total * 2048 * sizeof(float));
    TfBatch b = {n, idp, lens};
    REQUIRE(transformer_logits_host(T, &b, NULL, all) == 0);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t cnt = (size_t)lens[i] * 2048;
        float *one = malloc(cnt * sizeof(float));
        TfBatch b1 = {1, &idp[i], &lens[i]};
        REQUIRE(transformer_logits_host(T, &b1, NULL, one) == 0);
        double err = xf_max_diff(one, all + off, cnt), scale = xf_max_abs(one, cnt);
        CHECKF(err <= 1e-5 * scale, "text %d: batched differs by %g (scale %g)", i, err, scale);
        off += cnt;
        free(one); free(ids[i]);
    }
    free(all);
}

static void test_kv_decode_equals_full(void) {
    const cJSON *f = cJSON_GetArrayItem(gj("forward"), 2);
    int n;
    int32_t *ids = xf_ids(cJSON_GetObjectItem(f, "ids"), &n);
    float *full = malloc((size_t)n * 2048 * sizeof(float)), *row = malloc(2048 * sizeof(float));
    const int32_t *idp = ids;
    TfBatch b = {1, &idp, &n};
    REQUIRE(transformer_logits_host(T, &b, NULL, full) == 0);
    TfKvCache *kv = tf_kv_create(T, 2, n);
    REQUIRE(kv);
    int prefix = 10;                    /* prefill 10 tokens in slot 1, then one by one */
    int32_t slot[10], pos[10];
    for (int i = 0; i < prefix; i++) { slot[i] = 1; pos[i] = i; }
    const FlabBuf *lg;
    double worst = 0, scale = xf_max_abs(full, (size_t)n * 2048);
    REQUIRE(transformer_step(T, kv, ids, slot, pos, prefix, NULL, 0, NULL, &lg) == 0);
    for (int p = prefix; p < n; p++) {
        int32_t s1 = 1, p1 = p;
        REQUIRE(transformer_step(T, kv, ids + p, &s1, &p1, 1, NULL, 0, NULL, &lg) == 0);
        BE->download_f32(BE, row, lg, 0, 2048);
        worst = fmax(worst, xf_max_diff(row, full + (size_t)p * 2048, 2048));
    }
    printf("  decode vs full: max diff %.3g (scale %.3g)\n", worst, scale);
    CHECKF(worst <= 1e-5 * scale, "kv decode differs by %g (scale %g)", worst, scale);
    tf_kv_free(T, kv);
    free(full); free(row); free(ids);
}

/* Batched generation of the 3 golden prompts equals generating each alone;
 * with layer 2 removed, every generated token is the argmax of a
 * teacher-forced forward (same layer list) over prompt + generation. */
static void test_generate_batched_and_layer_subset(void) {
    int n = cJSON_GetArraySize(gj("greedy")), lens[8], n_gen[8], n1;
    int32_t *ids[8], *gen[8], *one;
    const int32_t *idp[8];
    for (int i = 0; i < n; i++) {
        ids[i] = xf_ids(cJSON_GetObjectItem(cJSON_GetArrayItem(gj("greedy"), i), "prompt_ids"),
                        &lens[i]);
        idp[i] = ids[i];
    }
    int layers[7] = {0, 1, 3, 4, 5, 6, 7};
    TfForwardOpts fo = {.layers = layers, .n_layers = 7};
    TfGenerateOpts o = {.max_new_tokens = 24, .model_opts = &fo};
    TfBatch b = {n, idp, lens};
    REQUIRE(transformer_generate(T, &b, &o, gen, n_gen) == 0);
    for (int i = 0; i < n; i++) {
        TfBatch b1 = {1, &idp[i], &lens[i]};
        REQUIRE(transformer_generate(T, &b1, &o, &one, &n1) == 0);
        CHECKF(n1 == n_gen[i] && !memcmp(one, gen[i], (size_t)n1 * 4),
               "prompt %d: batched and single generation differ", i);
        free(one);
        int len = lens[i] + n_gen[i] - 1, agree = 0;     /* last token is not fed */
        int32_t *all = malloc((size_t)len * 4), am[512];
        memcpy(all, ids[i], (size_t)lens[i] * 4);
        memcpy(all + lens[i], gen[i], (size_t)(n_gen[i] - 1) * 4);
        const int32_t *ap = all;
        TfBatch bt = {1, &ap, &len};
        const FlabBuf *lg;
        float margin[512];
        REQUIRE(transformer_forward(T, &bt, &fo, &lg) == 0 &&
                BE->argmax(BE, am, margin, lg, len, 2048) == 0);
        for (int s = 0; s < n_gen[i]; s++) {
            if (margin[lens[i] - 1 + s] <= 1e-3) break;
            CHECKF(am[lens[i] - 1 + s] == gen[i][s], "prompt %d step %d", i, s);
            agree++;
        }
        printf("  prompt %d: %d tokens without layer 2, %d checked by teacher forcing\n", i,
               n_gen[i], agree);
        free(all); free(gen[i]); free(ids[i]);
    }
}

/* ---- dtypes and broken checkpoints ------------------------------------------ */

static char tmpdir[256];

/* max |logits of T - logits of t2| on golden forward case k, *scale = max
 * |logits of T|; INFINITY when either forward fails. */
static double logits_diff(Transformer *t2, int k, double *scale) {
    const cJSON *f = cJSON_GetArrayItem(gj("forward"), k);
    int n;
    int32_t *ids = xf_ids(cJSON_GetObjectItem(f, "ids"), &n);
    const int32_t *idp = ids;
    TfBatch b = {1, &idp, &n};
    size_t cnt = (size_t)n * 2048;
    float *a = malloc(cnt * sizeof(float)), *c = malloc(cnt * sizeof(float));
    double err = INFINITY;
    if (!transformer_logits_host(T, &b, NULL, a) && !transformer_logits_host(t2, &b, NULL, c)) {
        err = xf_max_diff(a, c, cnt);
        *scale = xf_max_abs(a, cnt);
    }
    free(a); free(c); free(ids);
    return err;
}

static double logits_vs_bf16(FlabDType dt, double *scale) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, xf_dtype_str(dt));
    XfVariant v = {dt, NULL, NULL, 0};
    Transformer *t2;
    if (xf_write_variant(dir, &v) || transformer_load(dir, BE, &t2)) return INFINITY;
    double err = logits_diff(t2, 3, scale);
    transformer_free(t2);
    return err;
}

static void test_dtypes(void) {
    double s32 = 1, s16 = 1, s_bf = 1;
    double e32 = logits_vs_bf16(FLAB_F32, &s32), e16 = logits_vs_bf16(FLAB_F16, &s16);
    double ebf = logits_vs_bf16(FLAB_BF16, &s_bf);
    printf("  vs bf16: f32 %.3g, f16 %.3g, bf16 rewritten %.3g (x scale)\n", e32 / s32,
           e16 / s16, ebf / s_bf);
    CHECKF(e32 <= 1e-5 * s32, "f32 weights differ by %g", e32);
    CHECKF(e16 <= 1e-3 * s16, "f16 weights differ by %g", e16);
    CHECKF(ebf == 0, "rewritten bf16 weights differ by %g", ebf);
}

/* A Llama config with attention_bias + mlp_bias and all-zero o/gate/up/down
 * biases is the same function as the Qwen2 fixture: exact same logits. */
static void test_llama_with_biases(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/llama", tmpdir);
    XfVariant v = {FLAB_BF16, NULL, NULL, 1};
    REQUIRE(xf_write_variant(dir, &v) == 0);
    Transformer *t2;
    REQUIREF(transformer_load(dir, BE, &t2) == 0, "%s", flab_errmsg());
    const ModelConfig *c = transformer_config(t2);
    CHECK(c->o_bias && c->mlp_bias && c->qkv_bias);
    double scale;
    CHECK(logits_diff(t2, 1, &scale) == 0);
    transformer_free(t2);
    /* the same Llama config without the o_proj biases must name the tensor */
    XfVariant nob = {FLAB_BF16, "model.layers.0.self_attn.o_proj.bias", NULL, 1};
    snprintf(dir, sizeof dir, "%s/llama-nobias", tmpdir);
    REQUIRE(xf_write_variant(dir, &nob) == 0);
    CHECK(transformer_load(dir, BE, &t2) == -1);
    CHECK(strstr(flab_errmsg(), "model.layers.0.self_attn.o_proj.bias") != NULL);
}

static void expect_load_error(const XfVariant *v, const char *name, const char *what) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/broken-%s", tmpdir, what);
    REQUIRE(xf_write_variant(dir, v) == 0);
    Transformer *t2 = NULL;
    CHECK(transformer_load(dir, BE, &t2) == -1 && t2 == NULL);
    CHECKF(strstr(flab_errmsg(), name) != NULL, "error '%s' does not name %s", flab_errmsg(), name);
    printf("  %s: %s\n", what, flab_errmsg());
    transformer_free(t2);
}

static void test_missing_and_misshaped(void) {
    XfVariant miss = {FLAB_BF16, "model.layers.3.mlp.up_proj.weight", NULL, 0};
    expect_load_error(&miss, "model.layers.3.mlp.up_proj.weight", "missing");
    XfVariant bad = {FLAB_BF16, NULL, "model.layers.5.self_attn.k_proj.bias", 0};
    expect_load_error(&bad, "model.layers.5.self_attn.k_proj.bias", "misshaped");
    XfVariant head = {FLAB_BF16, "lm_head.weight", NULL, 0};   /* untied: required */
    expect_load_error(&head, "lm_head.weight", "no-lm-head");
}

static void test_bad_inputs(void) {
    int32_t bad = 5000;
    const int32_t *idp = &bad;
    int n = 1;
    TfBatch b = {1, &idp, &n};
    const FlabBuf *lg;
    CHECK(transformer_forward(T, &b, NULL, &lg) == -1);
    CHECK(strstr(flab_errmsg(), "5000") != NULL);
    int32_t ok = 5;
    idp = &ok;
    int layers[2] = {0, 9};
    TfForwardOpts o = {.layers = layers, .n_layers = 2};
    CHECK(transformer_forward(T, &b, &o, &lg) == -1);
    CHECK(strstr(flab_errmsg(), "layer 9") != NULL);
    int32_t keep = 600;
    CHECK(transformer_set_ffn_keep(T, 0, &keep, 1) == -1);
}

static void rm_rf(const char *dir) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    if (xf_golden_load(&G) || !(BE = flab_backend_create("cpu", 2)) ||
        transformer_load(XF_FIXTURE, BE, &T)) {
        printf("FAIL setup: %s\n", flab_errmsg());
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/flab-test-forward-XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("FAIL setup: mkdtemp\n"); return 1; }
    RUN(test_golden_logits);
    RUN(test_golden_hidden);
    RUN(test_golden_greedy);
    RUN(test_batched_equals_single);
    RUN(test_kv_decode_equals_full);
    RUN(test_generate_batched_and_layer_subset);
    if (calib_setup()) printf("FAIL calib_setup: %s\n", flab_errmsg());
    RUN(test_layer_removal_kl);
    RUN(test_greedy_removal_kl);
    RUN(test_ffn_keep_kl);
    RUN(test_score_helpers);
    calib_free();
    RUN(test_dtypes);
    RUN(test_llama_with_biases);
    RUN(test_missing_and_misshaped);
    RUN(test_bad_inputs);
    rm_rf(tmpdir);
    transformer_free(T);
    flab_backend_destroy(BE);
    xf_golden_free(&G);
    return TEST_SUMMARY();
}
