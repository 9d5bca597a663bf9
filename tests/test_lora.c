/* tests/test_lora.c: the LoRA backward pass (model/lora*.c).
 *  - golden: tiny-qwen2 + its PEFT adapter (r 4, alpha 8, all seven
 *    modules): the loss of golden.json `lora` within 1e-5 relative and each
 *    of the 112 gradient tensors of lora_grads.safetensors within 1e-3
 *    relative L2 (the tolerances; float32 vs a float64 reference).
 *  - finite differences on a random Llama-with-biases model (float32
 *    weights, MHA + GQA, packed batch of 2 sequences, masked rows, dropout
 *    off): central differences in float64 of... the float32 loss, so 2e-2
 *    relative on the larger entries (step 1e-2 on a loss of order 1).
 *  - AdamW step, schedule, adapter write/read round trip. */
#include "model/lora_internal.h"
#include "testlib.h"
#include "xf_randmodel.h"
#include "xf_testutil.h"
#include <math.h>

static LoraModel *fixture_model(void) {
    LoraConfig lc = {4, 8.0, 0.0, (1u << LORA_NMOD) - 1};
    LoraModel *m;
    if (lora_model_create(XF_FIXTURE, &lc, 1, &m)) return NULL;
    if (lora_adapter_load(m, XF_FIXTURE "/lora_adapter_model.safetensors",
                          XF_FIXTURE "/lora_adapter_config.json")) {
        lora_model_free(m);
        return NULL;
    }
    return m;
}

static double rel_l2(const float *a, const float *b, size_t n) {
    double d = 0, g = 0;
    for (size_t i = 0; i < n; i++) { d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]); g += (double)b[i] * b[i]; }
    return sqrt(d) / (sqrt(g) + 1e-30);
}

static void test_golden_loss_and_grads(void) {
    XfGolden g;
    REQUIREF(!xf_golden_load(&g), "%s", flab_errmsg());
    const cJSON *lj = cJSON_GetObjectItem(g.json, "lora");
    int n;
    int32_t *ids = xf_ids(cJSON_GetObjectItem(lj, "ids"), &n);
    double gold = cJSON_GetObjectItem(lj, "loss")->valuedouble;
    LoraModel *m = fixture_model();
    SafeTensors *gs = NULL;
    if (!m || st_open_file(XF_FIXTURE "/lora_grads.safetensors", &gs)) {
        CHECKF(0, "%s", flab_errmsg());
        goto out;
    }
    LoraBatch b = {1, ids, &n, NULL};
    double sum;
    long cnt;
    lora_zero_grad(m);
    REQUIREF(!lora_step_fwd_bwd(m, &b, 0, 0, &sum, &cnt), "%s", flab_errmsg());
    CHECK(cnt == n - 1);
    double loss = sum / cnt, worst = 0;
    CHECKF(fabs(loss - gold) <= 1e-5 * gold, "loss %.9f vs golden %.9f", loss, gold);
    int checked = 0;
    for (int l = 0; l < m->ck.cfg.num_hidden_layers; l++)
        for (int i = 0; i < LORA_NMOD; i++)
            for (int ab = 0; ab < 2; ab++) {
                LoraLinear *li = lora_linear(m, l, i);
                char name[200];
                snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.lora_%c.weight", l,
                         lora_module_paths[i], ab ? 'B' : 'A');
                const StTensor *t = st_find(gs, name);
                CHECKF(t, "%s missing", name);
                if (!t) continue;
                size_t cntel = t->nbytes / 4;
                double e = rel_l2(ab ? li->gB : li->gA, t->data, cntel);
                if (e > worst) worst = e;
                CHECKF(e <= 1e-3, "%s: rel L2 %.3g", name, e);
                checked++;
            }
    CHECK(checked == 112);
    printf("# lora golden: loss %.10f (golden %.10f, rel %.2g), worst grad rel L2 %.3g over %d\n",
           loss, gold, fabs(loss - gold) / gold, worst, checked);
out:
    st_close(gs);
    lora_model_free(m);
    free(ids);
    xf_golden_free(&g);
}

