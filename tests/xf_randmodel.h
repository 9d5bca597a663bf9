/* tests/xf_randmodel.h: writes small seeded random-weight Qwen2 / Llama
 * checkpoints (config.json + model.safetensors) for tests that compare the
 * fast forward with the reference forward on shapes the golden fixture does
 * not cover.  Test-only, header-only. */
#ifndef FLAB_TESTS_XF_RANDMODEL_H
#define FLAB_TESTS_XF_RANDMODEL_H
#include "model/dtype.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int llama, tied, attn_bias, mlp_bias;
    int hidden, layers, heads, kv_heads, head_dim, inter, vocab;  /* head_dim 0: derived */
    FlabDType dtype;
    uint64_t seed;
} XfShape;

typedef struct { char name[96]; int ndim; int64_t shape[2]; float scale; } XfSpec;

static inline float xf_rand(uint64_t *s) {          /* uniform in [-1, 1) */
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return (float)((*s >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* n values scale * xf_rand(s), malloc'd. */
static inline float *xf_rand_array(uint64_t *s, size_t n, float scale) {
    float *a = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) a[i] = xf_rand(s) * scale;
    return a;
}

static inline int xf_specs(const XfShape *m, XfSpec *out) {
    int n = 0, hd = m->head_dim ? m->head_dim : m->hidden / m->heads;
    int64_t H = m->hidden, q = (int64_t)m->heads * hd, kv = (int64_t)m->kv_heads * hd;
    int qkv_b = !m->llama || m->attn_bias, o_b = m->llama && m->attn_bias;
    int mlp_b = m->llama && m->mlp_bias;
#define XS(nd, a, b, sc, ...) do { XfSpec *s_ = &out[n++]; \
        snprintf(s_->name, sizeof s_->name, __VA_ARGS__); \
        s_->ndim = nd; s_->shape[0] = a; s_->shape[1] = b; s_->scale = sc; } while (0)
    XS(2, m->vocab, H, 1.0f, "model.embed_tokens.weight");
    XS(1, H, 0, -1.0f, "model.norm.weight");
    if (!m->tied) XS(2, m->vocab, H, 0.1f, "lm_head.weight");
    for (int l = 0; l < m->layers; l++) {
        XS(1, H, 0, -1.0f, "model.layers.%d.input_layernorm.weight", l);
        XS(1, H, 0, -1.0f, "model.layers.%d.post_attention_layernorm.weight", l);
        XS(2, q, H, 0.15f, "model.layers.%d.self_attn.q_proj.weight", l);
        XS(2, kv, H, 0.15f, "model.layers.%d.self_attn.k_proj.weight", l);
        XS(2, kv, H, 0.15f, "model.layers.%d.self_attn.v_proj.weight", l);
        XS(2, H, q, 0.15f, "model.layers.%d.self_attn.o_proj.weight", l);
        XS(2, m->inter, H, 0.15f, "model.layers.%d.mlp.gate_proj.weight", l);
        XS(2, m->inter, H, 0.15f, "model.layers.%d.mlp.up_proj.weight", l);
        XS(2, H, m->inter, 0.1f, "model.layers.%d.mlp.down_proj.weight", l);
        if (qkv_b) {
            XS(1, q, 0, 0.5f, "model.layers.%d.self_attn.q_proj.bias", l);
            XS(1, kv, 0, 0.5f, "model.layers.%d.self_attn.k_proj.bias", l);
            XS(1, kv, 0, 0.5f, "model.layers.%d.self_attn.v_proj.bias", l);
        }
        if (o_b) XS(1, H, 0, 0.5f, "model.layers.%d.self_attn.o_proj.bias", l);
        if (mlp_b) {
            XS(1, m->inter, 0, 0.5f, "model.layers.%d.mlp.gate_proj.bias", l);
            XS(1, m->inter, 0, 0.5f, "model.layers.%d.mlp.up_proj.bias", l);
            XS(1, H, 0, 0.5f, "model.layers.%d.mlp.down_proj.bias", l);
        }
    }
#undef XS
    return n;
}

static inline void xf_store(void *dst, FlabDType t, size_t i, float v) {
    if (t == FLAB_F32) ((float *)dst)[i] = v;
    else ((uint16_t *)dst)[i] = t == FLAB_BF16 ? flab_f32_to_bf16(v) : flab_f32_to_f16(v);
}

static inline int xf_write_config(const char *dir, const XfShape *m) {
    cJSON *c = cJSON_CreateObject();
    const char *arch = m->llama ? "LlamaForCausalLM" : "Qwen2ForCausalLM";
    cJSON_AddItemToObject(c, "architectures", cJSON_CreateStringArray(&arch, 1));
    cJSON_AddStringToObject(c, "model_type", m->llama ? "llama" : "qwen2");
    cJSON_AddNumberToObject(c, "hidden_size", m->hidden);
    cJSON_AddNumberToObject(c, "intermediate_size", m->inter);
    cJSON_AddNumberToObject(c, "num_hidden_layers", m->layers);
    cJSON_AddNumberToObject(c, "num_attention_heads", m->heads);
    cJSON_AddNumberToObject(c, "num_key_value_heads", m->kv_heads);
    if (m->head_dim) cJSON_AddNumberToObject(c, "head_dim", m->head_dim);
    cJSON_AddNumberToObject(c, "vocab_size", m->vocab);
    cJSON_AddNumberToObject(c, "rms_norm_eps", 1e-5);
    cJSON_AddNumberToObject(c, "rope_theta", m->llama ? 500000.0 : 10000.0);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", m->tied);
    cJSON_AddBoolToObject(c, "attention_bias", m->attn_bias);
    cJSON_AddBoolToObject(c, "mlp_bias", m->mlp_bias);
    cJSON_AddNumberToObject(c, "eos_token_id", 2);
    char *txt = cJSON_Print(c), path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = flab_write_file_atomic(path, txt, strlen(txt));
    free(txt);
    cJSON_Delete(c);
    return rc;
}

/* Writes dir/config.json and dir/model.safetensors.  Norm gains are
 * 1 + 0.2 u, other tensors scale * u, u uniform in [-1, 1), seeded. */
static inline int xf_write_random_model(const char *dir, const XfShape *m) {
    XfSpec *sp = calloc(16 + (size_t)m->layers * 16, sizeof *sp);
    int n = xf_specs(m, sp);
    uint64_t seed = m->seed * 2654435761u + 1;
    size_t es = flab_dtype_size(m->dtype), total = 0, cnt[n];
    cJSON *hdr = cJSON_CreateObject();
    const char *dt = m->dtype == FLAB_F32 ? "F32" : m->dtype == FLAB_F16 ? "F16" : "BF16";
    for (int i = 0; i < n; i++) {
        cnt[i] = (size_t)sp[i].shape[0] * (sp[i].ndim == 2 ? (size_t)sp[i].shape[1] : 1);
        cJSON *e = cJSON_AddObjectToObject(hdr, sp[i].name);
        cJSON_AddStringToObject(e, "dtype", dt);
        cJSON *sh = cJSON_AddArrayToObject(e, "shape"), *of = cJSON_AddArrayToObject(e, "data_offsets");
        for (int d = 0; d < sp[i].ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)sp[i].shape[d]));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)total));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(total + cnt[i] * es)));
        total += cnt[i] * es;
    }
    char *h = cJSON_PrintUnformatted(hdr);
    size_t hl = strlen(h), pad = (8 - hl % 8) % 8, len = 8 + hl + pad + total, at = 8 + hl + pad;
    char *file = calloc(1, len), path[512];
    uint64_t hl64 = hl + pad;
    memcpy(file, &hl64, 8);
    memcpy(file + 8, h, hl);
    memset(file + 8 + hl, ' ', pad);
    for (int i = 0; i < n; i++) {
        for (size_t k = 0; k < cnt[i]; k++) {
            float u = xf_rand(&seed);
            xf_store(file + at, m->dtype, k, sp[i].scale < 0 ? 1.0f + 0.2f * u : sp[i].scale * u);
        }
        at += cnt[i] * es;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = flab_mkdir_p(dir, 0755) || flab_write_file_atomic(path, file, len) ||
             xf_write_config(dir, m) ? -1 : 0;
    free(file); free(h); free(sp);
    cJSON_Delete(hdr);
    return rc;
}
#endif
