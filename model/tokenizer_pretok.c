/* model/tokenizer_pretok.c: the pre-tokenizers (Split, ByteLevel, Metaspace),
 * applied in sequence to one normalized piece of text.
 *
 * Pieces point into the input or into the arena (for text a pre-tokenizer
 * rewrote); empty pieces are dropped, as in HF.  `at_origin` says a piece
 * starts at offset 0 of the original text (Metaspace prepend_scheme "first").
 * The ByteLevel byte-to-char mapping itself is done by the BPE model, which
 * works on raw bytes (tokenizer_bpe.c); here ByteLevel only adds the prefix
 * space and splits with the GPT-2 regex. */
#include "model/tokenizer_internal.h"
#include "util/error.h"
#include <string.h>

/* (start, end, is_match) segments covering s, as HF's Pattern::find_matches. */
typedef struct { size_t start, end; int match; } seg;
typedef struct { seg *v; size_t n, cap; pcre2_match_data *md; } segs;

static void segs_push(segs *a, size_t s, size_t e, int m) {
    if (a->n == a->cap) { a->cap = a->cap ? a->cap * 2 : 64; a->v = flab_xrealloc(a->v, a->cap * sizeof *a->v); }
    a->v[a->n++] = (seg){s, e, m};
}

static int find_matches(const flab_tokenizer *t, pcre2_code *re, pcre2_match_data *md,
                        const char *s, size_t len, segs *out) {
    out->n = 0;
    size_t prev = 0, at = 0;
    while (at <= len && len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, len, at, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return flab_fail("%s: pre_tokenizer: regex match failed (PCRE2 error %d)", t->name, rc);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (prev != ms) segs_push(out, prev, ms, 0);
        segs_push(out, ms, me, 1);
        prev = me;
        if (me == ms) {               /* empty match: step over one char */
            if (me >= len) break;
            at = me + tok_utf8_len((unsigned char)s[me]);
        } else at = me;
    }
    if (prev != len) segs_push(out, prev, len, 0);
    return 0;
}

/* Combines segments by behavior into pieces (HF's NormalizedString::split). */
static void split_by_behavior(enum tok_split_behavior b, segs *sg) {
    size_t n = 0;
    int prev_match = 0;
    if (b == SPLIT_MERGED_NEXT) {
        /* fold from the right: a match glues onto the piece that follows it */
        segs tmp = {0};
        for (size_t i = sg->n; i-- > 0;) {
            seg x = sg->v[i];
            if (x.match && !prev_match && tmp.n) tmp.v[tmp.n - 1].start = x.start;
            else segs_push(&tmp, x.start, x.end, 0);
            prev_match = x.match;
        }
        for (size_t i = 0; i < tmp.n; i++) sg->v[i] = tmp.v[tmp.n - 1 - i];
        sg->n = tmp.n;
        free(tmp.v);
        return;
    }
    for (size_t i = 0; i < sg->n; i++) {
        seg x = sg->v[i];
        if (b == SPLIT_REMOVED) { if (!x.match) sg->v[n++] = x; }
        else if (b == SPLIT_ISOLATED) sg->v[n++] = x;
        else if (b == SPLIT_MERGED_PREV && x.match && !prev_match && n) sg->v[n - 1].end = x.end;
        else if (b == SPLIT_CONTIGUOUS && x.match && prev_match && n) sg->v[n - 1].end = x.end;
        else sg->v[n++] = x;
        prev_match = x.match;
    }
    sg->n = n;
}

static int split_piece(const flab_tokenizer *t, pcre2_code *re, enum tok_split_behavior b,
                       const tok_piece *p, segs *sg, tok_pieces *out) {
    if (find_matches(t, re, sg->md, p->p, p->len, sg) < 0) return -1;
    split_by_behavior(b, sg);
    for (size_t i = 0; i < sg->n; i++)
        if (sg->v[i].end > sg->v[i].start)
            tok_pieces_push(out, p->p + sg->v[i].start, sg->v[i].end - sg->v[i].start,
                            p->at_origin && sg->v[i].start == 0);
    return 0;
}

