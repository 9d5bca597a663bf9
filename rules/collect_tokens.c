/* rules/collect_tokens.c: the `collect_tokens` rule -> tokens.
 *
 *   [tokens]
 *   rule   = collect_tokens
 *   model  = models/base            ; a model directory or @target
 *   corpus = data/HumanEval.jsonl src; files, globs, directories
 *   fields = prompt canonical_solution
 *   min_count = 1                   ; the paper's tau
 *   keep_top  = 0                   ; 0 = no limit
 *
 * Tokenizes every corpus text with the model's tokenizer (added tokens in the
 * text are matched, as HF encode does; no post-processor tokens) and keeps
 * the tokens used at least min_count times (at most keep_top of them, most
 * frequent first, ties to the lower id), plus the always-kept set and the
 * merge closure (model/vocab_prune.h).  Artifact:
 *   tokens.json   the counts and the kept set (layout in docs/RULES.md)
 *   corpus.jsonl  the corpus texts, {"source", "text"} per line, which
 *                 prune_vocab re-tokenizes to verify the pruned tokenizer. */
#include "model/tokenizer.h"
#include "model/vocab_prune.h"
#include "rules/rule.h"
#include "rules/vocab_corpus.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static const RuleParam collect_params[] = {
    {"model", RULE_PATH, NULL, 0, -1, NULL, "model directory (or @target) whose tokenizer is used"},
    {"corpus", RULE_PATHS, NULL, 0, -1, NULL,
     "files, globs or directories; .jsonl rows contribute `fields`, other files their text"},
    {"fields", RULE_STRING, "prompt canonical_solution", 0, -1, NULL,
     "jsonl fields concatenated per row, space separated"},
    {"min_count", RULE_INT, "1", 1, 1e12, NULL, "keep corpus tokens used at least this often"},
    {"keep_top", RULE_INT, "0", 0, 1e9, NULL, "keep at most this many corpus tokens (0: no limit)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

typedef struct {
    RuleCtx *ctx;
    flab_tokenizer *tok;
    int32_t vocab;
    uint64_t *counts, n_tokens, n_texts, n_skipped;
    FILE *corpus;
} Collect;

/* ---- counting ----------------------------------------------------------------- */

static int count_text(const char *source, const char *text, size_t len, void *user) {
    Collect *c = user;
    int32_t *ids = NULL;
    size_t n = 0;
    if (flab_tok_encode(c->tok, text, len, (flab_tok_encode_opts){1, 0}, &ids, &n) < 0) {
        flab_error_prefix("%s: ", source);
        return -1;
    }
    for (size_t i = 0; i < n; i++) c->counts[ids[i]]++;
    free(ids);
    c->n_tokens += n;
    c->n_texts++;
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "source", source);
    cJSON_AddItemToObject(row, "text", cJSON_CreateString(text));
    char *line = cJSON_PrintUnformatted(row);
    cJSON_Delete(row);
    int rc = line && fprintf(c->corpus, "%s\n", line) > 0 ? 0 : flab_fail_errno("corpus.jsonl");
    free(line);
    return rc;
}

static void progress(size_t done, size_t total, void *user) {
    rule_progress(((Collect *)user)->ctx, (double)done, (double)total);
}

static void skipped(const char *path, void *user) {
    Collect *c = user;
    c->n_skipped++;
    rule_log(c->ctx, "warning: %s: no row has any of the fields '%s'; skipped", path,
             rule_str(c->ctx, "fields"));
}

/* ---- the kept set --------------------------------------------------------------- */

static const uint64_t *sort_counts;
static int by_count_desc(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (sort_counts[x] != sort_counts[y]) return sort_counts[x] < sort_counts[y] ? 1 : -1;
    return (x > y) - (x < y);
}

/* Corpus tokens with count >= min_count, the keep_top most frequent if set. */
static void mark_corpus(const Collect *c, long long min_count, long long keep_top, uint8_t *keep) {
    int32_t *ids = flab_xmalloc(((size_t)c->vocab + 1) * sizeof *ids), n = 0;
    for (int32_t id = 0; id < c->vocab; id++)
        if (c->counts[id] >= (uint64_t)min_count) ids[n++] = id;
    if (keep_top > 0 && n > keep_top) {
        sort_counts = c->counts;
        qsort(ids, (size_t)n, sizeof *ids, by_count_desc);
        n = (int32_t)keep_top;
    }
    for (int32_t i = 0; i < n; i++) keep[ids[i]] |= VP_CORPUS;
    free(ids);
}

