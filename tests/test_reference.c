/* tests/test_reference.c: the reference forward (model/reference.c) against
 * the goldens, then the fast forward against the reference on random-weight
 * models of shapes the fixture does not have: tied embeddings, Llama with
 * attention and MLP biases, explicit head_dim != hidden/heads, GQA ratios 1,
 * 3 and 4, bf16 / f16 / f32 storage, a reordered layer subset.
 * Tolerance: max |fast - ref| <= 1e-4 x max |ref| (float32 vs float64
 * accumulation, the same bound the goldens use). */
#include "tests/testlib.h"
#include "tests/xf_testutil.h"
#include "tests/xf_randmodel.h"
#include "model/reference.h"
#include "model/transformer.h"

static FlabBackend *BE;
static char tmpdir[256];

static void test_reference_vs_golden(void) {
    XfGolden g;
    REQUIRE(xf_golden_load(&g) == 0);
    ModelConfig cfg;
    SafeTensors *st;
    REQUIRE(model_config_load(XF_FIXTURE, &cfg) == 0 && st_open(XF_FIXTURE, &st) == 0);
    for (int i = 1; i <= 2; i++) {
        const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItem(g.json, "forward"), i);
        int n;
        int32_t *ids = xf_ids(cJSON_GetObjectItem(f, "ids"), &n);
        size_t cnt;
        const float *gold = xf_blob(&g, cJSON_GetObjectItem(f, "logits"), &cnt);
        float *lg = malloc(cnt * 4);
        CHECK(reference_logits(&cfg, st, ids, n, NULL, 0, lg) == 0);
        double err = xf_max_diff(lg, gold, cnt), scale = xf_max_abs(gold, cnt);
        printf("  reference, text %d: err %.3g x scale\n", i, err / scale);
        CHECKF(err <= 1e-5 * scale, "text %d: reference err %g", i, err);
        free(lg); free(ids);
    }
    st_close(st);
    model_config_free(&cfg);
    xf_golden_free(&g);
}

/* Fast vs reference logits of one sequence on the model in dir. */
static double fast_vs_ref(const char *dir, const int *layers, int n_layers, double *scale) {
    ModelConfig cfg;
    SafeTensors *st;
    Transformer *t;
    if (model_config_load(dir, &cfg) || st_open(dir, &st)) return INFINITY;
    if (transformer_create(&cfg, st, BE, &t)) {
        printf("  %s\n", flab_errmsg());
        return INFINITY;
    }
    int n = 23;
    int32_t ids[23];
    for (int i = 0; i < n; i++) ids[i] = (i * 37 + 5) % cfg.vocab_size;
    size_t cnt = (size_t)n * cfg.vocab_size;
    float *a = malloc(cnt * 4), *b = malloc(cnt * 4);
    const int32_t *idp = ids;
    TfBatch batch = {1, &idp, &n};
    TfForwardOpts o = {.layers = layers, .n_layers = n_layers};
    double err = INFINITY;
    if (!transformer_logits_host(t, &batch, layers ? &o : NULL, a) &&
        !reference_logits(&cfg, st, ids, n, layers, n_layers, b)) {
        err = xf_max_diff(a, b, cnt);
        *scale = xf_max_abs(b, cnt);
    }
    free(a); free(b);
    transformer_free(t);
    st_close(st);
    model_config_free(&cfg);
    return err;
}

static void check_shape(const char *name, const XfShape *m, const int *layers, int n_layers) {
    char dir[320];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    REQUIREF(xf_write_random_model(dir, m) == 0, "%s", flab_errmsg());
    double scale = 0, err = fast_vs_ref(dir, layers, n_layers, &scale);
    printf("  %s: max err %.3g = %.3g x scale\n", name, err, err / scale);
    CHECKF(err <= 1e-4 * scale, "%s: err %g, scale %g", name, err, scale);
}

static void test_qwen2_tied_gqa4_bf16(void) {
    XfShape m = {.tied = 1, .hidden = 64, .layers = 2, .heads = 4, .kv_heads = 1, .inter = 96,
                 .vocab = 300, .dtype = FLAB_BF16, .seed = 1};
    check_shape("qwen2-tied", &m, NULL, 0);
}

static void test_llama_biases_headdim_f16(void) {
    XfShape m = {.llama = 1, .attn_bias = 1, .mlp_bias = 1, .hidden = 96, .layers = 3,
                 .heads = 6, .kv_heads = 2, .head_dim = 24, .inter = 160, .vocab = 257,
                 .dtype = FLAB_F16, .seed = 2};
    check_shape("llama-bias-hd24", &m, NULL, 0);
    int layers[2] = {2, 0};                  /* a reordered subset */
    check_shape("llama-bias-hd24-subset", &m, layers, 2);
}

static void test_llama_plain_mha_f32(void) {
    XfShape m = {.llama = 1, .tied = 1, .hidden = 128, .layers = 2, .heads = 4, .kv_heads = 4,
                 .inter = 200, .vocab = 1000, .dtype = FLAB_F32, .seed = 3};
    check_shape("llama-mha-f32", &m, NULL, 0);
}

int main(void) {
    BE = flab_backend_create("cpu", 2);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/flab-test-reference-XXXXXX");
    if (!BE || !mkdtemp(tmpdir)) { printf("FAIL setup: %s\n", flab_errmsg()); return 1; }
    RUN(test_reference_vs_golden);
    RUN(test_qwen2_tied_gqa4_bf16);
    RUN(test_llama_biases_headdim_f16);
    RUN(test_llama_plain_mha_f32);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    flab_backend_destroy(BE);
    return TEST_SUMMARY();
}
