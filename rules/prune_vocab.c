/* rules/prune_vocab.c: the `prune_vocab` rule -> tokenizer (a vocabulary-
 * pruned model directory).
 *
 *   [tokenizer]
 *   rule   = prune_vocab
 *   model  = models/base      ; the model collect_tokens tokenized with
 *   tokens = @tokens          ; a collect_tokens target
 *
 * Writes a complete model directory: tokenizer.json (vocab renumbered densely
 * in old-id order, merges restricted to kept tokens, added tokens kept),
 * tokenizer_config.json (+ added_tokens.json) with ids remapped,
 * special_tokens_map.json copied, model.safetensors with the rows of
 * embed_tokens and lm_head of the kept ids (tied embeddings: embed_tokens
 * only), config.json / generation_config.json with vocab_size and
 * bos/eos/pad ids updated, and id_map.json {"<old id>": new id}.  Embedding
 * rows beyond the tokenizer's ids (config vocab_size padding) are dropped.
 * vocab.json, merges.txt and tokenizer.model of the source are not written:
 * they would describe the old vocabulary.
 *
 * Verification: every corpus text of the tokens target is re-tokenized with
 * the written tokenizer; where every original token was kept, the ids must be
 * the original ids mapped through the id map (the same token strings); where
 * some was not (min_count > 1 or keep_top), the tokens must decode to the
 * same text.  Otherwise the rule fails naming the text and the first
 * differing token. */
#include "model/checkpoint.h"
#include "model/tensor_select.h"
#include "model/tokenizer.h"
#include "model/vocab_prune.h"
#include "rules/rule.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static const RuleParam prune_params[] = {
    {"model", RULE_PATH, NULL, 0, -1, NULL, "model directory (or @target) to prune"},
    {"tokens", RULE_TARGET, NULL, 0, -1, NULL, "a collect_tokens target of the same model"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

typedef struct {
    RuleCtx *ctx;
    const char *model_dir, *tokens_dir;
    flab_tokenizer *tok;
    int32_t vocab, kept, *map;     /* map[0..vocab): old -> new or -1 */
    int64_t *keep_ids;             /* the kept old ids, ascending */
} Prune;

static char *join(const char *dir, const char *file) {
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = flab_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static cJSON *read_json(const char *dir, const char *file) {
    char *path = join(dir, file), *text;
    size_t len;
    cJSON *o = NULL;
    if (flab_read_file(path, &text, &len) == 0) {
        o = cJSON_Parse(text);
        if (!o) flab_fail("%s: invalid JSON", path);
        free(text);
    }
    free(path);
    return o;
}

static int write_text(const char *dir, const char *file, const char *text) {
    char *path = join(dir, file);
    int rc = flab_write_file_atomic(path, text, strlen(text));
    free(path);
    return rc;
}

static int write_json(const char *dir, const char *file, const cJSON *o, int pretty) {
    char *text = pretty ? cJSON_Print(o) : cJSON_PrintUnformatted(o);
    int rc = text ? write_text(dir, file, text) : flab_fail("%s: out of memory", file);
    free(text);
    return rc;
}

/* ---- the kept set from tokens.json ---------------------------------------------- */

static int load_kept(Prune *p) {
    cJSON *o = read_json(p->tokens_dir, "tokens.json");
    if (!o) return -1;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    const cJSON *dig = cJSON_GetObjectItemCaseSensitive(o, "tokenizer_xxh3");
    const cJSON *kept = cJSON_GetObjectItemCaseSensitive(o, "kept");
    int rc = 0;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "flab-tokens-1") || !cJSON_IsString(dig) ||
        !cJSON_IsArray(kept))
        rc = flab_fail("tokens.json: not a flab-tokens-1 file (is 'tokens' a collect_tokens target?)");
    char *tj = join(p->model_dir, "tokenizer.json"), *data = NULL;
    size_t len;
    if (rc == 0 && (rc = flab_read_file(tj, &data, &len)) == 0) {
        XXH128_hash_t h = XXH3_128bits(data, len);
        char hex[33];
        snprintf(hex, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
        if (strcmp(hex, dig->valuestring))
            rc = flab_fail("%s is not the tokenizer the tokens target was collected with "
                           "(give both rules the same model)", tj);
    }
    free(tj);
    free(data);
    uint8_t *keep = flab_xcalloc((size_t)p->vocab + 1, 1);
    for (const cJSON *e = rc == 0 ? kept->child : NULL; e; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= p->vocab) {
            rc = flab_fail("tokens.json: kept id out of range [0, %d)", (int)p->vocab);
            break;
        }
        keep[(int32_t)e->valuedouble] = 1;
    }
    if (rc == 0) {
        p->kept = vp_id_map(keep, p->vocab, p->map);
        p->keep_ids = flab_xmalloc(((size_t)p->kept + 1) * sizeof *p->keep_ids);
        for (int32_t id = 0, k = 0; id < p->vocab; id++) if (keep[id]) p->keep_ids[k++] = id;
    }
    free(keep);
    cJSON_Delete(o);
    return rc;
}

