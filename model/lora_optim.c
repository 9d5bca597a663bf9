/* model/lora_optim.c: AdamW over the adapter parameters, global-norm
 * gradient clipping and the learning-rate schedule (see model/lora.h).
 * AdamW as torch.optim.AdamW: p -= lr * wd * p (decoupled), then
 * m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
 * p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps). */
#include "model/lora_internal.h"
#include "util/error.h"
#include <math.h>

double lora_grad_norm(const LoraModel *m) {
    double ss = 0;
    for (int l = 0; l < m->ck.cfg.num_hidden_layers; l++)
        for (int i = 0; i < LORA_NMOD; i++) {
            const LoraLinear *li = &m->layers[l].lin[i];
            if (!li->A) continue;
            for (size_t k = 0; k < (size_t)m->lc.r * li->in; k++) ss += (double)li->gA[k] * li->gA[k];
            for (size_t k = 0; k < (size_t)m->lc.r * li->out; k++) ss += (double)li->gB[k] * li->gB[k];
        }
    return sqrt(ss);
}

static void adamw(float *p, float *g, float *mo, float *ve, size_t n, const LoraAdamW *o,
                  double lr, double gscale, double bc1, double bc2) {
    for (size_t k = 0; k < n; k++) {
        double gk = g[k] * gscale;
        double pk = p[k] * (1.0 - lr * o->weight_decay);
        mo[k] = (float)(o->beta1 * mo[k] + (1 - o->beta1) * gk);
        ve[k] = (float)(o->beta2 * ve[k] + (1 - o->beta2) * gk * gk);
        pk -= lr * (mo[k] / bc1) / (sqrt(ve[k] / bc2) + o->eps);
        p[k] = (float)pk;
        g[k] = 0;
    }
}

int lora_adamw_step(LoraModel *m, const LoraAdamW *o, double lr, long step, double *grad_norm) {
    if (step < 1) return flab_fail("lora: AdamW step must be >= 1");
    double norm = lora_grad_norm(m), gscale = 1;
    if (!isfinite(norm)) return flab_fail("lora: gradient norm is not finite (step %ld)", step);
    if (o->clip > 0 && norm > o->clip) gscale = o->clip / (norm + 1e-6);
    if (grad_norm) *grad_norm = norm;
    double bc1 = 1 - pow(o->beta1, (double)step), bc2 = 1 - pow(o->beta2, (double)step);
    for (int l = 0; l < m->ck.cfg.num_hidden_layers; l++)
        for (int i = 0; i < LORA_NMOD; i++) {
            LoraLinear *li = &m->layers[l].lin[i];
            if (!li->A) continue;
            adamw(li->A, li->gA, li->mA, li->vA, (size_t)m->lc.r * li->in, o, lr, gscale, bc1, bc2);
            adamw(li->B, li->gB, li->mB, li->vB, (size_t)m->lc.r * li->out, o, lr, gscale, bc1, bc2);
        }
    return 0;
}

double lora_lr_at(double lr, long step, long warmup, long total, int cosine) {
    if (warmup > 0 && step < warmup) return lr * (double)(step + 1) / (double)warmup;
    if (total <= warmup) return lr;
    double prog = (double)(step - warmup) / (double)(total - warmup);
    if (prog > 1) prog = 1;
    return cosine ? lr * 0.5 * (1 + cos(M_PI * prog)) : lr * (1 - prog);
}
