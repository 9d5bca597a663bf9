/* rules/prune_common.h: what the pruning rules (layer_search, ffn_search,
 * apply) share: opening the model on a backend, loading the calibration
 * samples with its tokenizer, reading a layer plan / FFN mask artifact, and
 * writing a JSON artifact file.  Every function returns 0 / -1 + flab_fail. */
#ifndef FLAB_RULES_PRUNE_COMMON_H
#define FLAB_RULES_PRUNE_COMMON_H
#include "model/calib.h"
#include "rules/rule.h"
#include <cjson/cJSON.h>

/* The parameters every search rule declares (model, samples, positions,
 * max_samples, max_len, chunk_tokens, max_memory_mb, device, threads). */
#define PRUNE_SEARCH_PARAMS \
    {"model", RULE_PATH, NULL, 0, -1, NULL, \
     "model directory (HF checkpoint) or @target whose artifact is one"}, \
    {"samples", RULE_PATH, NULL, 0, -1, NULL, \
     "calibration jsonl ({\"ids\"}, {\"text\"}, {\"prompt\",\"completion\"}) or a D_correct dir"}, \
    {"positions", RULE_STRING, "completion", 0, -1, "completion|all", \
     "scored rows of prompt/completion samples: completion tokens or all"}, \
    {"max_samples", RULE_INT, "128", 0, 1000000, NULL, "use at most this many samples (0: all)"}, \
    {"max_len", RULE_INT, "512", 0, 1000000, NULL, "cut samples to this many tokens (0: no cut)"}, \
    {"chunk_tokens", RULE_INT, "4096", 16, 1000000, NULL, \
     "tokens per forward batch (memory vs speed; results do not depend on it)"}, \
    {"max_memory_mb", RULE_INT, "8192", 0, 1e9, NULL, \
     "memory budget of the calibration state (reference logits at scored rows, cached " \
     "residuals): samples are streamed in batches that fit (0: no limit; results do not " \
     "depend on it)"}, \
    {"device", RULE_STRING, "auto", 0, -1, "auto|cpu|cuda", "backend"}, \
    {"threads", RULE_INT, "0", 0, 1024, NULL, "cpu threads (0: all cores)"}

typedef struct {
    FlabBackend *be;
    Transformer *t;
    CalibSet set;
    CalibScorer sc;
} PruneSession;

/* Opens model + backend, loads the samples, makes the scorer (reference =
 * the full model; keep_hidden for the layer search). */
int prune_session_open(RuleCtx *ctx, int keep_hidden, PruneSession *s);
void prune_session_close(PruneSession *s);

/* Parses an artifact's JSON file: path itself, or path/name when path is a
 * directory (the artifact); file (cap bytes) gets the path read, for
 * messages.  NULL with flab_errmsg() set on failure. */
cJSON *prune_json_load(const char *path, const char *name, char *file, size_t cap);
/* A layer plan artifact (dir with plan.json, or the file itself): removed
 * layers (original indices) in *removed (malloc'd), *n. */
int prune_read_plan(const char *path, int n_layers, int **removed, int *n);
/* Layers kept by a plan (ascending): list[0..*m) (list holds n_layers). */
void prune_kept_layers(const int *removed, int n_removed, int n_layers, int *list, int *m);

/* Writes text to ctx->out_dir/name. */
int prune_write_out(RuleCtx *ctx, const char *name, const char *text);
/* rule_progress adapter for the searches (ctx = RuleCtx *). */
void prune_progress(void *ctx, double done, double total);
#endif
