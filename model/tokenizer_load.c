/* model/tokenizer_load.c: tokenizer.json (+ tokenizer_config.json) -> flab_tokenizer.
 *
 * Parses with cJSON and keeps the tree: vocab and merge strings are borrowed
 * from it, and rules that rewrite tokenizer.json (vocabulary pruning) start
 * from it.  This file handles the top level, the BPE model and the config;
 * tokenizer_load_parts.c the pipeline components.  Everything not supported
 * is an error naming the component or option. */
#include "model/tokenizer_internal.h"
#include "util/error.h"
#include "util/file.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_DEFAULT_CACHE 65536
/* Ids index arrays: bound them so that a hostile file cannot make us
 * allocate gigabytes. */
#define TOK_MAX_ID (1 << 24)

/* ---- small JSON helpers --------------------------------------------------- */

/* 1 if the member is absent or null. */
static int json_null(const cJSON *o, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return !j || cJSON_IsNull(j);
}

static int json_bool(const flab_tokenizer *t, const cJSON *o, const char *key,
                     int dflt, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) { *out = dflt; return 0; }
    if (!cJSON_IsBool(j)) return flab_fail("%s: \"%s\" must be true or false", t->name, key);
    *out = cJSON_IsTrue(j);
    return 0;
}

/* An id: an integer in [0, 2^31 - 2]. */
static int json_id(const flab_tokenizer *t, const cJSON *j, const char *what, int32_t *out) {
    if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble > 2147483646.0 ||
        j->valuedouble != (double)(int64_t)j->valuedouble)
        return flab_fail("%s: %s: id must be a non-negative integer", t->name, what);
    *out = (int32_t)j->valuedouble;
    return 0;
}

static int check_utf8(const flab_tokenizer *t, const char *s, const char *what) {
    size_t len = strlen(s);
    if (tok_utf8_check(s, len) != len)
        return flab_fail("%s: %s \"%.40s\" is not valid UTF-8", t->name, what, s);
    return 0;
}

/* ---- vocabulary and merges ------------------------------------------------ */

static void ensure_ids(flab_tokenizer *t, int32_t max_id) {
    if (max_id < t->n_ids) return;
    int32_t n = max_id + 1;
    t->id_str = flab_xrealloc(t->id_str, (size_t)n * sizeof *t->id_str);
    t->id_len = flab_xrealloc(t->id_len, (size_t)n * sizeof *t->id_len);
    for (int32_t i = t->n_ids; i < n; i++) { t->id_str[i] = NULL; t->id_len[i] = 0; }
    t->n_ids = n;
}

static int load_vocab(flab_tokenizer *t, const cJSON *vocab) {
    if (!cJSON_IsObject(vocab)) return flab_fail("%s: model.vocab must be an object", t->name);
    int32_t max_id = -1; size_t n = 0;
    for (const cJSON *e = vocab->child; e; e = e->next, n++) {
        int32_t id = 0;
        if (json_id(t, e, "model.vocab", &id) < 0) return -1;
        if (id >= TOK_MAX_ID) return flab_fail("%s: model.vocab: id %d is too large (flab supports ids < %d)", t->name, (int)id, TOK_MAX_ID);
        if (check_utf8(t, e->string, "vocab token") < 0) return -1;
        if (id > max_id) max_id = id;
    }
    tok_strmap_init(&t->vocab, n);
    ensure_ids(t, max_id);
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id = (int32_t)e->valuedouble;
        size_t len = strlen(e->string);
        tok_strmap_put(&t->vocab, e->string, len, id);
        t->id_str[id] = e->string; t->id_len[id] = (uint32_t)len;
    }
    return 0;
}

static int32_t vocab_id(const flab_tokenizer *t, const char *s, size_t len) {
    return tok_strmap_get(&t->vocab, s, len);
}

/* Merges are resolved to ids in batches: the three vocab lookups of each
 * (left, right, left+right) are cache misses on a 150k vocab, and a batch
 * overlaps them (tok_strmap_get_many). */
