/* model/tokenizer_encode.c: text -> ids, HF's Tokenizer::encode pipeline.
 *
 *   1. split the raw text on added tokens with normalized=false;
 *   2. normalize each other piece, split it on added tokens with normalized=true;
 *   3. pre-tokenize each remaining piece, BPE-encode each pre-token;
 *   4. with add_special, apply the post-processor templates (e.g. <s> A).
 * flab_tok_pretokenize exposes steps 1-3 without the BPE. */
#include "model/tokenizer_internal.h"
#include "util/error.h"
#include <string.h>

typedef int (*piece_fn)(flab_tokenizer *t, const char *p, size_t len, int32_t added_id, void *user);

static int walk_normalized(flab_tokenizer *t, const char *s, size_t len, int at_origin,
                           int parse_special, piece_fn fn, void *user) {
    tok_segs segs = {0};
    tok_arena arena = {0};
    tok_pieces pieces = {0};
    int rc = 0;
    tok_split_added(t, &t->trie_norm, s, len, parse_special, &segs);
    for (size_t i = 0; i < segs.n && rc == 0; i++) {
        tok_seg g = segs.v[i];
        if (g.added >= 0) { rc = fn(t, s + g.start, g.end - g.start, t->added[g.added].id, user); continue; }
        pieces.n = 0;
        rc = tok_pretokenize_piece(t, s + g.start, g.end - g.start, at_origin && g.start == 0, &arena, &pieces);
        for (size_t k = 0; k < pieces.n && rc == 0; k++) rc = fn(t, pieces.v[k].p, pieces.v[k].len, -1, user);
    }
    free(segs.v); free(pieces.v);
    tok_arena_free(&arena);
    return rc;
}

static int walk(flab_tokenizer *t, const char *text, size_t len, int parse_special, piece_fn fn, void *user) {
    size_t bad = tok_utf8_check(text, len);
    if (bad != len) return flab_fail("input is not valid UTF-8 (byte %zu: 0x%02X)", bad, (unsigned char)text[bad]);
    tok_segs segs = {0};
    tok_buf norm = {0};
    int rc = 0;
    tok_split_added(t, &t->trie_raw, text, len, parse_special, &segs);
    for (size_t i = 0; i < segs.n && rc == 0; i++) {
        tok_seg g = segs.v[i];
        const char *s = text + g.start;
        size_t n = g.end - g.start;
        if (g.added >= 0) { rc = fn(t, s, n, t->added[g.added].id, user); continue; }
        if (t->n_norms) {
            if ((rc = tok_normalize(t, s, n, &norm)) < 0) break;
            s = norm.s; n = norm.n;
        }
        rc = walk_normalized(t, s, n, g.start == 0, parse_special, fn, user);
    }
    free(segs.v); free(norm.s);
    return rc;
}

/* ---- encode ----------------------------------------------------------------------- */

static int encode_piece(flab_tokenizer *t, const char *p, size_t len, int32_t added_id, void *user) {
    tok_ids *out = user;
    if (added_id >= 0) { tok_ids_push(out, added_id); return 0; }
    return tok_bpe_word(t, p, len, out);
}

/* Wraps ids in each template of the post-processor, in order. */
static void post_process(const flab_tokenizer *t, tok_ids *ids) {
    for (size_t k = 0; k < t->n_tmpls; k++) {
        const tok_template *tp = &t->tmpls[k];
        tok_ids out = {0};
        for (size_t i = 0; i < tp->n; i++) {
            if (tp->items[i].n_ids < 0) tok_ids_append(&out, ids->v, ids->n);
            else tok_ids_append(&out, tp->items[i].ids, (size_t)tp->items[i].n_ids);
        }
        free(ids->v);
        *ids = out;
    }
}

int flab_tok_encode(flab_tokenizer *t, const char *text, size_t len, flab_tok_encode_opts opts,
                    int32_t **ids, size_t *n_ids) {
    tok_ids out = {0};
    *ids = NULL; *n_ids = 0;
    if (walk(t, text, len, opts.parse_special, encode_piece, &out) < 0) { free(out.v); return -1; }
    if (opts.add_special) post_process(t, &out);
    *ids = out.v; *n_ids = out.n;
    return 0;
}

/* ---- pre-tokens -------------------------------------------------------------------- */

typedef struct { flab_tok_piece_fn fn; void *user; } piece_cb;

static int forward_piece(flab_tokenizer *t, const char *p, size_t len, int32_t added_id, void *user) {
    (void)t;
    piece_cb *cb = user;
    return cb->fn(p, len, added_id, cb->user);
}

int flab_tok_pretokenize(const flab_tokenizer *t, const char *text, size_t len, int parse_special,
                         flab_tok_piece_fn fn, void *user) {
    piece_cb cb = {fn, user};
    /* walk() only writes to the word cache through encode_piece, never here */
    return walk((flab_tokenizer *)t, text, len, parse_special, forward_piece, &cb);
}
