/* tests/xf_lora_model.h: helpers of the LoRA tests (test_lora.c on the CPU,
 * test_cuda_lora.c on the device): the fixture with its PEFT adapter, random
 * non-zero B matrices (so that A gets gradients too), the relative L2 error,
 * golden.json's `lora` case, and the comparison with its loss and the 112
 * PEFT gradients.  Test-only; header-only so each test binary includes it. */
#ifndef FLAB_TESTS_XF_LORA_MODEL_H
#define FLAB_TESTS_XF_LORA_MODEL_H
#include "model/lora_internal.h"
#include "scratch_testlib.h"
#include "testlib.h"
#include "xf_randmodel.h"
#include "xf_testutil.h"
#include <math.h>

/* ||a - b|| / ||b||, in float64. */
static inline double xf_rel_l2(const float *a, const float *b, size_t n) {
    double d = 0, g = 0;
    for (size_t i = 0; i < n; i++) { d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]); g += (double)b[i] * b[i]; }
    return sqrt(d) / (sqrt(g) + 1e-30);
}

/* tiny-qwen2 with its PEFT adapter (r 4, alpha 8, all seven modules, no
 * dropout, seed 1); NULL with flab_errmsg() set on failure. */
static inline LoraModel *xf_lora_fixture(void) {
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

/* golden.json's `lora` case: its token ids (malloc'd, *n of them) and its
 * loss; g holds the goldens until xf_golden_free.  0, or -1 with
 * flab_errmsg() set. */
static inline int xf_lora_golden(XfGolden *g, int32_t **ids, int *n, double *gold) {
    if (xf_golden_load(g)) return -1;
    const cJSON *lj = cJSON_GetObjectItem(g->json, "lora");
    *ids = xf_ids(cJSON_GetObjectItem(lj, "ids"), n);
    *gold = cJSON_GetObjectItem(lj, "loss")->valuedouble;
    return 0;
}

/* The golden gradient test's inputs: golden.json's `lora` case, the fixture
 * with its adapter (m) and PEFT's gradients (gs). */
typedef struct {
    XfGolden g;
    int32_t *ids;
    int n;
    double gold;
    LoraModel *m;
    SafeTensors *gs;
} XfLoraGolden;

/* Opens all of it; -1 with flab_errmsg() set when a part fails (close what
 * was opened with xf_lora_golden_close all the same). */
static inline int xf_lora_golden_open(XfLoraGolden *gl) {
    memset(gl, 0, sizeof *gl);
    if (xf_lora_golden(&gl->g, &gl->ids, &gl->n, &gl->gold)) return -1;
    if (!(gl->m = xf_lora_fixture())) return -1;
    return st_open_file(XF_FIXTURE "/lora_grads.safetensors", &gl->gs);
}

static inline void xf_lora_golden_close(XfLoraGolden *gl) {
    st_close(gl->gs);
    lora_model_free(gl->m);
    free(gl->ids);
    xf_golden_free(&gl->g);
}

/* Fills every adapted module's B with 0.3 * uniform[-1, 1) from the xorshift
 * seeded with `seed`, layer by layer: the same seed gives two models of one
 * geometry the same B. */
static inline void xf_lora_random_B(LoraModel *m, uint64_t seed) {
    for (int l = 0; l < m->ck.cfg.num_hidden_layers; l++)
        for (int i = 0; i < LORA_NMOD; i++) {
            LoraLinear *li = lora_linear(m, l, i);
            if (li->A) for (int k = 0; k < li->out * m->lc.r; k++) li->B[k] = 0.3f * xf_rand(&seed);
        }
}

/* Checks the loss against golden.json's `lora` loss (1e-5 relative) and each
 * of gl->m's gradients against gl->gs (1e-3 relative L2, the issue's
 * tolerances), all 112 of them.  Returns how many gradient tensors it
 * compared; *worst = the largest relative L2. */
static inline int xf_lora_check_golden(const XfLoraGolden *gl, double loss, double *worst) {
    LoraModel *m = gl->m;
    double gold = gl->gold;
    CHECKF(fabs(loss - gold) <= 1e-5 * gold, "loss %.9f vs golden %.9f", loss, gold);
    int checked = 0;
    *worst = 0;
    for (int l = 0; l < m->ck.cfg.num_hidden_layers; l++)
        for (int i = 0; i < LORA_NMOD; i++)
            for (int ab = 0; ab < 2; ab++) {
                LoraLinear *li = lora_linear(m, l, i);
                char name[200];
                snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.lora_%c.weight", l,
                         lora_module_paths[i], ab ? 'B' : 'A');
                const StTensor *t = st_find(gl->gs, name);
                CHECKF(t, "%s missing", name);
                if (!t) continue;
                double e = xf_rel_l2(ab ? li->gB : li->gA, t->data, t->nbytes / 4);
                *worst = fmax(*worst, e);
                CHECKF(e <= 1e-3, "%s: rel L2 %.3g", name, e);
                checked++;
            }
    CHECK(checked == 112);
    return checked;
}
#endif
