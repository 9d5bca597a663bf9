/* model/tokenizer_normalize.c: the normalizers of tokenizer.json, applied in
 * order to one piece of text (HF normalizes each piece between added tokens
 * separately, which matters for Prepend).
 *
 * Unicode normal forms come from utf8proc; pure-ASCII text is returned as is
 * (it is in every normal form), which is the common case for code. */
#include "model/tokenizer_internal.h"
#include "util/error.h"
#include <string.h>
#include <utf8proc.h>

static int is_ascii(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

static int unicode_form(const flab_tokenizer *t, const tok_norm *n, const char *s, size_t len, tok_buf *out) {
    if (is_ascii(s, len)) { tok_buf_append(out, s, len); return 0; }
    int opts = UTF8PROC_STABLE;
    switch (n->kind) {
    case NORM_NFC: opts |= UTF8PROC_COMPOSE; break;
    case NORM_NFD: opts |= UTF8PROC_DECOMPOSE; break;
    case NORM_NFKC: opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    default: opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
                                      (utf8proc_option_t)opts);
    if (r < 0) return flab_fail("%s: normalizer: %s", t->name, utf8proc_errmsg(r));
    tok_buf_append(out, (const char *)dst, (size_t)r);
    free(dst);
    return 0;
}

static void replace_literal(const tok_norm *n, const char *s, size_t len, tok_buf *out) {
    size_t i = 0;
    while (i < len) {
        const char *hit = n->alen && n->alen <= len - i ? memmem(s + i, len - i, n->a, n->alen) : NULL;
        if (!hit) break;
        tok_buf_append(out, s + i, (size_t)(hit - (s + i)));
        tok_buf_append(out, n->b, n->blen);
        i = (size_t)(hit - s) + n->alen;
    }
    tok_buf_append(out, s + i, len - i);
}

static int replace_regex(const flab_tokenizer *t, const tok_norm *n, const char *s, size_t len, tok_buf *out) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(n->re, NULL);
    size_t i = 0, copied = 0;
    while (i <= len) {
        int rc = pcre2_match(n->re, (PCRE2_SPTR)s, len, i, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) { pcre2_match_data_free(md); return flab_fail("%s: normalizer Replace: regex match failed (%d)", t->name, rc); }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) {   /* empty match: nothing to replace, step one char */
            if (ov[0] >= len) break;
            i = ov[0] + tok_utf8_len((unsigned char)s[ov[0]]);
            continue;
        }
        tok_buf_append(out, s + copied, ov[0] - copied);
        tok_buf_append(out, n->b, n->blen);
        copied = i = ov[1];
    }
    tok_buf_append(out, s + copied, len - copied);
    pcre2_match_data_free(md);
    return 0;
}

static int apply_one(const flab_tokenizer *t, const tok_norm *n, const char *s, size_t len, tok_buf *out) {
    out->n = 0;
    tok_buf_append(out, "", 0);
    switch (n->kind) {
    case NORM_PREPEND:
        if (len) tok_buf_append(out, n->a, n->alen);   /* HF prepends only to non-empty text */
        tok_buf_append(out, s, len);
        return 0;
    case NORM_REPLACE:
        if (n->a) { replace_literal(n, s, len, out); return 0; }
        return replace_regex(t, n, s, len, out);
    default:
        return unicode_form(t, n, s, len, out);
    }
}

int tok_normalize(const flab_tokenizer *t, const char *s, size_t len, tok_buf *out) {
    out->n = 0;
    tok_buf_append(out, s, len);
    tok_buf tmp = {0};
    for (size_t i = 0; i < t->n_norms; i++) {
        if (apply_one(t, &t->norms[i], out->s, out->n, &tmp) < 0) { free(tmp.s); return -1; }
        tok_buf swap = *out; *out = tmp; tmp = swap;
    }
    free(tmp.s);
    return 0;
}
