/* cache/index.c: the SQLite index of the cache, and opening a cache.
 *
 * Schema (user_version CACHE_INDEX_VERSION, application_id 'FLAB', I7):
 *   artifacts(key PK, target, created_ns, metrics, log_hash, total_bytes, nfiles)
 *   files(key, relpath, hash, size, mode; PK(key, relpath))    the manifests
 *   targets(target PK, key, explain, recorded_ns)             last build per target
 *   history(seq PK autoincrement, target, key, recorded_ns)   for gc keep_last
 *   statcache(path PK, dev, ino, size, mtime_ns, ctime_ns, hashed_ns, hash)
 * The database runs in WAL mode with synchronous=FULL (a committed artifact
 * row survives power loss) and a 60 s busy timeout, so several flab
 * processes share it; writers use BEGIN IMMEDIATE to avoid lock upgrades.
 * An artifact row and its manifest are written in one transaction (I1). */
#include "cache/internal.h"
#include <stdio.h>
#include "util/error.h"
#include "util/file.h"
#include <git2.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const SCHEMA =
    "CREATE TABLE IF NOT EXISTS artifacts(key TEXT PRIMARY KEY, target TEXT NOT NULL,"
    "  created_ns INTEGER NOT NULL, metrics TEXT NOT NULL, log_hash TEXT,"
    "  total_bytes INTEGER NOT NULL, nfiles INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS files(key TEXT NOT NULL, relpath TEXT NOT NULL,"
    "  hash TEXT NOT NULL, size INTEGER NOT NULL, mode INTEGER NOT NULL,"
    "  PRIMARY KEY(key, relpath)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS files_by_hash ON files(hash);"
    "CREATE TABLE IF NOT EXISTS targets(target TEXT PRIMARY KEY, key TEXT NOT NULL,"
    "  explain TEXT, recorded_ns INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS history(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  target TEXT NOT NULL, key TEXT NOT NULL, recorded_ns INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS statcache(path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER,"
    "  size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, hashed_ns INTEGER, hash TEXT);";

void cache_i_lock(FlabCache *c) { pthread_mutex_lock(&c->mu); }
void cache_i_unlock(FlabCache *c) { pthread_mutex_unlock(&c->mu); }

int cache_i_sql_fail(FlabCache *c, const char *what) {
    return flab_fail("%s/index.sqlite: %s: %s", c->dir, what, sqlite3_errmsg(c->db));
}

int cache_i_exec(FlabCache *c, const char *sql, const char *what) {
    char *err = NULL;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        flab_fail("%s/index.sqlite: %s: %s", c->dir, what, err ? err : "?");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static int pragma_int(FlabCache *c, const char *sql, int *out) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) return cache_i_sql_fail(c, sql);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : cache_i_sql_fail(c, sql);
}

/* I7: a fresh database gets the schema; ours is used; anything else is refused. */
static int check_or_create_schema(FlabCache *c) {
    if (cache_i_exec(c, "BEGIN IMMEDIATE", "begin") < 0) return -1;
    int app = 0, ver = 0, ntables = 0;
    if (pragma_int(c, "PRAGMA application_id", &app) < 0 ||
        pragma_int(c, "PRAGMA user_version", &ver) < 0 ||
        pragma_int(c, "SELECT count(*) FROM sqlite_master", &ntables) < 0) goto fail;
    if (app == 0 && ver == 0 && ntables == 0) {
        char sql[128];
        snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d;",
                 CACHE_APPLICATION_ID, CACHE_INDEX_VERSION);
        if (cache_i_exec(c, SCHEMA, "create schema") < 0 || cache_i_exec(c, sql, "set version") < 0)
            goto fail;
    } else if (app != CACHE_APPLICATION_ID) {
        flab_fail("%s/index.sqlite: not a flab cache index (application_id %#x)", c->dir, (unsigned)app);
        goto fail;
    } else if (ver != CACHE_INDEX_VERSION) {
        flab_fail("%s/index.sqlite: cache index version %d, this flab reads version %d; "
                  "use the matching flab or delete the cache directory", c->dir, ver, CACHE_INDEX_VERSION);
        goto fail;
    }
    return cache_i_exec(c, "COMMIT", "commit schema");
fail:
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static int make_layout(const char *dir) {
    static const char *const subdirs[] = {"objects", "artifacts", "staging", "locks"};
    for (size_t i = 0; i < sizeof subdirs / sizeof *subdirs; i++) {
        char *p = cache_i_join(dir, subdirs[i]);
        int rc = flab_mkdir_p(p, 0755);
        free(p);
        if (rc < 0) return -1;
    }
    return 0;
}

static char *absolute_path(const char *dir) {
    if (dir[0] == '/') return flab_xstrdup(dir);
    char *cwd = getcwd(NULL, 0);
    if (!cwd) return NULL;
    char *abs = cache_i_join(cwd, dir);
    free(cwd);
    return abs;
}

/* Switching a fresh database to WAL needs an exclusive lock, and SQLite
 * answers SQLITE_BUSY at once (without the busy handler) when another
 * process is opening the same new cache: retry for up to the busy timeout. */
static int set_wal(FlabCache *c, const char *pragmas) {
    for (int attempt = 0; ; attempt++) {
        int rc = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
        if (rc == SQLITE_OK) return 0;
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || attempt >= 6000)
            return cache_i_exec(c, pragmas, "set WAL");
        usleep(10000);
    }
}

static int open_db(FlabCache *c) {
    char *path = cache_i_join(c->dir, "index.sqlite");
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_FULLMUTEX, NULL);
    free(path);
    if (rc != SQLITE_OK) return cache_i_sql_fail(c, "open");
    sqlite3_busy_timeout(c->db, 60000);
    const char *pragmas = cache_i_sync_enabled() ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                                 : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";
    if (set_wal(c, pragmas) < 0) return -1;
    return check_or_create_schema(c);
}

int cache_open(const char *dir, FlabCache **out) {
    *out = NULL;
    FlabCache *c = flab_xcalloc(1, sizeof *c);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&c->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    git_libgit2_init();
    c->dir = absolute_path(dir);
    if (!c->dir) { flab_fail_errno("%s: cannot resolve current directory", dir); goto fail; }
    if (flab_mkdir_p(c->dir, 0755) < 0 || make_layout(c->dir) < 0 || open_db(c) < 0) goto fail;
    *out = c;
    return 0;
fail:
    cache_close(c);
    return -1;
}

void cache_close(FlabCache *c) {
    if (!c) return;
    if (c->db) sqlite3_close_v2(c->db);
    pthread_mutex_destroy(&c->mu);
    free(c->dir);
    free(c);
    git_libgit2_shutdown();
}

const char *cache_dir(const FlabCache *c) { return c->dir; }

void cache_get_stats(FlabCache *c, CacheStats *out) {
    cache_i_lock(c);
    *out = c->stats;
    cache_i_unlock(c);
}
