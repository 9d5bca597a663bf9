/* model/tokenizer_added.c: splitting text on added tokens, as HF's
 * AddedVocabulary::find_matches does.
 *
 * Matches are leftmost-longest and non-overlapping over all added tokens of
 * one trie (raw text: tokens with normalized=false; normalized text: the
 * normalized content of tokens with normalized=true).  A match is then
 * dropped (its text stays plain text) when it is a special token and special
 * parsing is off, or when single_word is set and it touches a word char;
 * lstrip/rstrip extend the token's span over adjacent whitespace. */
#include "model/tokenizer_internal.h"
#include "util/error.h"
#include <string.h>

static int32_t trie_new_node(tok_trie *tr) {
    if (tr->n_nodes == tr->cap_nodes) {
        tr->cap_nodes = tr->cap_nodes ? tr->cap_nodes * 2 : 64;
        tr->term = flab_xrealloc(tr->term, tr->cap_nodes * sizeof *tr->term);
    }
    tr->term[tr->n_nodes] = -1;
    return (int32_t)tr->n_nodes++;
}

static void trie_insert(tok_trie *tr, const char *s, size_t len, int32_t added_index) {
    int32_t node = 0;
    tr->first[(unsigned char)s[0]] = 1;
    for (size_t i = 0; i < len; i++) {
        const tok_pairslot *e = tok_pairmap_get(&tr->edges, node, (unsigned char)s[i]);
        int32_t child;
        if (e) child = e->result;
        else {
            child = trie_new_node(tr);
            tok_pairmap_put(&tr->edges, node, (unsigned char)s[i], 0, child);
        }
        node = child;
    }
    if (tr->term[node] < 0) tr->term[node] = added_index;   /* first token of equal content wins */
}

void tok_trie_build(tok_trie *tr, const flab_tokenizer *t, int normalized) {
    memset(tr, 0, sizeof *tr);
    tok_pairmap_init(&tr->edges, 64);
    trie_new_node(tr);
    tok_buf nb = {0};
    /* HF's order: special tokens first, then the others */
    for (int pass = 1; pass >= 0; pass--)
        for (size_t k = 0; k < t->n_added; k++) {
            const flab_added_token *a = &t->added[k];
            if (a->special != pass || (a->normalized != 0) != (normalized != 0)) continue;
            const char *s = a->content; size_t len = strlen(s);
            if (normalized && t->n_norms) {
                if (tok_normalize(t, s, len, &nb) < 0) continue;
                s = nb.s; len = nb.n;
            }
            if (len) trie_insert(tr, s, len, (int32_t)k);
        }
    free(nb.s);
}

void tok_trie_free(tok_trie *tr) {
    tok_pairmap_free(&tr->edges);
    free(tr->term);
    memset(tr, 0, sizeof *tr);
}

/* The longest token starting at s[i]: its added index and *end, or -1. */
static int32_t trie_longest(const tok_trie *tr, const char *s, size_t len, size_t i, size_t *end) {
    int32_t node = 0, best = -1;
    for (size_t k = i; k < len; k++) {
        const tok_pairslot *e = tok_pairmap_get(&tr->edges, node, (unsigned char)s[k]);
        if (!e) break;
        node = e->result;
        if (tr->term[node] >= 0) { best = tr->term[node]; *end = k + 1; }
    }
    return best;
}

/* The char before s[pos] / at s[pos] (s is valid UTF-8). */
static int32_t cp_before(const char *s, size_t pos) {
    size_t k = pos - 1, adv;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    return tok_utf8_decode(s + k, &adv);
}

static int single_word_ok(const char *s, size_t len, size_t start, size_t stop) {
    size_t adv;
    int start_space = start == 0 || !tok_is_alphanumeric(cp_before(s, start));
    int stop_space = stop == len || !tok_is_alphanumeric(tok_utf8_decode(s + stop, &adv));
    return start_space && stop_space;
}

/* Start of the whitespace run ending at s[pos]. */
static size_t ws_run_start(const char *s, size_t pos) {
    while (pos > 0) {
        size_t k = pos - 1, adv;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
        if (!tok_is_whitespace(tok_utf8_decode(s + k, &adv))) break;
        pos = k;
    }
    return pos;
}

/* End of the whitespace run starting at s[pos]. */
static size_t ws_run_end(const char *s, size_t len, size_t pos) {
    while (pos < len) {
        size_t adv;
        if (!tok_is_whitespace(tok_utf8_decode(s + pos, &adv))) break;
        pos += adv;
    }
    return pos;
}

static void segs_push(tok_segs *o, size_t start, size_t end, int32_t added) {
    if (o->n == o->cap) { o->cap = o->cap ? o->cap * 2 : 16; o->v = flab_xrealloc(o->v, o->cap * sizeof *o->v); }
    o->v[o->n++] = (tok_seg){start, end, added};
}

void tok_split_added(const flab_tokenizer *t, const tok_trie *tr, const char *s, size_t len,
                     int parse_special, tok_segs *out) {
    out->n = 0;
    size_t start_offset = 0, i = 0;
    if (tr->n_nodes > 1) {
        while (i < len) {
            size_t end = 0;
            int32_t k = tr->first[(unsigned char)s[i]] ? trie_longest(tr, s, len, i, &end) : -1;
            if (k < 0) { i += tok_utf8_len((unsigned char)s[i]); continue; }
            const flab_added_token *a = &t->added[k];
            size_t start = i, stop = end;
            i = end;                               /* matches never overlap */
            if (a->special && !parse_special) continue;
            if (a->single_word && !single_word_ok(s, len, start, stop)) continue;
            if (a->lstrip) {
                size_t ns = ws_run_start(s, start);
                start = ns > start_offset ? ns : start_offset;
            }
            if (a->rstrip) stop = ws_run_end(s, len, stop);
            if (start < start_offset) continue;   /* inside the previous token's rstrip: HF's
                                                     result would overlap; keep it as text */
            if (start_offset < start) segs_push(out, start_offset, start, -1);
            segs_push(out, start, stop, k);
            start_offset = stop;
        }
    }
    if (start_offset < len || len == 0) segs_push(out, start_offset, len, -1);
}
