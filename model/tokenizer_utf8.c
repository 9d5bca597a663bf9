/* model/tokenizer_utf8.c: UTF-8 helpers with Rust's semantics (HF tokenizers
 * is Rust): validation, decoding, lossy decoding, char classes, and the
 * GPT-2 byte-level alphabet. */
#include "model/tokenizer_internal.h"
#include <utf8proc.h>

/* Length of the valid UTF-8 sequence at s[0..len), 0 if invalid.  Follows
 * the Unicode "maximal subpart" rules: no overlongs, no surrogates, <= U+10FFFF. */
static size_t valid_seq_len(const unsigned char *s, size_t len, size_t *bad_prefix) {
    unsigned c = s[0];
    size_t need; unsigned lo = 0x80, hi = 0xBF;
    *bad_prefix = 1;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c >= 0xE1 && c <= 0xEF) need = 2;
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else return 0;
    for (size_t k = 1; k <= need; k++) {
        if (k >= len) return 0;
        unsigned x = s[k];
        if (x < lo || x > hi) return 0;
        lo = 0x80; hi = 0xBF;
        *bad_prefix = k + 1;
    }
    return need + 1;
}

size_t tok_utf8_check(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, bad;
    while (i < len) {
        if (u[i] < 0x80) { i++; continue; }
        size_t n = valid_seq_len(u + i, len - i, &bad);
        if (!n) return i;
        i += n;
    }
    return len;
}

int32_t tok_utf8_decode(const char *s, size_t *adv) {
    const unsigned char *u = (const unsigned char *)s;
    size_t n = tok_utf8_len(u[0]);
    int32_t cp = n == 1 ? u[0] : n == 2 ? (u[0] & 0x1F) : n == 3 ? (u[0] & 0x0F) : (u[0] & 0x07);
    for (size_t k = 1; k < n; k++) cp = (cp << 6) | (u[k] & 0x3F);
    *adv = n;
    return cp;
}

size_t tok_utf8_encode(int32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unicode White_Space, the set Rust's char::is_whitespace uses. */
int tok_is_whitespace(int32_t cp) {
    switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85:
    case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000: return 1;
    default: return cp >= 0x2000 && cp <= 0x200A;
    }
}

/* Rust regex \w: alphabetic, marks, decimal digits, connector punctuation,
 * join controls (approximated with general categories). */
int tok_is_alphanumeric(int32_t cp) {
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
               (cp >= 'A' && cp <= 'Z') || cp == '_';
    if (cp == 0x200C || cp == 0x200D) return 1;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC: return 1;
    default: return 0;
    }
}

void tok_utf8_lossy_append(tok_buf *b, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, start = 0, bad;
    while (i < len) {
        if (u[i] < 0x80) { i++; continue; }
        size_t n = valid_seq_len(u + i, len - i, &bad);
        if (n) { i += n; continue; }
        tok_buf_append(b, s + start, i - start);
        tok_buf_append(b, "\xEF\xBF\xBD", 3);
        i += bad;
        start = i;
    }
    tok_buf_append(b, s + start, len - start);
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the
 * other 68 bytes (0..32, 127..160, 173) to U+0100.. in byte order. */
int32_t tok_byte_to_cp(uint8_t b) {
    if (b <= 32) return 256 + b;
    if (b >= 127 && b <= 160) return 256 + 33 + (b - 127);
    if (b == 173) return 256 + 67;
    return b;
}

int tok_cp_to_byte(int32_t cp) {
    if (cp < 0 || cp > 256 + 67) return -1;
    if (cp >= 256) {
        int n = cp - 256;
        return n <= 32 ? n : n <= 66 ? 127 + (n - 33) : 173;
    }
    return tok_byte_to_cp((uint8_t)cp) == cp ? cp : -1;
}
