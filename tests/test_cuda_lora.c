/* tests/test_cuda_lora.c: the LoRA training step on CUDA (model/lora_cuda.c,
 * kernels/cuda/cuda_lora*.cu) against the CPU path (model/lora*.c) and the
 * fixture's PEFT goldens.
 *
 * Without a GPU every GPU test prints "SKIP name: no CUDA device" and only
 * test_cuda_lora_fails_without_gpu runs; a binary built without CUDA
 * prints one SKIP line.  kernels/cuda/emu/run_emu.sh runs this file on the
 * CPU emulation of CUDA (EMU_TESTS=test_cuda_lora).
 *
 * Dropout masks come from the host generator on both, so dropout cases use
 * the same tolerances.
 *
 * Tolerances: both backends compute in float32 with float64 row
 * reductions and differ only in summation order (cuBLAS vs OpenBLAS), so
 *   - loss: 1e-5 relative; gradients: 1e-4 relative L2 per tensor;
 *   - after AdamW: grad norm 1e-5 relative, parameters 1e-5 relative L2
 *     per tensor (an update is ~lr, parameters ~0.3), moments m 1e-4 and
 *     v 2e-4 relative L2 (v is quadratic in the gradient);
 *   - checkpointing on vs off on the device: 1e-6 relative L2 (same kernels
 *     and GEMMs on the same data: identical in practice);
 *   - golden (fixture + PEFT adapter, golden.json `lora`): the 1e-5
 *     relative loss and 1e-3 relative L2 for each of the 112 gradients. */
#include "kernels/ops.h"
#include "model/lora_cuda.h"
#include "model/lora_internal.h"
#include "util/error.h"
#include <stdio.h>

#ifdef FLAB_HAVE_CUDA
#include "testlib.h"
#include "xf_lora_model.h"
#include <math.h>

/* A random Llama with attention + MLP biases, GQA 2:1, 2 layers, hidden 32. */
static const XfShape SHAPE = {1, 0, 1, 1, 32, 2, 4, 2, 0, 48, 64, FLAB_F32, 11};
/* r 3, alpha 6, no dropout, all seven modules. */
static const LoraConfig ALL = {3, 6.0, 0.0, (1u << LORA_NMOD) - 1};

static int random_model(char *dir, const XfShape *s) {
    if (!mkdtemp(dir)) return flab_fail("mkdtemp failed");
    return xf_write_random_model(dir, s);
}

static LoraModel *lora_of(const char *dir, const LoraConfig *lc, int ckpt) {
    LoraModel *m;
    if (lora_model_create(dir, lc, 5, &m)) return NULL;
    xf_lora_random_B(m, 77);             /* non-zero B so A gets gradients too */
    lora_set_checkpointing(m, ckpt);
    return m;
}

/* The same random model twice, one for the CPU path and one uploaded to the
 * device (g), in a scratch directory that pair_close removes. */
typedef struct {
    char dir[32];
    LoraModel *cpu, *gm;
    LoraCuda *g;
} Pair;

static int pair_open(Pair *p, const XfShape *s, const LoraConfig *lc, int ckpt) {
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/flab-cuda-lora-XXXXXX");
    if (random_model(p->dir, s)) return -1;
    p->cpu = lora_of(p->dir, lc, ckpt);
    p->gm = lora_of(p->dir, lc, ckpt);
    if (!p->cpu || !p->gm) return -1;
    p->g = lora_cuda_create(p->gm);
    return p->g ? 0 : -1;
}

static void pair_close(Pair *p) {
    lora_cuda_free(p->g);
    lora_model_free(p->cpu);
    lora_model_free(p->gm);
    CHECK(scratch_remove(p->dir) == 0);
}

/* Worst relative L2 of slot s (0 A/B, 1 grads, 2 m, 3 v) over every tensor. */
static double worst_slot(LoraModel *a, LoraModel *b, int s) {
    double worst = 0;
    for (int l = 0; l < a->ck.cfg.num_hidden_layers; l++)
        for (int i = 0; i < LORA_NMOD; i++) {
            LoraLinear *x = lora_linear(a, l, i), *y = lora_linear(b, l, i);
            if (!x->A) continue;
            const float *xa[] = {x->A, x->gA, x->mA, x->vA}, *ya[] = {y->A, y->gA, y->mA, y->vA};
            const float *xb[] = {x->B, x->gB, x->mB, x->vB}, *yb[] = {y->B, y->gB, y->mB, y->vB};
            double ea = xf_rel_l2(xa[s], ya[s], (size_t)a->lc.r * x->in);
            double eb = xf_rel_l2(xb[s], yb[s], (size_t)a->lc.r * x->out);
            worst = fmax(worst, fmax(ea, eb));
        }
    return worst;
}

