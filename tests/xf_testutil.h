/* tests/xf_testutil.h: helpers of the transformer tests (test_forward.c,
 * test_ops.c, tools): the tiny-qwen2 goldens (golden.json + golden.bin) and
 * a minimal safetensors writer to make bf16 / f16 / f32 and broken variants
 * of the fixture.  Test-only; header-only so each test binary includes it. */
#ifndef FLAB_TESTS_XF_TESTUTIL_H
#define FLAB_TESTS_XF_TESTUTIL_H
#include "model/dtype.h"
#include "model/safetensors.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XF_FIXTURE FIXTURE_DIR "/tiny-qwen2"

typedef struct {
    cJSON *json;
    char *bin;
    size_t bin_len;
} XfGolden;

static inline int xf_golden_load(XfGolden *g) {
    char *txt = NULL;
    memset(g, 0, sizeof *g);
    if (flab_read_file(XF_FIXTURE "/golden.json", &txt, NULL)) return -1;
    g->json = cJSON_Parse(txt);
    free(txt);
    if (!g->json) return flab_fail("golden.json: bad JSON");
    return flab_read_file(XF_FIXTURE "/golden.bin", &g->bin, &g->bin_len);
}

static inline void xf_golden_free(XfGolden *g) {
    cJSON_Delete(g->json);
    free(g->bin);
}

/* The float32 blob described by {"offset", "shape"}; *n = element count. */
static inline const float *xf_blob(const XfGolden *g, const cJSON *desc, size_t *n) {
    size_t off = (size_t)cJSON_GetObjectItem(desc, "offset")->valuedouble, cnt = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(desc, "shape")) cnt *= (size_t)d->valuedouble;
    if (n) *n = cnt;
    if (off + cnt * 4 > g->bin_len) return NULL;
    return (const float *)(g->bin + off);
}

/* A JSON array of integers as a malloc'd int32 array. */
static inline int32_t *xf_ids(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    int32_t *ids = malloc((size_t)(*n ? *n : 1) * sizeof(int32_t));
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) ids[i++] = (int32_t)v->valuedouble;
    return ids;
}

static inline double xf_max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

static inline double xf_max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

/* ---- writing variants of the fixture -------------------------------------- */

/* How to rewrite one tensor: convert to `dtype`; skip it; or give it a
 * wrong first dimension (shape[0] - 1 rows). */
typedef struct {
    FlabDType dtype;
    const char *drop;        /* tensor name to leave out, or NULL */
    const char *misshape;    /* tensor name to truncate by one row, or NULL */
    int llama_bias;          /* 1: LlamaForCausalLM with attention_bias and
                                mlp_bias, zero o/gate/up/down biases added */
} XfVariant;

static inline const char *xf_dtype_str(FlabDType t) {
    return t == FLAB_F32 ? "F32" : t == FLAB_F16 ? "F16" : "BF16";
}

static inline void xf_convert(void *dst, FlabDType to, const StTensor *t, size_t n) {
    float *tmp = malloc(n * sizeof(float) + 1);
    flab_to_f32(tmp, t->data, t->dtype, n);
    for (size_t i = 0; i < n; i++) {
        if (to == FLAB_F32) ((float *)dst)[i] = tmp[i];
        else if (to == FLAB_BF16) ((uint16_t *)dst)[i] = flab_f32_to_bf16(tmp[i]);
        else ((uint16_t *)dst)[i] = flab_f32_to_f16(tmp[i]);
    }
    free(tmp);
}

/* Writes dir/model.safetensors (+ copies config.json, generation_config.json)
 * from the fixture with the variant applied.  Returns 0 or -1. */
