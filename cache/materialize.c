/* cache/materialize.c: turning a manifest into a read-only directory.
 *
 * artifacts/<key> is assembled in artifacts/.tmp-<key>.<pid>.<n> from hard
 * links to the objects (a copy only where the link count is exhausted),
 * directories are made read-only (0555) and fsynced, and the temp dir is
 * renamed into place (I4): readers see a complete directory or none.  Two
 * processes materialising the same key race harmlessly: the loser's rename
 * fails with EEXIST and it deletes its copy.  A forced rebuild replaces the
 * directory with renameat2(RENAME_EXCHANGE), so the name never disappears.
 * Objects are read-only files; since the artifact shares their inodes, a
 * consumer cannot write through it without first chmod'ing it. */
#include "cache/internal.h"
#include <stdio.h>
#include "util/error.h"
#include "util/file.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

char *cache_i_artifact_dir(FlabCache *c, const char *key) {
    return cache_i_join3(c->dir, "artifacts", key);
}

static int copy_file(const char *src, const char *dst, unsigned mode) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return errno == ENOENT ? 1 : flab_fail_errno("%s: open", src);
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    int rc = out < 0 ? flab_fail_errno("%s: create", dst) : 0;
    while (rc == 0) {
        ssize_t w = sendfile(out, in, NULL, (size_t)1 << 30);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) rc = flab_fail_errno("%s: copy", dst);
        if (w <= 0) break;
    }
    if (rc == 0 && cache_i_fsync_fd(out) < 0) rc = flab_fail_errno("%s: fsync", dst);
    close(in);
    if (out >= 0) close(out);
    return rc;
}

/* Links (or copies) one file of the manifest.  1 = object missing. */
static int place_file(FlabCache *c, const CacheFile *f, const char *dst) {
    int exec = (f->mode & 0111) != 0;
    char *obj = cache_i_object_path(c, f->hash, exec);
    int rc = 0;
    if (link(obj, dst) < 0) {
        if (errno == ENOENT) rc = 1;
        else if (errno == EMLINK) rc = copy_file(obj, dst, exec ? 0555 : 0444);
        else rc = flab_fail_errno("%s: link to %s", obj, dst);
    }
    free(obj);
    return rc;
}

/* Makes every directory of the tree read-only and durable, deepest first. */
static int seal_dirs(const char *root, const CacheFile *files, size_t n) {
    for (size_t i = n; i-- > 0;) {
        if ((files[i].mode & 0170000) != 0040000) continue;
        char *d = cache_i_join(root, files[i].relpath);
        int rc = cache_i_fsync_dir(d);
        if (rc == 0 && chmod(d, 0555) < 0) rc = flab_fail_errno("%s: chmod", d);
        free(d);
        if (rc < 0) return -1;
    }
    if (cache_i_fsync_dir(root) < 0) return -1;
    return chmod(root, 0555) < 0 ? flab_fail_errno("%s: chmod", root) : 0;
}

static int build_tree(FlabCache *c, const char *tmp, const CacheFile *files, size_t n) {
    if (mkdir(tmp, 0755) < 0) return flab_fail_errno("%s: mkdir", tmp);
    for (size_t i = 0; i < n; i++) {
        char *dst = cache_i_join(tmp, files[i].relpath);
        int rc;
        if ((files[i].mode & 0170000) == 0040000) rc = flab_mkdir_p(dst, 0755);
        else rc = place_file(c, &files[i], dst);
        free(dst);
        if (rc != 0) return rc;
    }
    cache_i_crashpoint("artifact tree built");
    return seal_dirs(tmp, files, n);
}

static int swap_into_place(const char *tmp, const char *dir, int replace) {
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EEXIST && errno != ENOTEMPTY) return flab_fail_errno("%s: rename to %s", tmp, dir);
    if (!replace) return 0;   /* materialised meanwhile by another reader: same manifest */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) < 0)
        return flab_fail_errno("%s: exchange with %s", tmp, dir);
    return 0;
}

int cache_i_materialize(FlabCache *c, const char *key, const CacheFile *files,
                        size_t n, int replace) {
    char *adir = cache_i_join(c->dir, "artifacts");
    char prefix[64];
    snprintf(prefix, sizeof prefix, ".tmp-%s", key);
    char *tmp = cache_i_unique(c, adir, prefix);
    char *dir = cache_i_artifact_dir(c, key);
    int rc = build_tree(c, tmp, files, n);
    if (rc == 0) rc = swap_into_place(tmp, dir, replace);
    cache_i_crashpoint("artifact renamed");
    if (rc == 0) rc = cache_i_fsync_dir(adir);
    /* tmp now holds nothing, a loser's copy, a half tree or the replaced dir */
    char *msg = rc < 0 ? flab_xstrdup(flab_errmsg()) : NULL;
    cache_i_remove_tree(tmp);
    if (msg) flab_fail("%s", msg);
    else flab_error_clear();
    free(msg);
    free(adir);
    free(tmp);
    free(dir);
    return rc;
}

int cache_i_unmaterialize(FlabCache *c, const char *key) {
    char *adir = cache_i_join(c->dir, "artifacts");
    char prefix[64];
    snprintf(prefix, sizeof prefix, ".trash-%s", key);
    char *trash = cache_i_unique(c, adir, prefix);
    char *dir = cache_i_artifact_dir(c, key);
    int rc = 0;
    if (rename(dir, trash) == 0) rc = cache_i_remove_tree(trash);
    else if (errno != ENOENT) rc = flab_fail_errno("%s: rename to %s", dir, trash);
    free(adir);
    free(trash);
    free(dir);
    return rc;
}
