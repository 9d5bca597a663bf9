/* model/vocab_prune.h: vocabulary pruning of a tokenizer.json BPE tokenizer.
 *
 * Which ids must stay (the always-kept set and the merge closure), the dense
 * old -> new id map, and the rewritten tokenizer.json / tokenizer_config.json.
 * Used by rules/collect_tokens.c and rules/prune_vocab.c; engine-free, so the
 * logic is unit-tested on its own (tests/test_vocab_prune.c).
 *
 * Invariants:
 *   - keep[] has one byte per id in [0, flab_tok_vocab_size(t)); a non-zero
 *     value is a mask of VP_* reasons.  Ids no token has are never kept.
 *   - After vp_merge_closure, for every merge (a, b) -> r with r kept, a and b
 *     are kept.  Then BPE with the merges whose three tokens are all kept
 *     applies, on any word whose original tokens are all kept, exactly the
 *     merges the original applied (they are the lowest-rank applicable ones of
 *     a subset that contains them), so such text tokenizes to the same tokens.
 *   - The id map is dense and keeps the order of old ids: map[old] = new id,
 *     or -1 for a removed id. */
#ifndef FLAB_MODEL_VOCAB_PRUNE_H
#define FLAB_MODEL_VOCAB_PRUNE_H
#include "model/tokenizer.h"
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* Why an id is kept (bits of keep[id]). */
enum {
    VP_CORPUS = 1,    /* used by the corpus (count >= min_count, within keep_top) */
    VP_ADDED = 2,     /* an added token (special or not) */
    VP_BYTE = 4,      /* a byte token: byte-level char or <0xNN> byte fallback */
    VP_SPECIAL_ID = 8,/* bos / eos / pad / unk of the tokenizer config */
    VP_CLOSURE = 16,  /* an intermediate token of a merge chain building a kept token */
};

/* Marks added, byte and bos/eos/pad/unk tokens (tokenizer_config's and
 * model.unk_token) in keep (n = vocab size). */
void vp_mark_always(const flab_tokenizer *t, uint8_t *keep, int32_t n);

/* Extends keep with the merge closure (VP_CLOSURE on ids not kept before);
 * returns how many ids it added. */
size_t vp_merge_closure(const flab_tokenizer *t, uint8_t *keep, int32_t n);

/* Fills map[0..n) (old -> new, -1 when removed); returns the kept count. */
int32_t vp_id_map(const uint8_t *keep, int32_t n, int32_t *map);

/* The pruned tokenizer.json tree (caller cJSON_Deletes it): model.vocab with
 * the kept tokens renumbered, model.merges restricted to merges whose parts
 * and result are kept, added_tokens with new ids, post-processor special
 * token ids remapped (padding and truncation must be null: the tokenizer loader
 * refuses them).  NULL with flab_fail if a token the pruned tokenizer
 * needs (an added token, a post-processor special) was removed. */
cJSON *vp_prune_tokenizer_json(const flab_tokenizer *t, const int32_t *map, int32_t n);

/* tokenizer_config.json text with the keys of "added_tokens_decoder"
 * remapped through map; other keys unchanged.  malloc'd text, or NULL with
 * flab_fail (name prefixes the message). */
char *vp_prune_tokenizer_config(const char *json, const int32_t *map, int32_t n,
                                const char *name);
#endif