#define MERGE_BATCH 16

typedef struct {
    const char *key[3 * MERGE_BATCH];
    size_t len[3 * MERGE_BATCH];
    int32_t id[3 * MERGE_BATCH];
    char *cat; size_t cat_len, cat_cap;   /* the left+right strings */
    size_t cat_off[MERGE_BATCH];
} merge_batch;

/* Splits one merge, "a b" or ["a", "b"], into the batch's slot k. */
static int parse_merge(flab_tokenizer *t, const cJSON *m, size_t rank, merge_batch *mb, size_t k) {
    const char *a, *b; size_t alen, blen;
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring, *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' '))
            return flab_fail("%s: model.merges[%zu] \"%.40s\" is not \"left right\"", t->name, rank, s);
        a = s; alen = (size_t)(sp - s); b = sp + 1; blen = strlen(b);
    } else if (cJSON_IsArray(m) && m->child && m->child->next && !m->child->next->next &&
               cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
        a = m->child->valuestring; alen = strlen(a);
        b = m->child->next->valuestring; blen = strlen(b);
    } else {
        return flab_fail("%s: model.merges[%zu] must be a string or a pair of strings", t->name, rank);
    }
    if (!mb->cat || mb->cat_len + alen + blen > mb->cat_cap) {
        mb->cat_cap = (mb->cat_len + alen + blen) * 2 + 256;
        mb->cat = flab_xrealloc(mb->cat, mb->cat_cap);
    }
    memcpy(mb->cat + mb->cat_len, a, alen); memcpy(mb->cat + mb->cat_len + alen, b, blen);
    mb->cat_off[k] = mb->cat_len;
    mb->cat_len += alen + blen;
    mb->key[3 * k] = a; mb->len[3 * k] = alen;
    mb->key[3 * k + 1] = b; mb->len[3 * k + 1] = blen;
    mb->len[3 * k + 2] = alen + blen;
    return 0;
}

/* Resolves the n merges of the batch (ranks first..first+n) and records them. */
static int resolve_batch(flab_tokenizer *t, merge_batch *mb, size_t first, size_t n) {
    for (size_t k = 0; k < n; k++) mb->key[3 * k + 2] = mb->cat + mb->cat_off[k];   /* cat may have moved */
    tok_strmap_get_many(&t->vocab, mb->key, mb->len, mb->id, 3 * n);
    for (size_t k = 0; k < n; k++) {
        size_t rank = first + k;
        int32_t ia = mb->id[3 * k], ib = mb->id[3 * k + 1], ir = mb->id[3 * k + 2];
        for (int q = 0; q < 3; q++)
            if (mb->id[3 * k + q] < 0)
                return flab_fail("%s: model.merges[%zu]: %stoken \"%.*s\" is not in the vocab", t->name, rank,
                                 q == 2 ? "merged " : "", (int)mb->len[3 * k + q], mb->key[3 * k + q]);
        t->merge_left[rank] = ia; t->merge_right[rank] = ib; t->merge_result[rank] = ir;
        tok_pairmap_put(&t->merge_map, ia, ib, (int32_t)rank, ir);
    }
    mb->cat_len = 0;
    return 0;
}

static int load_merges(flab_tokenizer *t, const cJSON *merges) {
    if (!merges || cJSON_IsNull(merges)) merges = NULL;
    else if (!cJSON_IsArray(merges)) return flab_fail("%s: model.merges must be an array", t->name);
    size_t n = merges ? (size_t)cJSON_GetArraySize(merges) : 0;
    t->n_merges = n;
    t->merge_left = flab_xmalloc((n + 1) * sizeof(int32_t));
    t->merge_right = flab_xmalloc((n + 1) * sizeof(int32_t));
    t->merge_result = flab_xmalloc((n + 1) * sizeof(int32_t));
    tok_pairmap_init(&t->merge_map, n);
    merge_batch mb = {0};
    size_t rank = 0, k = 0;
    int rc = 0;
    for (const cJSON *m = merges ? merges->child : NULL; m && rc == 0; m = m->next, rank++) {
        rc = parse_merge(t, m, rank, &mb, k);
        if (rc == 0 && ++k == MERGE_BATCH) { rc = resolve_batch(t, &mb, rank + 1 - k, k); k = 0; }
    }
    if (rc == 0 && k) rc = resolve_batch(t, &mb, rank - k, k);
    free(mb.cat);
    return rc;
}

