/* cache/remote_file.c: the file:// transport: the remote layout in a
 * directory (a shared file system), ROOT/cas/<hash> and ROOT/ac/<key>.
 *
 * Writes are atomic and safe under concurrent pushes from any number of
 * processes and machines: each body goes to a unique hidden temp name in
 * the destination directory (.tmp.<host>.<pid>.<n>, never a valid hash or
 * key, so readers never see it), is fsynced (unless FLAB_CACHE_FSYNC=0),
 * then rename(2)d over the final name.  Two pushes of one object write the
 * same bytes; either rename wins.  Reads copy from the current offset of
 * the destination file, so an interrupted download resumes (R5). */
#include "cache/internal.h"
#include "cache/remote_priv.h"
#include "util/error.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK ((size_t)8 << 20)
#define MAX_ENTRY_BYTES (256 << 20)

static unsigned long tmp_counter;

static int mkdir_p(const char *path) {
    char *p = flab_xstrdup(path);
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        if (*s && *s != '/') continue;
        char saved = *s;
        *s = 0;
        if (mkdir(p, 0755) < 0 && errno != EEXIST) rc = flab_fail_errno("%s: mkdir", p);
        *s = saved;
        if (!saved) break;
    }
    free(p);
    return rc;
}

int remote_file_init(FlabRemote *r) {
    char *cas = cache_i_join(r->root, "cas"), *ac = cache_i_join(r->root, "ac");
    int rc = mkdir_p(cas);
    if (rc == 0) rc = mkdir_p(ac);
    if (rc < 0) flab_error_prefix("remote %s: ", r->url);
    free(cas);
    free(ac);
    r->impl = r;   /* no state of its own */
    return rc;
}

static void file_close(FlabRemote *r) { r->impl = NULL; }

static int file_head(FlabRemote *r, const char *path, int64_t *size) {
    char *p = cache_i_join(r->root, path);
    struct stat st;
    int rc = stat(p, &st);
    int err = errno;
    free(p);
    if (rc < 0 && (err == ENOENT || err == ENOTDIR)) return 0;
    if (rc < 0) { errno = err; return flab_fail_errno("remote %s: %s", r->url, path); }
    if (size) *size = st.st_size;
    return 1;
}

static int file_get_mem(FlabRemote *r, const char *path, char **buf, size_t *len) {
    char *p = cache_i_join(r->root, path);
    FILE *f = fopen(p, "rb");
    free(p);
    if (!f) return errno == ENOENT ? 0 : flab_fail_errno("remote %s: %s", r->url, path);
    size_t cap = 4096, n = 0;
    char *b = flab_xmalloc(cap + 1);
    size_t got;
    while ((got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap && cap < MAX_ENTRY_BYTES) { cap *= 2; b = flab_xrealloc(b, cap + 1); }
        else if (n == cap) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(b); return flab_fail("remote %s: %s: read error", r->url, path); }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 1;
}

/* Copies in[off..] to out at its current position; progress as `what`. */
static int copy_range(FlabRemote *r, int in, int out, int64_t off, int64_t total,
                      const char *what, const char *hash, const char *name) {
    char *buf = flab_xmalloc(CHUNK);
    RemoteTick tick;
    remote_tick_start(&tick);
    int rc = 0;
    for (;;) {
        ssize_t got = pread(in, buf, CHUNK, off);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) { rc = flab_fail_errno("remote %s: %s: read", r->url, name); break; }
        if (got == 0) break;
        for (ssize_t done = 0; done < got && rc == 0;) {
            ssize_t w = write(out, buf + done, (size_t)(got - done));
            if (w < 0 && errno != EINTR) rc = flab_fail_errno("remote %s: %s: write", r->url, name);
            if (w > 0) done += w;
        }
        if (rc < 0) break;
        off += got;
        remote_tick(r, &tick, what, hash, off, total);
    }
    free(buf);
    return rc;
}

static int file_get_file(FlabRemote *r, const char *path, const char *hash, int fd, int64_t have,
                         int64_t total) {
    char *p = cache_i_join(r->root, path);
    int in = open(p, O_RDONLY | O_CLOEXEC);
    free(p);
    if (in < 0) return errno == ENOENT ? 0 : flab_fail_errno("remote %s: %s", r->url, path);
    int rc = copy_range(r, in, fd, have, total, "pull", hash, path);
    close(in);
    return rc < 0 ? -1 : 1;
}

static int write_all(FlabRemote *r, int fd, const RemotePut *p) {
    if (p->file) {
        int in = open(p->file, O_RDONLY | O_CLOEXEC);
        if (in < 0) return flab_fail_errno("%s: open", p->file);
        int rc = copy_range(r, in, fd, 0, p->size, "push", p->hash, p->path);
        close(in);
        return rc;
    }
    for (size_t done = 0; done < p->len;) {
        ssize_t w = write(fd, p->data + done, p->len - done);
        if (w < 0 && errno != EINTR) return flab_fail_errno("remote %s: %s: write", r->url, p->path);
        if (w > 0) done += (size_t)w;
    }
    return 0;
}

static int put_one(FlabRemote *r, const RemotePut *p) {
    char *final = cache_i_join(r->root, p->path);
    char *dir = flab_xstrdup(final);
    *strrchr(dir, '/') = 0;
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    size_t n = strlen(dir) + sizeof host + 64;
    char *tmp = flab_xmalloc(n);
    snprintf(tmp, n, "%s/.tmp.%s.%d.%lu", dir, host, (int)getpid(),
             __atomic_add_fetch(&tmp_counter, 1, __ATOMIC_RELAXED));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int rc = fd < 0 ? flab_fail_errno("remote %s: %s: create", r->url, tmp) : write_all(r, fd, p);
    if (rc == 0 && cache_i_fsync_fd(fd) < 0) rc = flab_fail_errno("remote %s: %s: fsync", r->url, tmp);
    if (fd >= 0 && close(fd) < 0 && rc == 0) rc = flab_fail_errno("remote %s: %s: close", r->url, tmp);
    if (rc == 0 && rename(tmp, final) < 0) rc = flab_fail_errno("remote %s: rename to %s", r->url, final);
    if (rc == 0) rc = cache_i_fsync_dir(dir);
    if (rc < 0) unlink(tmp);
    free(tmp);
    free(dir);
    free(final);
    return rc;
}

static int file_put(FlabRemote *r, const RemotePut *puts, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (put_one(r, &puts[i]) < 0) return -1;
    return 0;
}

const RemoteTransport remote_file_transport = {
    .head = file_head,
    .get_mem = file_get_mem,
    .get_file = file_get_file,
    .put = file_put,
    .close = file_close,
};
