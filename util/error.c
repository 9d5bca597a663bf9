/* util/error.c: thread-local error messages and checked allocation. */
#include "util/error.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLAB_ERRMSG_MAX 4096
static _Thread_local char errmsg[FLAB_ERRMSG_MAX];

int flab_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    return -1;
}

int flab_fail_errno(const char *fmt, ...) {
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof errmsg)
        snprintf(errmsg + n, sizeof errmsg - n, ": %s", strerror(saved));
    return -1;
}

void flab_error_prefix(const char *fmt, ...) {
    char prefix[1024], old[FLAB_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errmsg, sizeof old);
    size_t n = strlen(prefix);
    if (n >= sizeof errmsg) n = sizeof errmsg - 1;
    memcpy(errmsg, prefix, n);
    size_t rest = strnlen(old, sizeof old - 1);
    if (rest > sizeof errmsg - 1 - n) rest = sizeof errmsg - 1 - n;
    memcpy(errmsg + n, old, rest);
    errmsg[n + rest] = 0;
}

const char *flab_errmsg(void) { return errmsg; }
void flab_error_clear(void) { errmsg[0] = 0; }

static void *oom(size_t n) {
    fprintf(stderr, "flab: out of memory allocating %zu bytes\n", n);
    abort();
}

void *flab_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    return p ? p : oom(n);
}

void *flab_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : oom(n * size);
}

void *flab_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    return q ? q : oom(n);
}

char *flab_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(flab_xmalloc(n), s, n);
}
