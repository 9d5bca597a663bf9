/* model/score.c: the numbers the pruning searches optimise, computed on
 * the backend from one teacher-forced forward: mean KL against reference
 * logits (layer / FFN search objective) and mean next-token cross-entropy
 * (perplexity baselines).  Per-row values come from the fused backend ops
 * (kl_rows, cross_entropy); only the row means are taken here, in float64. */
#include "model/transformer_internal.h"
#include "util/error.h"
#include <stdlib.h>

static int batch_rows(const TfBatch *b) {
    int n = 0;
    for (int s = 0; s < b->n_seqs; s++) n += b->lens[s];
    return n;
}

int transformer_mean_kl(Transformer *t, const TfBatch *batch, const TfForwardOpts *opts,
                        const FlabBuf *ref_logits, const uint8_t *score, double *mean_kl) {
    if (opts && opts->last_only)
        return flab_fail("model: mean_kl: scores every row; last_only is not allowed");
    const FlabBuf *lg;
    if (transformer_forward(t, batch, opts, &lg)) return -1;
    int rows = batch_rows(batch);
    double *kl = flab_xmalloc((size_t)rows * sizeof(double)), sum = 0;
    long n = 0;
    int rc = t->be->kl_rows(t->be, kl, ref_logits, lg, rows, t->cfg.vocab_size);
    for (int r = 0; !rc && r < rows; r++)
        if (!score || score[r]) { sum += kl[r]; n++; }
    free(kl);
    if (rc) return -1;
    if (n == 0) return flab_fail("model: mean_kl: no scored rows");
    *mean_kl = sum / n;
    return 0;
}

int transformer_mean_ce(Transformer *t, const TfBatch *batch, const TfForwardOpts *opts,
                        const uint8_t *score, double *mean_ce, long *n_scored) {
    if (opts && opts->last_only)
        return flab_fail("model: mean_ce: scores every row; last_only is not allowed");
    int rows = batch_rows(batch);
    int32_t *target = flab_xmalloc((size_t)rows * sizeof(int32_t));
    for (int s = 0, r = 0; s < batch->n_seqs; s++)
        for (int p = 0; p < batch->lens[s]; p++, r++)
            target[r] = p + 1 < batch->lens[s] && (!score || score[r]) ? batch->ids[s][p + 1] : -1;
    const FlabBuf *lg;
    double *ce = flab_xmalloc((size_t)rows * sizeof(double)), sum = 0;
    long n = 0;
    int rc = transformer_forward(t, batch, opts, &lg) ||
             t->be->cross_entropy(t->be, ce, lg, target, rows, t->cfg.vocab_size);
    for (int r = 0; !rc && r < rows; r++)
        if (target[r] >= 0) { sum += ce[r]; n++; }
    free(ce);
    free(target);
    if (rc) return -1;
    if (n == 0) return flab_fail("model: mean_ce: no scored rows");
    *mean_ce = sum / n;
    if (n_scored) *n_scored = n;
    return 0;
}
