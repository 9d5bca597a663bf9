/* eval/bleu.c: nlg-eval / COCO-caption corpus BLEU (see bleu.h).
 *
 * An n-gram is kept as the string of its words joined by single spaces:
 * words never contain whitespace, so the join is one-to-one.  Counts live
 * in a small open-addressing hash table per sentence. */
#include "eval/bleu.h"
#include "util/error.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- Python str.split() on UTF-8 ------------------------------------------ */

/* Length of the whitespace character at s (0 when s is not whitespace), by
 * Python's str.isspace: \t\n\v\f\r, \x1c-\x1f, space, U+0085, U+00A0,
 * U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000. */
static size_t space_len(const unsigned char *s) {
    if ((*s >= 0x09 && *s <= 0x0d) || (*s >= 0x1c && *s <= 0x20)) return 1;
    if (s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) return 3;
    if (s[0] == 0xe2 && s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 ||
                                         s[2] == 0xa9 || s[2] == 0xaf)) return 3;
    if (s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) return 3;
    if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) return 3;
    return 0;
}

typedef struct { const char **start; size_t *len; size_t n; } Words;

static void split_words(const char *text, Words *w) {
    memset(w, 0, sizeof *w);
    size_t cap = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        size_t sp = space_len(p);
        if (sp) { p += sp; continue; }
        const unsigned char *start = p;
        while (*p && !space_len(p)) p++;
        if (w->n == cap) {
            cap = cap ? cap * 2 : 32;
            w->start = flab_xrealloc(w->start, cap * sizeof *w->start);
            w->len = flab_xrealloc(w->len, cap * sizeof *w->len);
        }
        w->start[w->n] = (const char *)start;
        w->len[w->n++] = (size_t)(p - start);
    }
}

static void words_free(Words *w) { free(w->start); free(w->len); }

/* ---- n-gram counts ---------------------------------------------------------- */

typedef struct { char *key; size_t count; } Slot;
typedef struct { Slot *slots; size_t cap, n; } Counts;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static Slot *find_slot(Counts *c, const char *key) {
    size_t i = (size_t)hash_str(key) & (c->cap - 1);
    while (c->slots[i].key && strcmp(c->slots[i].key, key)) i = (i + 1) & (c->cap - 1);
    return &c->slots[i];
}

static void counts_grow(Counts *c) {
    Counts bigger = {flab_xcalloc(c->cap ? c->cap * 2 : 64, sizeof(Slot)), c->cap ? c->cap * 2 : 64, c->n};
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].key) *find_slot(&bigger, c->slots[i].key) = c->slots[i];
    free(c->slots);
    *c = bigger;
}

/* Adds value to key's count, or (take_max) raises it to value. */
static void counts_put(Counts *c, const char *key, size_t value, int take_max) {
    if ((c->n + 1) * 2 > c->cap) counts_grow(c);
    Slot *s = find_slot(c, key);
    if (!s->key) { s->key = flab_xstrdup(key); s->count = 0; c->n++; }
    s->count = take_max ? (value > s->count ? value : s->count) : s->count + value;
}

static size_t counts_get(const Counts *c, const char *key) {
    if (!c->cap) return 0;
    Slot *s = find_slot((Counts *)c, key);
    return s->key ? s->count : 0;
}

static void counts_free(Counts *c) {
    for (size_t i = 0; i < c->cap; i++) free(c->slots[i].key);
    free(c->slots);
    memset(c, 0, sizeof *c);
}

/* The n-gram of w starting at i, joined by spaces, into buf (grown). */
static const char *ngram(const Words *w, size_t i, size_t n, char **buf, size_t *cap) {
    size_t need = n;
    for (size_t k = 0; k < n; k++) need += w->len[i + k];
    if (need > *cap) { *cap = need * 2; *buf = flab_xrealloc(*buf, *cap); }
    char *p = *buf;
    for (size_t k = 0; k < n; k++) {
        if (k) *p++ = ' ';
        memcpy(p, w->start[i + k], w->len[i + k]);
        p += w->len[i + k];
    }
    *p = '\0';
    return *buf;
}

