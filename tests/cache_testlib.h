/* tests/cache_testlib.h: helpers shared by the tests/test_cache*.c programs:
 * scratch directories, writing files, a small artifact writer and the
 * expected-content checker used after crashes. */
#ifndef FLAB_TESTS_CACHE_TESTLIB_H
#define FLAB_TESTS_CACHE_TESTLIB_H
#include "cache/cache.h"
#include "util/error.h"
#include "util/file.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh scratch directory under $TMPDIR (or /tmp), malloc'd path. */
static inline char *ct_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/flab-cache-test.XXXXXX", base && base[0] ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static inline void ct_rmrf(const char *path) {
    char cmd[1024];
    /* only directories: files may be hard links to objects whose mode matters */
    snprintf(cmd, sizeof cmd, "find '%s' -type d -exec chmod u+w {} + 2>/dev/null; rm -rf '%s'", path, path);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", path);
}

static inline char *ct_path(const char *dir, const char *rel) {
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

/* Writes dir/rel (creating parents) with the given bytes and mode. */
static inline int ct_write(const char *dir, const char *rel, const void *data, size_t len, unsigned mode) {
    char *p = ct_path(dir, rel);
    char *slash = strrchr(p, '/');
    *slash = 0;
    flab_mkdir_p(p, 0755);
    *slash = '/';
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    int rc = fd >= 0 && write(fd, data, len) == (ssize_t)len ? 0 : -1;
    if (fd >= 0) close(fd);
    chmod(p, mode);
    free(p);
    return rc;
}

static inline int ct_write_str(const char *dir, const char *rel, const char *s) {
    return ct_write(dir, rel, s, strlen(s), 0644);
}

/* 1 if file dir/rel holds exactly s. */
static inline int ct_file_is(const char *dir, const char *rel, const char *s) {
    char *p = ct_path(dir, rel), *data = NULL;
    size_t len;
    int ok = flab_read_file(p, &data, &len) == 0 && len == strlen(s) && !memcmp(data, s, len);
    free(data);
    free(p);
    return ok;
}

/* Overwrites the first bytes of a stored (read-only) object in place with
 * s, as a disk error would; the file is left writable.  0, or -1 when it
 * cannot be opened. */
static inline int ct_scribble(const char *path, const char *s) {
    chmod(path, 0644);
    FILE *f = fopen(path, "r+");
    if (!f) return -1;
    fputs(s, f);
    fclose(f);
    return 0;
}

/* A key that names a test artifact (XXH3 of a label). */
static inline void ct_key(const char *label, char key[33]) { flab_hash_bytes(label, strlen(label), key); }
#endif
