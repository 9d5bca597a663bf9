/* tests/test_lora.c: the LoRA backward pass (model/lora*.c).
 *  - golden: tiny-qwen2 + its PEFT adapter (r 4, alpha 8, all seven
 *    modules): the loss of golden.json `lora` within 1e-5 relative and each
 *    of the 112 gradient tensors of lora_grads.safetensors within 1e-3
 *    relative L2 (the tolerances; float32 vs a float64 reference).
 *  - finite differences on a random Llama-with-biases model (float32
 *    weights, MHA + GQA, packed batch of 2 sequences, masked rows, dropout
 *    off): central differences in float64 of... the float32 loss, so 2e-2
 *    relative on the larger entries (step 1e-2 on a loss of order 1).
 *  - schedule values, AdamW decoupled weight decay, resumable state round
 *    trip / corruption / mismatch, adapter write/read round trip, merge
 *    (f32) = base + adapter logits (1e-5 x scale), and the errors: unknown
 *    module, adapter of another shape, missing tensor, bad data lines. */
#include "model/lora_internal.h"
#include "testlib.h"
#include "xf_lora_model.h"
#include "rules/lora_data.h"
#include <math.h>

static void test_golden_loss_and_grads(void) {
    XfLoraGolden gl;
    if (xf_lora_golden_open(&gl)) {
        CHECKF(0, "%s", flab_errmsg());
        goto out;
    }
    LoraBatch b = {1, gl.ids, &gl.n, NULL};
    double sum, worst;
    long cnt;
    lora_zero_grad(gl.m);
    REQUIREF(!lora_step_fwd_bwd(gl.m, &b, 0, 0, &sum, &cnt), "%s", flab_errmsg());
    CHECK(cnt == gl.n - 1);
    double loss = sum / cnt;
    int checked = xf_lora_check_golden(&gl, loss, &worst);
    printf("# lora golden: loss %.10f (golden %.10f, rel %.2g), worst grad rel L2 %.3g over %d\n",
           loss, gl.gold, fabs(loss - gl.gold) / gl.gold, worst, checked);
out:
    xf_lora_golden_close(&gl);
}

/* Copies every adapter gradient (A then B, layer by layer) into one array. */
static float *grads_copy(LoraModel *m, size_t *n) {
    size_t tot = lora_n_params(m), at = 0;
    float *g = malloc(tot * sizeof(float));
    for (int l = 0; l < m->ck.cfg.num_hidden_layers; l++)
        for (int i = 0; i < LORA_NMOD; i++) {
            LoraLinear *li = lora_linear(m, l, i);
            if (!li->A) continue;
            memcpy(g + at, li->gA, (size_t)m->lc.r * li->in * sizeof(float));
            at += (size_t)m->lc.r * li->in;
            memcpy(g + at, li->gB, (size_t)m->lc.r * li->out * sizeof(float));
            at += (size_t)m->lc.r * li->out;
        }
    *n = tot;
    return g;
}

/* Two accumulated micro-batches (packed, dropout on, masked rows) with the
 * dropout seed set once, as the trainer does; returns the gradients. */
static float *two_microbatches(LoraModel *m, const int32_t *ids, int n, double *loss, size_t *ng) {
    int lens1[2] = {n / 2, n - n / 2}, lens2[1] = {n - 3};
    uint8_t score[512];
    for (int i = 0; i < n; i++) score[i] = i % 3 != 0;
    LoraBatch b1 = {2, ids, lens1, score}, b2 = {1, ids + 3, lens2, NULL};
    double s1 = 0, s2 = 0;
    long c1, c2;
    lora_zero_grad(m);
    lora_set_dropout_seed(m, 99);
    if (lora_step_fwd_bwd(m, &b1, 50, 1, &s1, &c1) || lora_step_fwd_bwd(m, &b2, 50, 1, &s2, &c2))
        return NULL;
    *loss = s1 + s2;
    return grads_copy(m, ng);
}