/* bos/eos/pad/decoder_start ids of config.json and generation_config.json
 * (a number or a list); missing files or keys are fine. */
static void mark_config_ids(const char *model_dir, const char *file, uint8_t *keep, int32_t n) {
    static const char *const keys[] = {"bos_token_id", "eos_token_id", "pad_token_id",
                                       "decoder_start_token_id"};
    char path[4200], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", model_dir, file);
    if (!flab_path_exists(path) || flab_read_file(path, &text, &len) < 0) return;
    cJSON *root = cJSON_Parse(text);
    free(text);
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
        const cJSON *e = cJSON_IsArray(v) ? v->child : v;
        for (; e; e = cJSON_IsArray(v) ? e->next : NULL)
            if (cJSON_IsNumber(e) && e->valuedouble >= 0 && e->valuedouble < n)
                keep[(int32_t)e->valuedouble] |= VP_SPECIAL_ID;
    }
    cJSON_Delete(root);
}

/* ---- tokens.json ---------------------------------------------------------------- */

static cJSON *id_list(const uint8_t *keep, int32_t n, uint8_t why) {
    cJSON *a = cJSON_CreateArray();
    for (int32_t id = 0; id < n; id++)
        if (keep[id] & why) cJSON_AddItemToArray(a, cJSON_CreateNumber(id));
    return a;
}

static int tokenizer_digest(const char *model_dir, char hex[33]) {
    char path[4200], *data;
    size_t len;
    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    if (flab_read_file(path, &data, &len) < 0) return -1;
    XXH128_hash_t h = XXH3_128bits(data, len);
    free(data);
    snprintf(hex, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    return 0;
}

static cJSON *tokens_json(const Collect *c, const uint8_t *keep, int32_t kept, const char *digest,
                          long long min_count, long long keep_top, int32_t distinct) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", "flab-tokens-1");
    cJSON_AddStringToObject(o, "tokenizer_xxh3", digest);
    cJSON_AddNumberToObject(o, "vocab_before", c->vocab);
    cJSON_AddNumberToObject(o, "vocab_after", kept);
    cJSON_AddNumberToObject(o, "min_count", (double)min_count);
    cJSON_AddNumberToObject(o, "keep_top", (double)keep_top);
    cJSON *corpus = cJSON_AddObjectToObject(o, "corpus");
    cJSON_AddNumberToObject(corpus, "texts", (double)c->n_texts);
    cJSON_AddNumberToObject(corpus, "tokens", (double)c->n_tokens);
    cJSON_AddNumberToObject(corpus, "skipped_files", (double)c->n_skipped);
    cJSON_AddNumberToObject(corpus, "distinct", distinct);
    cJSON *counts = cJSON_AddObjectToObject(o, "counts");
    char key[16];
    for (int32_t id = 0; id < c->vocab; id++) {
        if (!c->counts[id]) continue;
        snprintf(key, sizeof key, "%d", (int)id);
        cJSON_AddNumberToObject(counts, key, (double)c->counts[id]);
    }
    cJSON_AddItemToObject(o, "kept", id_list(keep, c->vocab, 0xff));
    cJSON *why = cJSON_AddObjectToObject(o, "reasons");
    cJSON_AddItemToObject(why, "corpus", id_list(keep, c->vocab, VP_CORPUS));
    cJSON_AddItemToObject(why, "added", id_list(keep, c->vocab, VP_ADDED));
    cJSON_AddItemToObject(why, "byte", id_list(keep, c->vocab, VP_BYTE));
    cJSON_AddItemToObject(why, "special_ids", id_list(keep, c->vocab, VP_SPECIAL_ID));
    cJSON_AddItemToObject(why, "merge_closure", id_list(keep, c->vocab, VP_CLOSURE));
    return o;
}