/* ---- tokenizer files -------------------------------------------------------------- */

/* added_tokens.json ({"content": id}) with ids remapped. */
static int write_added_tokens_json(const Prune *p, const char *out) {
    char *path = join(p->model_dir, "added_tokens.json");
    int exists = flab_path_exists(path);
    free(path);
    if (!exists) return 0;
    cJSON *o = read_json(p->model_dir, "added_tokens.json");
    if (!o) return -1;
    int rc = 0;
    for (cJSON *e = o->child; e && rc == 0; e = e->next) {
        double id = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (id < 0 || id >= p->vocab || p->map[(int32_t)id] < 0)
            rc = flab_fail("added_tokens.json: token '%s' has no kept id", e->string);
        else cJSON_SetNumberValue(e, p->map[(int32_t)id]);
    }
    if (rc == 0) rc = write_json(out, "added_tokens.json", o, 1);
    cJSON_Delete(o);
    return rc;
}

static int write_tokenizer(const Prune *p, const char *out) {
    cJSON *tj = vp_prune_tokenizer_json(p->tok, p->map, p->vocab);
    if (!tj) return -1;
    int rc = write_json(out, "tokenizer.json", tj, 1);
    cJSON_Delete(tj);
    char *path = join(p->model_dir, "tokenizer_config.json"), *text = NULL, *pruned = NULL;
    size_t len;
    if (rc == 0 && flab_path_exists(path) && (rc = flab_read_file(path, &text, &len)) == 0) {
        pruned = vp_prune_tokenizer_config(text, p->map, p->vocab, path);
        rc = pruned ? write_text(out, "tokenizer_config.json", pruned) : -1;
    }
    free(path); free(text); free(pruned);
    path = join(p->model_dir, "special_tokens_map.json");
    if (rc == 0 && flab_path_exists(path) && (rc = flab_read_file(path, &text, &len)) == 0) {
        rc = write_text(out, "special_tokens_map.json", text);
        free(text);
    }
    free(path);
    return rc == 0 ? write_added_tokens_json(p, out) : rc;
}

static int write_id_map(const Prune *p, const char *out) {
    cJSON *o = cJSON_CreateObject();
    char key[16];
    for (int32_t id = 0; id < p->vocab; id++) {
        if (p->map[id] < 0) continue;
        snprintf(key, sizeof key, "%d", (int)id);
        cJSON_AddNumberToObject(o, key, p->map[id]);
    }
    int rc = write_json(out, "id_map.json", o, 0);
    cJSON_Delete(o);
    return rc;
}

/* ---- the checkpoint ----------------------------------------------------------------- */

static double n_params(const StWriteTensor *w, size_t n) {
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double k = 1;
        for (int d = 0; d < w[i].ndim; d++) k *= (double)w[i].shape[d];
        total += k;
    }
    return total;
}

static int is_vocab_tensor(const char *name) {
    return !strcmp(name, "model.embed_tokens.weight") || !strcmp(name, "lm_head.weight");
}

/* Writes the checkpoint with the kept rows; ids beyond the tokenizer map to -1. */
static int write_checkpoint(Prune *p, Checkpoint *ck, const char *out) {
    ModelConfig *c = &ck->cfg;
    if (c->vocab_size < p->vocab)
        return flab_fail("%s: config vocab_size %d is smaller than the tokenizer's %d ids",
                         p->model_dir, c->vocab_size, (int)p->vocab);
    size_t n = st_count(ck->st), cfg_vocab = (size_t)c->vocab_size;
    StWriteTensor *w = flab_xcalloc(n + 1, sizeof *w);
    uint8_t *owned = flab_xcalloc(n + 1, 1);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const StTensor *t = st_at(ck->st, i);
        if (is_vocab_tensor(t->name)) {
            owned[i] = 1;
            rc = st_select_rows(t, p->keep_ids, (size_t)p->kept, &w[i]);
        } else w[i] = st_write_view(t);
    }
    int32_t *full_map = flab_xmalloc((cfg_vocab + 1) * sizeof *full_map);
    for (size_t id = 0; id < cfg_vocab; id++) full_map[id] = (int32_t)id < p->vocab ? p->map[id] : -1;
    double before = 0;
    for (size_t i = 0; i < n; i++) {
        StWriteTensor v = st_write_view(st_at(ck->st, i));
        before += n_params(&v, 1);
    }
    if (rc == 0) {
        c->vocab_size = p->kept;
        CkptWriteOptions opt = {.src_dir = p->model_dir, .copy_tokenizer = false,
                                .id_map = full_map, .id_map_len = cfg_vocab};
        rc = ckpt_write(out, c, w, n, &opt);
        rule_metric_num(p->ctx, "params_before", before);
        rule_metric_num(p->ctx, "params_after", n_params(w, n));
        rule_metric_num(p->ctx, "config_vocab_before", (double)cfg_vocab);
    }
    for (size_t i = 0; i < n; i++) if (owned[i]) free((void *)w[i].data);
    free(w); free(owned); free(full_map);
    return rc;
}

