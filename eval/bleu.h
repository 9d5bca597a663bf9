/* eval/bleu.h: corpus BLEU exactly as nlg-eval's Bleu_1..Bleu_4, which is
 * the COCO-caption scorer (pycocoevalcap/bleu/bleu_scorer.py) with option
 * "closest" -- the metric of the paper's CoT task (evaluate_bleu.py calls
 * NLGEval().compute_metrics([references], hypotheses)['Bleu_4']).
 *
 * What nlg-eval does to the strings: strip() each reference and hypothesis,
 * nothing else (no lower-casing, no PTB tokenizer); bleu_scorer then splits
 * on whitespace (Python str.split(): ASCII and Unicode whitespace).
 * Scoring, for n = 1..4, over the whole corpus:
 *   guess_n   = sum over hypotheses of max(0, len - n + 1)
 *   correct_n = sum of min(count in hyp, max count in any of its refs)
 *   reflen    = sum of each hypothesis's closest reference length
 *               (ties: the shorter reference)
 *   Bleu_n    = (prod_{k<=n} (correct_k + 1e-15) / (guess_k + 1e-9))^(1/n)
 *               times exp(1 - reflen/testlen) when testlen < reflen
 *               (as ratio = (testlen + 1e-15) / (reflen + 1e-9)).
 * The floating-point operations follow the Python in the same order. */
#ifndef FLAB_EVAL_BLEU_H
#define FLAB_EVAL_BLEU_H
#include <stddef.h>

typedef struct {
    double bleu[4];              /* Bleu_1 .. Bleu_4 */
    double testlen, reflen;
    double guess[4], correct[4];
} EvalBleu;

/* hyps[i] against refs[i][0 .. n_refs[i]) (n_refs[i] >= 1) for i < n. */
void eval_bleu_corpus(const char *const *hyps, const char *const *const *refs,
                      const size_t *n_refs, size_t n, EvalBleu *out);

/* The paper's case: one reference per hypothesis.  Returns Bleu_4. */
double eval_bleu4_single(const char *const *hyps, const char *const *refs, size_t n);
#endif