/* Options of the BPE model we implement; the others must be off. */
static int load_model_options(flab_tokenizer *t, const cJSON *model) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (type && !(cJSON_IsString(type) && strcmp(type->valuestring, "BPE") == 0))
        return flab_fail("%s: unsupported model \"%s\" (only BPE)", t->name,
                         cJSON_IsString(type) ? type->valuestring : "?");
    if (!json_null(model, "dropout"))
        return flab_fail("%s: unsupported BPE option \"dropout\" (must be null)", t->name);
    static const char *const empty_only[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(model, empty_only[i]);
        if (j && !cJSON_IsNull(j) && !(cJSON_IsString(j) && !j->valuestring[0]))
            return flab_fail("%s: unsupported BPE option \"%s\" (must be null or \"\")", t->name, empty_only[i]);
    }
    if (json_bool(t, model, "fuse_unk", 0, &t->fuse_unk) < 0 ||
        json_bool(t, model, "byte_fallback", 0, &t->byte_fallback) < 0 ||
        json_bool(t, model, "ignore_merges", 0, &t->ignore_merges) < 0) return -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (unk && !cJSON_IsNull(unk)) {
        if (!cJSON_IsString(unk)) return flab_fail("%s: model.unk_token must be a string", t->name);
        t->unk_token = unk->valuestring;
    }
    return 0;
}

static int load_model(flab_tokenizer *t, const cJSON *model) {
    if (!cJSON_IsObject(model)) return flab_fail("%s: \"model\" must be an object", t->name);
    if (load_model_options(t, model) < 0) return -1;
    if (load_vocab(t, cJSON_GetObjectItemCaseSensitive(model, "vocab")) < 0) return -1;
    if (load_merges(t, cJSON_GetObjectItemCaseSensitive(model, "merges")) < 0) return -1;
    t->unk_id = t->unk_token ? vocab_id(t, t->unk_token, strlen(t->unk_token)) : -1;
    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t n = tok_utf8_encode(tok_byte_to_cp((uint8_t)b), s);
        t->byte_char_id[b] = vocab_id(t, s, n);
        snprintf(s, sizeof s, "<0x%02X>", b);
        t->byte_fb_id[b] = vocab_id(t, s, 6);
    }
    return 0;
}

/* ---- tokenizer_config.json ------------------------------------------------ */

/* "eos_token": "<x>" or {"content": "<x>", ...} -> id, -1 if unset/unknown. */
static int32_t config_token(const flab_tokenizer *t, const cJSON *cfg, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(j)) j = cJSON_GetObjectItemCaseSensitive(j, "content");
    if (!cJSON_IsString(j)) return -1;
    return flab_tok_token_to_id(t, j->valuestring, strlen(j->valuestring));
}

static int load_config(flab_tokenizer *t, const char *config_json) {
    t->bos_id = t->eos_id = t->pad_id = t->cfg_unk_id = -1;
    if (!config_json) return 0;
    cJSON *cfg = cJSON_Parse(config_json);
    if (!cfg || !cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        return flab_fail("%s: tokenizer_config.json is not a JSON object", t->name);
    }
    t->bos_id = config_token(t, cfg, "bos_token");
    t->eos_id = config_token(t, cfg, "eos_token");
    t->pad_id = config_token(t, cfg, "pad_token");
    t->cfg_unk_id = config_token(t, cfg, "unk_token");
    cJSON_Delete(cfg);
    return 0;
}

/* ---- top level -------------------------------------------------------------- */

