/* model/checkpoint.c: an HF checkpoint directory: open (config + weights,
 * checked against each other) and write (the end of every pruning rule).
 * Layout of names and shapes: see model/checkpoint.h. */
#include "model/checkpoint.h"
#include "model/safetensors_internal.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ckpt_tokenizer_files[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
    "merges.txt", "tokenizer.model", "added_tokens.json", NULL};

/* ---- the tensors a config implies ------------------------------------- */

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[2];
} Expected;

typedef struct { Expected *e; size_t n, cap; } ExpList;

static void expect(ExpList *l, int64_t d0, int64_t d1, const char *fmt, int layer) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->e = flab_xrealloc(l->e, l->cap * sizeof *l->e);
    }
    Expected *e = &l->e[l->n++];
    snprintf(e->name, sizeof e->name, fmt, layer);
    e->ndim = d1 ? 2 : 1;
    e->shape[0] = d0;
    e->shape[1] = d1;
}

static void expect_layer(ExpList *l, const ModelConfig *c, int L) {
    int64_t H = c->hidden_size, I = c->intermediate_size;
    int64_t q = (int64_t)c->num_attention_heads * c->head_dim;
    int64_t kv = (int64_t)c->num_key_value_heads * c->head_dim;
    expect(l, H, 0, "model.layers.%d.input_layernorm.weight", L);
    expect(l, H, 0, "model.layers.%d.post_attention_layernorm.weight", L);
    expect(l, q, H, "model.layers.%d.self_attn.q_proj.weight", L);
    expect(l, kv, H, "model.layers.%d.self_attn.k_proj.weight", L);
    expect(l, kv, H, "model.layers.%d.self_attn.v_proj.weight", L);
    expect(l, H, q, "model.layers.%d.self_attn.o_proj.weight", L);
    if (c->qkv_bias) {
        expect(l, q, 0, "model.layers.%d.self_attn.q_proj.bias", L);
        expect(l, kv, 0, "model.layers.%d.self_attn.k_proj.bias", L);
        expect(l, kv, 0, "model.layers.%d.self_attn.v_proj.bias", L);
    }
    if (c->o_bias) expect(l, H, 0, "model.layers.%d.self_attn.o_proj.bias", L);
    expect(l, I, H, "model.layers.%d.mlp.gate_proj.weight", L);
    expect(l, I, H, "model.layers.%d.mlp.up_proj.weight", L);
    expect(l, H, I, "model.layers.%d.mlp.down_proj.weight", L);
    if (c->mlp_bias) {
        expect(l, I, 0, "model.layers.%d.mlp.gate_proj.bias", L);
        expect(l, I, 0, "model.layers.%d.mlp.up_proj.bias", L);
        expect(l, H, 0, "model.layers.%d.mlp.down_proj.bias", L);
    }
}

static ExpList expected_tensors(const ModelConfig *c) {
    ExpList l = {0};
    expect(&l, c->vocab_size, c->hidden_size, "model.embed_tokens.weight", 0);
    expect(&l, c->hidden_size, 0, "model.norm.weight", 0);
    if (!c->tie_word_embeddings) expect(&l, c->vocab_size, c->hidden_size, "lm_head.weight", 0);
    for (int L = 0; L < c->num_hidden_layers; L++) expect_layer(&l, c, L);
    return l;
}

static const StWriteTensor *find_w(const StWriteTensor *t, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return &t[i];
    return NULL;
}

/* Tensors transformers tolerates beside the expected ones. */
static int harmless_extra(const char *name, const ModelConfig *c) {
    size_t n = strlen(name);
    if (n >= 20 && !strcmp(name + n - 20, "rotary_emb.inv_freq")) return 1;
    return c->tie_word_embeddings && !strcmp(name, "lm_head.weight");
}