/* Activation checkpointing: the same gradients and loss bit for bit, with
 * dropout (the recompute must redraw the same masks), GQA, packing, and
 * switching the mode on a used model both ways. */
static void test_checkpointing_bit_identical(void) {
    XfGolden g;
    REQUIREF(!xf_golden_load(&g), "%s", flab_errmsg());
    int n;
    int32_t *ids = xf_ids(cJSON_GetObjectItem(cJSON_GetObjectItem(g.json, "lora"), "ids"), &n);
    LoraConfig lc = {4, 8.0, 0.1, (1u << LORA_NMOD) - 1};
    LoraModel *m;
    REQUIREF(n <= 512 && !lora_model_create(XF_FIXTURE, &lc, 3, &m), "%s", flab_errmsg());
    for (int l = 0; l < m->ck.cfg.num_hidden_layers; l++)   /* B != 0: every path carries gradient */
        for (int i = 0; i < LORA_NMOD; i++) {
            LoraLinear *li = lora_linear(m, l, i);
            for (int k = 0; k < lc.r * li->out; k++) li->B[k] = 0.01f * (float)((k * 7 + l + i) % 13 - 6);
        }
    double l0, l1, l2;
    size_t n0, n1, n2;
    float *g0 = two_microbatches(m, ids, n, &l0, &n0);
    lora_set_checkpointing(m, 1);
    float *g1 = two_microbatches(m, ids, n, &l1, &n1);
    lora_set_checkpointing(m, 0);
    float *g2 = two_microbatches(m, ids, n, &l2, &n2);
    REQUIRE(g0 && g1 && g2 && n0 == n1 && n1 == n2);
    CHECKF(l0 == l1 && l1 == l2, "loss %.17g / %.17g / %.17g", l0, l1, l2);
    CHECK(memcmp(g0, g1, n0 * sizeof(float)) == 0);
    CHECK(memcmp(g0, g2, n0 * sizeof(float)) == 0);
    double nz = 0;
    for (size_t i = 0; i < n0; i++) nz += g0[i] != 0;
    CHECKF(nz > 0.5 * n0, "only %.0f of %zu gradient entries non-zero", nz, n0);
    free(g0); free(g1); free(g2);
    free(ids);
    lora_model_free(m);
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
    xf_lora_random_B(m, 99);             /* non-zero B so A gets gradients too */
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
    CHECK(scratch_remove(dir) == 0);
}

static void test_finite_differences_all_modules(void) { fd_check(1, (1u << LORA_NMOD) - 1); }
static void test_finite_differences_subset(void) { fd_check(0, (1u << LORA_Q) | (1u << LORA_V) | (1u << LORA_DOWN)); }

static void test_schedule(void) {
    CHECK(fabs(lora_lr_at(1.0, 0, 4, 20, 1) - 0.25) < 1e-12);
    CHECK(fabs(lora_lr_at(1.0, 3, 4, 20, 1) - 1.0) < 1e-12);
    CHECK(fabs(lora_lr_at(1.0, 12, 4, 20, 1) - 0.5) < 1e-12);   /* cosine midpoint */
    CHECK(fabs(lora_lr_at(1.0, 12, 4, 20, 0) - 0.5) < 1e-12);   /* linear midpoint */
    CHECK(lora_lr_at(1.0, 20, 4, 20, 0) == 0.0);
    CHECK(fabs(lora_lr_at(2.0, 5, 0, 10, 1) - 1.0) < 1e-12);
}

static char *tmpdir(void) {
    char t[] = "/tmp/flab-lora-XXXXXX";
    return mkdtemp(t) ? flab_xstrdup(t) : NULL;
}

static void rmtree(char *dir) {
    if (scratch_remove(dir)) fprintf(stderr, "rm failed\n");
    free(dir);
}

