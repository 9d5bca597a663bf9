/* tests/test_importance.c: the gradient-based pruning importances
 * (model/importance.c) against central finite differences on the tiny
 * fixture model (tests/fixtures/tiny-qwen2), loss = mean NLL of the scored
 * rows of 2 packed sequences (one with its first rows masked).
 *  - taylor: sum over layer l's parameters of w dL/dw = dL/de for every
 *    parameter of the layer scaled by (1 + e): compared with
 *    (L(1 + e) - L(1 - e)) / 2e, e = 1e-2, for every layer.
 *  - fisher's mask gradient: dL/dm_j (a mask on neuron j's SwiGLU output,
 *    = scaling column j of down_proj) against (L(1 + e) - L(1 - e)) / 2e,
 *    e = 5e-2, for the 3 neurons of largest |dL/dm| in 3 layers.
 * The loss is float32 activations with float64 reductions, so its noise is
 * ~1e-6 relative; tolerance 2e-2 relative + 2e-4 absolute on the
 * derivatives (noise / 2e, and the O(e^2) term of the central difference).
 *  - per-sample fisher: with one sequence, fisher = mask_grad^2.
 *  - skip: the probe of a skipped layer stays 0 and the loss changes. */
#include "model/importance.h"
#include "model/lora_internal.h"
#include "testlib.h"
#include "util/error.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define FIX "tests/fixtures/tiny-qwen2"
enum { N1 = 24, N2 = 17 };
static int32_t ids1[N1], ids2[N2];
static uint8_t sc2[N2];
static const int32_t *ids[2] = {ids1, ids2};
static const uint8_t *scores[2] = {NULL, sc2};
static int lens[2] = {N1, N2};

static ImpSamples samples(void) {
    uint64_t s = 12345;
    for (int i = 0; i < N1; i++) ids1[i] = (int32_t)(lora_rand(&s) * 2000);
    for (int i = 0; i < N2; i++) { ids2[i] = (int32_t)(lora_rand(&s) * 2000); sc2[i] = i >= 6; }
    ImpSamples sm = {2, ids, lens, scores};
    return sm;
}

static void scale_vec(const float *p, size_t n, double f) {
    float *w = (float *)p;
    for (size_t i = 0; i < n; i++) w[i] = (float)(w[i] * f);
}

/* Multiplies every parameter of layer l by f. */
static void scale_layer(LoraModel *m, int l, double f) {
    LoraLayer *L = &m->layers[l];
    int H = m->ck.cfg.hidden_size;
    scale_vec(L->in_norm, (size_t)H, f);
    scale_vec(L->post_norm, (size_t)H, f);
    for (int i = 0; i < LORA_NMOD; i++) {
        LoraLinear *li = &L->lin[i];
        scale_vec(li->W, (size_t)li->in * li->out, f);
        if (li->b) scale_vec(li->b, (size_t)li->out, f);
    }
}

static void scale_neuron(LoraModel *m, int l, int j, double f) {
    LoraLinear *d = &m->layers[l].lin[LORA_DOWN];
    float *w = (float *)d->W;
    for (int o = 0; o < d->out; o++) w[(size_t)o * d->in + j] = (float)(w[(size_t)o * d->in + j] * f);
}

static void scale_at(LoraModel *m, int l, int neuron, double f) {
    if (neuron < 0) scale_layer(m, l, f);
    else scale_neuron(m, l, neuron, f);
}

/* (L(1 + e) - L(1 - e)) / 2e in the scale of layer l (neuron < 0: every
 * parameter of it) or of its FFN neuron; the scale goes back to 1 after.
 * -1 when a loss evaluation fails. */
static int central_diff(LoraModel *m, const ImpSamples *sm, int max_rows, int l, int neuron,
                        double e, double *fd) {
    double lp, lm;
    scale_at(m, l, neuron, 1 + e);
    if (imp_loss(m, NULL, sm, max_rows, &lp)) return -1;
    scale_at(m, l, neuron, (1 - e) / (1 + e));
    if (imp_loss(m, NULL, sm, max_rows, &lm)) return -1;
    scale_at(m, l, neuron, 1 / (1 - e));
    *fd = (lp - lm) / (2 * e);
    return 0;
}

static int close_enough(double a, double fd) {
    return fabs(a - fd) <= 2e-2 * fabs(fd) + 2e-4;
}

