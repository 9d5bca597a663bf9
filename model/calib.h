/* model/calib.h: calibration samples for the pruning searches, and the
 * scorer that runs them through a model.
 *
 * Samples (calib_load): a jsonl file, or a directory holding correct.jsonl
 * (the filter_correct artifact).  Each line is one of
 *   {"ids": [..]}                    every position scored
 *   {"text": "..."}                  every position scored
 *   {"prompt": "...", "completion": "..."}  (or "canonical_solution" when
 *                                    there is no "completion")  scored rows =
 *                                    those predicting completion tokens
 *                                    (positions = completion), or all rows.
 * Tokenization of a prompt/completion row: the concatenation prompt +
 * completion is tokenized (as the paper's scripts do, so the model sees the
 * tokens it would see); the boundary is the longest common prefix of that
 * and the prompt's own tokenization (a token that straddles the boundary
 * counts as completion).  Row p of a sequence predicts token p + 1, so the
 * scored rows are boundary-1 .. len-2.  Sequences are cut to max_len tokens.
 *
 * Scorer (CalibScorer): the samples packed into chunks of at most
 * chunk_rows tokens, the reference (original model) logits of each chunk
 * kept on the backend, and the sums the searches need: KL against the
 * reference (mean over every scored row of every sample), next-token NLL,
 * FLOP accounting.  The reference is the model as it is when the scorer is
 * created (all layers, the FFN keep-lists then set). */
#ifndef FLAB_MODEL_CALIB_H
#define FLAB_MODEL_CALIB_H
#include "model/tokenizer.h"
#include "model/transformer.h"
#include <stdint.h>

typedef struct {
    int n;
    int32_t **ids;       /* ids[i][0 .. lens[i]) */
    int *lens;
    uint8_t **score;     /* score[i][p]: row p is scored */
} CalibSet;

typedef struct {
    int positions_all;   /* 1: score every row of prompt/completion rows too */
    int max_samples;     /* 0: all */
    int max_len;         /* 0: no cut */
} CalibOpts;

/* Loads path (file, or directory with correct.jsonl).  tok may be NULL when
 * every line has "ids".  Errors name the file and line. */
int calib_load(const char *path, flab_tokenizer *tok, const CalibOpts *o, CalibSet *out);
/* From ids arrays directly (every row scored); copies them. */
void calib_from_ids(CalibSet *out, int n, const int32_t *const *ids, const int *lens);
void calib_free(CalibSet *s);
long calib_scored_rows(const CalibSet *s);

typedef struct {
    int n_seqs, rows;
    const int32_t **ids;
    int *lens;
    uint8_t *score;      /* per packed row */
    long n_scored;
    FlabBuf *ref;        /* reference logits [rows, vocab] */
    FlabBuf **hidden;    /* with keep_hidden: [L + 1] residuals entering each
                            layer of the reference forward ([L]: after the
                            last), each [rows, hidden]; else NULL */
} CalibChunk;

typedef struct {
    Transformer *t;
    int n_chunks;
    CalibChunk *chunks;
    long n_scored;
    double flops;        /* FLOPs of the forwards run through this scorer */
} CalibScorer;

/* Packs s (which must outlive the scorer) into chunks and computes the
 * reference logits with the model's current state (all layers); with
 * keep_hidden the residual entering every layer is kept too (layer search). */
int calib_scorer_create(Transformer *t, const CalibSet *s, int chunk_rows, int keep_hidden,
                        CalibScorer *out);
void calib_scorer_free(CalibScorer *sc);
TfBatch calib_chunk_batch(const CalibChunk *c);

/* FLOPs of a forward of chunk c through n_layers_run layers + the head
 * (2 x the multiply-adds of every matmul and of attention scores / values;
 * masked FFN neurons are still computed, so they count). */
double calib_chunk_flops(const Transformer *t, const CalibChunk *c, int n_layers_run);

/* One forward of chunk ci with opts (n_layers_run layers are computed; adds
 * its FLOPs), scored against the reference: *kl_sum (if not NULL) = sum of
 * KL over the scored rows; *nll_sum / *nll_n (if not NULL) = sum and count of
 * next-token NLL over scored rows that have a next token.  Both from the
 * same logits. */
int calib_chunk_eval(CalibScorer *sc, int ci, const TfForwardOpts *opts, int n_layers_run,
                     double *kl_sum, double *nll_sum, long *nll_n);
/* Mean KL over all scored rows of the model running `layers` (NULL: all),
 * and (if nll not NULL) the mean NLL, one full forward per chunk. */
int calib_mean_kl(CalibScorer *sc, const int *layers, int n_layers, double *kl, double *nll);
#endif