static void test_weight_decay_and_state(void) {
    LoraModel *m = xf_lora_fixture();
    REQUIREF(m, "%s", flab_errmsg());
    char *dir = tmpdir(), path[300];
    LoraLinear *li = lora_linear(m, 3, LORA_UP);
    float a0 = li->A[5], b0 = li->B[7];
    lora_zero_grad(m);
    LoraAdamW o = {0.1, 0.9, 0.999, 1e-8, 0.5, 0};
    REQUIRE(!lora_adamw_step(m, &o, 0.1, 1, NULL));           /* zero grads: only decay */
    CHECK(fabs(li->A[5] - a0 * (1 - 0.05)) <= 1e-7 * fabs(a0));
    CHECK(fabs(li->B[7] - b0 * (1 - 0.05)) <= 1e-7 * fabs(b0) + 1e-12);
    snprintf(path, sizeof path, "%s/state.bin", dir);
    char extra[4] = "abc", back[4] = {0};
    long step = 0;
    CHECK(lora_state_load(m, path, &step, back, 4) == 0);        /* absent */
    REQUIRE(!lora_state_save(m, path, 17, extra, 4));
    float keep = li->A[5];
    li->A[5] = 123.f;
    CHECK(lora_state_load(m, path, &step, back, 4) == 1);
    CHECK(step == 17 && !strcmp(back, "abc") && li->A[5] == keep);
    FILE *f = fopen(path, "r+b");                                 /* flip one byte */
    REQUIRE(f);
    fseek(f, 100, SEEK_SET);
    fputc(0x5a ^ fgetc(f), f);
    fclose(f);
    CHECK(lora_state_load(m, path, &step, back, 4) == -1);
    CHECK(strstr(flab_errmsg(), "checksum") != NULL);
    REQUIRE(!lora_state_save(m, path, 3, NULL, 0));
    LoraConfig other = {2, 4, 0, 1u << LORA_Q};
    LoraModel *m2;
    REQUIRE(!lora_model_create(XF_FIXTURE, &other, 1, &m2));
    CHECK(lora_state_load(m2, path, &step, NULL, 0) == -1);      /* another setup */
    lora_model_free(m2);
    lora_model_free(m);
    rmtree(dir);
}

