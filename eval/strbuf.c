/* eval/strbuf.c: growable string (see strbuf.h). */
#include "eval/strbuf.h"
#include "util/error.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void sb_reserve(StrBuf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    b->data = flab_xrealloc(b->data, cap);
    b->cap = cap;
}

void sb_appendn(StrBuf *b, const char *s, size_t n) {
    sb_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sb_append(StrBuf *b, const char *s) { sb_appendn(b, s, strlen(s)); }

void sb_putc(StrBuf *b, char c) { sb_appendn(b, &c, 1); }

void sb_printf(StrBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char probe[1];
    int n = vsnprintf(probe, sizeof probe, fmt, ap);   /* length only */
    va_end(ap);
    if (n <= 0) return;
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *sb_take(StrBuf *b) {
    if (!b->data) sb_reserve(b, 0), b->data[0] = '\0';
    char *s = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}
