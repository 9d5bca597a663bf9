/* model/vocab_prune.c: the kept-id set, its merge closure, the id map and the
 * rewritten tokenizer files (see vocab_prune.h for the invariants). */
#include "model/vocab_prune.h"
#include "util/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- which ids stay --------------------------------------------------------- */

static void mark(uint8_t *keep, int32_t n, int32_t id, uint8_t why) {
    if (id >= 0 && id < n) keep[id] |= why;
}

void vp_mark_always(const flab_tokenizer *t, uint8_t *keep, int32_t n) {
    for (size_t i = 0; i < flab_tok_n_added(t); i++) mark(keep, n, flab_tok_added(t, i)->id, VP_ADDED);
    for (int b = 0; b < 256; b++) mark(keep, n, flab_tok_byte_token(t, (uint8_t)b), VP_BYTE);
    mark(keep, n, flab_tok_bos(t), VP_SPECIAL_ID);
    mark(keep, n, flab_tok_eos(t), VP_SPECIAL_ID);
    mark(keep, n, flab_tok_pad(t), VP_SPECIAL_ID);
    mark(keep, n, flab_tok_unk(t), VP_SPECIAL_ID);
    /* BPE's own unk_token (tokenizer.json) may be absent from tokenizer_config. */
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(flab_tok_json(t), "model");
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(unk))
        mark(keep, n, flab_tok_token_to_id(t, unk->valuestring, strlen(unk->valuestring)),
             VP_SPECIAL_ID);
}

/* Fixpoint over the merges: a kept result keeps both parts.  Parts are
 * usually built by lower-ranked merges, so a pass from the highest rank down
 * settles almost everything; passes repeat until nothing changes. */
size_t vp_merge_closure(const flab_tokenizer *t, uint8_t *keep, int32_t n) {
    size_t added = 0, m = flab_tok_n_merges(t);
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t r = m; r-- > 0;) {
            int32_t a, b, res;
            flab_tok_merge(t, r, &a, &b, &res);
            if (res < 0 || res >= n || !keep[res]) continue;
            int32_t part[2] = {a, b};
            for (int k = 0; k < 2; k++) {
                if (part[k] < 0 || part[k] >= n || keep[part[k]]) continue;
                keep[part[k]] = VP_CLOSURE;
                added++;
                changed = 1;
            }
        }
    }
    return added;
}

int32_t vp_id_map(const uint8_t *keep, int32_t n, int32_t *map) {
    int32_t k = 0;
    for (int32_t id = 0; id < n; id++) map[id] = keep[id] ? k++ : -1;
    return k;
}

/* ---- tokenizer.json ----------------------------------------------------------- */

static int32_t mapped(const int32_t *map, int32_t n, double id) {
    return id >= 0 && id < n && id == (int32_t)id ? map[(int32_t)id] : -1;
}

typedef struct { int32_t id; const char *tok; } VocabEntry;

static int by_id(const void *a, const void *b) {
    int32_t x = ((const VocabEntry *)a)->id, y = ((const VocabEntry *)b)->id;
    return (x > y) - (x < y);
}

/* model.vocab: kept tokens with their new ids, in id order. */
static cJSON *prune_vocab_obj(const cJSON *vocab, const int32_t *map, int32_t n) {
    size_t cnt = 0, k = 0;
    for (const cJSON *e = vocab->child; e; e = e->next) cnt++;
    VocabEntry *v = flab_xmalloc((cnt + 1) * sizeof *v);
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id = cJSON_IsNumber(e) ? mapped(map, n, e->valuedouble) : -1;
        if (id >= 0) v[k++] = (VocabEntry){id, e->string};
    }
    qsort(v, k, sizeof *v, by_id);
    cJSON *out = cJSON_CreateObject();
    for (size_t i = 0; i < k; i++) cJSON_AddItemToObject(out, v[i].tok, cJSON_CreateNumber(v[i].id));
    free(v);
    return out;
}

/* model.merges: those whose parts and result are kept (entries copied as
 * they were, "a b" or ["a", "b"]; rank = index, as the tokenizer loaded it). */
static cJSON *prune_merges(const flab_tokenizer *t, const cJSON *merges, const int32_t *map,
                           int32_t n) {
    cJSON *out = cJSON_CreateArray();
    size_t rank = 0;
    for (const cJSON *m = merges ? merges->child : NULL; m; m = m->next, rank++) {
        int32_t a, b, r;
        flab_tok_merge(t, rank, &a, &b, &r);
        if (mapped(map, n, a) < 0 || mapped(map, n, b) < 0 || mapped(map, n, r) < 0) continue;
        cJSON_AddItemToArray(out, cJSON_Duplicate(m, 1));
    }
    return out;
}

