/* cache/gc.c: dropping old artifacts and collecting garbage (flab gc).
 *
 * 1. Artifacts that are neither in keep_keys nor among the last keep_last
 *    keys of their target's history are dropped (row, then directory),
 *    each under its key lock taken without waiting (a key being rebuilt is
 *    skipped).
 * 2. Under the exclusive gc lock (commits hold it shared from storing their
 *    objects until their row is committed, so no commit is half-way):
 *    directories in artifacts/ without a row, dead temp/trash dirs, then
 *    objects no row references (I6).
 * 3. Staging dirs and lock files of keys nobody holds.
 * bytes_freed counts object bytes whose last link was removed. */
#include "cache/objscan.h"
#include <stdio.h>
#include "util/error.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { char **v; size_t n, cap; } KeyList;

static void keys_add(KeyList *l, const char *k) {
    if (l->n == l->cap) { l->cap = l->cap ? 2 * l->cap : 16; l->v = flab_xrealloc(l->v, l->cap * sizeof *l->v); }
    l->v[l->n++] = flab_xstrdup(k);
}

static void keys_free(KeyList *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

static int keys_has(const KeyList *l, const char *k) {
    for (size_t i = 0; i < l->n; i++) if (!strcmp(l->v[i], k)) return 1;
    return 0;
}

static int select_keys(FlabCache *c, const char *sql, int arg, KeyList *out) {
    sqlite3_stmt *st;
    cache_i_lock(c);
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) == SQLITE_OK ? 0 : -1;
    if (rc == 0) {
        sqlite3_bind_int(st, 1, arg);
        while (sqlite3_step(st) == SQLITE_ROW) keys_add(out, (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    } else cache_i_sql_fail(c, "gc");
    cache_i_unlock(c);
    return rc;
}

/* ---- 1. artifacts -------------------------------------------------------- */

static int drop_one(FlabCache *c, const char *key, int dry, CacheGcReport *rep) {
    char *lock = cache_i_key_lock_path(c, key);
    int fd = -1, rc = cache_i_lock_file(lock, 1, &fd);
    free(lock);
    if (rc != 0) return rc < 0 ? -1 : 0;   /* busy: being rebuilt, keep it */
    if (!dry) {
        cache_i_lock(c);
        rc = cache_i_drop_row(c, key);
        cache_i_unlock(c);
        cache_i_crashpoint("gc dropped row");
        if (rc == 0) rc = cache_i_unmaterialize(c, key);
    }
    if (rc == 0) rep->artifacts_removed++;
    cache_i_unlock_file(fd);
    return rc;
}

static int drop_artifacts(FlabCache *c, const CacheGcOptions *o, CacheGcReport *rep) {
    KeyList keep = {0}, all = {0};
    for (size_t i = 0; i < o->n_keep; i++) keys_add(&keep, o->keep_keys[i]);
    int rc = 0;
    if (o->keep_last > 0)
        rc = select_keys(c, "SELECT key FROM history h WHERE (SELECT count(*) FROM history h2 "
                         "WHERE h2.target = h.target AND h2.seq > h.seq) < ?1", o->keep_last, &keep);
    if (rc == 0) rc = select_keys(c, "SELECT key FROM artifacts", 0, &all);
    for (size_t i = 0; i < all.n && rc == 0; i++)
        if (!keys_has(&keep, all.v[i])) rc = drop_one(c, all.v[i], o->dry_run, rep);
    keys_free(&keep);
    keys_free(&all);
    return rc;
}

/* ---- 2. stray directories and unreferenced objects ------------------------- */

/* ".tmp-<key>.<pid>.<n>" / ".trash-<key>.<pid>.<n>": 1 if its process is gone. */
static int temp_is_dead(const char *name) {
    const char *dot = strchr(name + 1, '.');
    if (!dot) return 1;
    long pid = strtol(dot + 1, NULL, 10);
    return pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH);
}

static void remove_stray_dirs(FlabCache *c) {
    char *adir = cache_i_join(c->dir, "artifacts");
    DIR *d = opendir(adir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        int stray;
        if (de->d_name[0] == '.') stray = temp_is_dead(de->d_name);
        else stray = !flab_hash_is_valid(de->d_name) || cache_lookup(c, de->d_name, NULL) == 0;
        if (!stray) continue;
        char *p = cache_i_join(adir, de->d_name);
        cache_i_remove_tree(p);
        free(p);
    }
    if (d) closedir(d);
    flab_error_clear();
    free(adir);
}

typedef struct { CacheRefSet refs; CacheGcReport *rep; int dry; } SweepState;

static int sweep_object(const char *path, const char *hash, int exec, void *ud) {
    SweepState *s = ud;
    struct stat st;
    if (cache_i_refs_has(&s->refs, hash, exec) || stat(path, &st) < 0) return 0;
    if (!s->dry && unlink(path) < 0) return 0;
    s->rep->objects_removed++;
    if (st.st_nlink == 1) s->rep->bytes_freed += (uint64_t)st.st_size;
    cache_i_crashpoint("gc removed object");
    return 0;
}

static int sweep(FlabCache *c, int dry, CacheGcReport *rep) {
    char *gc_lock = cache_i_join3(c->dir, "locks", "gc.lock");
    int fd = -1, rc = cache_i_lock_file(gc_lock, 0, &fd);
    free(gc_lock);
    if (rc < 0) return -1;
    if (!dry) remove_stray_dirs(c);
    SweepState s = {.rep = rep, .dry = dry};
    rc = cache_i_load_refs(c, &s.refs);
    if (rc == 0) rc = cache_i_scan_objects(c, sweep_object, &s);
    cache_i_free_refs(&s.refs);
    cache_i_unlock_file(fd);
    return rc;
}

/* ---- 3. staging and lock files of idle keys ------------------------------ */

/* Removes dir/<entry> for entries starting with a key whose lock is free.
 * locks/: the lock file itself is removed while held (lockers re-check). */
static void clean_idle(FlabCache *c, const char *sub, int is_lockdir) {
    char *dir = cache_i_join(c->dir, sub);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char key[33];
        if (!is_lockdir && !strncmp(de->d_name, ".flab-copy.", 11) && temp_is_dead(de->d_name)) {
            char *p = cache_i_join(dir, de->d_name);
            unlink(p);
            free(p);
            continue;
        }
        if (strlen(de->d_name) < 33 || de->d_name[32] != '.') continue;
        memcpy(key, de->d_name, 32);
        key[32] = 0;
        if (!flab_hash_is_valid(key)) continue;
        char *lock = cache_i_key_lock_path(c, key), *p = cache_i_join(dir, de->d_name);
        int fd = -1;
        if (cache_i_lock_file(lock, 1, &fd) == 0) {
            if (is_lockdir) unlink(lock);
            else cache_i_remove_tree(p);
            cache_i_unlock_file(fd);
        }
        free(lock);
        free(p);
    }
    if (d) closedir(d);
    flab_error_clear();
    free(dir);
}