int ckpt_check_tensors(const ModelConfig *cfg, const StWriteTensor *t, size_t n, bool strict,
                       const char *what) {
    ExpList l = expected_tensors(cfg);
    int rc = 0;
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        const Expected *e = &l.e[i];
        const StWriteTensor *w = find_w(t, n, e->name);
        if (!w) { rc = flab_fail("%s: tensor \"%s\" is missing", what, e->name); break; }
        int64_t s1 = w->ndim == 2 ? w->shape[1] : 0;
        if (w->ndim != e->ndim || w->shape[0] != e->shape[0] || s1 != e->shape[1])
            rc = flab_fail("%s: tensor \"%s\": shape [%lld%s%lld] but config.json implies "
                           "[%lld%s%lld]", what, e->name, (long long)w->shape[0],
                           w->ndim > 1 ? ", " : "", (long long)s1, (long long)e->shape[0],
                           e->ndim > 1 ? ", " : "", (long long)e->shape[1]);
    }
    for (size_t i = 0; i < n && rc == 0 && strict; i++) {
        int known = harmless_extra(t[i].name, cfg);
        for (size_t k = 0; k < l.n && !known; k++) known = !strcmp(l.e[k].name, t[i].name);
        if (!known)
            rc = flab_fail("%s: tensor \"%s\" is not part of a %s with %d layers", what,
                           t[i].name, cfg->architecture, cfg->num_hidden_layers);
    }
    free(l.e);
    return rc;
}

/* ---- open ------------------------------------------------------------------ */

void ckpt_close(Checkpoint *ck) {
    if (!ck) return;
    st_close(ck->st);
    model_config_free(&ck->cfg);
    free(ck->dir);
    memset(ck, 0, sizeof *ck);
}

int ckpt_open(const char *dir, Checkpoint *ck) {
    memset(ck, 0, sizeof *ck);
    if (model_config_load(dir, &ck->cfg) < 0) return -1;
    if (st_open(dir, &ck->st) < 0) { ckpt_close(ck); return -1; }
    size_t n = st_count(ck->st);
    StWriteTensor *v = flab_xcalloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = st_write_view(st_at(ck->st, i));
    int rc = ckpt_check_tensors(&ck->cfg, v, n, false, dir);
    free(v);
    if (rc < 0) { ckpt_close(ck); return -1; }
    ck->dir = flab_xstrdup(dir);
    return 0;
}

/* ---- write ----------------------------------------------------------------- */

static const char *const id_keys[] = {"bos_token_id", "eos_token_id", "pad_token_id",
                                      "decoder_start_token_id", NULL};

static int remap_one(cJSON *v, const CkptWriteOptions *o, const char *file, const char *key) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (d < 0 || d >= (double)o->id_map_len || d != (double)(int64_t)d)
        return flab_fail("%s: \"%s\" %g is outside the vocabulary being pruned", file, key, d);
    int32_t to = o->id_map[(size_t)d];
    if (to < 0)
        return flab_fail("%s: \"%s\" %g was removed by the vocabulary pruning", file, key, d);
    cJSON_SetNumberValue(v, to);
    return 0;
}

/* Keys that hold token ids flab does not rewrite: refused under an id map
 * rather than left pointing at the wrong tokens. */
static const char *const unmapped_id_keys[] = {"suppress_tokens", "begin_suppress_tokens",
    "forced_decoder_ids", "forced_bos_token_id", "forced_eos_token_id", "bad_words_ids",
    "sequence_bias", NULL};

/* Rewrites the special-token ids of a config object through opt's id map. */
static int remap_ids(cJSON *j, const CkptWriteOptions *o, const char *file) {
    if (!o || !o->id_map) return 0;
    for (int k = 0; unmapped_id_keys[k]; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, unmapped_id_keys[k]);
        if (v && !cJSON_IsNull(v))
            return flab_fail("%s: \"%s\" holds token ids that vocabulary pruning would "
                             "invalidate; flab does not remap it", file, unmapped_id_keys[k]);
    }
    for (int k = 0; id_keys[k]; k++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(j, id_keys[k]);
        if (cJSON_IsArray(v)) {
            for (cJSON *e = v->child; e; e = e->next)
                if (remap_one(e, o, file, id_keys[k]) < 0) return -1;
        } else if (remap_one(v, o, file, id_keys[k]) < 0) {
            return -1;
        }
    }
    return 0;
}

