/* engine/keys.c: key computation and the explain record (see keys.h). */
#include "engine/keys.h"
#include "util/error.h"
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static void put_u64(XXH3_state_t *st, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    XXH3_128bits_update(st, b, 8);
}

static void put_str(XXH3_state_t *st, const char *s) {
    size_t n = strlen(s);
    put_u64(st, n);
    XXH3_128bits_update(st, s, n);
}

static void digest_hex(XXH3_state_t *st, char out[33]) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[c.digest[i] >> 4];
        out[2 * i + 1] = hex[c.digest[i] & 15];
    }
    out[32] = 0;
}

/* Inputs shared by many targets (a model directory, a data file) are
 * hashed once per computation: a map abs path -> Input already hashed. */
typedef struct {
    const Input **slots;
    size_t n, cap;
} Memo;

static size_t path_hash(const char *s) {
    size_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static const Input **memo_slot(Memo *m, const char *path) {
    size_t h = path_hash(path) & (m->cap - 1);
    while (m->slots[h] && strcmp(m->slots[h]->abs, path)) h = (h + 1) & (m->cap - 1);
    return &m->slots[h];
}

static void memo_add(Memo *m, const Input *in) {
    if (2 * (m->n + 1) > m->cap) {
        Memo bigger = {flab_xcalloc(m->cap ? 2 * m->cap : 64, sizeof *m->slots), 0,
                       m->cap ? 2 * m->cap : 64};
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i]) { *memo_slot(&bigger, m->slots[i]->abs) = m->slots[i]; bigger.n++; }
        free(m->slots);
        *m = bigger;
    }
    const Input **slot = memo_slot(m, in->abs);
    if (!*slot) { *slot = in; m->n++; }
}

static int hash_inputs(Graph *g, Target *t, const EngineStore *s, Memo *memo) {
    for (size_t i = 0; i < t->ninputs; i++) {
        Input *in = &t->inputs[i];
        if (in->dep >= 0) {
            memcpy(in->key, g->targets[in->dep].key, 33);
            continue;
        }
        const Input *seen = memo->cap ? *memo_slot(memo, in->abs) : NULL;
        if (seen) { memcpy(in->key, seen->key, 33); continue; }
        if (s->hash_path(s->ud, in->abs, in->key) < 0) {
            flab_error_prefix("[%s]: input '%s': ", t->name, in->ref);
            return -1;
        }
        memo_add(memo, in);
    }
    return 0;
}

static void key_of(const Target *t, char out[33]) {
    XXH3_state_t *st = XXH3_createState();
    XXH3_128bits_reset(st);
    put_str(st, "flab-key-1");
    put_str(st, t->rule->name);
    put_u64(st, (uint64_t)(int64_t)t->rule->version);
    for (size_t p = 0; p < t->nparams; p++) {
        put_str(st, t->rule->params[p].name);
        if (!rule_type_is_input(t->rule->params[p].type)) { put_str(st, t->values[p]); continue; }
        uint64_t n = 0;
        for (size_t i = 0; i < t->ninputs; i++) n += t->inputs[i].param == (int)p;
        put_u64(st, n);
        for (size_t i = 0; i < t->ninputs; i++) {
            const Input *in = &t->inputs[i];
            if (in->param != (int)p) continue;
            put_str(st, in->dep >= 0 ? "target" : "file");
            if (in->dep < 0) put_str(st, in->ref);
            put_str(st, in->key);
        }
    }
    digest_hex(st, out);
    XXH3_freeState(st);
}

int keys_compute(Graph *g, const unsigned char *need, const EngineStore *s) {
    Memo memo = {0};
    int r = 0;
    for (size_t k = 0; k < g->n && !r; k++) {
        Target *t = &g->targets[g->order[k]];
        if (need && !need[g->order[k]]) continue;
        r = hash_inputs(g, t, s, &memo);
        if (!r) key_of(t, t->key);
    }
    free(memo.slots);
    return r;
}

char *keys_describe(const Graph *g, const Target *t) {
    (void)g;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "rule", t->rule->name);
    cJSON_AddNumberToObject(o, "version", t->rule->version);
    cJSON *params = cJSON_AddObjectToObject(o, "params");
    for (size_t p = 0; p < t->nparams; p++)
        cJSON_AddStringToObject(params, t->rule->params[p].name, t->values[p]);
    cJSON *inputs = cJSON_AddArrayToObject(o, "inputs");
    for (size_t i = 0; i < t->ninputs; i++) {
        cJSON *in = cJSON_CreateObject();
        cJSON_AddStringToObject(in, "param", t->rule->params[t->inputs[i].param].name);
        cJSON_AddStringToObject(in, "ref", t->inputs[i].ref);
        cJSON_AddStringToObject(in, "key", t->inputs[i].key);
        cJSON_AddItemToArray(inputs, in);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
