/* util/error.h: how library code reports failure.
 *
 * Library code (engine/, cache/, rules/, model/, kernels/) never exits and
 * never prints errors itself: a failing function records a message here and
 * returns -1 (or NULL).  Only main() decides what to print and how to exit.
 * Messages name what failed: the file, line, tensor or parameter.
 * The message is thread-local, so worker threads do not clobber each other. */
#ifndef FLAB_UTIL_ERROR_H
#define FLAB_UTIL_ERROR_H
#include <stddef.h>

/* Records a printf-style message; always returns -1 so callers can write
 * `return flab_fail("%s: bad header", path);`. */
int flab_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Like flab_fail, appending ": strerror(errno)". */
int flab_fail_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prepends context to the current message ("loading model: " + msg). */
void flab_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last message recorded by this thread ("" if none). */
const char *flab_errmsg(void);
void flab_error_clear(void);

/* Allocation that cannot fail: aborts with a message on out-of-memory
 * (the one exception to "never exit": there is nothing sane to return). */
void *flab_xmalloc(size_t n);
void *flab_xcalloc(size_t n, size_t size);
void *flab_xrealloc(void *p, size_t n);
char *flab_xstrdup(const char *s);
#endif