/* Counts of every 1..4-gram of text (precook); *len receives its word count. */
static void precook(const char *text, Counts *c, size_t *len, int take_max) {
    Words w;
    split_words(text, &w);
    char *buf = NULL;
    size_t cap = 0;
    Counts own = {0};
    for (size_t n = 1; n <= 4; n++)
        for (size_t i = 0; i + n <= w.n; i++) counts_put(&own, ngram(&w, i, n, &buf, &cap), 1, 0);
    for (size_t i = 0; i < own.cap; i++)
        if (own.slots[i].key) counts_put(c, own.slots[i].key, own.slots[i].count, take_max);
    counts_free(&own);
    free(buf);
    *len = w.n;
    words_free(&w);
}

static size_t ngram_order(const char *key) {
    size_t n = 1;
    for (; *key; key++) n += *key == ' ';
    return n;
}

/* ---- scoring ---------------------------------------------------------------- */

/* Adds one hypothesis against its references to the corpus totals. */
static void cook_pair(const char *hyp, const char *const *refs, size_t n_refs, EvalBleu *t) {
    Counts refmax = {0}, test = {0};
    size_t best_len = 0, best_diff = (size_t)-1, testlen;
    size_t *ref_lens = flab_xcalloc(n_refs, sizeof *ref_lens);
    for (size_t r = 0; r < n_refs; r++) precook(refs[r], &refmax, &ref_lens[r], 1);
    precook(hyp, &test, &testlen, 0);
    for (size_t r = 0; r < n_refs; r++) {   /* min over (|l - testlen|, l) */
        size_t l = ref_lens[r], diff = l > testlen ? l - testlen : testlen - l;
        if (diff < best_diff || (diff == best_diff && l < best_len)) { best_diff = diff; best_len = l; }
    }
    t->testlen += (double)testlen;
    t->reflen += (double)best_len;
    for (size_t k = 1; k <= 4; k++) t->guess[k - 1] += testlen >= k ? (double)(testlen - k + 1) : 0.0;
    for (size_t i = 0; i < test.cap; i++) {
        if (!test.slots[i].key) continue;
        size_t have = test.slots[i].count, allowed = counts_get(&refmax, test.slots[i].key);
        t->correct[ngram_order(test.slots[i].key) - 1] += (double)(have < allowed ? have : allowed);
    }
    free(ref_lens);
    counts_free(&refmax);
    counts_free(&test);
}

void eval_bleu_corpus(const char *const *hyps, const char *const *const *refs,
                      const size_t *n_refs, size_t n, EvalBleu *out) {
    const double small = 1e-9, tiny = 1e-15;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++) cook_pair(hyps[i], refs[i], n_refs[i], out);
    double bleu = 1.0;
    for (int k = 0; k < 4; k++) {
        bleu *= (out->correct[k] + tiny) / (out->guess[k] + small);
        out->bleu[k] = pow(bleu, 1.0 / (k + 1));
    }
    double ratio = (out->testlen + tiny) / (out->reflen + small);
    if (ratio < 1)
        for (int k = 0; k < 4; k++) out->bleu[k] *= exp(1 - 1 / ratio);
}

double eval_bleu4_single(const char *const *hyps, const char *const *refs, size_t n) {
    const char *const **ref_lists = flab_xcalloc(n ? n : 1, sizeof *ref_lists);
    size_t *counts = flab_xcalloc(n ? n : 1, sizeof *counts);
    for (size_t i = 0; i < n; i++) { ref_lists[i] = &refs[i]; counts[i] = 1; }
    EvalBleu b;
    eval_bleu_corpus(hyps, ref_lists, counts, n, &b);
    free(ref_lists);
    free(counts);
    return b.bleu[3];
}
