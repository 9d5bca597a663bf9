/* eval/strbuf.h: a growable NUL-terminated string (eval's text assembly).
 * Invariant: data is always NUL-terminated once anything was appended;
 * allocation failure aborts (flab_xrealloc), so appends cannot fail. */
#ifndef FLAB_EVAL_STRBUF_H
#define FLAB_EVAL_STRBUF_H
#include <stddef.h>

typedef struct { char *data; size_t len, cap; } StrBuf;

void sb_appendn(StrBuf *b, const char *s, size_t n);
void sb_append(StrBuf *b, const char *s);
void sb_putc(StrBuf *b, char c);
void sb_printf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the string to the caller (never NULL: "" when empty). */
char *sb_take(StrBuf *b);
#endif
