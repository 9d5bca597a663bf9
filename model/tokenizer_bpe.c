/* model/tokenizer_bpe.c: the BPE merge engine (HF tokenizers' BPE model).
 *
 * A pre-token starts as one symbol per char (per byte for byte-level
 * tokenizers, whose chars are the GPT-2 byte alphabet); then, repeatedly, the
 * adjacent pair with the lowest merge rank is merged, leftmost first on ties,
 * until no pair has a merge.  Short words use a linear scan over cached pair
 * ranks (fast for the < 64 symbols of almost every word); long ones (a whole
 * file is one word for pre-tokenizer-less SentencePiece-style tokenizers) use
 * a heap of (rank, position) with stale-entry checks, as HF's Word::merge_all:
 * both pick the same pair at every step, so the results are identical.
 * Chars missing from the vocab become <0xNN> tokens (byte_fallback), the
 * unk token (fused when fuse_unk), or are dropped when there is no unk_token,
 * exactly as HF's BPE::merge_word. */
#include "model/tokenizer_internal.h"
#include "util/error.h"
#include <string.h>

#define NO_RANK INT32_MAX
#define SCAN_MAX 64

static inline int32_t pair_rank(const flab_tokenizer *t, int32_t a, int32_t b, int32_t *result) {
    const tok_pairslot *s = tok_pairmap_get(&t->merge_map, a, b);
    if (!s) return NO_RANK;
    *result = s->result;
    return s->rank;
}

/* ---- initial symbols --------------------------------------------------------- */

/* Chars of s (the byte-mapped text for byte-level tokenizers) -> ids, with
 * byte fallback and unk handling in HF's order. */
static int symbols_from_chars(const flab_tokenizer *t, const char *s, size_t len, tok_ids *sym) {
    int32_t unk = -1;          /* a pending unk (HF delays it to fuse runs) */
    for (size_t i = 0; i < len;) {
        size_t n = tok_utf8_len((unsigned char)s[i]);
        int32_t id = tok_strmap_get(&t->vocab, s + i, n);
        if (id >= 0) {
            if (unk >= 0) { tok_ids_push(sym, unk); unk = -1; }
            tok_ids_push(sym, id);
        } else {
            int fell_back = 0;
            if (t->byte_fallback) {
                size_t k = 0;
                while (k < n && t->byte_fb_id[(unsigned char)s[i + k]] >= 0) k++;
                if (k == n) {
                    for (k = 0; k < n; k++) tok_ids_push(sym, t->byte_fb_id[(unsigned char)s[i + k]]);
                    fell_back = 1;
                }
            }
            if (!fell_back && t->unk_token) {
                if (t->unk_id < 0)
                    return flab_fail("%s: unk_token \"%s\" is not in the vocab", t->name, t->unk_token);
                if (unk >= 0 && !t->fuse_unk) tok_ids_push(sym, unk);
                unk = t->unk_id;
            }
        }
        i += n;
    }
    if (unk >= 0) tok_ids_push(sym, unk);
    return 0;
}

/* Raw bytes -> the GPT-2 byte-alphabet string (UTF-8). */
static void byte_map(const char *w, size_t len, tok_buf *out) {
    out->n = 0;
    for (size_t i = 0; i < len; i++) {
        char c[4];
        size_t n = tok_utf8_encode(tok_byte_to_cp((uint8_t)w[i]), c);
        tok_buf_append(out, c, n);
    }
}

static int initial_symbols(const flab_tokenizer *t, const char *w, size_t len, tok_ids *sym) {
    if (!t->byte_level) return symbols_from_chars(t, w, len, sym);
    size_t i = 0, base = sym->n;
    for (; i < len; i++) {
        int32_t id = t->byte_char_id[(unsigned char)w[i]];
        if (id < 0) break;
        tok_ids_push(sym, id);
    }
    if (i == len) return 0;
    sym->n = base;                           /* some byte char is not in the vocab */
    tok_buf m = {0};
    byte_map(w, len, &m);
    int rc = symbols_from_chars(t, m.s, m.n, sym);
    free(m.s);
    return rc;
}

/* ---- merging ------------------------------------------------------------------ */

static void merge_scan(const flab_tokenizer *t, int32_t *ids, size_t n, size_t *n_out) {
    int32_t rank[SCAN_MAX], res[SCAN_MAX] = {0};
    for (size_t i = 0; i + 1 < n; i++) rank[i] = pair_rank(t, ids[i], ids[i + 1], &res[i]);
    while (n > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < n; i++) if (rank[i] < rank[best]) best = i;
        if (rank[best] == NO_RANK) break;
        ids[best] = res[best];
        memmove(ids + best + 1, ids + best + 2, (n - best - 2) * sizeof *ids);
        memmove(rank + best, rank + best + 1, (n - best - 2) * sizeof *rank);
        memmove(res + best, res + best + 1, (n - best - 2) * sizeof *res);
        n--;
        if (best > 0) rank[best - 1] = pair_rank(t, ids[best - 1], ids[best], &res[best - 1]);
        if (best + 1 < n) rank[best] = pair_rank(t, ids[best], ids[best + 1], &res[best]);
    }
    *n_out = n;
}