/* Metaspace: spaces -> replacement, maybe a leading replacement, then split
 * before each replacement char (MergedWithNext). */
static void metaspace_piece(const tok_pre *m, const tok_piece *p, tok_arena *arena, tok_pieces *out) {
    size_t spaces = 0;
    for (size_t i = 0; i < p->len; i++) spaces += p->p[i] == ' ';
    int starts = (spaces && p->p[0] == ' ') ||
                 (p->len >= m->repl_len && memcmp(p->p, m->repl, m->repl_len) == 0);
    int prepend = p->len && !starts &&
                  (m->prepend == PREPEND_ALWAYS || (m->prepend == PREPEND_FIRST && p->at_origin));
    size_t n = p->len + spaces * (m->repl_len - 1) + (prepend ? m->repl_len : 0);
    char *s = tok_arena_alloc(arena, n + 1), *w = s;
    if (prepend) { memcpy(w, m->repl, m->repl_len); w += m->repl_len; }
    for (size_t i = 0; i < p->len; i++) {
        if (p->p[i] == ' ') { memcpy(w, m->repl, m->repl_len); w += m->repl_len; }
        else *w++ = p->p[i];
    }
    if (!m->split) { if (n) tok_pieces_push(out, s, n, p->at_origin); return; }
    size_t start = 0;
    for (size_t i = 1; i + m->repl_len <= n; i++)
        if (memcmp(s + i, m->repl, m->repl_len) == 0) {
            tok_pieces_push(out, s + start, i - start, p->at_origin && start == 0);
            start = i;
            i += m->repl_len - 1;
        }
    if (n > start) tok_pieces_push(out, s + start, n - start, p->at_origin && start == 0);
}

static int apply_pre(const flab_tokenizer *t, const tok_pre *pre, const tok_piece *p,
                     tok_arena *arena, segs *sg, tok_pieces *out) {
    if (pre->kind == PRE_SPLIT) return split_piece(t, pre->re, pre->behavior, p, sg, out);
    if (pre->kind == PRE_METASPACE) { metaspace_piece(pre, p, arena, out); return 0; }
    tok_piece q = *p;                                   /* ByteLevel */
    if (pre->add_prefix_space && q.len && q.p[0] != ' ') {
        char *s = tok_arena_alloc(arena, q.len + 1);
        s[0] = ' '; memcpy(s + 1, q.p, q.len);
        q.p = s; q.len++;
    }
    if (!pre->re) { tok_pieces_push(out, q.p, q.len, q.at_origin); return 0; }
    return split_piece(t, pre->re, SPLIT_ISOLATED, &q, sg, out);
}

int tok_pretokenize_piece(const flab_tokenizer *t, const char *s, size_t len, int at_origin,
                          tok_arena *arena, tok_pieces *out) {
    if (!len) return 0;
    if (t->n_pres == 0) { tok_pieces_push(out, s, len, at_origin); return 0; }
    tok_pieces cur = {0}, next = {0};
    segs sg = {0};
    sg.md = pcre2_match_data_create(1, NULL);   /* only the whole match is needed */
    tok_pieces_push(&cur, s, len, at_origin);
    int rc = 0;
    for (size_t k = 0; k < t->n_pres && rc == 0; k++) {
        tok_pieces *dst = k + 1 == t->n_pres ? out : &next;
        if (dst == &next) next.n = 0;
        for (size_t i = 0; i < cur.n && rc == 0; i++) rc = apply_pre(t, &t->pres[k], &cur.v[i], arena, &sg, dst);
        tok_pieces swap = cur; cur = next; next = swap;
    }
    free(cur.v); free(next.v); free(sg.v);
    pcre2_match_data_free(sg.md);
    return rc;
}
