/* model/tokenizer_decode.c: ids -> text, HF's Tokenizer::decode.
 *
 * ids become token strings (special added tokens dropped when asked), each
 * decoder of the chain maps the list of strings to a new list, and the result
 * is their concatenation; without a decoder the tokens are joined with " ". */
#include "model/tokenizer_internal.h"
#include "util/error.h"
#include <stdio.h>
#include <string.h>

typedef struct { tok_buf *v; size_t n, cap; } strlist;

static tok_buf *list_add(strlist *l) {
    if (l->n == l->cap) { l->cap = l->cap ? l->cap * 2 : 16; l->v = flab_xrealloc(l->v, l->cap * sizeof *l->v); }
    tok_buf *b = &l->v[l->n++];
    memset(b, 0, sizeof *b);
    tok_buf_append(b, "", 0);
    return b;
}

static void list_free(strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i].s);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ---- decoders ------------------------------------------------------------------------ */

/* ByteLevel: every token's chars back to bytes (a token with a char outside the
 * byte alphabet keeps its UTF-8 bytes), then one lossy UTF-8 string. */
static void dec_bytelevel(const strlist *in, strlist *out) {
    tok_buf bytes = {0}, *o = list_add(out);
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->v[i].s; size_t len = in->v[i].n, start = bytes.n, k = 0;
        while (k < len) {
            size_t adv; int b = tok_cp_to_byte(tok_utf8_decode(s + k, &adv));
            if (b < 0) break;
            char c = (char)b;
            tok_buf_append(&bytes, &c, 1);
            k += adv;
        }
        if (k < len) { bytes.n = start; tok_buf_append(&bytes, s, len); }
    }
    tok_utf8_lossy_append(o, bytes.s ? bytes.s : "", bytes.n);
    free(bytes.s);
}

static void dec_replace(const tok_dec *d, const strlist *in, strlist *out) {
    for (size_t i = 0; i < in->n; i++) {
        tok_buf *o = list_add(out);
        const char *s = in->v[i].s; size_t len = in->v[i].n, k = 0;
        while (k < len) {
            const char *hit = d->alen <= len - k ? memmem(s + k, len - k, d->a, d->alen) : NULL;
            if (!hit) break;
            tok_buf_append(o, s + k, (size_t)(hit - (s + k)));
            tok_buf_append(o, d->b, d->blen);
            k = (size_t)(hit - s) + d->alen;
        }
        tok_buf_append(o, s + k, len - k);
    }
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 :
           c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* <0xNN> -> the byte, -1 otherwise (Rust's from_str_radix also takes lowercase). */
static int byte_token(const tok_buf *b) {
    if (b->n != 6 || memcmp(b->s, "<0x", 3) != 0 || b->s[5] != '>') return -1;
    int h = hexval(b->s[3]), l = hexval(b->s[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
}

static void flush_bytes(tok_buf *bytes, strlist *out) {
    if (!bytes->n) return;
    tok_buf *o;
    if (tok_utf8_check(bytes->s, bytes->n) == bytes->n) { o = list_add(out); tok_buf_append(o, bytes->s, bytes->n); }
    else for (size_t k = 0; k < bytes->n; k++) { o = list_add(out); tok_buf_append(o, "\xEF\xBF\xBD", 3); }
    bytes->n = 0;
}

static void dec_bytefallback(const strlist *in, strlist *out) {
    tok_buf bytes = {0};
    for (size_t i = 0; i < in->n; i++) {
        int b = byte_token(&in->v[i]);
        if (b >= 0) { char c = (char)b; tok_buf_append(&bytes, &c, 1); continue; }
        flush_bytes(&bytes, out);
        tok_buf_append(list_add(out), in->v[i].s, in->v[i].n);
    }
    flush_bytes(&bytes, out);
    free(bytes.s);
}

static void dec_fuse(const strlist *in, strlist *out) {
    tok_buf *o = list_add(out);
    for (size_t i = 0; i < in->n; i++) tok_buf_append(o, in->v[i].s, in->v[i].n);
}

static void dec_strip(const tok_dec *d, const strlist *in, strlist *out) {
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->v[i].s; size_t len = in->v[i].n, a = 0, z = len, adv;
        for (int k = 0; k < d->start && a < len && tok_utf8_decode(s + a, &adv) == d->strip_cp; k++) a += adv;
        for (int k = 0; k < d->stop && z > a; k++) {
            size_t p = z - 1;
            while (p > a && ((unsigned char)s[p] & 0xC0) == 0x80) p--;
            if (tok_utf8_decode(s + p, &adv) != d->strip_cp) break;
            z = p;
        }
        tok_buf_append(list_add(out), s + a, z - a);
    }
}

/* Metaspace: replacement -> " ", dropped in the first token unless prepend_scheme is never. */
static void dec_metaspace(const tok_dec *d, const strlist *in, strlist *out) {
    for (size_t i = 0; i < in->n; i++) {
        tok_buf *o = list_add(out);
        const char *s = in->v[i].s; size_t len = in->v[i].n, k = 0;
        while (k < len) {
            size_t n = tok_utf8_len((unsigned char)s[k]);
            if (n == d->alen && memcmp(s + k, d->a, n) == 0) {
                if (i != 0 || d->prepend_never) tok_buf_append(o, " ", 1);
            } else tok_buf_append(o, s + k, n);
            k += n;
        }
    }
}

static void apply_decoder(const tok_dec *d, const strlist *in, strlist *out) {
    switch (d->kind) {
    case DEC_BYTELEVEL: dec_bytelevel(in, out); break;
    case DEC_REPLACE: dec_replace(d, in, out); break;
    case DEC_BYTEFALLBACK: dec_bytefallback(in, out); break;
    case DEC_FUSE: dec_fuse(in, out); break;
    case DEC_STRIP: dec_strip(d, in, out); break;
    case DEC_METASPACE: dec_metaspace(d, in, out); break;
    }
}

char *flab_tok_decode(const flab_tokenizer *t, const int32_t *ids, size_t n, int skip_special, size_t *len) {
    strlist cur = {0}, next = {0};
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_ids || !t->id_str[ids[i]]) {
            list_free(&cur);
            flab_fail("%s: id %d is not in the vocabulary", t->name, (int)ids[i]);
            return NULL;
        }
        if (skip_special && t->is_special[ids[i]]) continue;
        tok_buf_append(list_add(&cur), t->id_str[ids[i]], t->id_len[ids[i]]);
    }
    for (size_t k = 0; k < t->n_decs; k++) {
        apply_decoder(&t->decs[k], &cur, &next);
        list_free(&cur);
        cur = next;
        memset(&next, 0, sizeof next);
    }
    tok_buf out = {0};
    tok_buf_append(&out, "", 0);
    for (size_t i = 0; i < cur.n; i++) {
        if (!t->has_decoder && i) tok_buf_append(&out, " ", 1);
        tok_buf_append(&out, cur.v[i].s, cur.v[i].n);
    }
    list_free(&cur);
    if (len) *len = out.n;
    return out.s;
}
