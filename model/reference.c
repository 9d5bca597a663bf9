/* model/reference.c: the reference forward (see reference.h).  Mirrors the
 * formulas of model/forward.c with the reference ops; no shape checks beyond
 * "the tensor exists" (the fast loader does those). */
#include "model/reference.h"
#include "kernels/ref_ops.h"
#include "util/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tensor `name` as a malloc'd float32 array (NULL + error if absent). */
static float *ref_weight(const SafeTensors *st, const char *name) {
    const StTensor *t = st_find(st, name);
    if (!t) { flab_fail("reference: tensor %s is missing", name); return NULL; }
    size_t n = t->nbytes / flab_dtype_size(t->dtype);
    float *w = flab_xmalloc(n * sizeof(float));
    flab_to_f32(w, t->data, t->dtype, n);
    return w;
}

static float *layer_weight(const SafeTensors *st, int l, const char *suffix) {
    char name[160];
    snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);
    return ref_weight(st, name);
}

/* y = x W^T (+ b when `bias` names a tensor present in the checkpoint). */
static int ref_linear(const SafeTensors *st, int l, const char *w_name, const char *b_name,
                      int use_bias, const float *x, float *y, int n, int in, int out, int acc) {
    float *W = layer_weight(st, l, w_name), *b = NULL;
    if (!W) return -1;
    if (use_bias && !(b = layer_weight(st, l, b_name))) { free(W); return -1; }
    ref_matmul(y, x, W, b, n, in, out, acc);
    free(W);
    free(b);
    return 0;
}

static int ref_layer(const ModelConfig *c, const SafeTensors *st, int l, float *x,
                     const int32_t *pos, int n) {
    int H = c->hidden_size, I = c->intermediate_size, nh = c->num_attention_heads;
    int nkv = c->num_key_value_heads, hd = c->head_dim, qd = nh * hd, kd = nkv * hd;
    float *h = flab_xmalloc((size_t)n * H * 4), *q = flab_xmalloc((size_t)n * qd * 4);
    float *k = flab_xmalloc((size_t)n * kd * 4), *v = flab_xmalloc((size_t)n * kd * 4);
    float *a = flab_xmalloc((size_t)n * qd * 4), *g = flab_xmalloc((size_t)n * I * 4);
    float *u = flab_xmalloc((size_t)n * I * 4), *norm = NULL;
    int32_t *slot = flab_xcalloc((size_t)n, sizeof(int32_t));
    int rc = -1;
    if (!(norm = layer_weight(st, l, "input_layernorm.weight"))) goto out;
    ref_rmsnorm(h, x, norm, n, H, (float)c->rms_norm_eps);
    free(norm);
    if (ref_linear(st, l, "self_attn.q_proj.weight", "self_attn.q_proj.bias", c->qkv_bias, h, q, n, H, qd, 0) ||
        ref_linear(st, l, "self_attn.k_proj.weight", "self_attn.k_proj.bias", c->qkv_bias, h, k, n, H, kd, 0) ||
        ref_linear(st, l, "self_attn.v_proj.weight", "self_attn.v_proj.bias", c->qkv_bias, h, v, n, H, kd, 0))
        goto out;
    ref_rope(q, pos, n, nh, hd, (float)c->rope_theta);
    ref_rope(k, pos, n, nkv, hd, (float)c->rope_theta);
    /* The cache is exactly this sequence: slot 0, positions 0..n-1. */
    ref_attention(a, q, k, v, slot, pos, n, nh, nkv, hd, n);
    if (ref_linear(st, l, "self_attn.o_proj.weight", "self_attn.o_proj.bias", c->o_bias, a, x, n, qd, H, 1))
        goto out;
    if (!(norm = layer_weight(st, l, "post_attention_layernorm.weight"))) goto out;
    ref_rmsnorm(h, x, norm, n, H, (float)c->rms_norm_eps);
    free(norm);
    if (ref_linear(st, l, "mlp.gate_proj.weight", "mlp.gate_proj.bias", c->mlp_bias, h, g, n, H, I, 0) ||
        ref_linear(st, l, "mlp.up_proj.weight", "mlp.up_proj.bias", c->mlp_bias, h, u, n, H, I, 0))
        goto out;
    ref_swiglu(g, g, u, (size_t)n * I);
    rc = ref_linear(st, l, "mlp.down_proj.weight", "mlp.down_proj.bias", c->mlp_bias, g, x, n, I, H, 1);
out:
    free(h); free(q); free(k); free(v); free(a); free(g); free(u); free(slot);
    return rc;
}

int reference_logits(const ModelConfig *c, const SafeTensors *st, const int32_t *ids,
                     int n, const int *layers, int n_layers, float *logits) {
    int H = c->hidden_size, V = c->vocab_size;
    float *emb = ref_weight(st, "model.embed_tokens.weight");
    if (!emb) return -1;
    float *x = flab_xmalloc((size_t)n * H * 4);
    int32_t *pos = flab_xmalloc((size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++) pos[i] = i;
    ref_embedding(x, emb, H, ids, n);
    int rc = 0, L = layers ? n_layers : c->num_hidden_layers;
    for (int i = 0; !rc && i < L; i++) rc = ref_layer(c, st, layers ? layers[i] : i, x, pos, n);
    float *norm = rc ? NULL : ref_weight(st, "model.norm.weight");
    float *head = !norm ? NULL : st_find(st, "lm_head.weight") ? ref_weight(st, "lm_head.weight") : emb;
    if (head) {
        ref_rmsnorm(x, x, norm, n, H, (float)c->rms_norm_eps);
        ref_matmul(logits, x, head, NULL, n, H, V, 0);
    } else {
        rc = -1;
    }
    if (head && head != emb) free(head);
    free(norm); free(emb); free(x); free(pos);
    return rc;
}