static inline int xf_write_variant(const char *dir, const XfVariant *v) {
    SafeTensors *st;
    if (st_open(XF_FIXTURE, &st)) return -1;
    size_t n = st_count(st), total = 0;
    cJSON *hdr = cJSON_CreateObject();
    char **blobs = calloc(n, sizeof(char *));
    size_t *sizes = calloc(n, sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        const StTensor *t = st_at(st, i);
        if (v->drop && !strcmp(t->name, v->drop)) continue;
        int64_t shape[ST_MAX_DIMS];
        size_t cnt = 1;
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
        if (v->misshape && !strcmp(t->name, v->misshape)) shape[0]--;
        for (int d = 0; d < t->ndim; d++) cnt *= (size_t)shape[d];
        sizes[i] = cnt * flab_dtype_size(v->dtype);
        blobs[i] = malloc(sizes[i] + 1);
        xf_convert(blobs[i], v->dtype, t, cnt);
        cJSON *e = cJSON_AddObjectToObject(hdr, t->name);
        cJSON_AddStringToObject(e, "dtype", xf_dtype_str(v->dtype));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)total));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(total + sizes[i])));
        total += sizes[i];
    }
    size_t n_extra = v->llama_bias ? 8 * 4 : 0;
    blobs = realloc(blobs, (n + n_extra) * sizeof(char *));
    sizes = realloc(sizes, (n + n_extra) * sizeof(size_t));
    for (size_t i = 0; i < n_extra; i++) {
        static const char *mods[4] = {"self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                                      "mlp.down_proj"};
        int64_t len = i % 4 == 1 || i % 4 == 2 ? 512 : 192;
        char name[96];
        snprintf(name, sizeof name, "model.layers.%zu.%s.bias", i / 4, mods[i % 4]);
        blobs[n + i] = NULL;
        if (v->drop && !strcmp(name, v->drop)) continue;
        sizes[n + i] = (size_t)len * flab_dtype_size(v->dtype);
        blobs[n + i] = calloc(1, sizes[n + i]);
        cJSON *e = cJSON_AddObjectToObject(hdr, name);
        cJSON_AddStringToObject(e, "dtype", xf_dtype_str(v->dtype));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)len));
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)total));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(total + sizes[n + i])));
        total += sizes[n + i];
    }
    n += n_extra;
    char *h = cJSON_PrintUnformatted(hdr);
    size_t hl = strlen(h), pad = (8 - hl % 8) % 8, len = 8 + hl + pad + total;
    char *file = malloc(len), path[512];
    uint64_t hl64 = hl + pad;
    memcpy(file, &hl64, 8);
    memcpy(file + 8, h, hl);
    memset(file + 8 + hl, ' ', pad);
    size_t at = 8 + hl + pad;
    for (size_t i = 0; i < n; i++)
        if (blobs[i]) { memcpy(file + at, blobs[i], sizes[i]); at += sizes[i]; free(blobs[i]); }
    int rc = flab_mkdir_p(dir, 0755);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc) rc = flab_write_file_atomic(path, file, len);
    const char *copies[] = {"config.json", "generation_config.json"};
    for (int i = 0; !rc && i < 2; i++) {
        char *data; size_t dl; char src[512];
        snprintf(src, sizeof src, XF_FIXTURE "/%s", copies[i]);
        snprintf(path, sizeof path, "%s/%s", dir, copies[i]);
        if (flab_read_file(src, &data, &dl)) { rc = -1; break; }
        if (i == 0 && v->llama_bias) {          /* config.json as a Llama with biases */
            cJSON *cj = cJSON_Parse(data);
            free(data);
            cJSON_ReplaceItemInObject(cj, "architectures", cJSON_CreateStringArray(
                (const char *[]){"LlamaForCausalLM"}, 1));
            cJSON_ReplaceItemInObject(cj, "model_type", cJSON_CreateString("llama"));
            cJSON_AddBoolToObject(cj, "attention_bias", 1);
            cJSON_AddBoolToObject(cj, "mlp_bias", 1);
            data = cJSON_Print(cj);
            dl = strlen(data);
            cJSON_Delete(cj);
        }
        rc = flab_write_file_atomic(path, data, dl);
        free(data);
    }
    free(file); free(h); free(blobs); free(sizes);
    cJSON_Delete(hdr);
    st_close(st);
    return rc;
}
#endif