static void test_taylor_vs_finite_differences(void) {
    LoraModel *m;
    REQUIREF(!imp_model_open(FIX, &m), "%s", flab_errmsg());
    ImpSamples sm = samples();
    ImpProbe p;
    double loss, fd, e = 1e-2, worst = 0;
    REQUIREF(!imp_compute(m, NULL, &sm, 1 << 20, &p, &loss), "%s", flab_errmsg());
    CHECK(loss > 1 && loss < 20);
    for (int l = 0; l < p.n_layers; l++) {
        REQUIRE(!central_diff(m, &sm, 1 << 20, l, -1, e, &fd));
        double err = fabs(p.layer_dot[l] - fd) / (fabs(fd) + 1e-12);
        if (err > worst) worst = err;
        CHECKF(close_enough(p.layer_dot[l], fd), "layer %d: taylor %.6g fd %.6g", l,
               p.layer_dot[l], fd);
    }
    printf("# taylor vs fd: worst relative error %.3g over %d layers\n", worst, p.n_layers);
    imp_probe_free(&p);
    lora_model_free(m);
}

static void test_mask_gradient_vs_finite_differences(void) {
    LoraModel *m;
    REQUIREF(!imp_model_open(FIX, &m), "%s", flab_errmsg());
    ImpSamples sm = samples();
    ImpProbe p;
    double loss, fd, e = 5e-2, worst = 0;
    REQUIREF(!imp_compute(m, NULL, &sm, 30, &p, &loss), "%s", flab_errmsg());
    int I = p.inter, layers[3] = {0, 3, 7};
    for (int li = 0; li < 3; li++) {
        int l = layers[li];
        for (int k = 0; k < 3; k++) {
            int best = 0;             /* k-th largest |grad|: mark used ones by sign trick */
            for (int j = 1; j < I; j++)
                if (fabs(p.mask_grad[(size_t)l * I + j]) > fabs(p.mask_grad[(size_t)l * I + best]))
                    best = j;
            double g = p.mask_grad[(size_t)l * I + best];
            p.mask_grad[(size_t)l * I + best] = 0;
            REQUIRE(!central_diff(m, &sm, 30, l, best, e, &fd));
            double err = fabs(g - fd) / (fabs(fd) + 1e-12);
            if (err > worst) worst = err;
            CHECKF(close_enough(g, fd), "layer %d neuron %d: grad %.6g fd %.6g", l, best, g, fd);
            CHECK(p.fisher[(size_t)l * I + best] > 0);
        }
    }
    printf("# mask gradient vs fd: worst relative error %.3g over 9 neurons\n", worst);
    imp_probe_free(&p);
    lora_model_free(m);
}

static void test_fisher_one_sample_and_skip(void) {
    LoraModel *m;
    REQUIREF(!imp_model_open(FIX, &m), "%s", flab_errmsg());
    ImpSamples sm = samples();
    sm.n_seqs = 1;
    ImpProbe p;
    double loss, loss2;
    REQUIRE(!imp_compute(m, NULL, &sm, 1 << 20, &p, &loss));
    double maxd = 0;
    for (size_t i = 0; i < (size_t)p.n_layers * p.inter; i++) {
        double d = fabs(p.fisher[i] - p.mask_grad[i] * p.mask_grad[i]);
        if (d > maxd) maxd = d;
    }
    CHECKF(maxd <= 1e-12, "fisher != grad^2 with one sample: %g", maxd);
    imp_probe_free(&p);
    uint8_t skip[8] = {0, 0, 1, 0, 0, 0, 0, 0};
    REQUIRE(!imp_compute(m, skip, &sm, 1 << 20, &p, &loss2));
    CHECK(p.layer_dot[2] == 0 && p.fisher[2 * p.inter] == 0 && p.layer_dot[3] != 0);
    CHECK(loss2 != loss);
    imp_probe_free(&p);
    ImpSamples none = {0, ids, lens, scores};
    CHECK(imp_compute(m, NULL, &none, 100, &p, &loss) == -1);
    lora_model_free(m);
}

int main(void) {
    RUN(test_taylor_vs_finite_differences);
    RUN(test_mask_gradient_vs_finite_differences);
    RUN(test_fisher_one_sample_and_skip);
    return TEST_SUMMARY();
}