static int write_config(const char *dir, const ModelConfig *cfg, const CkptWriteOptions *o) {
    ModelConfig copy = *cfg;
    cJSON *raw = cJSON_Duplicate(cfg->raw, 1);
    copy.raw = raw;
    int rc = -1;
    char *path = st_path_join(dir, "config.json");
    if (!raw) flab_fail("%s: config has no parsed JSON to write", path);
    else if (remap_ids(raw, o, path) == 0) rc = model_config_write(dir, &copy);
    free(path);
    cJSON_Delete(raw);
    return rc;
}

static int write_generation_config(const char *dir, const CkptWriteOptions *o) {
    char *src = st_path_join(o->src_dir, "generation_config.json");
    char *dst = st_path_join(dir, "generation_config.json");
    int rc = 0;
    if (flab_path_exists(src)) {
        cJSON *g = model_json_load(src);
        rc = g ? remap_ids(g, o, src) : -1;
        if (rc == 0) {
            char *text = model_json_print(g);
            rc = flab_write_file_atomic(dst, text, strlen(text));
            free(text);
        }
        cJSON_Delete(g);
    }
    free(src);
    free(dst);
    return rc;
}

static int copy_file(const char *src, const char *dst) {
    char *data;
    size_t len;
    if (flab_read_file(src, &data, &len) < 0) return -1;
    int rc = flab_write_file_atomic(dst, data, len);
    free(data);
    return rc;
}

static int copy_tokenizer(const char *dir, const char *src_dir) {
    int rc = 0;
    for (int i = 0; ckpt_tokenizer_files[i] && rc == 0; i++) {
        char *s = st_path_join(src_dir, ckpt_tokenizer_files[i]);
        char *d = st_path_join(dir, ckpt_tokenizer_files[i]);
        if (flab_path_exists(s)) rc = copy_file(s, d);
        free(s);
        free(d);
    }
    return rc;
}

/* The written config must load back to the same model: catches a cfg
 * whose numbers contradict each other (kv heads not dividing heads ...). */
static int verify_config(const char *dir, const ModelConfig *cfg) {
    ModelConfig back;
    if (model_config_load(dir, &back) < 0) {
        flab_error_prefix("the config written is invalid: ");
        return -1;
    }
    int same = back.hidden_size == cfg->hidden_size &&
               back.intermediate_size == cfg->intermediate_size &&
               back.num_hidden_layers == cfg->num_hidden_layers &&
               back.num_attention_heads == cfg->num_attention_heads &&
               back.num_key_value_heads == cfg->num_key_value_heads &&
               back.head_dim == cfg->head_dim && back.vocab_size == cfg->vocab_size &&
               back.tie_word_embeddings == cfg->tie_word_embeddings;
    model_config_free(&back);
    return same ? 0 : flab_fail("%s/config.json: does not load back to the config written", dir);
}

int ckpt_write(const char *dir, const ModelConfig *cfg, const StWriteTensor *t, size_t n,
               const CkptWriteOptions *opt) {
    CkptWriteOptions none = {0};
    const CkptWriteOptions *o = opt ? opt : &none;
    if (ckpt_check_tensors(cfg, t, n, true, dir) < 0) return -1;
    if (flab_mkdir_p(dir, 0755) < 0) return -1;
    if (st_write_dir(dir, t, n, o->max_shard_bytes) < 0) return -1;
    if (write_config(dir, cfg, o) < 0) return -1;
    if (o->src_dir && write_generation_config(dir, o) < 0) return -1;
    if (o->src_dir && o->copy_tokenizer && copy_tokenizer(dir, o->src_dir) < 0) return -1;
    return verify_config(dir, cfg);
}
