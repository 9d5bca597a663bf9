/* cache/statcache.c: hashing inputs without re-reading unchanged files.
 *
 * A row (path, dev, ino, size, mtime_ns, ctime_ns, hashed_ns, hash) says
 * "this file, as identified by these stat fields, had this hash when read
 * at hashed_ns".  It is trusted (I8) only if every field still matches and
 * the file's mtime and ctime were at least CACHE_STAT_SLACK_NS before
 * hashed_ns: a write that lands in the same coarse timestamp tick as the
 * hashing would otherwise go unnoticed (git's "racily clean" problem).
 * Paths are made absolute (cwd prepended), not canonicalised.
 *
 * Directories are hashed as documented in cache.h (cache_hash_path). */
#include "cache/internal.h"
#include <stdio.h>
#include "util/error.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t stat_slack = CACHE_STAT_SLACK_NS;

void cache_debug_set_stat_slack_ns(int64_t ns) { stat_slack = ns < 0 ? CACHE_STAT_SLACK_NS : ns; }

static int64_t ts_ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts_ns(ts);
}

static char *absolute(const char *path) {
    if (path[0] == '/') return flab_xstrdup(path);
    char *cwd = getcwd(NULL, 0);
    if (!cwd) return flab_xstrdup(path);
    char *abs = cache_i_join(cwd, path);
    free(cwd);
    return abs;
}

/* 1 and hex filled when a trusted row matches st; 0 otherwise. */
static int stat_lookup(FlabCache *c, const char *abs, const struct stat *st, char hex[33]) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(c->db, "SELECT dev, ino, size, mtime_ns, ctime_ns, hashed_ns, hash "
                           "FROM statcache WHERE path=?1", -1, &q, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(q, 1, abs, -1, SQLITE_STATIC);
    int hit = 0;
    if (sqlite3_step(q) == SQLITE_ROW) {
        int64_t mt = ts_ns(st->st_mtim), ct = ts_ns(st->st_ctim), hashed = sqlite3_column_int64(q, 5);
        const char *h = (const char *)sqlite3_column_text(q, 6);
        hit = sqlite3_column_int64(q, 0) == (int64_t)st->st_dev &&
              sqlite3_column_int64(q, 1) == (int64_t)st->st_ino &&
              sqlite3_column_int64(q, 2) == (int64_t)st->st_size &&
              sqlite3_column_int64(q, 3) == mt && sqlite3_column_int64(q, 4) == ct &&
              hashed - mt >= stat_slack && hashed - ct >= stat_slack &&
              flab_hash_is_valid(h);
        if (hit) memcpy(hex, h, 33);
    }
    sqlite3_finalize(q);
    return hit;
}

/* Best effort: a failure to remember only costs a re-hash next time. */
static void stat_store(FlabCache *c, const char *abs, const struct stat *st,
                       int64_t hashed, const char *hex) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO statcache(path, dev, ino, size, "
                           "mtime_ns, ctime_ns, hashed_ns, hash) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                           -1, &q, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(q, 1, abs, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, (int64_t)st->st_dev);
    sqlite3_bind_int64(q, 3, (int64_t)st->st_ino);
    sqlite3_bind_int64(q, 4, (int64_t)st->st_size);
    sqlite3_bind_int64(q, 5, ts_ns(st->st_mtim));
    sqlite3_bind_int64(q, 6, ts_ns(st->st_ctim));
    sqlite3_bind_int64(q, 7, hashed);
    sqlite3_bind_text(q, 8, hex, -1, SQLITE_STATIC);
    sqlite3_step(q);
    sqlite3_finalize(q);
}

/* Reads and hashes the file; the stat used for the row is taken from the
 * open descriptor before reading, and the time before reading, so a write
 * during hashing changes ctime after "hashed" and fails the check later. */
static int hash_and_remember(FlabCache *c, const char *path, const char *abs, char hex[33]) {
    int64_t started = now_ns();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return flab_fail_errno("%s: cannot open", path);
    struct stat st;
    if (fstat(fd, &st) < 0) { close(fd); return flab_fail_errno("%s: stat", path); }
    if (!S_ISREG(st.st_mode)) { close(fd); return flab_fail("%s: not a regular file", path); }
    int rc = cache_i_hash_file_fd(fd, st.st_size, hex);
    if (rc < 0) flab_fail_errno("%s: read", path);
    close(fd);
    if (rc < 0) return -1;
    c->stats.files_hashed++;
    c->stats.bytes_hashed += (uint64_t)st.st_size;
    stat_store(c, abs, &st, started, hex);
    return 0;
}

static int hash_file_locked(FlabCache *c, const char *path, char hex[33]) {
    struct stat st;
    if (stat(path, &st) < 0) return flab_fail_errno("%s: cannot stat", path);
    if (!S_ISREG(st.st_mode)) return flab_fail("%s: not a regular file", path);
    char *abs = absolute(path);
    int rc = 0;
    if (stat_lookup(c, abs, &st, hex)) c->stats.stat_hits++;
    else rc = hash_and_remember(c, path, abs, hex);
    free(abs);
    return rc;
}

int cache_hash_file(FlabCache *c, const char *path, char out_hex[33]) {
    cache_i_lock(c);
    int rc = hash_file_locked(c, path, out_hex);
    cache_i_unlock(c);
    return rc;
}

/* ---- directories ------------------------------------------------------- */

static int hash_dir_locked(FlabCache *c, const char *path, char hex[33]) {
    CacheWalkEntry *e;
    size_t n;
    if (cache_i_walk(path, &e, &n) < 0) return -1;
    FlabHasher *h = flab_hasher_new();
    int rc = 0;
    /* one transaction for all the stat-cache rows: much faster on big trees */
    sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *rel = e[i].relpath;
        if (S_ISDIR(e[i].st.st_mode)) {
            flab_hasher_update(h, "d ", 2);
            flab_hasher_update(h, rel, strlen(rel) + 1);
            flab_hasher_update(h, "\n", 1);
            continue;
        }
        char *abs = cache_i_join(path, rel), fh[33];
        rc = hash_file_locked(c, abs, fh);
        free(abs);
        if (rc < 0) break;
        flab_hasher_update(h, "f ", 2);
        flab_hasher_update(h, rel, strlen(rel) + 1);
        flab_hasher_update(h, (e[i].st.st_mode & 0111) ? "x" : "-", 2);
        flab_hasher_update(h, fh, 32);
        flab_hasher_update(h, "\n", 1);
    }
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc == 0) flab_hasher_digest(h, hex);
    flab_hasher_free(h);
    cache_i_walk_free(e, n);
    return rc;
}

int cache_hash_path(FlabCache *c, const char *path, char out_hex[33]) {
    struct stat st;
    if (stat(path, &st) < 0) return flab_fail_errno("%s: cannot stat", path);
    cache_i_lock(c);
    int rc = S_ISDIR(st.st_mode) ? hash_dir_locked(c, path, out_hex)
                                 : hash_file_locked(c, path, out_hex);
    cache_i_unlock(c);
    return rc;
}