static int load_top(flab_tokenizer *t) {
    const cJSON *j = t->json;
    if (!cJSON_IsObject(j)) return flab_fail("%s: not a JSON object", t->name);
    if (!json_null(j, "truncation")) return flab_fail("%s: unsupported \"truncation\" (must be null)", t->name);
    if (!json_null(j, "padding")) return flab_fail("%s: unsupported \"padding\" (must be null)", t->name);
    if (load_model(t, cJSON_GetObjectItemCaseSensitive(j, "model")) < 0) return -1;
    if (tok_load_normalizer(t, cJSON_GetObjectItemCaseSensitive(j, "normalizer")) < 0) return -1;
    if (tok_load_added_tokens(t, cJSON_GetObjectItemCaseSensitive(j, "added_tokens")) < 0) return -1;
    if (tok_load_pre_tokenizer(t, cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer")) < 0) return -1;
    if (tok_load_post_processor(t, cJSON_GetObjectItemCaseSensitive(j, "post_processor")) < 0) return -1;
    if (tok_load_decoder(t, cJSON_GetObjectItemCaseSensitive(j, "decoder")) < 0) return -1;
    return 0;
}

flab_tokenizer *flab_tok_load_json(const char *json, size_t len, const char *config_json,
                                   const char *name) {
    flab_tokenizer *t = flab_xcalloc(1, sizeof *t);
    t->name = flab_xstrdup(name ? name : "tokenizer.json");
    t->unk_id = -1;
    t->json = cJSON_ParseWithLength(json, len);
    if (!t->json) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= json && at <= json + len ? (long)(at - json) : -1;
        flab_fail("%s: invalid JSON near byte %ld", t->name, off);
        flab_tok_free(t);
        return NULL;
    }
    if (load_top(t) < 0 || load_config(t, config_json) < 0) { flab_tok_free(t); return NULL; }
    tok_cache_init(&t->cache, TOK_DEFAULT_CACHE);
    t->cache_on = 1;
    return t;
}

flab_tokenizer *flab_tok_load_dir(const char *dir) {
    size_t dlen = strlen(dir);
    char *path = flab_xmalloc(dlen + 32), *json = NULL, *cfg = NULL;
    size_t len;
    snprintf(path, dlen + 32, "%s/tokenizer.json", dir);
    flab_tokenizer *t = NULL;
    if (flab_read_file(path, &json, &len) == 0) {
        snprintf(path, dlen + 32, "%s/tokenizer_config.json", dir);
        if (flab_path_exists(path) && flab_read_file(path, &cfg, NULL) < 0) goto out;
        snprintf(path, dlen + 32, "%s/tokenizer.json", dir);
        t = flab_tok_load_json(json, len, cfg, path);
    }
out:
    free(path); free(json); free(cfg);
    return t;
}

void flab_tok_free(flab_tokenizer *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n_norms; i++) {
        free(t->norms[i].a); free(t->norms[i].b);
        if (t->norms[i].re) pcre2_code_free(t->norms[i].re);
    }
    free(t->norms);
    for (size_t i = 0; i < t->n_pres; i++) if (t->pres[i].re) pcre2_code_free(t->pres[i].re);
    free(t->pres);
    for (size_t i = 0; i < t->n_decs; i++) { free(t->decs[i].a); free(t->decs[i].b); }
    free(t->decs);
    for (size_t i = 0; i < t->n_tmpls; i++) {
        for (size_t k = 0; k < t->tmpls[i].n; k++) free(t->tmpls[i].items[k].ids);
        free(t->tmpls[i].items);
    }
    free(t->tmpls);
    tok_trie_free(&t->trie_raw); tok_trie_free(&t->trie_norm);
    free(t->added); free(t->is_special);
    tok_strmap_free(&t->added_map);
    tok_strmap_free(&t->vocab);
    free(t->merge_left); free(t->merge_right); free(t->merge_result);
    tok_pairmap_free(&t->merge_map);
    tok_cache_free(&t->cache);
    free(t->id_str); free(t->id_len); free(t->str_arena);
    cJSON_Delete(t->json);
    free(t->name);
    free(t);
}
