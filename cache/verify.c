/* cache/verify.c: re-hashing the object store (flab verify).
 *
 * Every object is re-read and its hash compared with its name (I2).  Every
 * artifact that names a corrupt or missing object is dropped so that the
 * next build rebuilds it.  Order matters for crash safety:
 *   1. drop the rows (lookups stop returning the artifact),
 *   2. remove their materialised directories (which share the bad inodes),
 *   3. unlink the corrupt objects.
 * A crash after 1 leaves only garbage (I6); commits remove a stale directory
 * before they write a row, so it is never served again. */
#include "cache/objscan.h"
#include <stdio.h>
#include "util/error.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    FlabCache *c;
    CacheVerifyReport *rep;
    cache_report_cb cb;
    void *ud;
    char **bad;          /* "<hash>" or "<hash>.x" of corrupt/missing objects */
    size_t nbad, capbad;
} VerifyState;

static void note_bad(VerifyState *v, const char *hash, int exec, const char *what, const char *path) {
    if (v->nbad == v->capbad) {
        v->capbad = v->capbad ? 2 * v->capbad : 8;
        v->bad = flab_xrealloc(v->bad, v->capbad * sizeof *v->bad);
    }
    char *e = flab_xmalloc(35);
    snprintf(e, 35, "%s%s", hash, exec ? ".x" : "");
    v->bad[v->nbad++] = e;
    if (v->cb) v->cb(what, path, v->ud);
}

static int check_object(const char *path, const char *hash, int exec, void *ud) {
    VerifyState *v = ud;
    char got[33];
    struct stat st;
    if (stat(path, &st) < 0) return 0;   /* removed by a concurrent gc */
    v->rep->objects_checked++;
    v->rep->bytes_checked += (uint64_t)st.st_size;
    if (flab_hash_file(path, got) < 0) { flab_error_clear(); strcpy(got, "unreadable"); }
    if (strcmp(got, hash) != 0) {
        v->rep->objects_corrupt++;
        note_bad(v, hash, exec, "corrupt object", path);
    }
    return 0;
}

static void check_missing(VerifyState *v) {
    CacheRefSet refs;
    if (cache_i_load_refs(v->c, &refs) < 0) return;
    for (size_t i = 0; i < refs.n; i++) {
        int exec = strlen(refs.v[i]) == 34;
        char hash[33];
        memcpy(hash, refs.v[i], 32);
        hash[32] = 0;
        char *p = cache_i_object_path(v->c, hash, exec);
        if (access(p, F_OK) < 0 && errno == ENOENT) note_bad(v, hash, exec, "missing object", p);
        free(p);
    }
    cache_i_free_refs(&refs);
}

/* Keys whose manifest or log uses object bad ("<hash>[.x]"). */
static int keys_using(FlabCache *c, const char *bad, char ***keys, size_t *n, size_t *cap) {
    char hash[33];
    memcpy(hash, bad, 32);
    hash[32] = 0;
    int exec = strlen(bad) == 34;
    sqlite3_stmt *st;
    const char *sql = "SELECT key FROM files WHERE hash=?1 AND ((mode & 73) != 0) = ?2 "
                      "UNION SELECT key FROM artifacts WHERE log_hash=?1 AND ?2 = 0";
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) return cache_i_sql_fail(c, "verify");
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, exec);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == *cap) { *cap = *cap ? 2 * *cap : 8; *keys = flab_xrealloc(*keys, *cap * sizeof **keys); }
        (*keys)[(*n)++] = flab_xstrdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return 0;
}

static int drop_affected(VerifyState *v) {
    char **keys = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    cache_i_lock(v->c);
    for (size_t i = 0; i < v->nbad && rc == 0; i++) rc = keys_using(v->c, v->bad[i], &keys, &n, &cap);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = cache_i_drop_row(v->c, keys[i]);
        cache_i_crashpoint("verify dropped row");
        if (rc == 0) rc = cache_i_unmaterialize(v->c, keys[i]);
        if (rc == 0) { v->rep->artifacts_dropped++; if (v->cb) v->cb("dropped artifact", keys[i], v->ud); }
    }
    cache_i_unlock(v->c);
    for (size_t i = 0; i < n; i++) free(keys[i]);
    free(keys);
    return rc;
}

/* Materialised directories that no longer match their manifest (a file
 * deleted or added by hand) are removed; the next lookup rebuilds them. */
static int check_directories(VerifyState *v) {
    sqlite3_stmt *st;
    FlabCache *c = v->c;
    cache_i_lock(c);
    if (sqlite3_prepare_v2(c->db, "SELECT key FROM artifacts", -1, &st, NULL) != SQLITE_OK) {
        cache_i_unlock(c);
        return cache_i_sql_fail(c, "verify directories");
    }
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        char key[33];
        snprintf(key, sizeof key, "%s", (const char *)sqlite3_column_text(st, 0));
        CacheFile *f;
        size_t n;
        if ((rc = cache_i_load_manifest(c, key, &f, &n)) < 0) break;
        if (cache_i_check_materialized(c, key, f, n) < 0) {
            if (v->cb) v->cb("damaged artifact directory (removed; rebuilt on next use)", flab_errmsg(), v->ud);
            v->rep->dirs_removed++;
            rc = cache_i_unmaterialize(c, key);
        }
        cache_i_free_files(f, n);
    }
    sqlite3_finalize(st);
    cache_i_unlock(c);
    return rc;
}

int cache_verify(FlabCache *c, cache_report_cb cb, void *ud, CacheVerifyReport *rep) {
    CacheVerifyReport dummy;
    if (!rep) rep = &dummy;
    memset(rep, 0, sizeof *rep);
    VerifyState v = {.c = c, .rep = rep, .cb = cb, .ud = ud};
    int rc = cache_i_scan_objects(c, check_object, &v);
    if (rc == 0) check_missing(&v);
    /* exclusive gc lock: no commit is between storing objects and writing
     * its row, so every row that uses a bad object is visible to us now */
    char *gc_lock = cache_i_join3(c->dir, "locks", "gc.lock");
    int gfd = -1;
    if (rc == 0 && v.nbad) rc = cache_i_lock_file(gc_lock, 0, &gfd);
    free(gc_lock);
    if (rc == 0) rc = drop_affected(&v);
    for (size_t i = 0; i < v.nbad; i++) {
        if (rc == 0) {
            char hash[33];
            memcpy(hash, v.bad[i], 32);
            hash[32] = 0;
            char *p = cache_i_object_path(c, hash, strlen(v.bad[i]) == 34);
            unlink(p);   /* corrupt: never link it again; missing: no-op */
            free(p);
        }
        free(v.bad[i]);
    }
    free(v.bad);
    cache_i_unlock_file(gfd);
    if (rc == 0) rc = check_directories(&v);
    return rc;
}
