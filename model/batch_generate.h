/* model/batch_generate.h: greedy generation over many text prompts, for the
 * rules that run a model over a benchmark (eval, filter_correct,
 * recover_data).
 *
 * Prompts are encoded like HF encode(text), generated in batches of
 * batch_size with the KV cache (transformer_generate), each sequence
 * stopping at eos, at the first stop string in its decoded continuation, or
 * after max_new_tokens.  completions[i] (malloc'd) is the decoded
 * continuation without special tokens and NOT cut at the stop (the caller
 * cuts with eval_cut_completion).  Throughput: prefill tokens/s is timed
 * on a separate last-token-only forward of each batch (the cost of one
 * extra prefill, small next to decoding); decode tokens/s = generated
 * tokens / (generation time - prefill time). */
#ifndef FLAB_MODEL_BATCH_GENERATE_H
#define FLAB_MODEL_BATCH_GENERATE_H
#include "model/tokenizer.h"
#include "model/transformer.h"
#include <stddef.h>

typedef struct {
    int max_new_tokens;
    int batch_size;                       /* prompts per transformer_generate */
    const char *const *stops;             /* stop strings (may be none) */
    size_t n_stops;
    void (*progress)(void *ctx, size_t done, size_t total);  /* may be NULL */
    void *progress_ctx;
} FlabBatchGenOpts;

typedef struct {
    double samples, prompt_tokens, generated_tokens;
    double prefill_s, generate_s;         /* generate_s includes its own prefill */
    double prefill_tps, decode_tps;
} FlabBatchGenStats;

/* 1 when one of stops[0..n_stops) occurs in the decoded continuation
 * gen[0..n_gen) (special tokens kept), else 0; with no stops nothing is
 * decoded.  The stop test of flab_batch_generate and `flab generate`. */
int flab_gen_stop_hit(flab_tokenizer *tok, const int32_t *gen, int n_gen,
                      const char *const *stops, size_t n_stops);

int flab_batch_generate(Transformer *t, flab_tokenizer *tok, const char *const *prompts,
                        size_t n, const FlabBatchGenOpts *opts, char **completions,
                        FlabBatchGenStats *stats);
#endif