static void test_adapter_roundtrip_and_merge(void) {
    LoraModel *m = xf_lora_fixture();
    REQUIREF(m, "%s", flab_errmsg());
    char *dir = tmpdir(), ad[300], mg[300], w[340], c[340];
    snprintf(ad, sizeof ad, "%s/ad", dir);
    snprintf(mg, sizeof mg, "%s/merged", dir);
    REQUIRE(!flab_mkdir_p(ad, 0755));
    REQUIREF(!lora_adapter_write(m, ad, "tiny"), "%s", flab_errmsg());
    snprintf(w, sizeof w, "%s/adapter_model.safetensors", ad);
    snprintf(c, sizeof c, "%s/adapter_config.json", ad);
    LoraConfig lc = {4, 8.0, 0.0, (1u << LORA_NMOD) - 1};
    LoraModel *m2;
    REQUIRE(!lora_model_create(XF_FIXTURE, &lc, 9, &m2));
    REQUIREF(!lora_adapter_load(m2, w, c), "%s", flab_errmsg());
    LoraLinear *a = lora_linear(m, 7, LORA_DOWN), *b = lora_linear(m2, 7, LORA_DOWN);
    CHECK(!memcmp(a->A, b->A, (size_t)4 * a->in * 4) && !memcmp(a->B, b->B, (size_t)4 * a->out * 4));
    REQUIREF(!lora_merge(XF_FIXTURE, ad, mg, FLAB_F32), "%s", flab_errmsg());
    LoraConfig none = {1, 1, 0, 0};
    LoraModel *mm;
    REQUIREF(!lora_model_create(mg, &none, 1, &mm), "%s", flab_errmsg());
    int32_t ids[] = {660, 302, 515, 354, 1356, 817, 704, 517, 987, 317};
    int n = 10, V = lora_model_config(m)->vocab_size;
    LoraBatch bt = {1, ids, &n, NULL};
    float *l1 = flab_xmalloc((size_t)n * V * 4), *l2 = flab_xmalloc((size_t)n * V * 4);
    REQUIRE(!lora_logits(m, &bt, l1) && !lora_logits(mm, &bt, l2));
    double sc = xf_max_abs(l1, (size_t)n * V), d = xf_max_diff(l1, l2, (size_t)n * V);
    CHECKF(d <= 1e-5 * sc, "merged vs base+adapter: %g x scale", d / sc);
    printf("# merged (f32) vs base + adapter: %.3g x max |logit|\n", d / sc);
    /* errors: another r, a missing tensor, an unknown module, a pruned base */
    LoraConfig r8 = {8, 8.0, 0.0, (1u << LORA_NMOD) - 1};
    LoraModel *m3;
    REQUIRE(!lora_model_create(XF_FIXTURE, &r8, 1, &m3));
    CHECK(lora_adapter_load(m3, w, c) == -1 && strstr(flab_errmsg(), "adapter_config.json"));
    CHECK(lora_adapter_load(m3, w, NULL) == -1 && strstr(flab_errmsg(), "shape must be"));
    lora_model_free(m3);
    unsigned mask;
    CHECK(lora_parse_targets("q_proj,lm_head", &mask) == -1 && strstr(flab_errmsg(), "lm_head"));
    CHECK(!lora_parse_targets("q_proj v_proj", &mask) && mask == ((1u << LORA_Q) | (1u << LORA_V)));
    free(l1); free(l2);
    lora_model_free(mm);
    lora_model_free(m2);
    lora_model_free(m);
    rmtree(dir);
}

static void test_data_errors(void) {
    char *dir = tmpdir(), p[300];
    snprintf(p, sizeof p, "%s/d.jsonl", dir);
    const char *good = "{\"prompt\": \"def f(x):\\n\", \"target\": \"    return x\\n\", \"source\": \"model\"}\n"
                       "{\"prompt\": \"def g():\\n\", \"canonical_solution\": \"    pass\\n\"}\n";
    REQUIRE(!flab_write_file_atomic(p, good, strlen(good)));
    LoraData d;
    size_t skipped;
    REQUIREF(!lora_data_load(p, XF_FIXTURE, 64, &d, &skipped), "%s", flab_errmsg());
    CHECK(d.n == 2 && d.n_from_model == 1 && skipped == 0);
    CHECK(d.ex[0].ids[d.ex[0].len - 1] == 2045);                  /* eos appended */
    CHECK(d.ex[0].n_prompt > 0 && d.ex[0].n_prompt < d.ex[0].len);
    lora_data_free(&d);
    const char *bad = "{\"prompt\": \"x\", \"target\": \"y\"}\n{\"prompt\": 3}\n";
    REQUIRE(!flab_write_file_atomic(p, bad, strlen(bad)));
    CHECK(lora_data_load(p, XF_FIXTURE, 64, &d, &skipped) == -1 && strstr(flab_errmsg(), "d.jsonl:2"));
    const char *notjson = "prompt,target\n";
    REQUIRE(!flab_write_file_atomic(p, notjson, strlen(notjson)));
    CHECK(lora_data_load(p, XF_FIXTURE, 64, &d, &skipped) == -1 && strstr(flab_errmsg(), "d.jsonl:1"));
    rmtree(dir);
}

int main(void) {
    RUN(test_golden_loss_and_grads);
    RUN(test_finite_differences_all_modules);
    RUN(test_finite_differences_subset);
    RUN(test_checkpointing_bit_identical);
    RUN(test_schedule);
    RUN(test_weight_decay_and_state);
    RUN(test_adapter_roundtrip_and_merge);
    RUN(test_data_errors);
    return TEST_SUMMARY();
}
