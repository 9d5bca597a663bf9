/* model/layer_search.c: the layer-removal searches (see layer_search.h).
 *
 * State: cur[0..n) is the current layer list (original indices, ascending);
 * C[c][i] (chunk c) is the residual entering cur[i] for the model running
 * cur (C[c][n]: after the last layer).  Invariant between rounds: C matches
 * cur.  A candidate "cur without position j" resumes at j from C[c][j] and
 * captures what it computes (positions > j of the new list) into S; the best
 * candidate so far swaps S into B; committing the winner swaps B into C.
 * Buffers only move between C, S and B (never copied or lost): C is the
 * scorer's own hidden array, S and B are freed here. */
#include "model/layer_search.h"
#include "util/error.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    CalibScorer *sc;
    const LsOptions *o;
    int L, n;
    int *cur, *list;
    FlabBuf ***C, ***S, ***B;   /* [chunk][L + 1] */
    FlabBuf **cap;              /* [L + 1] capture pointers of one forward */
    double naive, done, total;
} Ls;

static const char *const objective_names[] = {"kl", "perplexity", "cosine", "angular", "taylor"};
static const char *const score_names[] = {"kl", "nll", "block_influence", "angular_distance",
                                            "taylor_importance"};

int ls_objective_parse(const char *s, LsObjective *o) {
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, objective_names[i])) { *o = (LsObjective)i; return 0; }
    return -1;
}
const char *ls_objective_name(LsObjective o) { return objective_names[o]; }
const char *ls_score_name(LsObjective o) { return score_names[o]; }

/* ---- state -------------------------------------------------------------- */

static FlabBuf **alloc_set(CalibScorer *sc, const CalibChunk *c, int L) {
    FlabBuf **s = flab_xcalloc((size_t)L + 1, sizeof *s);
    for (int i = 0; i <= L; i++)
        if (!(s[i] = transformer_backend(sc->t)->alloc(transformer_backend(sc->t), (size_t)c->rows * transformer_config(sc->t)->hidden_size)))
            return s;   /* the NULL entry is caught by the caller */
    return s;
}

static void free_set(CalibScorer *sc, FlabBuf **s, int L) {
    for (int i = 0; s && i <= L; i++) transformer_backend(sc->t)->free_buf(transformer_backend(sc->t), s[i]);
    free(s);
}

static void ls_free(Ls *ls) {
    for (int c = 0; ls->S && c < ls->sc->n_chunks; c++) {
        free_set(ls->sc, ls->S[c], ls->L);
        free_set(ls->sc, ls->B[c], ls->L);
    }
    free(ls->S); free(ls->B); free(ls->C); free(ls->cap); free(ls->cur); free(ls->list);
}

static int ls_init(Ls *ls, CalibScorer *sc, const LsOptions *o) {
    memset(ls, 0, sizeof *ls);
    ls->sc = sc;
    ls->o = o;
    ls->n = ls->L = transformer_config(sc->t)->num_hidden_layers;
    ls->cur = flab_xmalloc((size_t)ls->L * sizeof(int));
    ls->list = flab_xmalloc((size_t)ls->L * sizeof(int));
    ls->cap = flab_xcalloc((size_t)ls->L + 1, sizeof *ls->cap);
    for (int i = 0; i < ls->L; i++) ls->cur[i] = i;
    ls->naive = sc->flops;      /* the reference forward: both searches need it */
    int nc = sc->n_chunks;
    ls->C = flab_xcalloc((size_t)nc, sizeof *ls->C);
    ls->S = flab_xcalloc((size_t)nc, sizeof *ls->S);
    ls->B = flab_xcalloc((size_t)nc, sizeof *ls->B);
    int captures = o->reuse || o->objective == LS_COSINE || o->objective == LS_ANGULAR;
    for (int c = 0; c < nc && captures; c++) {
        if (!(ls->C[c] = sc->chunks[c].hidden))
            return flab_fail("layer search: the scorer keeps no hidden states");
        ls->S[c] = alloc_set(sc, &sc->chunks[c], ls->L);
        ls->B[c] = alloc_set(sc, &sc->chunks[c], ls->L);
        if (!ls->S[c][ls->L] || !ls->B[c][ls->L]) return -1;
    }
    return 0;
}

static void step_progress(Ls *ls) {
    ls->done++;
    if (ls->o->progress) ls->o->progress(ls->o->progress_ctx, ls->done, ls->total);
}

/* ---- evaluating one model ------------------------------------------------ */

/* Scores the model running list[0..m), whose first j layers equal cur's (so
 * C[.][j] is the residual entering list[j]).  With capture, the residuals
 * entering list[j+1 .. m] go to S.  Means over all chunks. */