static const int32_t IDS[] = {1, 5, 9, 3, 22, 7, 31, 2, 4, 8, 15, 16, 23, 60, 41, 38, 12};
static const uint8_t SCORE[] = {0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1};

/* One fwd/bwd of the same batch on the CPU model and on the device. */
static void step_both(Pair *p, const LoraBatch *b, double denom, double *lc, double *lg) {
    long nc = 0, ng = 0;
    CHECK(!lora_step_fwd_bwd(p->cpu, b, denom, 1, lc, &nc));
    CHECKF(!lora_cuda_step(p->g, p->gm, b, denom, lg, &ng), "%s", flab_errmsg());
    CHECK(nc == ng);
}

/* From zero gradients, one step of b on both: checks the losses (1e-5
 * relative) and, downloaded, the gradients (1e-4 relative L2); *e = their
 * worst relative L2.  -1 when the download fails. */
static int first_step_matches(Pair *p, const LoraBatch *b, double *lc, double *lg, double *e) {
    lora_zero_grad(p->cpu);
    step_both(p, b, 0, lc, lg);
    CHECKF(fabs(*lc - *lg) <= 1e-5 * fabs(*lc), "loss cpu %.9g cuda %.9g", *lc, *lg);
    if (lora_cuda_download(p->g, p->gm)) return -1;
    *e = worst_slot(p->gm, p->cpu, 1);
    CHECKF(*e <= 1e-4, "grads: worst rel L2 %.3g", *e);
    return 0;
}

static void test_cuda_lora_matches_cpu(void) {
    Pair p;
    REQUIREF(!pair_open(&p, &SHAPE, &ALL, 0), "%s", flab_errmsg());
    LoraModel *cpu = p.cpu, *gm = p.gm;
    LoraCuda *g = p.g;
    int lens[] = {6, 7}, lens2[] = {4, 9, 4};
    LoraBatch b1 = {2, IDS, lens, SCORE}, b2 = {3, IDS, lens2, NULL};
    double lc, lg, lc2, lg2, e1;
    REQUIREF(!first_step_matches(&p, &b1, &lc, &lg, &e1), "%s", flab_errmsg());
    step_both(&p, &b2, 20, &lc2, &lg2);                  /* accumulates */
    CHECKF(fabs(lc2 - lg2) <= 1e-5 * fabs(lc2), "loss 2 cpu %.9g cuda %.9g", lc2, lg2);
    REQUIREF(!lora_cuda_download(g, gm), "%s", flab_errmsg());
    double e2 = worst_slot(gm, cpu, 1);
    CHECKF(e2 <= 1e-4, "accumulated grads: worst rel L2 %.3g", e2);
    double norm = lora_grad_norm(cpu), nc, ng, ep = 0, em = 0, ev = 0;
    LoraAdamW o = {1e-2, 0.9, 0.999, 1e-8, 0.1, 0.5 * norm};   /* clipping active */
    for (long s = 1; s <= 2; s++) {
        if (s == 2) { lora_zero_grad(cpu); step_both(&p, &b1, 0, &lc, &lg); }
        CHECK(!lora_adamw_step(cpu, &o, o.lr, s, &nc));
        CHECKF(!lora_cuda_adamw_step(g, &o, o.lr, s, &ng), "%s", flab_errmsg());
        CHECKF(fabs(nc - ng) <= 1e-5 * nc, "step %ld: grad norm cpu %.9g cuda %.9g", s, nc, ng);
        REQUIREF(!lora_cuda_download(g, gm), "%s", flab_errmsg());
        ep = fmax(ep, worst_slot(gm, cpu, 0));
        em = fmax(em, worst_slot(gm, cpu, 2));
        ev = fmax(ev, worst_slot(gm, cpu, 3));
    }
    CHECKF(ep <= 1e-5 && em <= 1e-4 && ev <= 2e-4, "after AdamW: params %.3g m %.3g v %.3g", ep, em, ev);
    CHECK(lora_grad_norm(gm) == 0);                         /* zeroed on the device */
    printf("# cuda vs cpu: loss %.9g / %.9g, grads rel L2 %.3g (accumulated %.3g), "
           "AdamW params %.3g m %.3g v %.3g\n", lc, lg, e1, e2, ep, em, ev);
    pair_close(&p);
}

