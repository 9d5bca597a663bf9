/* cache/remote_pull.c: downloading an artifact into the local cache
 * (remote.h R3, R5).
 *
 * The entry ac/<key> is fetched and validated; the per-key build lock is
 * taken with cache_begin (I5), so a pull and a build of one key never race;
 * each file is placed in the build's staging directory, from the local
 * object store when it already holds that object (a hard link: no
 * download), else downloaded into DIR/remote-parts/<hash>.part, verified
 * (size and XXH3-128) and renamed into the staging directory; the log
 * object becomes the build's log; then cache_commit() stores and indexes
 * everything through the normal commit path (objects re-hashed, fsynced,
 * row, materialised dir, provenance commit). */
#include "cache/internal.h"
#include "cache/remote_priv.h"
#include "util/error.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <unistd.h>

typedef struct {
    FlabRemote *r;
    FlabCache *c;
    const char *key;
    RemoteStats *st;
} Pull;

static int mkdirs(char *path, size_t from) {
    for (char *p = path + from; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc < 0 && errno != EEXIST) return flab_fail_errno("%s: mkdir", path);
    }
    return 0;
}

static int copy_file(const char *src, const char *dst, int exec) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return flab_fail_errno("%s: open", src);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, exec ? 0755 : 0644);
    int rc = out < 0 ? flab_fail_errno("%s: create", dst) : 0;
    while (rc == 0) {
        ssize_t w = sendfile(out, in, NULL, (size_t)1 << 30);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) rc = flab_fail_errno("%s: copy to %s", src, dst);
        if (w <= 0) break;
    }
    close(in);
    if (out >= 0) close(out);
    return rc;
}

/* The local store already has hash: link (same mode) or copy (other mode).
 * 1 done, 0 not there, -1 error. */
static int from_local_store(Pull *p, const char *hash, int64_t size, int exec, const char *dst) {
    for (int same = 1; same >= 0; same--) {
        char *obj = cache_i_object_path(p->c, hash, same ? exec : !exec);
        struct stat st;
        int rc = 0;
        if (stat(obj, &st) == 0 && st.st_size == size) {
            if (!same || link(obj, dst) < 0) rc = copy_file(obj, dst, exec);
            rc = rc < 0 ? -1 : 1;
        }
        free(obj);
        if (rc) {
            if (rc == 1) p->st->objects_local++;
            return rc;
        }
    }
    return 0;
}

/* Opens and locks DIR/remote-parts/<hash>.part, the same file a concurrent
 * puller of this object would use (re-checked after the lock: the holder
 * before us may have renamed it away).  fd or -1. */
static int open_part(Pull *p, const char *hash, char **part) {
    char *dir = cache_i_join(cache_dir(p->c), "remote-parts");
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        flab_fail_errno("%s: mkdir", dir);
        free(dir);
        return -1;
    }
    size_t n = strlen(dir) + 48;
    *part = flab_xmalloc(n);
    snprintf(*part, n, "%s/%s.part", dir, hash);
    free(dir);
    for (;;) {
        int fd = open(*part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) { flab_fail_errno("%s: open", *part); break; }
        struct stat a, b;
        if (flock(fd, LOCK_EX) == 0 && fstat(fd, &a) == 0 && stat(*part, &b) == 0 &&
            a.st_ino == b.st_ino && a.st_dev == b.st_dev) return fd;
        close(fd);
    }
    free(*part);
    *part = NULL;
    return -1;
}

/* Fetches the rest of the object into fd (R5), then checks size and hash.
 * 1 verified, 0 the remote has no such object, -1 error (part removed when corrupt). */
static int fetch_verified(Pull *p, const char *hash, int64_t size, int fd, const char *part) {
    char path[40], got[33] = "(unreadable)";
    snprintf(path, sizeof path, "cas/%s", hash);
    for (int attempt = 0; attempt < 2; attempt++) {
        struct stat st;
        if (fstat(fd, &st) < 0) return flab_fail_errno("%s: stat", part);
        int64_t have = st.st_size;
        if (have > size) { if (ftruncate(fd, 0) < 0) return flab_fail_errno("%s", part); have = 0; }
        if (have < size) {
            if (lseek(fd, have, SEEK_SET) < 0) return flab_fail_errno("%s: seek", part);
            int g = p->r->t->get_file(p->r, path, hash, fd, have, size);
            if (g <= 0) return g;
            p->st->objects_fetched++;
            if (fstat(fd, &st) < 0) return flab_fail_errno("%s: stat", part);
            p->st->bytes_fetched += (uint64_t)(st.st_size - have);
        }
        int resumed = have > 0;
        if (st.st_size == size && cache_i_hash_file_fd(fd, size, got) == 0 && !strcmp(got, hash))
            return 1;
        flab_error_clear();
        if (ftruncate(fd, 0) < 0) return flab_fail_errno("%s", part);
        if (resumed) continue;    /* a stale part: once more from the start */
        unlink(part);
        if (st.st_size != size)
            return flab_fail("remote %s: object %s is truncated or damaged: %lld bytes instead of "
                             "%lld; refused", remote_url(p->r), path, (long long)st.st_size,
                             (long long)size);
        return flab_fail("remote %s: object %s is corrupt (its content hashes to %s); refused",
                         remote_url(p->r), path, got);
    }
    return flab_fail("remote %s: object %s fails verification; refused", remote_url(p->r), path);
}

