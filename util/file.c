/* util/file.c: whole-file read, durable atomic write, mkdir -p. */
#include "util/file.h"
#include "util/error.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int flab_read_file(const char *path, char **data, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return flab_fail_errno("%s: cannot open", path);
    struct stat st;
    if (fstat(fd, &st) < 0) { close(fd); return flab_fail_errno("%s: stat", path); }
    size_t cap = st.st_size > 0 ? (size_t)st.st_size : 4096, n = 0;
    char *buf = flab_xmalloc(cap + 1);
    for (;;) {
        if (n == cap) buf = flab_xrealloc(buf, (cap *= 2) + 1);
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { free(buf); close(fd); return flab_fail_errno("%s: read", path); }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *data = buf;
    if (len) *len = n;
    return 0;
}

static int fsync_dir_of(const char *path) {
    char *copy = flab_xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0) return flab_fail_errno("%s: cannot open its directory", path);
    int rc = fsync(fd);
    close(fd);
    return rc < 0 ? flab_fail_errno("%s: fsync of directory", path) : 0;
}

int flab_write_file_atomic(const char *path, const void *data, size_t len) {
    size_t n = strlen(path) + 32;
    char *tmp = flab_xmalloc(n);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) { flab_fail_errno("%s: cannot create", tmp); free(tmp); return -1; }
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) { flab_fail_errno("%s: write", tmp); goto fail; }
        p += w; len -= (size_t)w;
    }
    if (fsync(fd) < 0) { flab_fail_errno("%s: fsync", tmp); goto fail; }
    close(fd); fd = -1;
    if (rename(tmp, path) < 0) { flab_fail_errno("%s: rename to %s", tmp, path); goto fail; }
    free(tmp);
    return fsync_dir_of(path);
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
}

int flab_mkdir_p(const char *path, unsigned mode) {
    char *buf = flab_xstrdup(path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, mode) < 0 && errno != EEXIST) {
                flab_fail_errno("%s: mkdir", buf);
                free(buf);
                return -1;
            }
            if (!(*p = c)) break;
        }
    }
    free(buf);
    return 0;
}

int flab_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}
