/* model/transformer_quant.c: loading the Linear weights of quantized
 * checkpoints (config.json "quantization_config") onto a backend.
 *
 * Formats (docs/QUANTIZATION_KERNELS.md):
 *  - {"quant_method": "awq", "bits": 4, "group_size": G, "zero_point": true,
 *    "version": "gemm"}: AutoAWQ's WQLinear_GEMM tensors <linear>.qweight
 *    int32 [in, out/8], <linear>.qzeros int32 [in/G, out/8], <linear>.scales
 *    f16 [in/G, out] (+ <linear>.bias); "zero_point": false stores the
 *    symmetric codes with every zero 8, read alike.
 *  - {"quant_method": "flab_int8", "bits": 8, ...}: flab's INT8 layout
 *    (the quantize rule's, docs/QUANTIZATION.md): the same tensors with 4
 *    bytes per int32 in natural order ([in, out/4]).
 *  - {"quant_method": "fp8", "activation_scheme": "dynamic" | "static"}:
 *    vLLM's serialized FP8, <linear>.weight F8_E4M3 [out, in] and
 *    <linear>.weight_scale f32 (or bf16/f16) of shape [], [1], [out] or
 *    [out, 1].  Activations stay float32 (weight-only).  Layers in
 *    "ignored_layers" keep a bf16/f16/f32 weight: loaded dense.
 * A Linear without its quantized tensors (AutoAWQ's modules_to_not_convert,
 * an fp8 weight stored in bf16) is loaded dense from <linear>.weight.
 * Every problem is an error naming the tensor or the config key. */
#include "model/transformer_internal.h"
#include "util/error.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static int cfg_int(const cJSON *qc, const char *key, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(qc, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != (int)v->valuedouble)
        return flab_fail("model: config: quantization_config.%s missing or not an integer", key);
    *out = (int)v->valuedouble;
    return 0;
}

/* awq (bits 4) and flab_int8 (bits 8): the GEMM tensors.  zero_point
 * false (symmetric) still stores qzeros (all 8 / 128), so it reads alike. */
static int parse_awq(const cJSON *qc, const char *method, int want_bits, TfQuant *q) {
    q->kind = FLAB_QUANT_AWQ;
    if (cfg_int(qc, "bits", &q->bits) || cfg_int(qc, "group_size", &q->group)) return -1;
    if (q->bits != want_bits)
        return flab_fail("model: config: %s bits %d is not supported (flab runs %d)", method,
                         q->bits, want_bits);
    if (q->group <= 0)
        return flab_fail("model: config: %s group_size %d (flab needs a positive group size)",
                         method, q->group);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(qc, "version");
    if (ver && (!cJSON_IsString(ver) || strcasecmp(ver->valuestring, "gemm")))
        return flab_fail("model: config: awq version \"%s\" is not supported (flab reads \"gemm\")",
                         cJSON_IsString(ver) ? ver->valuestring : "?");
    return 0;
}

static int parse_fp8(const cJSON *qc, TfQuant *q) {
    q->kind = FLAB_QUANT_FP8;
    if (cJSON_GetObjectItemCaseSensitive(qc, "weight_block_size"))
        return flab_fail("model: config: block-wise fp8 (weight_block_size) is not supported");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(qc, "fmt");
    if (fmt && (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "e4m3")))
        return flab_fail("model: config: fp8 fmt is not \"e4m3\"");
    return 0;
}

int tf_quant_parse(const ModelConfig *cfg, TfQuant *q) {
    memset(q, 0, sizeof *q);
    const cJSON *qc = cfg->raw ? cJSON_GetObjectItemCaseSensitive(cfg->raw, "quantization_config")
                               : NULL;
    if (!qc || cJSON_IsNull(qc)) return 0;
    if (!cJSON_IsObject(qc)) return flab_fail("model: config: quantization_config is not an object");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(qc, "quant_method");
    if (!cJSON_IsString(m)) return flab_fail("model: config: quantization_config.quant_method missing");
    if (!strcmp(m->valuestring, "awq")) return parse_awq(qc, "awq", 4, q);
    if (!strcmp(m->valuestring, "flab_int8")) return parse_awq(qc, "flab_int8", 8, q);
    if (!strcmp(m->valuestring, "fp8")) return parse_fp8(qc, q);
    return flab_fail("model: config: quant_method \"%.40s\" is not supported (flab runs awq, "
                     "flab_int8 and fp8)",
                     m->valuestring);
}

/* The tensor prefix.suffix, checked to have dtype dt and the shape
 * dims[0..nd); NULL + error (naming it) otherwise. */
static const StTensor *find_q(const Transformer *t, const char *prefix, const char *suffix,
                              FlabDType dt, int nd, const int64_t *dims) {
    char n[200];
    snprintf(n, sizeof n, "%s.%s", prefix, suffix);
    const StTensor *ts = st_find(t->st, n);
    if (!ts) return flab_fail("model: tensor %s is missing from the checkpoint", n), NULL;
    if (ts->dtype != dt)
        return flab_fail("model: tensor %s has dtype %s, %s needs %s", n, st_dtype_name(ts->dtype),
                         t->quant.kind == FLAB_QUANT_AWQ ? "awq" : "fp8", st_dtype_name(dt)), NULL;
    int ok = ts->ndim == nd;
    for (int i = 0; ok && i < nd; i++) ok = ts->shape[i] == dims[i];
    if (ok) return ts;
    char got[96] = "", want[96] = "", b[32];
    for (int i = 0; i < ts->ndim; i++)
        snprintf(b, sizeof b, i ? ", %lld" : "%lld", (long long)ts->shape[i]),
            strncat(got, b, sizeof got - strlen(got) - 1);
    for (int i = 0; i < nd; i++)
        snprintf(b, sizeof b, i ? ", %lld" : "%lld", (long long)dims[i]),
            strncat(want, b, sizeof want - strlen(want) - 1);
    flab_fail("model: tensor %s has shape [%s], the config implies [%s]", n, got, want);
    return NULL;
}

