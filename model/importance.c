/* model/importance.c: taylor / fisher importances (see model/importance.h)
 * from the LoRA forward + backward with the probe of
 * model/importance_probe.h switched on. */
#include "model/importance.h"
#include "model/lora_internal.h"
#include "util/error.h"
#include <stdlib.h>
#include <string.h>

double imp_dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

double imp_bias_dot(const float *dy, const float *b, int n, int d) {
    if (!b) return 0;
    double s = 0;
    for (int r = 0; r < n; r++) s += imp_dot(dy + (size_t)r * d, b, (size_t)d);
    return s;
}

void imp_probe_ffn(ImpProbe *p, int l, const float *act, const float *dact, const int *off,
                   const int *lens, int n_seqs, int inter) {
    double *g = flab_xmalloc((size_t)inter * sizeof(double));
    for (int q = 0; q < n_seqs; q++) {
        memset(g, 0, (size_t)inter * sizeof(double));
        for (int r = off[q]; r < off[q] + lens[q]; r++)
            for (int j = 0; j < inter; j++)
                g[j] += (double)act[(size_t)r * inter + j] * dact[(size_t)r * inter + j];
        for (int j = 0; j < inter; j++) {
            p->mask_grad[(size_t)l * inter + j] += g[j];
            p->fisher[(size_t)l * inter + j] += g[j] * g[j];
        }
    }
    free(g);
}

int imp_model_open(const char *dir, LoraModel **out) {
    LoraConfig lc = {1, 1.0, 0.0, 0};   /* r = 1 but no module adapted */
    return lora_model_create(dir, &lc, 1, out);
}

void imp_probe_free(ImpProbe *p) {
    free(p->layer_dot); free(p->mask_grad); free(p->fisher);
    memset(p, 0, sizeof *p);
}

/* Runs sequences [a, b) as one packed batch. */
static int run_batch(LoraModel *m, const ImpSamples *s, int a, int b, double denom,
                     double *loss_sum) {
    int rows = 0;
    for (int i = a; i < b; i++) rows += s->lens[i];
    int32_t *ids = flab_xmalloc((size_t)rows * sizeof(int32_t));
    uint8_t *score = flab_xmalloc((size_t)rows);
    for (int i = a, at = 0; i < b; at += s->lens[i], i++) {
        memcpy(ids + at, s->ids[i], (size_t)s->lens[i] * sizeof(int32_t));
        if (s->score && s->score[i]) memcpy(score + at, s->score[i], (size_t)s->lens[i]);
        else memset(score + at, 1, (size_t)s->lens[i]);
    }
    LoraBatch bt = {b - a, ids, s->lens + a, score};
    double ls = 0;
    long ns = 0;
    int rc = lora_step_fwd_bwd(m, &bt, denom, 0, &ls, &ns);
    *loss_sum += ls;
    free(ids);
    free(score);
    return rc;
}

static long scored_rows(const ImpSamples *s) {
    long n = 0;
    for (int i = 0; i < s->n_seqs; i++)
        for (int p = 0; p + 1 < s->lens[i]; p++) n += !s->score || !s->score[i] || s->score[i][p];
    return n;
}

static int run_all(LoraModel *m, const uint8_t *skip, const ImpSamples *s, int max_rows,
                   ImpProbe *probe, double *loss) {
    long n = scored_rows(s);
    if (n < 1) return flab_fail("importance: the samples have no scored rows");
    m->skip = skip;
    m->probe = probe;
    double sum = 0;
    int rc = 0;
    for (int a = 0; !rc && a < s->n_seqs;) {
        int b = a + 1, rows = s->lens[a];
        while (b < s->n_seqs && rows + s->lens[b] <= max_rows) rows += s->lens[b++];
        rc = run_batch(m, s, a, b, (double)n, &sum);
        a = b;
    }
    m->skip = NULL;
    m->probe = NULL;
    *loss = sum / (double)n;
    return rc;
}

int imp_compute(LoraModel *m, const uint8_t *skip, const ImpSamples *s, int max_rows,
                ImpProbe *out, double *loss) {
    int L = m->ck.cfg.num_hidden_layers, I = m->ck.cfg.intermediate_size;
    out->n_layers = L;
    out->inter = I;
    out->layer_dot = flab_xcalloc((size_t)L, sizeof(double));
    out->mask_grad = flab_xcalloc((size_t)L * I, sizeof(double));
    out->fisher = flab_xcalloc((size_t)L * I, sizeof(double));
    if (run_all(m, skip, s, max_rows, out, loss)) { imp_probe_free(out); return -1; }
    return 0;
}

int imp_loss(LoraModel *m, const uint8_t *skip, const ImpSamples *s, int max_rows, double *loss) {
    return run_all(m, skip, s, max_rows, NULL, loss);
}