/* Checkpointing on the device: same loss and gradients as without. */
static void test_cuda_lora_checkpointing(void) {
    char dir[] = "/tmp/flab-cuda-lora-XXXXXX";
    REQUIREF(!random_model(dir, &SHAPE), "%s", flab_errmsg());
    LoraModel *a = lora_of(dir, &ALL, 0), *b = lora_of(dir, &ALL, 1);
    REQUIREF(a && b, "%s", flab_errmsg());
    LoraCuda *ga = lora_cuda_create(a), *gb = lora_cuda_create(b);
    REQUIREF(ga && gb, "%s", flab_errmsg());
    int lens[] = {6, 7};
    LoraBatch bt = {2, IDS, lens, SCORE};
    double la, lb;
    long na, nb;
    CHECK(!lora_cuda_step(ga, a, &bt, 0, &la, &na) && !lora_cuda_step(gb, b, &bt, 0, &lb, &nb));
    CHECK(!lora_cuda_download(ga, a) && !lora_cuda_download(gb, b));
    double e = worst_slot(b, a, 1);
    CHECKF(fabs(la - lb) <= 1e-6 * fabs(la) && e <= 1e-6, "loss %.9g / %.9g, grads %.3g", la, lb, e);
    CHECKF(lora_cuda_activation_bytes(gb) < lora_cuda_activation_bytes(ga), "%zu vs %zu bytes",
           lora_cuda_activation_bytes(gb), lora_cuda_activation_bytes(ga));
    lora_cuda_free(ga); lora_cuda_free(gb);
    lora_model_free(a); lora_model_free(b);
    CHECK(scratch_remove(dir) == 0);
}

/* bf16 checkpoint: the device stores the matrices in bf16 and expands them
 * per layer (checkpointing on): loss and gradients bit-identical to float32
 * storage; vs the CPU the same tolerances as test_cuda_lora_matches_cpu since the GEMMs read the same float32 values.  The device's byte counts
 * equal cuda_lora_estimate's for this geometry and step shape. */
static void test_cuda_lora_bf16_storage(void) {
    XfShape s = SHAPE;
    s.dtype = FLAB_BF16;
    s.seed = 13;
    Pair pr;
    REQUIREF(!pair_open(&pr, &s, &ALL, 1), "%s", flab_errmsg());
    LoraModel *gm = pr.gm;
    LoraCuda *g = pr.g;
    int lens[] = {17};
    LoraBatch b = {1, IDS, lens, SCORE};
    double lc, lg, e;
    REQUIREF(!first_step_matches(&pr, &b, &lc, &lg, &e), "%s", flab_errmsg());
    unsigned biased = 0;
    for (int i = 0; i < LORA_NMOD; i++) biased |= (lora_linear(gm, 0, i)->b != NULL) << i;
    CudaLoraPlan p = {2, 32, 48, 4, 2, 8, 64, 3, 0x7f, biased, 0, 1, 1, 0, 17, 17};
    CudaLoraMemory est, got;
    cuda_lora_estimate(&p, &est);
    lora_cuda_memory(g, &got);
    CHECKF(got.weights == est.weights && got.scratch == est.scratch &&
           got.adapters == est.adapters && got.activations == est.activations,
           "device weights %zu scratch %zu adapters %zu acts %zu, estimate %zu %zu %zu %zu",
           got.weights, got.scratch, got.adapters, got.activations, est.weights, est.scratch,
           est.adapters, est.activations);
    CHECK(got.scratch > 0);
    LoraModel *fm = lora_of(pr.dir, &ALL, 1);                 /* float32 storage: bit-identical */
    LoraCuda *gf = fm ? lora_cuda_create_storage(fm, 1) : NULL;
    REQUIREF(gf, "%s", flab_errmsg());
    double lf;
    long nf;
    CHECK(!lora_cuda_step(gf, fm, &b, 0, &lf, &nf) && !lora_cuda_download(gf, fm));
    CudaLoraMemory f32m;
    lora_cuda_memory(gf, &f32m);
    CHECKF(lf == lg && worst_slot(fm, gm, 1) == 0, "f32 storage: loss %.17g vs %.17g, grads %.3g",
           lf, lg, worst_slot(fm, gm, 1));
    CHECK(f32m.scratch == 0 && f32m.weights > got.weights);
    lora_cuda_free(gf);
    lora_model_free(fm);
    printf("# bf16 storage: loss %.9g / %.9g, grads rel L2 %.3g, device bytes %zu\n", lc, lg, e,
           cuda_lora_memory_total(&got));
    pair_close(&pr);
}

