/* model/tokenizer_map.c: the tokenizer's hash maps, word cache and buffers.
 *
 * All maps use open addressing with linear probing at load factor <= 1/2, so
 * a lookup touches one or two cache lines.  tok_strmap borrows its keys;
 * tok_cache owns copies of its keys and values in two arenas and is emptied
 * when it holds max_entries words (simple, bounded, and the common words of a
 * corpus come back within a few lines). */
#include "model/tokenizer_internal.h"
#include "util/error.h"
#include <string.h>
#include <xxhash.h>

uint64_t tok_hash(const char *s, size_t len) { return XXH3_64bits(s, len); }

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

/* Capacity for `expected` entries at load <= 2/3; tables grow past 3/4. */
static size_t table_cap(size_t expected) { return pow2_at_least(expected + expected / 2 + 1); }
static int table_full(size_t n, size_t cap) { return (n + 1) * 4 > cap * 3; }

/* ---- string -> int32 ----------------------------------------------------- */

void tok_strmap_init(tok_strmap *m, size_t expected) {
    m->cap = table_cap(expected);
    m->n = 0;
    m->slots = flab_xcalloc(m->cap, sizeof *m->slots);
}

void tok_strmap_free(tok_strmap *m) { free(m->slots); memset(m, 0, sizeof *m); }

static inline uint32_t str_meta(uint64_t h, size_t len) {
    return ((uint32_t)(h >> 32) & 0xFFFFF000u) | (uint32_t)(len < 4095 ? len : 4095);
}

static inline int key_equal(const tok_strslot *s, uint32_t meta, const char *key, size_t len) {
    if (s->meta != meta) return 0;
    if (len >= 4095 && strlen(s->key) != len) return 0;
    return memcmp(s->key, key, len) == 0;
}

static void strmap_grow(tok_strmap *m) {
    tok_strmap bigger;
    tok_strmap_init(&bigger, m->cap);
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) tok_strmap_put(&bigger, m->slots[i].key, strlen(m->slots[i].key), m->slots[i].val);
    free(m->slots);
    *m = bigger;
}

int tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t val) {
    if (table_full(m->n, m->cap)) strmap_grow(m);
    uint64_t h = tok_hash(key, len);
    uint32_t meta = str_meta(h, len);
    size_t mask = m->cap - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        tok_strslot *s = &m->slots[i];
        if (!s->key) { s->key = key; s->val = val; s->meta = meta; m->n++; return 0; }
        if (key_equal(s, meta, key, len)) { s->val = val; return 1; }
    }
}

int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len) {
    if (!m->cap) return -1;
    uint64_t h = tok_hash(key, len);
    uint32_t meta = str_meta(h, len);
    size_t mask = m->cap - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        const tok_strslot *s = &m->slots[i];
        if (!s->key) return -1;
        if (key_equal(s, meta, key, len)) return s->val;
    }
}

void tok_strmap_get_many(const tok_strmap *m, const char *const *keys, const size_t *lens,
                         int32_t *out, size_t n) {
    uint64_t h[64];
    size_t mask = m->cap - 1;
    if (!m->cap || n > 64) {
        for (size_t i = 0; i < n; i++) out[i] = tok_strmap_get(m, keys[i], lens[i]);
        return;
    }
    for (size_t i = 0; i < n; i++) {          /* stage 1: hash, prefetch the home slot */
        h[i] = tok_hash(keys[i], lens[i]);
        __builtin_prefetch(&m->slots[h[i] & mask]);
    }
    for (size_t i = 0; i < n; i++) {          /* stage 2: prefetch the candidate key */
        const tok_strslot *s = &m->slots[h[i] & mask];
        if (s->key) __builtin_prefetch(s->key);
    }
    for (size_t i = 0; i < n; i++) {          /* stage 3: the ordinary probe, now cached */
        uint32_t meta = str_meta(h[i], lens[i]);
        out[i] = -1;
        for (size_t k = h[i] & mask;; k = (k + 1) & mask) {
            const tok_strslot *s = &m->slots[k];
            if (!s->key) break;
            if (key_equal(s, meta, keys[i], lens[i])) { out[i] = s->val; break; }
        }
    }
}

/* ---- pair -> (rank, result) ---------------------------------------------- */

static inline uint64_t pair_key(int32_t a, int32_t b) {
    return ((uint64_t)(uint32_t)a + 1) << 32 | (uint32_t)b;   /* never 0 */
}
static inline size_t pair_slot(uint64_t key, size_t mask) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & mask;
}

void tok_pairmap_init(tok_pairmap *m, size_t expected) {
    m->cap = table_cap(expected);
    m->n = 0;
    m->slots = flab_xcalloc(m->cap, sizeof *m->slots);
}

void tok_pairmap_free(tok_pairmap *m) { free(m->slots); memset(m, 0, sizeof *m); }

static void pairmap_grow(tok_pairmap *m) {
    tok_pairmap bigger;
    tok_pairmap_init(&bigger, m->cap);
    for (size_t i = 0; i < m->cap; i++) {
        tok_pairslot *s = &m->slots[i];
        if (!s->key) continue;
        size_t mask = bigger.cap - 1, j = pair_slot(s->key, mask);
        while (bigger.slots[j].key) j = (j + 1) & mask;
        bigger.slots[j] = *s;
        bigger.n++;
    }
    free(m->slots);
    *m = bigger;
}

void tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t result) {
    if (table_full(m->n, m->cap)) pairmap_grow(m);
    uint64_t key = pair_key(a, b);
    size_t mask = m->cap - 1, i = pair_slot(key, mask);
    for (;; i = (i + 1) & mask) {
        tok_pairslot *s = &m->slots[i];
        if (s->key == key) { s->rank = rank; s->result = result; return; }
        if (!s->key) { s->key = key; s->rank = rank; s->result = result; m->n++; return; }
    }
}

const tok_pairslot *tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b) {
    if (!m->cap) return NULL;
    uint64_t key = pair_key(a, b);
    size_t mask = m->cap - 1, i = pair_slot(key, mask);
    for (;; i = (i + 1) & mask) {
        const tok_pairslot *s = &m->slots[i];
        if (s->key == key) return s;
        if (!s->key) return NULL;
    }
}

/* ---- word cache ------------------------------------------------------------ */

void tok_cache_init(tok_cache *c, size_t max_entries) {
    memset(c, 0, sizeof *c);
    if (!max_entries) return;
    c->max_entries = max_entries;
    c->cap = pow2_at_least(max_entries * 2 + 1);
    c->slots = flab_xcalloc(c->cap, sizeof *c->slots);
}

void tok_cache_free(tok_cache *c) {
    free(c->slots); free(c->keys); free(c->ids);
    memset(c, 0, sizeof *c);
}

static void cache_clear(tok_cache *c) {
    memset(c->slots, 0, c->cap * sizeof *c->slots);
    c->n = c->keys_len = c->ids_len = 0;
}

/* Slots are empty when n_ids == 0 (a cached word always has >= 1 id... or
 * none: words BPE-encode to no id only when every char is dropped, which is
 * rare enough not to cache). */
const int32_t *tok_cache_get(const tok_cache *c, const char *key, size_t len, size_t *n) {
    if (!c->cap) return NULL;
    uint64_t h = tok_hash(key, len);
    size_t mask = c->cap - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        const tok_cacheslot *s = &c->slots[i];
        if (!s->n_ids) return NULL;
        if (s->hash == h && s->key_len == len && memcmp(c->keys + s->key_off, key, len) == 0) {
            *n = s->n_ids;
            return c->ids + s->ids_off;
        }
    }
}

void tok_cache_put(tok_cache *c, const char *key, size_t len, const int32_t *ids, size_t n) {
    if (!c->cap || n == 0 || len == 0 || len > 4096) return;
    if (c->n >= c->max_entries || c->keys_len + len > UINT32_MAX / 2 ||
        c->ids_len + n > UINT32_MAX / 8) cache_clear(c);
    if (c->keys_len + len > c->keys_cap) {
        c->keys_cap = (c->keys_len + len) * 2;
        c->keys = flab_xrealloc(c->keys, c->keys_cap);
    }
    if (c->ids_len + n > c->ids_cap) {
        c->ids_cap = (c->ids_len + n) * 2;
        c->ids = flab_xrealloc(c->ids, c->ids_cap * sizeof *c->ids);
    }
    uint64_t h = tok_hash(key, len);
    size_t mask = c->cap - 1, i = h & mask;
    while (c->slots[i].n_ids) i = (i + 1) & mask;
    tok_cacheslot *s = &c->slots[i];
    s->hash = h; s->key_off = (uint32_t)c->keys_len; s->key_len = (uint32_t)len;
    s->ids_off = (uint32_t)c->ids_len; s->n_ids = (uint32_t)n;
    memcpy(c->keys + c->keys_len, key, len); c->keys_len += len;
    memcpy(c->ids + c->ids_len, ids, n * sizeof *ids); c->ids_len += n;
    c->n++;
}

/* ---- buffers ---------------------------------------------------------------- */

void tok_ids_push(tok_ids *a, int32_t x) {
    if (a->n == a->cap) { a->cap = a->cap ? a->cap * 2 : 64; a->v = flab_xrealloc(a->v, a->cap * sizeof *a->v); }
    a->v[a->n++] = x;
}

void tok_ids_append(tok_ids *a, const int32_t *x, size_t n) {
    if (!n) return;
    if (a->n + n > a->cap) {
        a->cap = (a->n + n) * 2 + 64;
        a->v = flab_xrealloc(a->v, a->cap * sizeof *a->v);
    }
    memcpy(a->v + a->n, x, n * sizeof *x);
    a->n += n;
}

void tok_buf_append(tok_buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2 + 64;
        b->s = flab_xrealloc(b->s, b->cap);
    }
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

void tok_pieces_push(tok_pieces *a, const char *p, size_t len, int at_origin) {
    if (a->n == a->cap) { a->cap = a->cap ? a->cap * 2 : 64; a->v = flab_xrealloc(a->v, a->cap * sizeof *a->v); }
    a->v[a->n++] = (tok_piece){p, len, at_origin};
}

struct tok_arena_block { tok_arena_block *next; size_t used, cap; char data[]; };

char *tok_arena_alloc(tok_arena *a, size_t n) {
    tok_arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = flab_xmalloc(sizeof *b + cap);
        b->next = a->head; b->used = 0; b->cap = cap;
        a->head = b;
    }
    char *p = b->data + b->used;
    b->used += n;
    return p;
}

void tok_arena_free(tok_arena *a) {
    while (a->head) { tok_arena_block *n = a->head->next; free(a->head); a->head = n; }
}