static int eval_list(Ls *ls, const int *list, int m, int j, int capture,
                     double *kl, double *nll) {
    CalibScorer *sc = ls->sc;
    double kl_sum = 0, nll_sum = 0, a = 0, b = 0;
    long nll_n = 0, cnt = 0;
    int reuse = ls->o->reuse || capture;
    for (int c = 0; c < sc->n_chunks; c++) {
        TfForwardOpts opt = {.layers = list, .n_layers = m};
        if (reuse) {
            opt.start_at = j;
            opt.start_hidden = ls->C[c][j];
            for (int i = 0; i <= m; i++) ls->cap[i] = capture && i > j ? ls->S[c][i] : NULL;
            opt.capture = capture ? ls->cap : NULL;
        }
        if (calib_chunk_eval(sc, c, &opt, reuse ? m - j : m, &a, nll ? &b : NULL, &cnt))
            return -1;
        kl_sum += a;
        nll_sum += nll ? b : 0;
        nll_n += nll ? cnt : 0;
        ls->naive += calib_chunk_flops(sc->t, &sc->chunks[c], m);
    }
    *kl = kl_sum / (double)sc->n_scored;
    if (nll) {
        if (nll_n == 0) return flab_fail("calibration: no scored position has a next token");
        *nll = nll_sum / (double)nll_n;
    }
    return 0;
}

/* list = cur without position j; returns its length. */
static int without(const Ls *ls, int j, int *list) {
    int m = 0;
    for (int i = 0; i < ls->n; i++) if (i != j) list[m++] = ls->cur[i];
    return m;
}

static void swap_sets(FlabBuf **a, FlabBuf **b, int from, int to) {
    for (int i = from; i <= to; i++) { FlabBuf *t = a[i]; a[i] = b[i]; b[i] = t; }
}

/* The candidate at j (scored with capture) becomes the best so far. */
static void keep_best(Ls *ls, int j) {
    for (int c = 0; c < ls->sc->n_chunks; c++) swap_sets(ls->S[c], ls->B[c], j + 1, ls->n - 1);
}

/* Removes position j from cur; B (the best candidate = j) becomes C. */
static void commit(Ls *ls, int j) {
    for (int c = 0; c < ls->sc->n_chunks; c++) swap_sets(ls->C[c], ls->B[c], j + 1, ls->n - 1);
    ls->n = without(ls, j, ls->cur);
}

/* ---- rounds ------------------------------------------------------------- */

static LsRound *new_round(LsResult *r, int removed, double kl) {
    LsRound *d = &r->rounds[r->n_removed];
    memset(d, 0, sizeof *d);
    d->removed = removed;
    d->kl = kl;
    r->removed[r->n_removed++] = removed;
    return d;
}

static void round_candidates(LsRound *d, const Ls *ls, const double *score, int n) {
    d->n_cand = n;
    d->cand_layer = flab_xmalloc((size_t)n * sizeof(int));
    d->cand_score = flab_xmalloc((size_t)n * sizeof(double));
    for (int j = 0; j < n; j++) { d->cand_layer[j] = ls->cur[j]; d->cand_score[j] = score[j]; }
}

/* One greedy round of kl / perplexity: every position, the lowest score. */
static int greedy_round(Ls *ls, LsResult *r) {
    int n = ls->n, best = -1, reuse = ls->o->reuse;
    double *score = flab_xmalloc((size_t)n * sizeof(double)), best_kl = 0, kl, nll;
    int want_nll = ls->o->objective == LS_PERPLEXITY;
    for (int j = 0; j < n; j++) {
        int m = without(ls, j, ls->list);
        if (eval_list(ls, ls->list, m, j, reuse, &kl, want_nll ? &nll : NULL)) {
            free(score);
            return -1;
        }
        score[j] = want_nll ? nll : kl;
        if (best < 0 || score[j] < score[best]) {
            best = j;
            best_kl = kl;
            if (reuse) keep_best(ls, j);
        }
        step_progress(ls);
    }
    round_candidates(new_round(r, ls->cur[best], best_kl), ls, score, n);
    free(score);
    if (reuse) commit(ls, best);
    else ls->n = without(ls, best, ls->cur);
    return 0;
}

/* Host copy of the residual rows of buffer b of chunk c. */
static float *download(Ls *ls, const CalibChunk *c, const FlabBuf *b, int H) {
    float *h = flab_xmalloc((size_t)c->rows * H * sizeof(float));
    FlabBackend *be = transformer_backend(ls->sc->t);
    if (be->download_f32(be, h, b, 0, (size_t)c->rows * H)) {
        free(h);
        return NULL;
    }
    return h;
}

