/* rules/eval_common.h: what the model-running rules (eval, filter_correct,
 * recover_data) share: opening the model named by their `model` parameter,
 * the `stop` parameter, batched greedy generation with progress, the
 * sandbox configuration from `timeout`/`jobs`, efficiency figures, and
 * writing JSON artifacts.
 *
 * `stop` syntax: stop strings separated by '|', with the escapes \n \t \\
 * and \| decoded; the default is the paper's five, "\nclass|\ndef|\n#|\nif|\nprint";
 * an empty value means no stop strings. */
#ifndef FLAB_RULES_EVAL_COMMON_H
#define FLAB_RULES_EVAL_COMMON_H
#include "eval/efficiency.h"
#include "eval/sandbox.h"
#include "kernels/ops.h"
#include "model/batch_generate.h"
#include "rules/rule.h"
#include <cjson/cJSON.h>

#define EVAL_STOP_DEFAULT "\\nclass|\\ndef|\\n#|\\nif|\\nprint"
#define EVAL_MAX_STOPS 32

typedef struct {
    const char *model_dir;
    flab_tokenizer *tok;
    FlabBackend *be;
    Transformer *t;
    char *stops[EVAL_MAX_STOPS];
    size_t n_stops;
    EvalSandboxConfig sandbox;
    EvalIsolation iso;           /* filled by the sandbox runs */
    EvalEnergyMeter energy;
    double t_start;
    FlabBatchGenStats gen;
} EvalRun;

/* Opens model (+ tokenizer, backend from `device`/`threads` when declared),
 * parses `stop`, configures the sandbox from `timeout`/`jobs` when
 * declared, starts the energy meter. */
int eval_run_open(RuleCtx *ctx, EvalRun *r);
void eval_run_close(EvalRun *r);

/* Greedy generation of prompts[0..n) with `max_new_tokens`, `batch_size`
 * (8 when not declared); progress spans [0, 1) of the rule's progress as
 * prog_share of the work.  Completions are cut at the stops. */
int eval_run_generate(RuleCtx *ctx, EvalRun *r, const char *const *prompts, size_t n,
                      char **completions, double prog_share);

/* Applies `limit` (0 = all) to a count. */
size_t eval_run_limit(const RuleCtx *ctx, size_t n);

/* The efficiency block: parameters, checkpoint bytes, peak RSS, prefill and
 * decode tokens/s, FLOPs per generated token, energy, CO2. */
cJSON *eval_run_efficiency(EvalRun *r);

/* Writes json (pretty) to out_dir/name. */
int eval_write_json(RuleCtx *ctx, const char *name, const cJSON *json);

/* Appends one object as a line to f. */
void eval_jsonl_line(FILE *f, const cJSON *obj);
FILE *eval_open_out(RuleCtx *ctx, const char *name);

/* Helpers for the parameter tables. */
#define EVAL_PARAM_MODEL {"model", RULE_PATH, NULL, 0, -1, NULL, "model directory or @target"}
#define EVAL_PARAM_LIMIT {"limit", RULE_INT, "0", 0, 1e9, NULL, "first N samples only (0 = all)"}
#define EVAL_PARAM_MAXNEW {"max_new_tokens", RULE_INT, "256", 1, 1e6, NULL, "greedy tokens per sample"}
#define EVAL_PARAM_STRIP {"strip_prompt", RULE_BOOL, "false", 0, -1, NULL, "prompt.strip() as the paper's scripts"}
#define EVAL_PARAM_STOP {"stop", RULE_STRING, EVAL_STOP_DEFAULT, 0, -1, NULL, "stop strings separated by |"}
#define EVAL_PARAM_BATCH {"batch_size", RULE_INT, "8", 1, 4096, NULL, "prompts generated together"}
#define EVAL_PARAM_TIMEOUT {"timeout", RULE_FLOAT, "10", 0.1, 3600, NULL, "sandbox seconds per sample"}
#define EVAL_PARAM_JOBS {"jobs", RULE_INT, "2", 1, 1024, NULL, "sandbox samples at once"}
#define EVAL_PARAM_DEVICE {"device", RULE_STRING, "auto", 0, -1, "auto|cpu|cuda", "compute device"}
#define EVAL_PARAM_THREADS {"threads", RULE_INT, "0", 0, 1024, NULL, "CPU threads (0 = all)"}
#define EVAL_PARAM_END {NULL, 0, NULL, 0, 0, NULL, NULL}

/* malloc'd copy of s, whitespace-stripped at both ends when strip. */
char *eval_prompt_text(const char *s, int strip);
#endif
