/* rules/prune_common.c: see prune_common.h. */
#include "rules/prune_common.h"
#include "model/config.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int load_samples(RuleCtx *ctx, const char *model, CalibSet *set) {
    CalibOpts o = {!strcmp(rule_str(ctx, "positions"), "all"), (int)rule_int(ctx, "max_samples"),
                   (int)rule_int(ctx, "max_len")};
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", model);
    flab_tokenizer *tok = flab_path_exists(path) ? flab_tok_load_dir(model) : NULL;
    if (flab_path_exists(path) && !tok) return -1;
    int rc = calib_load(rule_input(ctx, "samples"), tok, &o, set);
    flab_tok_free(tok);
    return rc;
}

int prune_session_open(RuleCtx *ctx, int keep_hidden, PruneSession *s) {
    const char *model = rule_input(ctx, "model");
    memset(s, 0, sizeof *s);
    if (!(s->be = flab_backend_create(rule_str(ctx, "device"), (int)rule_int(ctx, "threads"))))
        return -1;
    rule_device(ctx, s->be->name);
    if (transformer_load(model, s->be, &s->t) || load_samples(ctx, model, &s->set)) {
        prune_session_close(s);
        return -1;
    }
    rule_log(ctx, "%d samples, %ld scored positions", s->set.n, calib_scored_rows(&s->set));
    CalibScorerOpts so = {(int)rule_int(ctx, "chunk_tokens"), keep_hidden,
                          (size_t)rule_int(ctx, "max_memory_mb") << 20};
    if (calib_scorer_open(s->t, &s->set, &so, &s->sc)) {
        prune_session_close(s);
        return -1;
    }
    if (s->sc.n_batches > 1)
        rule_log(ctx, "calibration state over max_memory_mb: %d batches of samples, streamed",
                 s->sc.n_batches);
    return 0;
}

void prune_session_close(PruneSession *s) {
    calib_scorer_free(&s->sc);
    calib_free(&s->set);
    transformer_free(s->t);
    if (s->be) flab_backend_destroy(s->be);
    memset(s, 0, sizeof *s);
}

cJSON *prune_json_load(const char *path, const char *name, char *file, size_t cap) {
    struct stat st;
    snprintf(file, cap, "%s", path);
    if (!stat(path, &st) && S_ISDIR(st.st_mode)) snprintf(file, cap, "%s/%s", path, name);
    return model_json_load(file);
}

int prune_read_plan(const char *path, int n_layers, int **removed, int *n) {
    char file[4096];
    cJSON *j = prune_json_load(path, "plan.json", file, sizeof file);
    if (!j) return -1;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "removed"), *v;
    int rc = 0;
    *n = 0;
    *removed = flab_xcalloc((size_t)n_layers + 1, sizeof(int));
    if (!cJSON_IsArray(arr)) rc = flab_fail("%s: no \"removed\" array", file);
    cJSON_ArrayForEach(v, arr) {
        if (rc) break;
        int l = cJSON_IsNumber(v) ? v->valueint : -1;
        int dup = 0;
        for (int i = 0; i < *n; i++) dup |= (*removed)[i] == l;
        if (l < 0 || l >= n_layers || dup || *n >= n_layers - 1)
            rc = flab_fail("%s: \"removed\": bad layer (model has %d layers)", file, n_layers);
        else (*removed)[(*n)++] = l;
    }
    cJSON_Delete(j);
    if (rc) { free(*removed); *removed = NULL; *n = 0; }
    return rc;
}

void prune_kept_layers(const int *removed, int n_removed, int n_layers, int *list, int *m) {
    *m = 0;
    for (int l = 0; l < n_layers; l++) {
        int gone = 0;
        for (int i = 0; i < n_removed; i++) gone |= removed[i] == l;
        if (!gone) list[(*m)++] = l;
    }
}

int prune_write_out(RuleCtx *ctx, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", ctx->out_dir, name);
    return flab_write_file_atomic(path, text, strlen(text));
}

void prune_progress(void *ctx, double done, double total) {
    rule_progress((RuleCtx *)ctx, done, total);
}
