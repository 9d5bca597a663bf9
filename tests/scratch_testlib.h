/* tests/scratch_testlib.h: scratch directories of the C tests: make one from
 * a mkdtemp template, remove one with everything in it.  Test-only;
 * header-only so each test binary includes it. */
#ifndef FLAB_TESTS_SCRATCH_TESTLIB_H
#define FLAB_TESTS_SCRATCH_TESTLIB_H
#include <stdio.h>
#include <stdlib.h>

/* Creates a fresh directory from tmpl ("/tmp/name-XXXXXX") into dir (cap
 * bytes); 0, or -1 when it could not. */
static inline int scratch_make(char *dir, size_t cap, const char *tmpl) {
    snprintf(dir, cap, "%s", tmpl);
    return mkdtemp(dir) ? 0 : -1;
}

/* rm -rf 'dir'; 0 when removed, else -1. */
static inline int scratch_remove(const char *dir) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) != 0 ? -1 : 0;
}
#endif
