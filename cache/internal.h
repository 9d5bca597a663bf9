/* cache/internal.h: what the files of cache/ share and nobody else uses.
 *
 * The handle, path helpers, the directory walker, lock helpers, the object
 * store and the test-only crash hook.  Functions named cache_i_* assume the
 * caller holds c->mu where they touch c->db. */
#ifndef FLAB_CACHE_INTERNAL_H
#define FLAB_CACHE_INTERNAL_H
#include "cache/cache.h"
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>

struct FlabCache {
    char *dir;                 /* absolute */
    sqlite3 *db;
    pthread_mutex_t mu;        /* recursive: serialises use of db and stats */
    CacheStats stats;
    unsigned long counter;     /* makes temp names unique within the process */
};

void cache_i_lock(FlabCache *c);
void cache_i_unlock(FlabCache *c);

/* malloc'd "a/b" (and "a/b/c" with path3).  */
char *cache_i_join(const char *a, const char *b);
char *cache_i_join3(const char *a, const char *b, const char *c);
/* A unique name "<prefix>.<pid>.<counter>" for temp files/dirs. */
char *cache_i_unique(FlabCache *c, const char *dir, const char *prefix);

/* ---- directory walk (cache/walk.c) ---- */
typedef struct {
    char *relpath;
    struct stat st;            /* stat() of the entry (symlinks followed) */
    int via_symlink;           /* the entry or one of its parent dirs is a symlink */
} CacheWalkEntry;
/* Every entry under root (not root itself), sorted by relpath bytewise.
 * Symlinks are followed; dangling links, fifos, sockets and devices are
 * errors naming the path; depth > 64 is an error (symlink loop). */
int cache_i_walk(const char *root, CacheWalkEntry **out, size_t *n);
void cache_i_walk_free(CacheWalkEntry *e, size_t n);

/* rm -rf that first makes read-only directories writable.  Missing is fine. */
int cache_i_remove_tree(const char *path);
/* fsync a directory by path. */
int cache_i_fsync_dir(const char *path);
/* fsync(fd) unless FLAB_CACHE_FSYNC=0 is set in the environment (see
 * cache_open in cache.h); cache_i_fsync_dir obeys it too. */
int cache_i_fsync_fd(int fd);
int cache_i_sync_enabled(void);

/* ---- locks (cache/lock.c) ---- */
/* flock(LOCK_EX) on path (created if needed).  Returns 0 and *fd when held,
 * 1 when nowait and another holder has it, -1 on error.  Survives a
 * concurrent unlink of the lock file by gc (re-checks the inode). */
int cache_i_lock_file(const char *path, int nowait, int *fd);
/* Shared lock (LOCK_SH), same contract. */
int cache_i_lock_file_shared(const char *path, int *fd);
void cache_i_unlock_file(int fd);
char *cache_i_key_lock_path(FlabCache *c, const char *key);

/* ---- objects (cache/objects.c) ---- */
/* objects/ab/<hash>[.x] */
char *cache_i_object_path(FlabCache *c, const char *hash, int exec);
/* Moves a staged regular file into the store: hashes it, fsyncs it, makes
 * it read-only (0444, or 0555 when exec) and links it as its object (an
 * existing object wins: dedup); the staged name is removed.  A staged file
 * with other hard links (e.g. into a user's tree) is copied first so that
 * nothing outside the cache can alias an object; so is one reached through
 * a symlink (foreign != 0), which is never chmod'ed or linked itself.
 * Fills hash and size. */
int cache_i_store_file(FlabCache *c, const char *staged, const struct stat *st,
                       int foreign, int exec, char hash[33], int64_t *size);

/* ---- index rows (cache/index.c) ---- */
/* Reads the manifest of key (sorted).  0 or -1. */
int cache_i_load_manifest(FlabCache *c, const char *key, CacheFile **files, size_t *n);
void cache_i_free_files(CacheFile *f, size_t n);
/* Deletes the row and manifest of key in its own transaction.  0 or -1. */
int cache_i_drop_row(FlabCache *c, const char *key);
/* Runs sql (no result rows), naming what in the error. */
int cache_i_exec(FlabCache *c, const char *sql, const char *what);
int cache_i_sql_fail(FlabCache *c, const char *what);

/* ---- materialise (cache/materialize.c) ---- */
char *cache_i_artifact_dir(FlabCache *c, const char *key);
/* Builds artifacts/<key> from the manifest in a temp dir and renames it in
 * place (replace=1: atomically exchanges with an existing dir).  Returns 0,
 * 1 when an object is missing (nothing made), -1 on error. */
int cache_i_materialize(FlabCache *c, const char *key, const CacheFile *files,
                        size_t n, int replace);
/* I4 for one artifact: artifacts/<key>, when present, has exactly the
 * manifest's entries, sizes, and read-only modes.  0 (also when absent) or
 * -1 naming the difference (cache/check.c). */
int cache_i_check_materialized(FlabCache *c, const char *key, const CacheFile *f, size_t n);
/* Removes artifacts/<key> (rename away, then delete). */
int cache_i_unmaterialize(FlabCache *c, const char *key);

/* ---- provenance (cache/provenance.c) ---- */
int cache_i_provenance_commit(FlabCache *c, const char *target, const char *key,
                              const char *manifest_json);

/* ---- stat cache (cache/statcache.c) ---- */
int cache_i_hash_file_fd(int fd, int64_t size, char hex[33]);

/* ---- test hooks (cache/build.c) ----
 * Fault injection: after cache_debug_set_crash_countdown(n), the n-th
 * crash point reached raises SIGKILL (n <= 0 disables).  Crash points sit
 * between every durable step of commit, materialise, verify and gc. */
void cache_debug_set_crash_countdown(int n);
/* Overrides CACHE_STAT_SLACK_NS (I8) so tests need not wait 2 s; < 0 restores. */
void cache_debug_set_stat_slack_ns(int64_t ns);
void cache_i_crashpoint(const char *where);
#endif