/* Sets a numeric field to its new id; -1 (flab_fail) if it was removed. */
static int remap_number(cJSON *num, const int32_t *map, int32_t n, const char *what) {
    int32_t id = mapped(map, n, num->valuedouble);
    if (id < 0)
        return flab_fail("tokenizer.json: %s: id %.0f is not kept", what, num->valuedouble);
    cJSON_SetNumberValue(num, id);
    return 0;
}

static int remap_added(cJSON *added, const int32_t *map, int32_t n) {
    for (cJSON *a = added ? added->child : NULL; a; a = a->next) {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        if (cJSON_IsNumber(id) && remap_number(id, map, n, "added_tokens") < 0) return -1;
    }
    return 0;
}

/* Post-processors: TemplateProcessing special_tokens.*.ids, Bert/Roberta
 * sep/cls [token, id], Sequence of those; ByteLevel has no ids. */
static int remap_post(cJSON *pp, const int32_t *map, int32_t n) {
    if (!cJSON_IsObject(pp)) return 0;
    cJSON *procs = cJSON_GetObjectItemCaseSensitive(pp, "processors");
    for (cJSON *p = procs ? procs->child : NULL; p; p = p->next)
        if (remap_post(p, map, n) < 0) return -1;
    cJSON *sp = cJSON_GetObjectItemCaseSensitive(pp, "special_tokens");
    for (cJSON *s = sp ? sp->child : NULL; s; s = s->next) {
        cJSON *ids = cJSON_GetObjectItemCaseSensitive(s, "ids");
        for (cJSON *i = ids ? ids->child : NULL; i; i = i->next)
            if (cJSON_IsNumber(i) && remap_number(i, map, n, "post_processor special_tokens") < 0)
                return -1;
    }
    const char *pair[2] = {"sep", "cls"};
    for (int k = 0; k < 2; k++) {
        cJSON *p = cJSON_GetObjectItemCaseSensitive(pp, pair[k]);
        cJSON *id = cJSON_GetArrayItem(p, 1);
        if (cJSON_IsArray(p) && cJSON_IsNumber(id) && remap_number(id, map, n, pair[k]) < 0)
            return -1;
    }
    return 0;
}

cJSON *vp_prune_tokenizer_json(const flab_tokenizer *t, const int32_t *map, int32_t n) {
    cJSON *root = cJSON_Duplicate(flab_tok_json(t), 1);
    if (!root) { flab_fail("tokenizer.json: out of memory"); return NULL; }
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab)) {
        cJSON_Delete(root);
        flab_fail("tokenizer.json: model.vocab is not an object");
        return NULL;
    }
    cJSON_ReplaceItemInObjectCaseSensitive(model, "vocab", prune_vocab_obj(vocab, map, n));
    if (cJSON_IsArray(merges))
        cJSON_ReplaceItemInObjectCaseSensitive(model, "merges", prune_merges(t, merges, map, n));
    if (remap_added(cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), map, n) < 0 ||
        remap_post(cJSON_GetObjectItemCaseSensitive(root, "post_processor"), map, n) < 0) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* ---- tokenizer_config.json ---------------------------------------------------- */

char *vp_prune_tokenizer_config(const char *json, const int32_t *map, int32_t n,
                                const char *name) {
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        flab_fail("%s: not a JSON object", name);
        return NULL;
    }
    cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "added_tokens_decoder");
    if (cJSON_IsObject(dec)) {
        cJSON *out = cJSON_CreateObject();
        for (cJSON *e = dec->child; e; e = e->next) {
            char *end;
            long old = strtol(e->string, &end, 10);
            int32_t id = *end || end == e->string ? -1 : mapped(map, n, (double)old);
            if (id < 0) continue;   /* a removed id has no entry in the pruned tokenizer */
            char key[16];
            snprintf(key, sizeof key, "%d", (int)id);
            cJSON_AddItemToObject(out, key, cJSON_Duplicate(e, 1));
        }
        cJSON_ReplaceItemInObjectCaseSensitive(root, "added_tokens_decoder", out);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) flab_fail("%s: out of memory", name);
    return text;
}