static void test_cuda_lora_golden(void) {
    XfLoraGolden gl;
    LoraCuda *g = NULL;
    if (xf_lora_golden_open(&gl) || !(g = lora_cuda_create(gl.m))) {
        CHECKF(0, "%s", flab_errmsg());
        goto out;
    }
    LoraBatch b = {1, gl.ids, &gl.n, NULL};
    double sum, worst;
    long cnt;
    REQUIREF(!lora_cuda_step(g, gl.m, &b, 0, &sum, &cnt) && !lora_cuda_download(g, gl.m), "%s",
             flab_errmsg());
    double loss = sum / cnt;
    int checked = xf_lora_check_golden(&gl, loss, &worst);
    printf("# cuda lora golden: loss %.10f (golden %.10f), worst grad rel L2 %.3g over %d\n",
           loss, gl.gold, worst, checked);
out:
    lora_cuda_free(g);
    xf_lora_golden_close(&gl);
}

/* Dropout 0.2 on a subset of modules, checkpointing off and on, two
 * accumulated micro-batches with the generator seeded once (as the
 * trainer): the device drops the CPU's elements, so the same tolerances. */
static void dropout_case(int ckpt) {
    LoraConfig lc = {3, 6.0, 0.2, (1u << LORA_Q) | (1u << LORA_O) | (1u << LORA_UP) | (1u << LORA_DOWN)};
    Pair p;
    REQUIREF(!pair_open(&p, &SHAPE, &lc, ckpt), "%s", flab_errmsg());
    LoraModel *cpu = p.cpu, *gm = p.gm;
    LoraCuda *g = p.g;
    int lens[] = {6, 7}, lens2[] = {4, 9, 4};
    LoraBatch b1 = {2, IDS, lens, SCORE}, b2 = {3, IDS, lens2, NULL};
    double lc1, lg1, lc2, lg2;
    lora_zero_grad(cpu);
    lora_set_dropout_seed(cpu, 123);
    lora_set_dropout_seed(gm, 123);
    step_both(&p, &b1, 30, &lc1, &lg1);
    step_both(&p, &b2, 30, &lc2, &lg2);
    REQUIREF(!lora_cuda_download(g, gm), "%s", flab_errmsg());
    double e = worst_slot(gm, cpu, 1);
    CHECKF(fabs(lc1 - lg1) <= 1e-5 * fabs(lc1) && fabs(lc2 - lg2) <= 1e-5 * fabs(lc2),
           "losses cpu %.9g %.9g cuda %.9g %.9g", lc1, lc2, lg1, lg2);
    CHECKF(e <= 1e-4, "grads with dropout: worst rel L2 %.3g", e);
    CHECK(cpu->rng == gm->rng);                 /* the generator ends in the same state */
    printf("# dropout 0.2, checkpointing %d: loss %.9g / %.9g, grads rel L2 %.3g\n", ckpt, lc2,
           lg2, e);
    pair_close(&p);
}

static void test_cuda_lora_dropout_matches_cpu(void) { dropout_case(0); dropout_case(1); }

static void test_cuda_lora_fails_without_gpu(void) {
    LoraConfig lc = {4, 8.0, 0.0, 1u << LORA_Q};
    LoraModel *m;
    REQUIREF(!lora_model_create(XF_FIXTURE, &lc, 1, &m), "%s", flab_errmsg());
    LoraCuda *g = lora_cuda_create(m);
    CHECK(g == NULL);
    CHECKF(strstr(flab_errmsg(), "CUDA") != NULL || strstr(flab_errmsg(), "cuda") != NULL,
           "message: %s", flab_errmsg());
    lora_cuda_free(g);
    lora_model_free(m);
}

#define CUDA_TESTS(X) X(test_cuda_lora_matches_cpu) X(test_cuda_lora_checkpointing) \
    X(test_cuda_lora_golden) X(test_cuda_lora_dropout_matches_cpu) X(test_cuda_lora_bf16_storage)
#define RUN_ONE(fn) RUN(fn);
#define SKIP_ONE(fn) printf("SKIP %s: no CUDA device\n", #fn);

int main(void) {
    if (!flab_cuda_available()) {
        RUN(test_cuda_lora_fails_without_gpu);
        CUDA_TESTS(SKIP_ONE)
        return TEST_SUMMARY();
    }
    CUDA_TESTS(RUN_ONE)
    return TEST_SUMMARY();
}
#else
int main(void) {
    printf("SKIP test_cuda_lora: built without CUDA (FLAB_CUDA=0)\n");
    return 0;
}
#endif
