/* model/lora_merge.c: folds a PEFT LoRA adapter into a plain HF checkpoint
 * (see model/lora.h): for every base tensor "<path>.weight" with adapter
 * tensors "base_model.model.<path>.lora_{A,B}.weight",
 *     W' = W + (lora_alpha / r) B A     (computed in float32)
 * Every adapter tensor must find its base tensor (an adapter trained on a
 * differently pruned model is an error, not silently ignored). */
#include "model/checkpoint.h"
#include "model/lora.h"
#include "util/error.h"
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const StTensor *adapter_part(const SafeTensors *ad, const char *base_name, char ab) {
    char name[400];
    size_t n = strlen(base_name);
    if (n < 8 || strcmp(base_name + n - 7, ".weight")) return NULL;
    snprintf(name, sizeof name, "base_model.model.%.*s.lora_%c.weight", (int)(n - 7), base_name, ab);
    return st_find(ad, name);
}

/* Merged copy of t (malloc'd, in dtype), or NULL + error. */
static void *merge_one(const StTensor *t, const StTensor *A, const StTensor *B, double scale,
                       FlabDType dtype, const char *adir) {
    int64_t out = t->shape[0], in = t->shape[1], r = A->shape[0];
    if (t->ndim != 2 || A->ndim != 2 || B->ndim != 2 || A->shape[1] != in || B->shape[0] != out ||
        B->shape[1] != r) {
        flab_fail("%s: adapter of %s: lora_A [%lld, %lld] / lora_B [%lld, %lld] do not fit [%lld, %lld]",
                  adir, t->name, (long long)A->shape[0], (long long)A->shape[1], (long long)B->shape[0],
                  (long long)B->shape[1], (long long)out, (long long)in);
        return NULL;
    }
    size_t nw = (size_t)(out * in);
    float *w = flab_xmalloc(nw * 4), *a = flab_xmalloc((size_t)(r * in) * 4), *b = flab_xmalloc((size_t)(out * r) * 4);
    flab_to_f32(w, t->data, t->dtype, nw);
    flab_to_f32(a, A->data, A->dtype, (size_t)(r * in));
    flab_to_f32(b, B->data, B->dtype, (size_t)(out * r));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)out, (int)in, (int)r, (float)scale, b,
                (int)r, a, (int)in, 1.f, w, (int)in);
    free(a);
    free(b);
    if (dtype == FLAB_F32) return w;
    uint16_t *h = flab_xmalloc(nw * 2);
    for (size_t i = 0; i < nw; i++) h[i] = dtype == FLAB_BF16 ? flab_f32_to_bf16(w[i]) : flab_f32_to_f16(w[i]);
    free(w);
    return h;
}

int lora_merge(const char *base_dir, const char *adapter_dir, const char *out_dir, int dtype) {
    char apath[PATH_MAX], cpath[PATH_MAX];
    snprintf(apath, sizeof apath, "%s/adapter_model.safetensors", adapter_dir);
    snprintf(cpath, sizeof cpath, "%s/adapter_config.json", adapter_dir);
    LoraConfig lc;
    if (lora_adapter_read_config(cpath, &lc)) return -1;
    Checkpoint ck;
    SafeTensors *ad = NULL;
    if (ckpt_open(base_dir, &ck)) return -1;
    if (st_open_file(apath, &ad)) { ckpt_close(&ck); return -1; }
    size_t n = st_count(ck.st), used = 0;
    StWriteTensor *ts = flab_xcalloc(n, sizeof *ts);
    void **owned = flab_xcalloc(n, sizeof *owned);
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        const StTensor *t = st_at(ck.st, i);
        ts[i] = st_write_view(t);
        const StTensor *A = adapter_part(ad, t->name, 'A'), *B = adapter_part(ad, t->name, 'B');
        if (!A && !B) continue;
        if (!A || !B) { rc = flab_fail("%s: %s has only one of lora_A / lora_B", apath, t->name); break; }
        FlabDType dt = dtype < 0 ? t->dtype : (FlabDType)dtype;
        if (!(owned[i] = merge_one(t, A, B, lc.alpha / lc.r, dt, apath))) { rc = -1; break; }
        ts[i].data = owned[i];
        ts[i].dtype = dt;
        ts[i].nbytes = (size_t)(t->shape[0] * t->shape[1]) * flab_dtype_size(dt);
        used += 2;
    }
    if (!rc && used != st_count(ad))
        rc = flab_fail("%s: %zu of its %zu tensors match no weight of %s (adapter of another model?)",
                       apath, st_count(ad) - used, st_count(ad), base_dir);
    CkptWriteOptions opt = {.src_dir = base_dir, .copy_tokenizer = true};
    if (!rc) rc = ckpt_write(out_dir, &ck.cfg, ts, n, &opt);
    for (size_t i = 0; i < n; i++) free(owned[i]);
    free(owned);
    free(ts);
    st_close(ad);
    ckpt_close(&ck);
    return rc;
}