/* Mean over scored rows of f(cos(C[a], C[b])): f = 1 - cos (block
 * influence) or arccos(cos) / pi (angular distance). */
static int mean_cos_score(Ls *ls, int a, int b, int angular, double *out) {
    int H = transformer_config(ls->sc->t)->hidden_size;
    double sum = 0;
    for (int ci = 0; ci < ls->sc->n_chunks; ci++) {
        const CalibChunk *c = &ls->sc->chunks[ci];
        float *x = download(ls, c, ls->C[ci][a], H), *y = x ? download(ls, c, ls->C[ci][b], H) : NULL;
        if (!y) { free(x); return -1; }
        for (int r = 0; r < c->rows; r++) {
            if (!c->score[r]) continue;
            double xy = 0, xx = 0, yy = 0;
            for (int d = 0; d < H; d++) {
                double u = x[(size_t)r * H + d], v = y[(size_t)r * H + d];
                xy += u * v; xx += u * u; yy += v * v;
            }
            double cs = xx > 0 && yy > 0 ? xy / sqrt(xx * yy) : 1.0;
            cs = cs > 1 ? 1 : cs < -1 ? -1 : cs;
            sum += angular ? acos(cs) / M_PI : 1.0 - cs;
        }
        free(x); free(y);
    }
    *out = sum / (double)ls->sc->n_scored;
    return 0;
}

/* One iterative cosine round: block influence of every current layer, the
 * lowest removed; its forward (resumed at j) gives the KL and the new C. */
static int cosine_round(Ls *ls, LsResult *r) {
    int n = ls->n, best = 0;
    double *bi = flab_xmalloc((size_t)n * sizeof(double)), kl;
    for (int j = 0; j < n; j++) {
        if (mean_cos_score(ls, j, j + 1, 0, &bi[j])) { free(bi); return -1; }
        if (bi[j] < bi[best]) best = j;
    }
    int m = without(ls, best, ls->list);
    int rc = eval_list(ls, ls->list, m, best, 1, &kl, NULL);
    if (!rc) {
        round_candidates(new_round(r, ls->cur[best], 0), ls, bi, n);
        r->rounds[r->n_removed - 1].kl = kl;
        keep_best(ls, best);
        commit(ls, best);
        step_progress(ls);
    }
    free(bi);
    return rc;
}

/* Scores of the oneshot objectives on the full model: score[j] for layer j
 * (angular: for the block starting at j, j <= L - k); *n_scores = count. */
static int oneshot_scores(Ls *ls, double *score, int *n_scores) {
    LsObjective obj = ls->o->objective;
    int L = ls->L, k = ls->o->remove;
    double kl, nll;
    *n_scores = obj == LS_ANGULAR ? L - k + 1 : L;
    for (int j = 0; j < *n_scores; j++) {
        int rc;
        if (obj == LS_COSINE) rc = mean_cos_score(ls, j, j + 1, 0, &score[j]);
        else if (obj == LS_ANGULAR) rc = mean_cos_score(ls, j, j + k, 1, &score[j]);
        else {
            int m = without(ls, j, ls->list);
            rc = eval_list(ls, ls->list, m, j, 0, &kl, obj == LS_PERPLEXITY ? &nll : NULL);
            score[j] = obj == LS_PERPLEXITY ? nll : kl;
        }
        if (rc) return -1;
        step_progress(ls);
    }
    return 0;
}

/* The removal order of a oneshot search from its scores. */
static void oneshot_order(const Ls *ls, const double *score, int n_scores, int *order) {
    int k = ls->o->remove;
    if (ls->o->objective == LS_ANGULAR) {
        int best = 0;
        for (int j = 1; j < n_scores; j++) if (score[j] < score[best]) best = j;
        for (int i = 0; i < k; i++) order[i] = best + i;
        return;
    }
    int *idx = flab_xmalloc((size_t)n_scores * sizeof(int));
    for (int j = 0; j < n_scores; j++) {          /* stable insertion sort */
        int i = j;
        while (i > 0 && score[idx[i - 1]] > score[j]) { idx[i] = idx[i - 1]; i--; }
        idx[i] = j;
    }
    memcpy(order, idx, (size_t)k * sizeof(int));
    free(idx);
}

