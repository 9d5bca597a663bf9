/* model/lora_adapter.c: PEFT LoRA adapters on disk (see model/lora.h).
 *
 * adapter_model.safetensors: float32, one pair per adapted module,
 *   base_model.model.model.layers.L.<self_attn|mlp>.<mod>.lora_A.weight [r, in]
 *   base_model.model.model.layers.L.<self_attn|mlp>.<mod>.lora_B.weight [out, r]
 * adapter_config.json: the fields PEFT 0.10's LoraConfig writes (unknown
 * ones default on load), so PeftModel.from_pretrained accepts it. */
#include "model/lora_internal.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void adapter_name(char *buf, size_t n, int l, int mod, char ab) {
    snprintf(buf, n, "base_model.model.model.layers.%d.%s.lora_%c.weight", l,
             lora_module_paths[mod], ab);
}

static char *config_json(const LoraModel *m, const char *base_model) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "alpha_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(j, "auto_mapping");
    cJSON_AddStringToObject(j, "base_model_name_or_path", base_model ? base_model : "");
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddBoolToObject(j, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(j, "inference_mode", 1);
    cJSON_AddBoolToObject(j, "init_lora_weights", 1);
    cJSON_AddNullToObject(j, "layer_replication");
    cJSON_AddNullToObject(j, "layers_pattern");
    cJSON_AddNullToObject(j, "layers_to_transform");
    cJSON_AddItemToObject(j, "loftq_config", cJSON_CreateObject());
    cJSON_AddNumberToObject(j, "lora_alpha", m->lc.alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", m->lc.dropout);
    cJSON_AddNullToObject(j, "megatron_config");
    cJSON_AddStringToObject(j, "megatron_core", "megatron.core");
    cJSON_AddNullToObject(j, "modules_to_save");
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddNumberToObject(j, "r", m->lc.r);
    cJSON_AddItemToObject(j, "rank_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(j, "revision");
    cJSON *t = cJSON_AddArrayToObject(j, "target_modules");
    for (int i = 0; i < LORA_NMOD; i++)
        if (m->lc.target_mask & (1u << i)) cJSON_AddItemToArray(t, cJSON_CreateString(lora_module_names[i]));
    cJSON_AddStringToObject(j, "task_type", "CAUSAL_LM");
    cJSON_AddBoolToObject(j, "use_dora", 0);
    cJSON_AddBoolToObject(j, "use_rslora", 0);
    char *s = model_json_print(j);
    cJSON_Delete(j);
    return s;
}

int lora_adapter_write(const LoraModel *m, const char *dir, const char *base_model) {
    int L = m->ck.cfg.num_hidden_layers, n = 0, R = m->lc.r;
    StWriteTensor *ts = flab_xcalloc((size_t)L * LORA_NMOD * 2, sizeof *ts);
    char (*names)[200] = flab_xcalloc((size_t)L * LORA_NMOD * 2, sizeof *names);
    for (int l = 0; l < L; l++)
        for (int i = 0; i < LORA_NMOD; i++) {
            const LoraLinear *li = &m->layers[l].lin[i];
            if (!li->A) continue;
            for (int ab = 0; ab < 2; ab++, n++) {
                adapter_name(names[n], sizeof names[n], l, i, ab ? 'B' : 'A');
                ts[n] = (StWriteTensor){names[n], FLAB_F32, 2,
                    {ab ? li->out : R, ab ? R : li->in}, ab ? li->B : li->A,
                    (size_t)R * (ab ? li->out : li->in) * sizeof(float)};
            }
        }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    int rc = st_write_file(path, ts, (size_t)n);
    free(ts);
    free(names);
    if (rc) return -1;
    char *js = config_json(m, base_model);
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    rc = flab_write_file_atomic(path, js, strlen(js));
    free(js);
    return rc;
}

int lora_adapter_read_config(const char *path, LoraConfig *cfg) {
    cJSON *j = model_json_load(path);
    if (!j) return -1;
    int rc = -1;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "r");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "lora_alpha");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "lora_dropout");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "target_modules");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "peft_type");
    memset(cfg, 0, sizeof *cfg);
    if (!cJSON_IsString(p) || strcmp(p->valuestring, "LORA")) { flab_fail("%s: peft_type is not LORA", path); goto out; }
    if (!cJSON_IsNumber(r) || r->valuedouble < 1) { flab_fail("%s: r missing or < 1", path); goto out; }
    if (!cJSON_IsNumber(a)) { flab_fail("%s: lora_alpha missing", path); goto out; }
    cfg->r = r->valueint;
    cfg->alpha = a->valuedouble;
    cfg->dropout = cJSON_IsNumber(d) ? d->valuedouble : 0;
    if (cJSON_IsString(t)) {
        if (lora_parse_targets(t->valuestring, &cfg->target_mask)) { flab_error_prefix("%s: ", path); goto out; }
    } else if (cJSON_IsArray(t)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, t) {
            unsigned one;
            if (!cJSON_IsString(e) || lora_parse_targets(e->valuestring, &one)) {
                flab_fail("%s: target_modules: unsupported entry", path);
                goto out;
            }
            cfg->target_mask |= one;
        }
    } else {
        flab_fail("%s: target_modules missing", path);
        goto out;
    }
    rc = 0;
out:
    cJSON_Delete(j);
    return rc;
}

static int load_one(SafeTensors *st, const char *file, int l, int mod, char ab, float *dst,
                    int64_t d0, int64_t d1) {
    char name[200];
    adapter_name(name, sizeof name, l, mod, ab);
    const StTensor *t = st_find(st, name);
    if (!t) return flab_fail("%s: tensor %s is missing", file, name);
    if (t->ndim != 2 || t->shape[0] != d0 || t->shape[1] != d1)
        return flab_fail("%s: tensor %s: shape must be [%lld, %lld]", file, name, (long long)d0,
                         (long long)d1);
    flab_to_f32(dst, t->data, t->dtype, (size_t)(d0 * d1));
    return 0;
}

int lora_adapter_load(LoraModel *m, const char *weights, const char *config) {
    if (config) {
        LoraConfig c;
        if (lora_adapter_read_config(config, &c)) return -1;
        if (c.r != m->lc.r || c.target_mask != m->lc.target_mask)
            return flab_fail("%s: r / target_modules differ from the model's LoRA setup", config);
    }
    SafeTensors *st;
    if (st_open_file(weights, &st)) return -1;
    int rc = 0, R = m->lc.r;
    for (int l = 0; !rc && l < m->ck.cfg.num_hidden_layers; l++)
        for (int i = 0; !rc && i < LORA_NMOD; i++) {
            LoraLinear *li = &m->layers[l].lin[i];
            if (!li->A) continue;
            rc = load_one(st, weights, l, i, 'A', li->A, R, li->in) ||
                 load_one(st, weights, l, i, 'B', li->B, li->out, R);
        }
    st_close(st);
    return rc ? -1 : 0;
}