/* ---- 4. stat-cache rows of files that no longer exist --------------------- */

static void prune_statcache(FlabCache *c) {
    KeyList gone = {0};
    sqlite3_stmt *st;
    cache_i_lock(c);
    if (sqlite3_prepare_v2(c->db, "SELECT path FROM statcache", -1, &st, NULL) == SQLITE_OK) {
        struct stat sb;
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *p = (const char *)sqlite3_column_text(st, 0);
            if (p && stat(p, &sb) < 0) keys_add(&gone, p);
        }
        sqlite3_finalize(st);
    }
    if (gone.n && sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
        if (sqlite3_prepare_v2(c->db, "DELETE FROM statcache WHERE path=?1", -1, &st, NULL) == SQLITE_OK) {
            for (size_t i = 0; i < gone.n; i++) {
                sqlite3_reset(st);
                sqlite3_bind_text(st, 1, gone.v[i], -1, SQLITE_STATIC);
                sqlite3_step(st);
            }
            sqlite3_finalize(st);
        }
        sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    }
    cache_i_unlock(c);
    keys_free(&gone);
}

int cache_gc(FlabCache *c, const CacheGcOptions *opt, CacheGcReport *rep) {
    CacheGcOptions none = {0};
    CacheGcReport dummy;
    if (!opt) opt = &none;
    if (!rep) rep = &dummy;
    memset(rep, 0, sizeof *rep);
    int rc = drop_artifacts(c, opt, rep);
    if (rc == 0) rc = sweep(c, opt->dry_run, rep);
    if (rc == 0 && !opt->dry_run) {
        clean_idle(c, "staging", 0);
        clean_idle(c, "locks", 1);
        prune_statcache(c);
    }
    return rc;
}
