/* model/tokenizer_internal.h: the data structures behind model/tokenizer.h,
 * shared by the model/tokenizer_*.c files and nothing else.
 *
 * Invariants of a loaded flab_tokenizer:
 *   - id_str[id] is the token string of every id in [0, n_ids) that exists
 *     (added tokens override the model vocab, as in HF), NULL for holes;
 *   - every merge's left, right and result are model-vocab ids, and
 *     merge_map maps (left, right) to (rank, result) (the last rank of a
 *     repeated merge, as HF's HashMap collect does);
 *   - every string held is valid UTF-8 (checked at load). */
#ifndef FLAB_MODEL_TOKENIZER_INTERNAL_H
#define FLAB_MODEL_TOKENIZER_INTERNAL_H
#include "model/tokenizer.h"
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

/* ---- hash maps (tokenizer_map.c) ---------------------------------------- */

uint64_t tok_hash(const char *s, size_t len);

/* string -> int32; keys are borrowed (must outlive the map) and are C strings
 * without embedded NULs.  A slot is 16 bytes: meta = high 20 bits of the hash |
 * min(len, 4095), so most mismatches are rejected without touching the key. */
typedef struct { const char *key; int32_t val; uint32_t meta; } tok_strslot;
typedef struct { tok_strslot *slots; size_t cap, n; } tok_strmap;
void tok_strmap_init(tok_strmap *m, size_t expected);
void tok_strmap_free(tok_strmap *m);
/* Inserts or replaces; returns 1 if the key was already there. */
int tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t val);
int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len);
/* n lookups at once (n <= 64), with their memory accesses overlapped by
 * prefetching: for loading 150k merges, where every lookup is a cache miss. */
void tok_strmap_get_many(const tok_strmap *m, const char *const *keys, const size_t *lens,
                         int32_t *out, size_t n);

/* (left, right) id pair -> (rank, result). */
typedef struct { uint64_t key; int32_t rank, result; } tok_pairslot;
typedef struct { tok_pairslot *slots; size_t cap, n; } tok_pairmap;
void tok_pairmap_init(tok_pairmap *m, size_t expected);
void tok_pairmap_free(tok_pairmap *m);
/* Replaces an existing entry: as in HF, a repeated merge takes its last rank. */
void tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t result);
/* Returns the slot or NULL. */
const tok_pairslot *tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b);

/* Bounded word cache: piece bytes -> ids.  When full it is emptied. */
typedef struct { uint64_t hash; uint32_t key_off, key_len, ids_off, n_ids; } tok_cacheslot;
typedef struct {
    tok_cacheslot *slots; size_t cap, n, max_entries;
    char *keys; size_t keys_len, keys_cap;
    int32_t *ids; size_t ids_len, ids_cap;
} tok_cache;
void tok_cache_init(tok_cache *c, size_t max_entries);
void tok_cache_free(tok_cache *c);
/* Returns the cached ids (and *n) or NULL. */
const int32_t *tok_cache_get(const tok_cache *c, const char *key, size_t len, size_t *n);
void tok_cache_put(tok_cache *c, const char *key, size_t len, const int32_t *ids, size_t n);

/* ---- growable buffers ---------------------------------------------------- */
typedef struct { int32_t *v; size_t n, cap; } tok_ids;
void tok_ids_push(tok_ids *a, int32_t x);
void tok_ids_append(tok_ids *a, const int32_t *x, size_t n);

typedef struct { char *s; size_t n, cap; } tok_buf;
void tok_buf_append(tok_buf *b, const char *s, size_t n);

/* ---- UTF-8 (tokenizer_utf8.c) ------------------------------------------- */
/* Offset of the first invalid byte, or len if s is valid UTF-8. */
size_t tok_utf8_check(const char *s, size_t len);
/* Length of the (valid) UTF-8 sequence starting with lead byte c. */
static inline size_t tok_utf8_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}
/* Decodes the code point at s (valid UTF-8). */
int32_t tok_utf8_decode(const char *s, size_t *adv);
/* Encodes cp, returns its length (1..4). */
size_t tok_utf8_encode(int32_t cp, char out[4]);
/* Rust char::is_whitespace (Unicode White_Space) and is_alphanumeric. */
int tok_is_whitespace(int32_t cp);
int tok_is_alphanumeric(int32_t cp);
/* Appends s[0..len) to b with invalid sequences replaced by U+FFFD as Rust's
 * String::from_utf8_lossy does (one U+FFFD per maximal invalid subpart). */
void tok_utf8_lossy_append(tok_buf *b, const char *s, size_t len);

/* ---- components ---------------------------------------------------------- */

enum tok_norm_kind { NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_PREPEND,
                     NORM_REPLACE };
typedef struct {
    enum tok_norm_kind kind;
    char *a; size_t alen;        /* Prepend: the prefix; Replace: the literal pattern */
    char *b; size_t blen;        /* Replace: the content */
    pcre2_code *re;              /* Replace with a Regex pattern */
} tok_norm;