static int load_awq(Transformer *t, const char *prefix, int64_t out, int64_t in, FlabWeight **w) {
    const TfQuant *q = &t->quant;
    int64_t P = 32 / q->bits;
    if (in % q->group || out % P)
        return flab_fail("model: %s: [%lld, %lld] does not split into groups of %d inputs and "
                         "words of %lld outputs", prefix, (long long)out, (long long)in, q->group,
                         (long long)P);
    int64_t dq[2] = {in, out / P}, dz[2] = {in / q->group, out / P}, ds[2] = {in / q->group, out};
    const StTensor *qw = find_q(t, prefix, "qweight", FLAB_I32, 2, dq);
    const StTensor *qz = qw ? find_q(t, prefix, "qzeros", FLAB_I32, 2, dz) : NULL;
    const StTensor *sc = qz ? find_q(t, prefix, "scales", FLAB_F16, 2, ds) : NULL;
    if (!sc) return -1;
    FlabQuantDesc d = {FLAB_QUANT_AWQ, out, in, q->bits, q->group, qw->data, qz->data,
                       sc->data, FLAB_F16, 0, 1};   /* safetensors.c maps files read-only */
    char n[200];
    snprintf(n, sizeof n, "%s.qweight", prefix);
    if (!(*w = t->be->upload_qweight(t->be, n, &d))) return -1;
    t->weight_bytes += qw->nbytes + qz->nbytes + sc->nbytes;
    return 0;
}

/* weight_scale: [] or [1] per tensor, [out] or [out, 1] per channel. */
static const StTensor *fp8_scale(const Transformer *t, const char *prefix, int64_t out) {
    char n[200];
    snprintf(n, sizeof n, "%s.weight_scale", prefix);
    const StTensor *s = st_find(t->st, n);
    if (!s) return flab_fail("model: tensor %s is missing from the checkpoint", n), NULL;
    if (s->dtype != FLAB_F32 && s->dtype != FLAB_BF16 && s->dtype != FLAB_F16)
        return flab_fail("model: tensor %s has dtype %s (want F32, BF16 or F16)", n,
                         st_dtype_name(s->dtype)), NULL;
    int64_t numel = (int64_t)(s->nbytes / flab_dtype_size(s->dtype));
    int ok = s->ndim <= 2 && (numel == 1 || (numel == out && s->ndim >= 1 && s->shape[0] == out));
    if (!ok) return flab_fail("model: tensor %s has %lld elements, want 1 (per tensor) or %lld "
                              "(per output channel)", n, (long long)numel, (long long)out), NULL;
    return s;
}

static int load_fp8(Transformer *t, const char *prefix, int64_t out, int64_t in, FlabWeight **w) {
    int64_t dims[2] = {out, in};
    const StTensor *wt = find_q(t, prefix, "weight", FLAB_F8_E4M3, 2, dims);
    const StTensor *sc = wt ? fp8_scale(t, prefix, out) : NULL;
    if (!sc) return -1;
    int64_t ns = (int64_t)(sc->nbytes / flab_dtype_size(sc->dtype));
    FlabQuantDesc d = {FLAB_QUANT_FP8, out, in, 8, 0, wt->data, NULL, sc->data, sc->dtype, ns, 1};
    if (!(*w = t->be->upload_qweight(t->be, wt->name, &d))) return -1;
    t->weight_bytes += wt->nbytes + sc->nbytes;
    return 0;
}

int tf_load_linear(Transformer *t, const char *prefix, int64_t out, int64_t in, FlabWeight **w) {
    *w = NULL;
    char n[200];
    int dense = t->quant.kind == 0;
    if (t->quant.kind == FLAB_QUANT_AWQ) {
        snprintf(n, sizeof n, "%s.qweight", prefix);
        dense = !st_find(t->st, n);
    } else if (t->quant.kind == FLAB_QUANT_FP8) {
        snprintf(n, sizeof n, "%s.weight", prefix);
        const StTensor *ts = st_find(t->st, n);
        dense = ts && ts->dtype != FLAB_F8_E4M3;
    }
    if (!dense && !t->be->upload_qweight)
        return flab_fail("model: %s: the %s backend does not run quantized weights", prefix,
                         t->be->name);
    if (dense) {
        snprintf(n, sizeof n, "%s.qweight", prefix);
        if (t->quant.kind == 0 && st_find(t->st, n))
            return flab_fail("model: tensor %s is quantized but config.json has no "
                             "quantization_config", n);
        snprintf(n, sizeof n, "%s.weight", prefix);
        return tf_load_tensor(t, n, 2, out, in, 0, w);
    }
    return t->quant.kind == FLAB_QUANT_AWQ ? load_awq(t, prefix, out, in, w)
                                           : load_fp8(t, prefix, out, in, w);
}
