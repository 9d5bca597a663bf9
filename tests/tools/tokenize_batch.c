/* tests/tools/tokenize_batch.c: encodes (or decodes) many texts in one process,
 * for the differential tests against HF tokenizers (tests/test_tokenizer_hf.py).
 *
 *   tokenize_batch [--no-parse-special] [--no-add-special] TOKENIZER.json IN OUT
 *   tokenize_batch --decode [--skip-special] TOKENIZER.json IN OUT
 *   tokenize_batch --pieces [--no-parse-special] TOKENIZER.json IN OUT
 * IN: records [u32 len][len bytes of UTF-8]   (decode: [u32 n][n x i32 ids])
 * OUT: records [u32 n][n x i32 ids]            (decode: [u32 len][len bytes])
 *      (pieces: [u32 n] then n x [i32 added id or -1][u32 len][len bytes])
 * A record that fails is written as [u32 0xFFFFFFFF] and its error on stderr.
 * All integers little-endian. */
#include "model/tokenizer.h"
#include "util/error.h"
#include "util/file.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *s; size_t n, cap; uint32_t count; } tok_buf_like;

static int get_u32(const char *buf, size_t len, size_t *off, uint32_t *v) {
    if (*off + 4 > len) return -1;
    memcpy(v, buf + *off, 4);
    *off += 4;
    return 0;
}

static void put_fail(FILE *out, size_t rec) {
    uint32_t bad = 0xFFFFFFFFu;
    fprintf(stderr, "record %zu: %s\n", rec, flab_errmsg());
    fwrite(&bad, 4, 1, out);
}

static int run_encode(flab_tokenizer *t, flab_tok_encode_opts o, const char *in, size_t len, FILE *out) {
    size_t off = 0, rec = 0;
    uint32_t n;
    for (; get_u32(in, len, &off, &n) == 0; rec++) {
        if (off + n > len) { fprintf(stderr, "truncated input\n"); return 1; }
        int32_t *ids; size_t n_ids;
        if (flab_tok_encode(t, in + off, n, o, &ids, &n_ids) < 0) put_fail(out, rec);
        else {
            uint32_t k = (uint32_t)n_ids;
            fwrite(&k, 4, 1, out);
            if (n_ids) fwrite(ids, 4, n_ids, out);
        }
        free(ids);
        off += n;
    }
    return 0;
}

static int put_piece(const char *p, size_t len, int32_t added_id, void *user) {
    tok_buf_like *b = user;
    uint32_t n = (uint32_t)len;
    if (b->n + len + 8 > b->cap) { b->cap = (b->n + len + 8) * 2; b->s = realloc(b->s, b->cap); }
    memcpy(b->s + b->n, &added_id, 4); memcpy(b->s + b->n + 4, &n, 4);
    memcpy(b->s + b->n + 8, p, len);
    b->n += len + 8;
    b->count++;
    return 0;
}

static int run_pieces(flab_tokenizer *t, int parse_special, const char *in, size_t len, FILE *out) {
    size_t off = 0, rec = 0;
    uint32_t n;
    tok_buf_like b = {0};
    for (; get_u32(in, len, &off, &n) == 0; rec++) {
        if (off + n > len) { fprintf(stderr, "truncated input\n"); free(b.s); return 1; }
        b.n = 0; b.count = 0;
        if (flab_tok_pretokenize(t, in + off, n, parse_special, put_piece, &b) < 0) put_fail(out, rec);
        else { fwrite(&b.count, 4, 1, out); if (b.n) fwrite(b.s, 1, b.n, out); }
        off += n;
    }
    free(b.s);
    return 0;
}

static int run_decode(flab_tokenizer *t, int skip, const char *in, size_t len, FILE *out) {
    size_t off = 0, rec = 0;
    uint32_t n;
    for (; get_u32(in, len, &off, &n) == 0; rec++) {
        if (off + (size_t)n * 4 > len) { fprintf(stderr, "truncated input\n"); return 1; }
        int32_t *ids = malloc((size_t)n * 4 + 4);
        memcpy(ids, in + off, (size_t)n * 4);
        size_t tlen;
        char *text = flab_tok_decode(t, ids, n, skip, &tlen);
        if (!text) put_fail(out, rec);
        else { uint32_t k = (uint32_t)tlen; fwrite(&k, 4, 1, out); fwrite(text, 1, tlen, out); }
        free(text); free(ids);
        off += (size_t)n * 4;
    }
    return 0;
}

int main(int argc, char **argv) {
    flab_tok_encode_opts o = {1, 1};
    int decode = 0, skip = 0, pieces = 0, a = 1;
    for (; a < argc && strncmp(argv[a], "--", 2) == 0; a++) {
        if (!strcmp(argv[a], "--no-parse-special")) o.parse_special = 0;
        else if (!strcmp(argv[a], "--no-add-special")) o.add_special = 0;
        else if (!strcmp(argv[a], "--decode")) decode = 1;
        else if (!strcmp(argv[a], "--skip-special")) skip = 1;
        else if (!strcmp(argv[a], "--pieces")) pieces = 1;
        else { fprintf(stderr, "unknown option %s\n", argv[a]); return 2; }
    }
    if (argc - a != 3) { fprintf(stderr, "usage: tokenize_batch [opts] TOKENIZER.json IN OUT\n"); return 2; }
    char *json, *in; size_t jlen, inlen;
    if (flab_read_file(argv[a], &json, &jlen) < 0) { fprintf(stderr, "%s\n", flab_errmsg()); return 1; }
    flab_tokenizer *t = flab_tok_load_json(json, jlen, NULL, argv[a]);
    free(json);
    if (!t) { fprintf(stderr, "%s\n", flab_errmsg()); return 1; }
    if (flab_read_file(argv[a + 1], &in, &inlen) < 0) { fprintf(stderr, "%s\n", flab_errmsg()); flab_tok_free(t); return 1; }
    FILE *out = fopen(argv[a + 2], "wb");
    int rc = 1;
    if (out) {
        rc = decode ? run_decode(t, skip, in, inlen, out)
             : pieces ? run_pieces(t, o.parse_special, in, inlen, out) : run_encode(t, o, in, inlen, out);
        if (fclose(out) != 0) rc = 1;
    }
    free(in);
    flab_tok_free(t);
    return rc;
}
