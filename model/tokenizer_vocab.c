/* model/tokenizer_vocab.c: read-only accessors of a loaded tokenizer
 * (vocabulary, added tokens, merges, byte tokens, special ids). */
#include "model/tokenizer_internal.h"
#include <string.h>

const cJSON *flab_tok_json(const flab_tokenizer *t) { return t->json; }
int32_t flab_tok_vocab_size(const flab_tokenizer *t) { return t->n_ids; }

const char *flab_tok_id_to_token(const flab_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_ids || !t->id_str[id]) return NULL;
    if (len) *len = t->id_len[id];
    return t->id_str[id];
}

int32_t flab_tok_token_to_id(const flab_tokenizer *t, const char *tok, size_t len) {
    int32_t id = tok_strmap_get(&t->added_map, tok, len);
    return id >= 0 ? id : tok_strmap_get(&t->vocab, tok, len);
}

size_t flab_tok_n_added(const flab_tokenizer *t) { return t->n_added; }
const flab_added_token *flab_tok_added(const flab_tokenizer *t, size_t i) {
    return i < t->n_added ? &t->added[i] : NULL;
}
int flab_tok_is_special(const flab_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_ids && t->is_special[id];
}

size_t flab_tok_n_merges(const flab_tokenizer *t) { return t->n_merges; }
void flab_tok_merge(const flab_tokenizer *t, size_t rank, int32_t *left, int32_t *right, int32_t *result) {
    *left = *right = *result = -1;
    if (rank >= t->n_merges) return;
    *left = t->merge_left[rank]; *right = t->merge_right[rank]; *result = t->merge_result[rank];
}

int32_t flab_tok_byte_token(const flab_tokenizer *t, uint8_t b) {
    return t->byte_level ? t->byte_char_id[b] : t->byte_fb_id[b];
}
int flab_tok_is_byte_level(const flab_tokenizer *t) { return t->byte_level; }

int32_t flab_tok_bos(const flab_tokenizer *t) { return t->bos_id; }
int32_t flab_tok_eos(const flab_tokenizer *t) { return t->eos_id; }
int32_t flab_tok_pad(const flab_tokenizer *t) { return t->pad_id; }
int32_t flab_tok_unk(const flab_tokenizer *t) { return t->cfg_unk_id >= 0 ? t->cfg_unk_id : t->unk_id; }

void flab_tok_set_cache(flab_tokenizer *t, size_t capacity) {
    tok_cache_free(&t->cache);
    tok_cache_init(&t->cache, capacity);
    t->cache_on = capacity > 0;
}
