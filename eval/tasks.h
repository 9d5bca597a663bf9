/* eval/tasks.h: the three benchmark tasks of the paper, independent of any
 * model: loading the files, turning a model completion into what is scored.
 *
 *   codegen  HumanEval jsonl (task_id, prompt, canonical_solution, test,
 *            entry_point).  The completion is cut at the first stop string;
 *            the program run in the sandbox is, as in openai/human-eval,
 *              prompt + completion + "\n" + test + "\n" + "check(ENTRY)\n".
 *   cot      CSV with columns prompt, cot (RFC 4180: quoted fields may hold
 *            commas, "" and newlines); scored by BLEU-4 (eval/bleu.h).
 *   output   CRUXEval jsonl (code, input, output, id) or CodeHarmony's
 *            (code, entry_point, input, output).  The prompt is
 *              code + "\nassert F(INPUT) == "     (F = entry_point or "f");
 *            the prediction is the completion up to the end of its first
 *            line, trimmed; exact match compares prediction and gold after
 *            replacing every '"' by '\'' (the paper's evaluate_em.py); the
 *            execution check runs `assert eval(P) == eval(G)` in the sandbox.
 *
 * Loaders return 0, or -1 with a message naming file:line.  Blank lines in
 * jsonl files are skipped (CodeHarmony_valid.jsonl starts with one). */
#ifndef FLAB_EVAL_TASKS_H
#define FLAB_EVAL_TASKS_H
#include <stddef.h>

typedef struct {
    char *task_id, *prompt, *canonical_solution, *test, *entry_point;
} EvalCodegenTask;

typedef struct {
    char *id;            /* "id" field, else the 0-based row number */
    char *code, *input, *output;
    char *entry_point;   /* "entry_point" field, else "f" */
} EvalOutputTask;

typedef struct {
    char *prompt, *cot;
} EvalCotTask;

typedef struct { EvalCodegenTask *items; size_t n; } EvalCodegenSet;
typedef struct { EvalOutputTask *items; size_t n; } EvalOutputSet;
typedef struct { EvalCotTask *items; size_t n; } EvalCotSet;

int eval_load_codegen(const char *path, EvalCodegenSet *set);
int eval_load_output(const char *path, EvalOutputSet *set);
int eval_load_cot(const char *path, EvalCotSet *set);
void eval_codegen_set_free(EvalCodegenSet *set);
void eval_output_set_free(EvalOutputSet *set);
void eval_cot_set_free(EvalCotSet *set);

/* The paper's stop strings: "\nclass", "\ndef", "\n#", "\nif", "\nprint". */
extern const char *const eval_default_stops[];
extern const size_t eval_default_n_stops;

/* Length of completion up to the earliest occurrence of any stop string
 * (the whole length when none occurs). */
size_t eval_cut_at_stops(const char *completion, const char *const *stops, size_t n_stops);

/* malloc'd: completion cut at the stops. */
char *eval_cut_completion(const char *completion, const char *const *stops, size_t n_stops);

/* malloc'd: the program that checks completion against the task's tests. */
char *eval_codegen_program(const EvalCodegenTask *t, const char *completion);

/* malloc'd: code + "\nassert F(INPUT) == ". */
char *eval_output_prompt(const EvalOutputTask *t);

/* malloc'd: the completion up to its first newline, whitespace-trimmed. */
char *eval_output_answer(const char *completion);

/* 1 when prediction and gold match after '"' -> '\'' (both trimmed). */
int eval_output_exact_match(const char *prediction, const char *gold);

/* malloc'd: the execution match of prediction against t->output: runs
 * t->code (exceptions ignored) so that names it imports (datetime, ...) are
 * in scope, then `assert eval(P, g) == eval(G, g)`; P, G, the code are
 * embedded as Python literals. */
char *eval_output_exec_program(const EvalOutputTask *t, const char *prediction);

/* malloc'd: code + "\nassert F(INPUT) == OUTPUT": checks the gold itself. */
char *eval_output_gold_program(const EvalOutputTask *t);

/* malloc'd: s as a Python str literal in single quotes (UTF-8 kept). */
char *eval_python_literal(const char *s);
#endif