static int write_json(const char *dir, const char *file, const cJSON *o) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    char *text = cJSON_Print(o);
    int rc = text ? flab_write_file_atomic(path, text, strlen(text)) : flab_fail("%s: out of memory", file);
    free(text);
    return rc;
}

/* ---- the rule ------------------------------------------------------------------- */

static int select_and_write(RuleCtx *ctx, Collect *c, const char *model_dir) {
    long long min_count = rule_int(ctx, "min_count"), keep_top = rule_int(ctx, "keep_top");
    uint8_t *keep = flab_xcalloc((size_t)c->vocab + 1, 1);
    int32_t distinct = 0;
    for (int32_t id = 0; id < c->vocab; id++) distinct += c->counts[id] > 0;
    mark_corpus(c, min_count, keep_top, keep);
    vp_mark_always(c->tok, keep, c->vocab);
    mark_config_ids(model_dir, "config.json", keep, c->vocab);
    mark_config_ids(model_dir, "generation_config.json", keep, c->vocab);
    size_t closure = vp_merge_closure(c->tok, keep, c->vocab);
    int32_t kept = 0;
    for (int32_t id = 0; id < c->vocab; id++) kept += keep[id] != 0;
    char digest[33];
    int rc = tokenizer_digest(model_dir, digest);
    if (rc == 0) {
        cJSON *o = tokens_json(c, keep, kept, digest, min_count, keep_top, distinct);
        rc = write_json(ctx->out_dir, "tokens.json", o);
        cJSON_Delete(o);
    }
    rule_metric_num(ctx, "corpus_texts", (double)c->n_texts);
    rule_metric_num(ctx, "corpus_tokens", (double)c->n_tokens);
    rule_metric_num(ctx, "skipped_files", (double)c->n_skipped);
    rule_metric_num(ctx, "distinct", distinct);
    rule_metric_num(ctx, "merge_closure", (double)closure);
    rule_metric_num(ctx, "vocab_before", c->vocab);
    rule_metric_num(ctx, "kept", kept);
    rule_log(ctx, "%llu texts, %llu tokens, %d distinct; kept %d of %d (%zu by merge closure)",
             (unsigned long long)c->n_texts, (unsigned long long)c->n_tokens, (int)distinct,
             (int)kept, (int)c->vocab, closure);
    free(keep);
    return rc;
}

static int collect_run(RuleCtx *ctx) {
    const char *model_dir = rule_input(ctx, "model");
    size_t n_in = 0;
    const char *const *in = rule_inputs(ctx, "corpus", &n_in);
    Collect c = {.ctx = ctx};
    c.tok = flab_tok_load_dir(model_dir);
    if (!c.tok) return -1;
    c.vocab = flab_tok_vocab_size(c.tok);
    c.counts = flab_xcalloc((size_t)c.vocab + 1, sizeof *c.counts);
    char path[4200];
    snprintf(path, sizeof path, "%s/corpus.jsonl", ctx->out_dir);
    c.corpus = fopen(path, "w");
    int rc = c.corpus ? 0 : flab_fail_errno("%s", path);
    if (rc == 0)
    {
        VcCallbacks cb = {count_text, skipped, progress};
        rc = vc_walk(in, n_in, rule_str(ctx, "fields"), ctx->base_dir, &cb, &c);
    }
    if (c.corpus && fclose(c.corpus) != 0 && rc == 0) rc = flab_fail_errno("%s", path);
    if (rc == 0 && c.n_texts == 0) rc = flab_fail("the corpus has no text");
    if (rc == 0) rc = select_and_write(ctx, &c, model_dir);
    free(c.counts);
    flab_tok_free(c.tok);
    return rc;
}

static int collect_check(const RuleCtx *ctx) {
    const char *f = rule_str(ctx, "fields");
    if (!f || strspn(f, " \t") == strlen(f)) return flab_fail("parameter 'fields' is empty");
    return 0;
}

const Rule rule_collect_tokens = {
    .name = "collect_tokens",
    .version = 1,
    .summary = "tokenize a code corpus: token counts + the ids a pruned vocabulary must keep",
    .params = collect_params,
    .run = collect_run,
    .check = collect_check,
};
