/* tests/model_testlib.h: helpers of the model-file tests (test_checkpoint.c,
 * test_safetensors.c): paths inside the scratch directory and byte-for-byte
 * file comparison.  Test-only; header-only so each test binary includes it. */
#ifndef FLAB_TESTS_MODEL_TESTLIB_H
#define FLAB_TESTS_MODEL_TESTLIB_H
#include "util/file.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dir/name in one of four rotating static buffers: valid until the fourth
 * call after this one, so a call may take two or three such paths. */
static inline char *mt_path(const char *dir, const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* 1 when both files can be read and hold the same bytes. */
static inline int mt_files_equal(const char *p, const char *q) {
    char *a, *b;
    size_t na, nb;
    if (flab_read_file(p, &a, &na) < 0) return 0;
    if (flab_read_file(q, &b, &nb) < 0) { free(a); return 0; }
    int eq = na == nb && !memcmp(a, b, na);
    free(a);
    free(b);
    return eq;
}
#endif
