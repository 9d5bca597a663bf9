/* cache/objects.c: the content-addressed object store.
 *
 * objects/ab/<hash> holds bytes hashing to <hash> (XXH3-128), mode 0444;
 * objects/ab/<hash>.x the same bytes with mode 0555 (a file's mode lives in
 * its inode, and materialised artifacts hard-link objects, so an executable
 * and a plain file with equal bytes need two inodes).
 *
 * Storing (I1, I3): the staged file is hashed, fsynced and chmod'ed
 * read-only, then link(2)ed to its object name (link never replaces an
 * existing object: the first copy wins, later ones are dropped = dedup),
 * then objects/ab is fsynced.  The staged name is removed afterwards.  A
 * crash at any point leaves either no object or a complete, durable one. */
#include "cache/internal.h"
#include <stdio.h>
#include "util/error.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

char *cache_i_object_path(FlabCache *c, const char *hash, int exec) {
    size_t n = strlen(c->dir) + 64;
    char *p = flab_xmalloc(n);
    snprintf(p, n, "%s/objects/%.2s/%s%s", c->dir, hash, hash, exec ? ".x" : "");
    return p;
}

/* Copies src into a fresh file in DIR/staging (the cache's file system, and
 * never beside src, which may be a user's directory behind a symlink).
 * gc removes copies left by dead processes. */
static int copy_to_private(FlabCache *c, const char *src, char **copy) {
    char *dir = cache_i_join(c->dir, "staging");
    *copy = cache_i_unique(c, dir, ".flab-copy");
    free(dir);
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    if (in < 0) { flab_fail_errno("%s: open", src); goto done; }
    out = open(*copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) { flab_fail_errno("%s: create", *copy); goto done; }
    for (;;) {
        ssize_t w = sendfile(out, in, NULL, (size_t)1 << 30);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) { flab_fail_errno("%s: copy to %s", src, *copy); goto done; }
        if (w == 0) break;
    }
    rc = 0;
done:
    if (in >= 0) close(in);
    if (out >= 0) close(out);
    if (rc < 0) { unlink(*copy); free(*copy); *copy = NULL; }
    return rc;
}

/* Hash + fsync + chmod of one private file.  size out. */
static int seal_file(const char *path, int exec, char hash[33], int64_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return flab_fail_errno("%s: open", path);
    struct stat st;
    int rc = fstat(fd, &st);
    if (rc == 0) rc = cache_i_hash_file_fd(fd, st.st_size, hash);
    if (rc == 0) rc = cache_i_fsync_fd(fd);
    if (rc == 0) rc = fchmod(fd, exec ? 0555 : 0444);
    if (rc < 0) flab_fail_errno("%s: hash/fsync", path);
    *size = st.st_size;
    close(fd);
    return rc;
}

/* Links path as object hash; EEXIST = already stored.  Creates objects/ab. */
static int link_object(FlabCache *c, const char *path, const char *hash, int exec) {
    char *obj = cache_i_object_path(c, hash, exec);
    char *dir = flab_xstrdup(obj);
    *strrchr(dir, '/') = 0;
    int rc = 0;
    if (mkdir(dir, 0755) == 0) {
        /* the new objects/ab entry must be durable in objects/ */
        char *parent = cache_i_join(c->dir, "objects");
        rc = cache_i_fsync_dir(parent);
        free(parent);
    }
    else if (errno != EEXIST) rc = flab_fail_errno("%s: mkdir", dir);
    if (rc == 0 && link(path, obj) < 0) {
        struct stat have, mine;
        if (errno != EEXIST) rc = flab_fail_errno("%s: link to %s", path, obj);
        /* an existing object of the wrong size is damaged: replace it atomically */
        else if (stat(obj, &have) == 0 && stat(path, &mine) == 0 && have.st_size != mine.st_size &&
                 rename(path, obj) < 0)
            rc = flab_fail_errno("%s: replace damaged object %s", path, obj);
    }
    cache_i_crashpoint("object linked");
    if (rc == 0) rc = cache_i_fsync_dir(dir);
    free(obj);
    free(dir);
    return rc;
}

/* 1 when staged is already the very inode of its object (hash filled). */
static int is_linked_object(FlabCache *c, const char *staged, const struct stat *st,
                            int exec, char hash[33], int64_t *size) {
    if (flab_hash_file(staged, hash) < 0) { flab_error_clear(); return 0; }
    char *obj = cache_i_object_path(c, hash, exec);
    struct stat os;
    int same = stat(obj, &os) == 0 && os.st_ino == st->st_ino && os.st_dev == st->st_dev;
    free(obj);
    *size = st->st_size;
    return same;
}

int cache_i_store_file(FlabCache *c, const char *staged, const struct stat *st,
                       int foreign, int exec, char hash[33], int64_t *size) {
    char *own = NULL;
    const char *path = staged;
    int shared = foreign || st->st_nlink > 1;
    if (shared && is_linked_object(c, staged, st, exec, hash, size)) {
        /* a link to an object (e.g. `ln $FLAB_IN_1/w $FLAB_OUT/`): no copy */
        if (!foreign) unlink(staged);
        return 0;
    }
    if (shared) {
        /* someone else's file (other links, or behind a symlink): never make
         * that inode an object, never chmod it; store a private copy */
        if (copy_to_private(c, staged, &own) < 0) return -1;
        path = own;
    }
    int rc = seal_file(path, exec, hash, size);
    cache_i_crashpoint("object sealed");
    if (rc == 0) rc = link_object(c, path, hash, exec);
    if (own) { unlink(own); free(own); }
    /* the staged name is only tidied here; a read-only staged directory is
     * emptied later by the staging removal, which makes directories writable */
    if (rc == 0 && !foreign) unlink(staged);   /* never through a symlink */
    return rc;
}