/* ---- verification ------------------------------------------------------------------- */

typedef struct {
    size_t exact, by_text;   /* texts checked token by token / by decoded text */
} VerifyStats;

/* The first position where pruned differs from orig mapped through map. */
static size_t first_difference(const Prune *p, const int32_t *orig, size_t no, const int32_t *pr,
                               size_t np) {
    size_t i = 0;
    while (i < no && i < np && p->map[orig[i]] == pr[i]) i++;
    return i;
}

static int verify_text(const Prune *p, flab_tokenizer *pruned, const char *source,
                       const char *text, VerifyStats *vs) {
    int32_t *orig = NULL, *pr = NULL;
    size_t no = 0, np = 0;
    flab_tok_encode_opts opts = {1, 0};
    int rc = flab_tok_encode(p->tok, text, strlen(text), opts, &orig, &no);
    if (rc == 0) rc = flab_tok_encode(pruned, text, strlen(text), opts, &pr, &np);
    int all_kept = 1;
    for (size_t i = 0; rc == 0 && i < no; i++) all_kept &= p->map[orig[i]] >= 0;
    if (rc == 0 && all_kept) {
        size_t d = first_difference(p, orig, no, pr, np);
        vs->exact++;
        if (d < no || d < np) {
            const char *a = d < no ? flab_tok_id_to_token(p->tok, orig[d], NULL) : "(end)";
            const char *b = d < np ? flab_tok_id_to_token(pruned, pr[d], NULL) : "(end)";
            rc = flab_fail("verification: %s: token %zu differs: original '%s', pruned '%s'",
                           source, d, a ? a : "?", b ? b : "?");
        }
    } else if (rc == 0) {
        char *dec = flab_tok_decode(pruned, pr, np, 0, NULL);
        vs->by_text++;
        if (!dec) rc = -1;
        else if (strcmp(dec, text))
            rc = flab_fail("verification: %s: the pruned tokens do not decode to the text", source);
        free(dec);
    }
    free(orig); free(pr);
    return rc;
}

static int verify(Prune *p, const char *out) {
    flab_tokenizer *pruned = flab_tok_load_dir(out);
    if (!pruned) { flab_error_prefix("verification: pruned tokenizer: "); return -1; }
    char *path = join(p->tokens_dir, "corpus.jsonl"), *data = NULL;
    size_t len, done = 0;
    VerifyStats vs = {0};
    int rc = flab_read_file(path, &data, &len);
    for (char *line = rc == 0 ? data : NULL, *next; line && *line && rc == 0; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        cJSON *row = cJSON_Parse(line);
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(row, "source");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(row, "text");
        if (!cJSON_IsString(src) || !cJSON_IsString(text))
            rc = flab_fail("%s: bad row %zu", path, done + 1);
        else rc = verify_text(p, pruned, src->valuestring, text->valuestring, &vs);
        cJSON_Delete(row);
        rule_progress(p->ctx, (double)(next ? (size_t)(next - data) : len), (double)len);
        done++;
    }
    if (rc == 0) {
        rule_metric_num(p->ctx, "verified_texts", (double)done);
        rule_metric_num(p->ctx, "verified_by_text", (double)vs.by_text);
        rule_log(p->ctx, "verified %zu texts (%zu token by token, %zu by decoded text)", done,
                 vs.exact, vs.by_text);
    }
    free(path); free(data);
    flab_tok_free(pruned);
    return rc;
}

/* ---- the rule ------------------------------------------------------------------------ */

static int prune_run(RuleCtx *ctx) {
    Prune p = {.ctx = ctx, .model_dir = rule_input(ctx, "model"),
               .tokens_dir = rule_input(ctx, "tokens")};
    p.tok = flab_tok_load_dir(p.model_dir);
    if (!p.tok) return -1;
    p.vocab = flab_tok_vocab_size(p.tok);
    p.map = flab_xmalloc(((size_t)p.vocab + 1) * sizeof *p.map);
    Checkpoint ck;
    int rc = load_kept(&p);
    if (rc == 0) rc = ckpt_open(p.model_dir, &ck);
    if (rc == 0) {
        rc = write_checkpoint(&p, &ck, ctx->out_dir);
        ckpt_close(&ck);
    }
    if (rc == 0) rc = write_tokenizer(&p, ctx->out_dir);
    if (rc == 0) rc = write_id_map(&p, ctx->out_dir);
    if (rc == 0) rc = verify(&p, ctx->out_dir);
    if (rc == 0) {
        rule_metric_num(ctx, "vocab_before", p.vocab);
        rule_metric_num(ctx, "vocab_after", p.kept);
        rule_log(ctx, "vocabulary %d -> %d", (int)p.vocab, (int)p.kept);
    }
    free(p.map); free(p.keep_ids);
    flab_tok_free(p.tok);
    return rc;
}

const Rule rule_prune_vocab = {
    .name = "prune_vocab",
    .version = 1,
    .summary = "prune the vocabulary: tokenizer, id map and checkpoint rows of the kept tokens",
    .params = prune_params,
    .run = prune_run,
};
