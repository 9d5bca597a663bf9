/* rules/apply_prune.c: the `apply` rule -> pruned model (an HF checkpoint).
 *
 *   [model/pruned]
 *   rule = apply
 *   model = models/CodeQwen1.5-7B   ; the original model
 *   tokenizer = @tokenizer          ; optional: a prune_vocab artifact
 *   plan = @layers/plan             ; optional: plan.json of layer_search
 *   mask = @ffn/mask                ; optional: mask.json of ffn_search
 *
 * The weights come from the prune_vocab artifact when `tokenizer` is given
 * (it is the vocabulary-pruned copy of `model`: same layers and FFN, rows of
 * embed_tokens / lm_head sliced, its own tokenizer files and id_map.json,
 * which are carried over), else from `model` (a model directory that is a
 * prune_vocab artifact itself works the same way).  Removed layers are
 * dropped and the rest renumbered 0..; gate_proj / up_proj rows and
 * down_proj columns outside the mask's kept neurons are dropped (the mask
 * is keyed by original layer index and must cover every kept layer with
 * the same count); config num_hidden_layers and intermediate_size follow,
 * every other config key is kept.  Tensors are copied bit for bit.
 * Metrics: params_before (of `model`), params_after, reduction_percent. */
#include "model/checkpoint.h"
#include "model/tensor_select.h"
#include "rules/prune_common.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const RuleParam apply_params[] = {
    {"model", RULE_PATH, NULL, 0, -1, NULL, "the original model directory (or @target)"},
    {"tokenizer", RULE_PATH, "", 0, -1, NULL, "optional prune_vocab artifact (@target)"},
    {"plan", RULE_PATH, "", 0, -1, NULL, "optional layer plan (@target of layer_search)"},
    {"mask", RULE_PATH, "", 0, -1, NULL, "optional FFN mask (@target of ffn_search)"},
    {"max_shard", RULE_STRING, "5GB", 0, -1, NULL, "shard size limit of the written weights"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

typedef struct {
    int L, *new_index;        /* [L]: new layer index or -1 */
    int K;                    /* kept neurons per layer, 0 = no mask */
    int64_t **keep;           /* [L] (kept layers only) */
} Pruning;

static void pruning_free(Pruning *p) {
    for (int l = 0; p->keep && l < p->L; l++) free(p->keep[l]);
    free(p->keep);
    free(p->new_index);
}

/* mask.json -> p->keep / p->K, checked against the kept layers. */
static int read_mask(const char *path, const ModelConfig *c, Pruning *p) {
    char file[4096];
    cJSON *j = prune_json_load(path, "mask.json", file, sizeof file);
    if (!j) return -1;
    const cJSON *kept = cJSON_GetObjectItemCaseSensitive(j, "kept");
    int rc = cJSON_IsObject(kept) ? 0 : flab_fail("%s: no \"kept\" object", file);
    p->keep = flab_xcalloc((size_t)p->L, sizeof *p->keep);
    for (int l = 0; l < p->L && !rc; l++) {
        char key[32];
        snprintf(key, sizeof key, "%d", l);
        if (p->new_index[l] < 0 && cJSON_GetObjectItemCaseSensitive(kept, key))
            rc = flab_fail("%s: layer %d has a mask but the plan removes it: the mask was "
                           "made for another plan", file, l);
    }
    for (int l = 0; l < p->L && !rc; l++) {
        char key[32];
        snprintf(key, sizeof key, "%d", l);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(kept, key), *v;
        if (p->new_index[l] < 0) continue;
        int n = cJSON_GetArraySize(a), k = 0;
        if (!cJSON_IsArray(a) || n < 1 || (p->K && n != p->K))
            rc = flab_fail("%s: \"kept\" of layer %d missing or of another size", file, l);
        p->K = n;
        p->keep[l] = flab_xmalloc((size_t)n * sizeof(int64_t));
        cJSON_ArrayForEach(v, a) {
            if (rc) break;
            int64_t x = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
            if (x < 0 || x >= c->intermediate_size || (k && x <= p->keep[l][k - 1]))
                rc = flab_fail("%s: layer %d: neuron indices must be ascending in [0, %d)",
                               file, l, c->intermediate_size);
            else p->keep[l][k++] = x;
        }
    }
    cJSON_Delete(j);
    return rc;
}

static int read_pruning(RuleCtx *ctx, const ModelConfig *c, Pruning *p) {
    int *removed = NULL, n_removed = 0, rc = 0;
    const char *plan = rule_input(ctx, "plan"), *mask = rule_input(ctx, "mask");
    memset(p, 0, sizeof *p);
    p->L = c->num_hidden_layers;
    p->new_index = flab_xmalloc((size_t)p->L * sizeof(int));
    if (plan && prune_read_plan(plan, p->L, &removed, &n_removed)) return -1;
    for (int l = 0, k = 0; l < p->L; l++) {
        int gone = 0;
        for (int i = 0; i < n_removed; i++) gone |= removed[i] == l;
        p->new_index[l] = gone ? -1 : k++;
    }
    free(removed);
    if (!rc && mask) rc = read_mask(mask, c, p);
    return rc;
}

/* One tensor of the pruned model into *w (data malloc'd when *owned). */
static int prune_tensor(const StTensor *t, const Pruning *p, int layer, StWriteTensor *w,
                        int *owned) {
    const char *n = t->name;
    *owned = 1;
    if (p->K && layer >= 0 && (strstr(n, ".mlp.gate_proj.") || strstr(n, ".mlp.up_proj.")))
        return st_select_rows(t, p->keep[layer], (size_t)p->K, w);
    if (p->K && layer >= 0 && strstr(n, ".mlp.down_proj.weight"))
        return st_select_cols(t, p->keep[layer], (size_t)p->K, w);
    *owned = 0;
    *w = st_write_view(t);
    return 0;
}

static size_t count_params(const SafeTensors *st) {
    size_t total = 0;
    for (size_t i = 0; i < st_count(st); i++) {
        const StTensor *t = st_at(st, i);
        size_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
        total += n;
    }
    return total;
}

/* The pruned tensors of ck: w[0..*m) (names / data owned per names[], owned[]). */
static int build_tensors(const Checkpoint *ck, const Pruning *p, StWriteTensor *w, char **names,
                         int *owned, size_t *m, size_t *params) {
    *m = 0;
    *params = 0;
    for (size_t i = 0; i < st_count(ck->st); i++) {
        const StTensor *t = st_at(ck->st, i);
        int L = -1, k = 0;
        if (sscanf(t->name, "model.layers.%d.%n", &L, &k) == 1 && k > 0) {
            if (L < 0 || L >= p->L) return flab_fail("%s: tensor %s: layer outside the config", ck->dir, t->name);
            if (p->new_index[L] < 0) continue;
        } else {
            L = -1;
        }
        if (prune_tensor(t, p, L, &w[*m], &owned[*m])) return -1;
        if (L >= 0) {
            names[*m] = flab_xmalloc(strlen(t->name) + 16);
            sprintf(names[*m], "model.layers.%d.%s", p->new_index[L], t->name + k);
            w[*m].name = names[*m];
        }
        size_t n = 1;
        for (int d = 0; d < w[*m].ndim; d++) n *= (size_t)w[*m].shape[d];
        *params += n;
        (*m)++;
    }
    return 0;
}

/* params of the original model; with a prune_vocab artifact, checks it
 * derives from the same architecture. */
static int original_params(RuleCtx *ctx, const Checkpoint *base, size_t *params) {
    const char *tok = rule_input(ctx, "tokenizer");
    if (!tok) { *params = count_params(base->st); return 0; }
    Checkpoint orig;
    if (ckpt_open(rule_input(ctx, "model"), &orig)) return -1;
    const ModelConfig *a = &orig.cfg, *b = &base->cfg;
    int rc = 0;
    if (a->num_hidden_layers != b->num_hidden_layers || a->hidden_size != b->hidden_size ||
        a->intermediate_size != b->intermediate_size)
        rc = flab_fail("tokenizer %s: its checkpoint does not derive from model %s "
                       "(layers / hidden / intermediate differ)", tok, orig.dir);
    *params = count_params(orig.st);
    ckpt_close(&orig);
    return rc;
}

static int copy_id_map(RuleCtx *ctx, const char *base) {
    char src[4096], *data = NULL;
    size_t len = 0;
    snprintf(src, sizeof src, "%s/id_map.json", base);
    if (!flab_path_exists(src)) return 0;
    int rc = flab_read_file(src, &data, &len);
    if (!rc) {
        snprintf(src, sizeof src, "%s/id_map.json", ctx->out_dir);
        rc = flab_write_file_atomic(src, data, len);
    }
    free(data);
    return rc;
}

static int apply_run(RuleCtx *ctx) {
    const char *base = rule_input(ctx, "tokenizer");
    if (!base) base = rule_input(ctx, "model");
    Checkpoint ck;
    Pruning p = {0};
    size_t before = 0, after = 0, m = 0, shard = 0;
    if (st_parse_size(rule_str(ctx, "max_shard"), &shard)) return -1;
    if (ckpt_open(base, &ck)) return -1;
    size_t n = st_count(ck.st);
    StWriteTensor *w = flab_xcalloc(n + 1, sizeof *w);
    char **names = flab_xcalloc(n + 1, sizeof *names);
    int *owned = flab_xcalloc(n + 1, sizeof *owned);
    int rc = original_params(ctx, &ck, &before) || read_pruning(ctx, &ck.cfg, &p) ||
             build_tensors(&ck, &p, w, names, owned, &m, &after);
    if (!rc) {
        ModelConfig cfg = ck.cfg;
        cfg.num_hidden_layers = 0;
        for (int l = 0; l < p.L; l++) cfg.num_hidden_layers += p.new_index[l] >= 0;
        if (p.K) cfg.intermediate_size = p.K;
        CkptWriteOptions opt = {.src_dir = base, .copy_tokenizer = true, .max_shard_bytes = shard};
        rc = ckpt_write(ctx->out_dir, &cfg, w, m, &opt) || copy_id_map(ctx, base);
        rule_log(ctx, "%d layers, intermediate %d, vocab %d: %zu -> %zu parameters",
                 cfg.num_hidden_layers, cfg.intermediate_size, cfg.vocab_size, before, after);
    }
    if (!rc) {
        rule_metric_num(ctx, "params_before", (double)before);
        rule_metric_num(ctx, "params_after", (double)after);
        rule_metric_num(ctx, "reduction_percent", 100.0 * (double)(before - after) / (double)before);
    }
    for (size_t i = 0; i < m; i++) { free(names[i]); if (owned[i]) free((void *)w[i].data); }
    free(names); free(owned); free(w);
    pruning_free(&p);
    ckpt_close(&ck);
    return rc ? -1 : 0;
}

const Rule rule_apply = {
    .name = "apply",
    .version = 1,
    .summary = "write the pruned model: vocabulary, layer plan and FFN mask applied (HF checkpoint)",
    .params = apply_params,
    .flags = 0,
    .run = apply_run,
    .check = NULL,
};
