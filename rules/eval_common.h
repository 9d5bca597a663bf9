/* rules/eval_common.h: what the `eval` and `filter_correct` rules share:
 * opening the model, batched greedy generation of a list of prompts (cut at
 * stop strings), and the whole codegen pass (load HumanEval jsonl, generate,
 * sandbox, pass@1).  Every function returns 0 / -1 + flab_fail. */
#ifndef FLAB_RULES_EVAL_COMMON_H
#define FLAB_RULES_EVAL_COMMON_H
#include "eval/sandbox.h"
#include "eval/tasks.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "rules/rule.h"

/* Parameters both rules declare (besides the benchmark / problems path). */
#define EVAL_GEN_PARAMS \
    {"model", RULE_PATH, NULL, 0, -1, NULL, "model directory (HF checkpoint) or @target"}, \
    {"limit", RULE_INT, "0", 0, 100000000, NULL, "use the first N problems (0: all)"}, \
    {"max_new_tokens", RULE_INT, "256", 1, 100000, NULL, "generation budget per problem"}, \
    {"strip_prompt", RULE_BOOL, "false", 0, -1, NULL, "prompt.strip() first, as the paper's scripts"}, \
    {"batch_size", RULE_INT, "8", 1, 4096, NULL, "prompts generated together"}, \
    {"timeout", RULE_FLOAT, "10", 0.1, 3600, NULL, "sandbox seconds per sample"}, \
    {"jobs", RULE_INT, "2", 1, 256, NULL, "sandbox samples run at once"}, \
    {"device", RULE_STRING, "auto", 0, -1, "auto|cpu|cuda", "backend"}, \
    {"threads", RULE_INT, "0", 0, 1024, NULL, "cpu threads (0: all cores)"}

typedef struct {
    flab_tokenizer *tok;
    FlabBackend *be;
    Transformer *t;
    const char *dir;
} EvalModel;

/* Prefill ends when the first token of a batch's sequences is known (the
 * stop callback's first call); decode is the rest.  decode_tokens excludes
 * each sequence's first token, which prefill produced. */
typedef struct {
    double seconds;                 /* generation wall time */
    double prefill_seconds, decode_seconds;
    long prompt_tokens, gen_tokens, decode_tokens;
} EvalGenStats;

int eval_model_open(RuleCtx *ctx, EvalModel *m);
void eval_model_close(EvalModel *m);

/* out[i] (malloc'd) = greedy continuation of prompts[i], special tokens
 * dropped, cut at the first of stops.  Progress done/total counts prompts. */
int eval_generate_all(RuleCtx *ctx, EvalModel *m, const char *const *prompts, size_t n,
                      const char *const *stops, size_t n_stops, char **out, EvalGenStats *st);

/* The prompt fed to the model: a copy, stripped when strip_prompt. */
char *eval_model_prompt(const RuleCtx *ctx, const char *prompt);

/* Codegen pass over the first `limit` problems of path. */
typedef struct {
    EvalCodegenSet set;
    size_t n;
    char **prompts, **completions;
    EvalSampleResult *results;
    long passed;
    EvalIsolation iso;
    EvalGenStats gen;
    double score_seconds;
} EvalCodegenRun;

int eval_codegen_run(RuleCtx *ctx, EvalModel *m, const char *path, EvalCodegenRun *r);
void eval_codegen_run_free(EvalCodegenRun *r);

void eval_sandbox_from_params(const RuleCtx *ctx, EvalSandboxConfig *cfg);
size_t eval_limit(const RuleCtx *ctx, size_t n);
double eval_now(void);
/* Writes text to ctx->out_dir/name. */
int eval_write_out(RuleCtx *ctx, const char *name, const char *text);
#endif