/* Rounds of a oneshot search: the KL after each prefix of the order. */
static int oneshot(Ls *ls, LsResult *r) {
    int L = ls->L, k = ls->o->remove, n_scores;
    double *score = flab_xmalloc((size_t)L * sizeof(double)), kl;
    int *order = flab_xmalloc((size_t)k * sizeof(int)), *gone = flab_xcalloc((size_t)L, sizeof(int));
    int rc = oneshot_scores(ls, score, &n_scores);
    if (!rc) oneshot_order(ls, score, n_scores, order);
    for (int i = 0; !rc && i < k; i++) {
        int m = 0, first = L;
        gone[order[i]] = 1;
        for (int l = 0; l < L; l++) {
            if (gone[l] && l < first) first = l;
            if (!gone[l]) ls->list[m++] = l;
        }
        rc = eval_list(ls, ls->list, m, first, 0, &kl, NULL);
        if (rc) break;
        LsRound *d = new_round(r, order[i], kl);
        if (i == 0) {
            round_candidates(d, ls, score, n_scores);
            for (int j = 0; j < n_scores; j++) d->cand_layer[j] = j;
        }
        step_progress(ls);
    }
    free(score); free(order); free(gone);
    return rc;
}

/* ---- entry points --------------------------------------------------------- */

static int check_options(const Ls *ls, const LsOptions *o) {
    if (o->remove < 1 || o->remove >= ls->L)
        return flab_fail("layer search: remove = %d: must be in [1, %d]", o->remove, ls->L - 1);
    if (o->objective == LS_ANGULAR && o->iterative)
        return flab_fail("layer search: objective angular removes one block at once: "
                         "mode must be oneshot");
    return 0;
}

static double total_steps(const LsOptions *o, int L) {
    if (!o->iterative) return (o->objective == LS_ANGULAR ? L - o->remove + 1 : L) + o->remove;
    if (o->objective == LS_COSINE) return o->remove;
    double t = 0;
    for (int i = 0; i < o->remove; i++) t += L - i;
    return t;
}

int layer_search(CalibScorer *sc, const LsOptions *o, LsResult *out) {
    Ls ls;
    memset(out, 0, sizeof *out);
    int rc = ls_init(&ls, sc, o);
    if (!rc) rc = check_options(&ls, o);
    if (!rc) {
        ls.total = total_steps(o, ls.L);
        out->removed = flab_xcalloc((size_t)o->remove, sizeof(int));
        out->rounds = flab_xcalloc((size_t)o->remove, sizeof(LsRound));
        if (!o->iterative) rc = oneshot(&ls, out);
        for (int i = 0; o->iterative && !rc && i < o->remove; i++)
            rc = o->objective == LS_COSINE ? cosine_round(&ls, out) : greedy_round(&ls, out);
    }
    if (!rc) {
        out->kl = out->rounds[out->n_removed - 1].kl;
        out->flops = sc->flops;
        out->naive_flops = ls.naive;
    }
    ls_free(&ls);
    if (rc) ls_result_free(out);
    return rc;
}

void ls_result_free(LsResult *r) {
    for (int i = 0; r->rounds && i < r->n_removed; i++) {
        free(r->rounds[i].cand_layer);
        free(r->rounds[i].cand_score);
    }
    free(r->rounds);
    free(r->removed);
    memset(r, 0, sizeof *r);
}

char *ls_plan_json(const LsResult *r, const LsOptions *o) {
    cJSON *j = cJSON_CreateObject(), *rounds = cJSON_CreateArray(), *rm = cJSON_CreateArray();
    char key[32];
    cJSON_AddStringToObject(j, "objective", ls_objective_name(o->objective));
    cJSON_AddStringToObject(j, "mode", o->iterative ? "iterative" : "oneshot");
    cJSON_AddStringToObject(j, "score", ls_score_name(o->objective));
    for (int i = 0; i < r->n_removed; i++) cJSON_AddItemToArray(rm, cJSON_CreateNumber(r->removed[i]));
    cJSON_AddItemToObject(j, "removed", rm);
    cJSON_AddNumberToObject(j, "kl", r->kl);
    for (int i = 0; i < r->n_removed; i++) {
        const LsRound *d = &r->rounds[i];
        cJSON *o1 = cJSON_CreateObject(), *cand = cJSON_CreateObject();
        cJSON_AddNumberToObject(o1, "removed", d->removed);
        cJSON_AddNumberToObject(o1, "kl", d->kl);
        for (int c = 0; c < d->n_cand; c++) {
            snprintf(key, sizeof key, "%d", d->cand_layer[c]);
            cJSON_AddNumberToObject(cand, key, d->cand_score[c]);
        }
        cJSON_AddItemToObject(o1, "candidates", cand);
        cJSON_AddItemToArray(rounds, o1);
    }
    cJSON_AddItemToObject(j, "rounds", rounds);
    cJSON_AddNumberToObject(j, "flops", r->flops);
    cJSON_AddNumberToObject(j, "naive_flops", r->naive_flops);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}
