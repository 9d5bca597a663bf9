/* cache/walk.c: file-system helpers of the cache: path joins, unique temp
 * names, a sorted recursive directory walk, rm -rf of read-only trees and
 * directory fsync.
 *
 * The walk defines the order in which directory hashes and manifests list
 * entries: relpath compared bytewise (strcmp), '/'-separated, so the same
 * tree yields the same hash on every machine. */
#include "cache/internal.h"
#include <stdio.h>
#include "util/error.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *cache_i_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = flab_xmalloc(n);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

char *cache_i_join3(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *s = flab_xmalloc(n);
    snprintf(s, n, "%s/%s/%s", a, b, c);
    return s;
}

char *cache_i_unique(FlabCache *c, const char *dir, const char *prefix) {
    cache_i_lock(c);
    unsigned long n = ++c->counter;
    cache_i_unlock(c);
    size_t len = strlen(dir) + strlen(prefix) + 64;
    char *s = flab_xmalloc(len);
    snprintf(s, len, "%s/%s.%ld.%lu", dir, prefix, (long)getpid(), n);
    return s;
}

int cache_i_sync_enabled(void) {
    static int enabled = -1;
    if (enabled < 0) {
        const char *e = getenv("FLAB_CACHE_FSYNC");
        enabled = !(e && !strcmp(e, "0"));
    }
    return enabled;
}

int cache_i_fsync_fd(int fd) {
    return cache_i_sync_enabled() ? fsync(fd) : 0;
}

int cache_i_fsync_dir(const char *path) {
    if (!cache_i_sync_enabled()) return 0;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return flab_fail_errno("%s: cannot open directory", path);
    int rc = fsync(fd);
    close(fd);
    return rc < 0 ? flab_fail_errno("%s: fsync", path) : 0;
}

/* ---- walk -------------------------------------------------------------- */

typedef struct { CacheWalkEntry *v; size_t n, cap; } EntryList;

static void list_push(EntryList *l, char *rel, const struct stat *st, int via_symlink) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = flab_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n].relpath = rel;
    l->v[l->n].st = *st;
    l->v[l->n].via_symlink = via_symlink;
    l->n++;
}

static int walk_dir(const char *root, const char *rel, int depth, int via, EntryList *l) {
    if (depth > 64) return flab_fail("%s/%s: directory nesting too deep (symlink loop?)", root, rel);
    char *abs = rel[0] ? cache_i_join(root, rel) : flab_xstrdup(root);
    DIR *d = opendir(abs);
    if (!d) { flab_fail_errno("%s: cannot open directory", abs); free(abs); return -1; }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *child_rel = rel[0] ? cache_i_join(rel, de->d_name) : flab_xstrdup(de->d_name);
        char *child_abs = cache_i_join(abs, de->d_name);
        struct stat st, lst;
        int child_via = via || (lstat(child_abs, &lst) == 0 && S_ISLNK(lst.st_mode));
        if (stat(child_abs, &st) < 0) rc = flab_fail_errno("%s: cannot stat (dangling symlink?)", child_abs);
        else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
            rc = flab_fail("%s: not a regular file or directory", child_abs);
        else {
            list_push(l, child_rel, &st, child_via);
            child_rel = NULL;
            if (S_ISDIR(st.st_mode)) rc = walk_dir(root, l->v[l->n - 1].relpath, depth + 1, child_via, l);
        }
        free(child_rel);
        free(child_abs);
    }
    closedir(d);
    free(abs);
    return rc;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const CacheWalkEntry *)a)->relpath, ((const CacheWalkEntry *)b)->relpath);
}

int cache_i_walk(const char *root, CacheWalkEntry **out, size_t *n) {
    EntryList l = {0};
    if (walk_dir(root, "", 0, 0, &l) < 0) { cache_i_walk_free(l.v, l.n); return -1; }
    if (l.n) qsort(l.v, l.n, sizeof *l.v, cmp_entry);
    *out = l.v;
    *n = l.n;
    return 0;
}

void cache_i_walk_free(CacheWalkEntry *e, size_t n) {
    for (size_t i = 0; i < n; i++) free(e[i].relpath);
    free(e);
}

/* ---- rm -rf -------------------------------------------------------------- */

static int remove_at(int dirfd, const char *name, const char *shown);

static int remove_dir_contents(int fd, const char *shown) {
    DIR *d = fdopendir(fd);
    if (!d) { close(fd); return flab_fail_errno("%s: opendir", shown); }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (remove_at(dirfd(d), de->d_name, shown) < 0) rc = -1;
    }
    closedir(d);
    return rc;
}

static int remove_at(int dirfd, const char *name, const char *shown) {
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : flab_fail_errno("%s/%s: stat", shown, name);
    if (S_ISDIR(st.st_mode)) {
        fchmodat(dirfd, name, 0700, 0);   /* read-only artifact dirs */
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) return flab_fail_errno("%s/%s: open", shown, name);
        if (remove_dir_contents(fd, shown) < 0) return -1;
        if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
            return flab_fail_errno("%s/%s: rmdir", shown, name);
        return 0;
    }
    if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
        return flab_fail_errno("%s/%s: unlink", shown, name);
    return 0;
}

int cache_i_remove_tree(const char *path) {
    return remove_at(AT_FDCWD, path, ".");
}
