/* model/tokenizer.h: Hugging Face tokenizer.json BPE tokenizers, exactly.
 *
 * Supports the two BPE families code LLMs ship with:
 *   - byte-level BPE (Qwen2, GPT-2, Llama-3): normalizer NFC/none, pre-tokenizer
 *     Split(regex) + ByteLevel or ByteLevel(use_regex), decoder ByteLevel;
 *   - SentencePiece-style BPE (Llama-2, CodeQwen1.5): normalizer
 *     Prepend("▁") + Replace(" ", "▁") or pre-tokenizer Metaspace, byte_fallback
 *     with <0xNN> tokens, unk_token, decoders Replace/ByteFallback/Fuse/Strip.
 * The pipeline is HF tokenizers' (0.19): added tokens are split off the raw text
 * first (leftmost-longest), every other piece is normalized, pre-tokenized and
 * BPE-encoded, then the post-processor may add bos etc.  Any component or
 * option outside what is implemented is a load error naming it, never a silently
 * different tokenization.  Differentially tested against the `tokenizers` PyPI
 * package (tests/test_tokenizer_hf.py).
 *
 * Threading: a loaded tokenizer is read-only except for its word cache, so
 * flab_tok_encode must not be called on one tokenizer from two threads at once;
 * use one tokenizer per thread (loading is fast) or flab_tok_set_cache(t, 0).
 * Every function that fails returns -1 or NULL with flab_errmsg() set. */
#ifndef FLAB_MODEL_TOKENIZER_H
#define FLAB_MODEL_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

typedef struct flab_tokenizer flab_tokenizer;

/* One entry of tokenizer.json "added_tokens". */
typedef struct {
    int32_t id;
    const char *content;            /* NUL-terminated UTF-8 */
    int special, normalized, lstrip, rstrip, single_word;
} flab_added_token;

/* ---- loading ------------------------------------------------------------ */

/* Loads dir/tokenizer.json and, when present, dir/tokenizer_config.json
 * (bos/eos/pad/unk tokens).  Nothing else of the directory is needed. */
flab_tokenizer *flab_tok_load_dir(const char *dir);

/* Loads from tokenizer.json text (need not be NUL-terminated); config_json
 * (tokenizer_config.json text, NUL-terminated) may be NULL.  `name` prefixes
 * error messages (usually the file path). */
flab_tokenizer *flab_tok_load_json(const char *json, size_t len,
                                   const char *config_json, const char *name);
void flab_tok_free(flab_tokenizer *t);

/* The parsed tokenizer.json, owned by the tokenizer (for rules that rewrite it,
 * e.g. vocabulary pruning: cJSON_Duplicate it before editing). */
const cJSON *flab_tok_json(const flab_tokenizer *t);

/* ---- encode / decode ---------------------------------------------------- */

/* Encoding options.  HF's default encode(text) is {1, 1}. */
typedef struct {
    int parse_special;  /* 0 = HF encode_special_tokens=True: special added tokens
                           in the text are tokenized as plain text (non-special
                           added tokens are still matched, as in HF) */
    int add_special;    /* post-processor template (e.g. Llama-2's <s>) applied */
} flab_tok_encode_opts;

/* Tokenizes UTF-8 text[0..len).  On success *ids (malloc'd, caller frees;
 * may be NULL when *n_ids is 0) holds the ids.  Invalid UTF-8 is an error
 * naming the byte offset. */
int flab_tok_encode(flab_tokenizer *t, const char *text, size_t len,
                    flab_tok_encode_opts opts, int32_t **ids, size_t *n_ids);

/* Decodes ids to a malloc'd NUL-terminated UTF-8 string (*len excludes the
 * NUL; len may be NULL), like HF decode(ids, skip_special_tokens).  An id
 * outside the vocabulary is an error. */
char *flab_tok_decode(const flab_tokenizer *t, const int32_t *ids, size_t n,
                      int skip_special, size_t *len);

/* Calls fn for each piece the text is cut into before BPE: pre-tokens
 * (normalized, before the byte-level mapping; added_id = -1) and added
 * tokens (the matched text, added_id = its id).  For corpus statistics.
 * fn returns 0 to go on, non-zero to stop (returned as is). */
typedef int (*flab_tok_piece_fn)(const char *piece, size_t len, int32_t added_id,
                                 void *user);
int flab_tok_pretokenize(const flab_tokenizer *t, const char *text, size_t len,
                         int parse_special, flab_tok_piece_fn fn, void *user);

/* ---- vocabulary --------------------------------------------------------- */

/* 1 + the largest id of the model vocabulary and added tokens. */
int32_t flab_tok_vocab_size(const flab_tokenizer *t);
/* The token string of id (NUL-terminated, owned by t), or NULL if no token has
 * that id.  *len (may be NULL) gets its byte length. */
const char *flab_tok_id_to_token(const flab_tokenizer *t, int32_t id, size_t *len);
/* The id of a token string (added tokens first, then the model vocab), -1 if none. */
int32_t flab_tok_token_to_id(const flab_tokenizer *t, const char *tok, size_t len);

size_t flab_tok_n_added(const flab_tokenizer *t);
const flab_added_token *flab_tok_added(const flab_tokenizer *t, size_t i);
/* 1 if id is an added token marked special. */
int flab_tok_is_special(const flab_tokenizer *t, int32_t id);

/* Merges in rank order (rank = index): left + right -> result ids. */
size_t flab_tok_n_merges(const flab_tokenizer *t);
void flab_tok_merge(const flab_tokenizer *t, size_t rank,
                    int32_t *left, int32_t *right, int32_t *result);

/* The token that stands for raw byte b: the byte-level char token of a
 * ByteLevel tokenizer, or <0xNN> of a byte_fallback one; -1 if none. */
int32_t flab_tok_byte_token(const flab_tokenizer *t, uint8_t b);
/* 1 for byte-level (ByteLevel pre-tokenizer) tokenizers, 0 otherwise. */
int flab_tok_is_byte_level(const flab_tokenizer *t);

/* Special ids from tokenizer_config.json; -1 when unset. */
int32_t flab_tok_bos(const flab_tokenizer *t);
int32_t flab_tok_eos(const flab_tokenizer *t);
int32_t flab_tok_pad(const flab_tokenizer *t);
int32_t flab_tok_unk(const flab_tokenizer *t);

/* Enables (capacity > 0, entries) or disables (0) the word cache. */
void flab_tok_set_cache(flab_tokenizer *t, size_t capacity);
#endif