enum tok_split_behavior { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV,
                          SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
enum tok_pre_kind { PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE };
enum tok_prepend { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };
typedef struct {
    enum tok_pre_kind kind;
    pcre2_code *re;                       /* Split, ByteLevel(use_regex) */
    enum tok_split_behavior behavior;     /* Split */
    int add_prefix_space;                 /* ByteLevel */
    char repl[5]; size_t repl_len;        /* Metaspace replacement char */
    int32_t repl_cp;
    enum tok_prepend prepend;             /* Metaspace */
    int split;                            /* Metaspace */
} tok_pre;

enum tok_dec_kind { DEC_BYTELEVEL, DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE,
                    DEC_STRIP, DEC_METASPACE };
typedef struct {
    enum tok_dec_kind kind;
    char *a; size_t alen;     /* Replace pattern; Metaspace replacement */
    char *b; size_t blen;     /* Replace content */
    int32_t strip_cp;         /* Strip content */
    int start, stop;          /* Strip */
    int prepend_never;        /* Metaspace */
} tok_dec;

/* TemplateProcessing "single": items in order; a sequence item is n_ids = -1. */
typedef struct { int32_t *ids; int n_ids; } tok_tmpl_item;
typedef struct { tok_tmpl_item *items; size_t n; } tok_template;

/* Added-token matcher: a trie over token bytes (leftmost-longest matching). */
typedef struct {
    tok_pairmap edges; /* (node, byte) -> child node in .result (node 0 = root) */
    int32_t *term;     /* per node: index into flab_tokenizer.added, -1 = none */
    size_t n_nodes, cap_nodes;
    uint8_t first[256];  /* 1 for bytes some token starts with */
} tok_trie;

struct flab_tokenizer {
    char *name;
    cJSON *json;

    /* vocabulary */
    tok_strmap vocab;              /* model vocab: string -> id */
    char **id_str; uint32_t *id_len;
    int32_t n_ids;
    char *str_arena;               /* holds vocab strings */

    /* added tokens */
    flab_added_token *added; size_t n_added;
    tok_strmap added_map;          /* content -> id */
    uint8_t *is_special;           /* n_ids flags */
    tok_trie trie_raw, trie_norm;  /* non-normalized / normalized tokens */

    /* BPE model */
    int32_t *merge_left, *merge_right, *merge_result; size_t n_merges;
    tok_pairmap merge_map;
    int byte_fallback, fuse_unk, ignore_merges;
    char *unk_token; int32_t unk_id;   /* unk_token NULL = none; unk_id -1 = not in vocab */
    int32_t byte_char_id[256];         /* byte-level char token per byte, -1 none */
    int32_t byte_fb_id[256];           /* <0xNN> token per byte, -1 none */
    tok_cache cache; int cache_on;

    /* pipeline */
    tok_norm *norms; size_t n_norms;
    tok_pre *pres; size_t n_pres;
    int byte_level;                    /* a ByteLevel pre-tokenizer maps bytes to chars */
    tok_dec *decs; size_t n_decs; int has_decoder;
    tok_template *tmpls; size_t n_tmpls;

    int32_t bos_id, eos_id, pad_id, cfg_unk_id;
};

/* A piece of text during pre-tokenization. */
typedef struct { const char *p; size_t len; int at_origin; } tok_piece;
typedef struct { tok_piece *v; size_t n, cap; } tok_pieces;
void tok_pieces_push(tok_pieces *a, const char *p, size_t len, int at_origin);

/* Chunked arena: pointers stay valid until tok_arena_free. */
typedef struct tok_arena_block tok_arena_block;
typedef struct { tok_arena_block *head; } tok_arena;
char *tok_arena_alloc(tok_arena *a, size_t n);
void tok_arena_free(tok_arena *a);

/* tokenizer_load.c / tokenizer_load_parts.c */
int tok_load_normalizer(flab_tokenizer *t, const cJSON *j);
int tok_load_pre_tokenizer(flab_tokenizer *t, const cJSON *j);
int tok_load_decoder(flab_tokenizer *t, const cJSON *j);
int tok_load_post_processor(flab_tokenizer *t, const cJSON *j);
int tok_load_added_tokens(flab_tokenizer *t, const cJSON *j);
pcre2_code *tok_compile_regex(const flab_tokenizer *t, const char *pattern,
                              int literal, const char *what);

/* tokenizer_normalize.c: normalizes s into out (out is reset first). */
int tok_normalize(const flab_tokenizer *t, const char *s, size_t len, tok_buf *out);

/* tokenizer_pretok.c: splits one normalized piece into pre-tokens appended
 * to out; new strings live in arena. */
int tok_pretokenize_piece(const flab_tokenizer *t, const char *s, size_t len,
                          int at_origin, tok_arena *arena, tok_pieces *out);

/* tokenizer_added.c: splits text on added tokens of one trie.  Each segment
 * is (start, end, added index or -1); parse_special 0 skips special tokens. */
typedef struct { size_t start, end; int32_t added; } tok_seg;
typedef struct { tok_seg *v; size_t n, cap; } tok_segs;
void tok_trie_build(tok_trie *tr, const flab_tokenizer *t, int normalized);
void tok_trie_free(tok_trie *tr);
void tok_split_added(const flab_tokenizer *t, const tok_trie *tr, const char *s,
                     size_t len, int parse_special, tok_segs *out);

/* tokenizer_bpe.c: BPE-encodes one pre-token, appending ids. */
int tok_bpe_word(flab_tokenizer *t, const char *w, size_t len, tok_ids *out);
int tok_bpe_word_nocache(const flab_tokenizer *t, const char *w, size_t len,
                         tok_ids *out);

/* The byte-level alphabet: byte b <-> code point. */
int32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(int32_t cp);   /* -1 if cp is not a byte-level char */
#endif
