/* rules/eval_tasks.h: the three tasks of the eval rule, and the
 * generate-then-test step that filter_correct and recover_data share.
 * Each task fills metrics (headline keys, n, passed) and appends one sample
 * object per benchmark row to samples. */
#ifndef FLAB_RULES_EVAL_TASKS_H
#define FLAB_RULES_EVAL_TASKS_H
#include "eval/tasks.h"
#include "rules/eval_common.h"

/* Generates completions for set items [0, n) (prompts stripped when strip;
 * the stripped prompt then also goes into the program) and runs them in
 * the sandbox.  completions[i] (malloc'd), results[i] (free with
 * eval_sample_result_free).  Returns passed or -1.  Progress: generation
 * 90 %, tests the rest. */
long eval_codegen_generate_and_test(RuleCtx *ctx, EvalRun *r, EvalCodegenSet *set, size_t n,
                                    int strip, char **completions, EvalSampleResult *results);

int eval_task_codegen(RuleCtx *ctx, EvalRun *r, const char *path, cJSON *metrics, cJSON *samples);
int eval_task_cot(RuleCtx *ctx, EvalRun *r, const char *path, cJSON *metrics, cJSON *samples);
int eval_task_output(RuleCtx *ctx, EvalRun *r, const char *path, cJSON *metrics, cJSON *samples);
#endif