/* A random Llama model with attention + MLP biases, GQA 2:1, float32. */
static int random_model(const char *dir, int gqa) {
    XfShape s = {1, 0, 1, 1, 16, 2, 4, gqa ? 2 : 4, 0, 24, 40, FLAB_F32, 7};
    if (flab_mkdir_p(dir, 0755)) return -1;
    return xf_write_random_model(dir, &s);
}

static double batch_loss(LoraModel *m, const LoraBatch *b) {
    double sum; long cnt;
    lora_step_fwd_bwd(m, b, 0, 0, &sum, &cnt);
    return sum / cnt;
}

static void fd_check(int gqa, unsigned mask) {
    char dir[] = "/tmp/flab-lora-fd-XXXXXX";
    REQUIRE(mkdtemp(dir));
    REQUIREF(!random_model(dir, gqa), "%s", flab_errmsg());
    LoraConfig lc = {3, 6.0, 0.0, mask};
    LoraModel *m;
    REQUIREF(!lora_model_create(dir, &lc, 3, &m), "%s", flab_errmsg());
    uint64_t rs = 99;
    for (int l = 0; l < 2; l++)          /* non-zero B so A gets gradients too */
        for (int i = 0; i < LORA_NMOD; i++) {
            LoraLinear *li = lora_linear(m, l, i);
            if (li->A) for (int k = 0; k < li->out * 3; k++) li->B[k] = 0.3f * xf_rand(&rs);
        }
    int32_t ids[] = {1, 5, 9, 3, 22, 7, 31, 2, 4, 8, 15, 16, 23};
    int lens[] = {6, 7};
    uint8_t score[13] = {0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0};
    LoraBatch b = {2, ids, lens, score};
    double sum; long cnt;
    lora_zero_grad(m);
    REQUIRE(!lora_step_fwd_bwd(m, &b, 0, 0, &sum, &cnt));
    CHECK(cnt == 8);
    /* the loss evaluations below accumulate into gA/gB: snapshot them first */
    float *snap[2][LORA_NMOD][2] = {{{0}}};
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < LORA_NMOD; i++) {
            LoraLinear *li = lora_linear(m, l, i);
            if (!li->A) continue;
            for (int ab = 0; ab < 2; ab++) {
                size_t np = (size_t)3 * (ab ? li->out : li->in);
                snap[l][i][ab] = flab_xmalloc(np * sizeof(float));
                memcpy(snap[l][i][ab], ab ? li->gB : li->gA, np * sizeof(float));
            }
        }
    int tested = 0;
    double worst = 0;
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < LORA_NMOD; i++) {
            LoraLinear *li = lora_linear(m, l, i);
            if (!li->A) continue;
            for (int ab = 0; ab < 2; ab++) {
                float *p = ab ? li->B : li->A, *gr = snap[l][i][ab];
                int np = 3 * (ab ? li->out : li->in);
                for (int k = 0; k < np; k += 5) {
                    float keep = p[k];
                    double h = 1e-2;
                    p[k] = (float)(keep + h); double lp = batch_loss(m, &b);
                    p[k] = (float)(keep - h); double lm = batch_loss(m, &b);
                    p[k] = keep;
                    double fd = (lp - lm) / (2 * h), an = gr[k];
                    double err = fabs(fd - an) / (fabs(fd) + 1e-3);
                    if (err > worst) worst = err;
                    CHECKF(err < 2e-2, "layer %d %s %c[%d]: analytic %.6g fd %.6g", l,
                           lora_module_names[i], ab ? 'B' : 'A', k, an, fd);
                    tested++;
                }
                free(gr);
            }
        }
    printf("# finite differences (gqa %d): %d entries, worst rel err %.3g\n", gqa, tested, worst);
    lora_model_free(m);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

static void test_finite_differences_all_modules(void) { fd_check(1, (1u << LORA_NMOD) - 1); }
static void test_finite_differences_subset(void) { fd_check(0, (1u << LORA_Q) | (1u << LORA_V) | (1u << LORA_DOWN)); }

int main(void) {
    RUN(test_golden_loss_and_grads);
    RUN(test_finite_differences_all_modules);
    RUN(test_finite_differences_subset);
    return TEST_SUMMARY();
}