/* Min-heap of (rank << 32 | pos): lowest rank, then leftmost. */
typedef struct { uint64_t *v; size_t n; } heap;

static void heap_push(heap *h, uint64_t x) {
    size_t i = h->n++;
    while (i > 0 && h->v[(i - 1) / 2] > x) { h->v[i] = h->v[(i - 1) / 2]; i = (i - 1) / 2; }
    h->v[i] = x;
}

static uint64_t heap_pop(heap *h) {
    uint64_t top = h->v[0], x = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->v[c + 1] < h->v[c]) c++;
        if (h->v[c] >= x) break;
        h->v[i] = h->v[c]; i = c;
    }
    if (h->n) h->v[i] = x;
    return top;
}

static void heap_push_pair(const flab_tokenizer *t, heap *h, const int32_t *ids, int32_t pos, int32_t next) {
    int32_t res, r = pair_rank(t, ids[pos], ids[next], &res);
    if (r != NO_RANK) heap_push(h, (uint64_t)(uint32_t)r << 32 | (uint32_t)pos);
}

/* Long words: linked list of symbols + heap; merged-away symbols get id -1. */
static void merge_heap(const flab_tokenizer *t, int32_t *ids, size_t n, size_t *n_out) {
    int32_t *prev = flab_xmalloc(n * sizeof *prev), *next = flab_xmalloc(n * sizeof *next);
    heap h = {flab_xmalloc(3 * n * sizeof(uint64_t)), 0};   /* n - 1 pairs + 2 per merge */
    for (size_t i = 0; i < n; i++) { prev[i] = (int32_t)i - 1; next[i] = i + 1 < n ? (int32_t)i + 1 : -1; }
    for (size_t i = 0; i + 1 < n; i++) heap_push_pair(t, &h, ids, (int32_t)i, (int32_t)i + 1);
    while (h.n) {
        uint64_t top = heap_pop(&h);
        int32_t pos = (int32_t)(uint32_t)top, rank = (int32_t)(top >> 32), res = -1;
        if (ids[pos] < 0 || next[pos] < 0) continue;
        int32_t nx = next[pos];
        if (pair_rank(t, ids[pos], ids[nx], &res) != rank) continue;   /* stale entry */
        ids[pos] = res;
        ids[nx] = -1;
        next[pos] = next[nx];
        if (next[nx] >= 0) prev[next[nx]] = pos;
        if (prev[pos] >= 0) heap_push_pair(t, &h, ids, prev[pos], pos);
        if (next[pos] >= 0) heap_push_pair(t, &h, ids, pos, next[pos]);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) if (ids[i] >= 0) ids[k++] = ids[i];
    *n_out = k;
    free(prev); free(next); free(h.v);
}

/* ---- words -------------------------------------------------------------------- */

static int ignore_merges_hit(const flab_tokenizer *t, const char *w, size_t len, int32_t *id) {
    if (!t->byte_level) { *id = tok_strmap_get(&t->vocab, w, len); return *id >= 0; }
    tok_buf m = {0};
    byte_map(w, len, &m);
    *id = tok_strmap_get(&t->vocab, m.s, m.n);
    free(m.s);
    return *id >= 0;
}

int tok_bpe_word_nocache(const flab_tokenizer *t, const char *w, size_t len, tok_ids *out) {
    int32_t id;
    if (t->ignore_merges && ignore_merges_hit(t, w, len, &id)) { tok_ids_push(out, id); return 0; }
    size_t base = out->n, n;
    if (initial_symbols(t, w, len, out) < 0) return -1;
    n = out->n - base;
    if (n > 1) {
        if (n <= SCAN_MAX) merge_scan(t, out->v + base, n, &n);
        else merge_heap(t, out->v + base, n, &n);
    }
    out->n = base + n;
    return 0;
}

int tok_bpe_word(flab_tokenizer *t, const char *w, size_t len, tok_ids *out) {
    if (!t->cache_on || len > 256) return tok_bpe_word_nocache(t, w, len, out);
    size_t n;
    const int32_t *hit = tok_cache_get(&t->cache, w, len, &n);
    if (hit) { tok_ids_append(out, hit, n); return 0; }
    size_t base = out->n;
    if (tok_bpe_word_nocache(t, w, len, out) < 0) return -1;
    tok_cache_put(&t->cache, w, len, out->v + base, out->n - base);
    return 0;
}