/* Places object hash at dst (created; mode 0644/0755): local store, else download. */
static int obtain(Pull *p, const char *hash, int64_t size, int exec, const char *dst) {
    int rc = from_local_store(p, hash, size, exec, dst);
    if (rc) return rc < 0 ? -1 : 0;
    char *part;
    int fd = open_part(p, hash, &part);
    if (fd < 0) return -1;
    rc = fetch_verified(p, hash, size, fd, part);
    if (rc == 0)
        rc = flab_fail("remote %s: object cas/%s named by ac/%s is missing on the server",
                       remote_url(p->r), hash, p->key);
    else if (rc == 1) {
        rc = 0;
        if (fchmod(fd, exec ? 0755 : 0644) < 0 || rename(part, dst) < 0)
            rc = flab_fail_errno("%s: rename to %s", part, dst);
    }
    close(fd);
    free(part);
    return rc;
}

static int stage_files(Pull *p, const RemoteEntry *e, CacheBuild *b) {
    const char *out = cache_build_outdir(b);
    size_t base = strlen(out) + 1;
    for (size_t i = 0; i < e->nfiles; i++) {
        const CacheFile *f = &e->files[i];
        char *dst = cache_i_join(out, f->relpath);
        int rc = mkdirs(dst, base);
        if (rc == 0 && (f->mode & 0170000) == 0040000) {
            if (mkdir(dst, 0755) < 0 && errno != EEXIST) rc = flab_fail_errno("%s: mkdir", dst);
        } else if (rc == 0) {
            size_t j = 0;   /* the same object staged earlier in this entry: copy it */
            while (j < i && (strcmp(e->files[j].hash, f->hash) || e->files[j].mode != f->mode)) j++;
            char *twin = j < i ? cache_i_join(out, e->files[j].relpath) : NULL;
            rc = twin ? copy_file(twin, dst, (f->mode & 0111) != 0)
                      : obtain(p, f->hash, f->size, (f->mode & 0111) != 0, dst);
            free(twin);
            if (rc < 0) flab_error_prefix("%s: ", f->relpath);
        }
        free(dst);
        if (rc < 0) return -1;
    }
    if (!e->log_hash[0]) return 0;
    unlink(cache_build_logpath(b));
    if (obtain(p, e->log_hash, e->log_size, 0, cache_build_logpath(b)) == 0) return 0;
    flab_error_prefix("build log: ");
    return -1;
}

static int fetch_entry(Pull *p, RemoteEntry *e) {
    char path[40], where[600];
    snprintf(path, sizeof path, "ac/%s", p->key);
    char *text = NULL;
    size_t len = 0;
    int g = p->r->t->get_mem(p->r, path, &text, &len);
    if (g <= 0) return g;
    snprintf(where, sizeof where, "remote %s: %s", remote_url(p->r), path);
    int rc = remote_entry_parse(text, p->key, where, e);
    free(text);
    return rc < 0 ? -1 : 1;
}

int remote_pull(FlabRemote *r, FlabCache *c, const char *key, RemoteStats *stats) {
    RemoteStats local = {0};
    Pull p = {r, c, key, stats ? stats : &local};
    if (!flab_hash_is_valid(key)) return flab_fail("pull: bad key '%s'", key ? key : "(null)");
    int have = cache_lookup(c, key, NULL);
    if (have != 0) return have;
    RemoteEntry e;
    int f = fetch_entry(&p, &e);
    if (f <= 0) return f;
    CacheBuild *b = NULL;
    int rc = cache_begin(c, key, 0, &b);
    if (rc == 0) {
        if (stage_files(&p, &e, b) < 0) {
            flab_error_prefix("pull of %s (%s): ", e.target, key);
            cache_abort(b);
            rc = -1;
        } else {
            rc = cache_commit(b, e.target, e.metrics_json, e.provenance_json, NULL);
            if (rc == 0) p.st->artifacts++;
        }
    }
    remote_entry_free(&e);
    return rc < 0 ? -1 : 1;
}
