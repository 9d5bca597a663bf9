/* rules/lora_data.h: training examples of the lora_train rule.
 *
 * Input: a recovered-data artifact directory (its train.jsonl), or a .jsonl
 * file.  Each line is an object with "prompt" and the target text in
 * "target" (recover_data's format: prompt, target, source) or, for
 * HumanEval-format files, "canonical_solution".  Each example becomes
 *     ids = encode(prompt) ++ encode(target) ++ [eos]
 * (encoded separately, so the prompt/target boundary is exact), truncated
 * to max_len tokens; only rows that predict a target token (or the eos)
 * are scored: the prompt is masked from the loss. */
#ifndef FLAB_RULES_LORA_DATA_H
#define FLAB_RULES_LORA_DATA_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t *ids;
    int len;
    int n_prompt;        /* rows < n_prompt - 1 are not scored */
} LoraExample;

typedef struct {
    LoraExample *ex;
    size_t n;
    size_t n_from_model; /* examples whose "source" is "model" */
} LoraData;

/* path: a directory (reads path/train.jsonl) or a jsonl file; tok_dir holds
 * tokenizer.json.  Examples with no target token left after truncation are
 * skipped (counted in *skipped). */
int lora_data_load(const char *path, const char *tok_dir, int max_len, LoraData *d,
                   size_t *skipped);
void lora_data_free(LoraData *d);
#endif
