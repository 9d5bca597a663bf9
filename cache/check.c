/* cache/check.c: cache_check_invariants, the debug checker of cache.h's
 * numbered invariants.  Tests call it after every crash and race; it reads
 * the whole cache and names the first violation it finds. */
#include "cache/objscan.h"
#include <stdio.h>
#include "util/error.h"
#include <stdlib.h>
#include <string.h>

static int check_version(FlabCache *c) {
    sqlite3_stmt *st;
    int app = 0, ver = 0;
    if (sqlite3_prepare_v2(c->db, "PRAGMA application_id", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) app = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) ver = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (app != CACHE_APPLICATION_ID || ver != CACHE_INDEX_VERSION)
        return flab_fail("I7: index has application_id %#x version %d", (unsigned)app, ver);
    return 0;
}

/* I1/I2 for one object a row names. */
static int check_object(FlabCache *c, const char *key, const char *hash, int exec,
                        int64_t size, int deep) {
    char *p = cache_i_object_path(c, hash, exec);
    struct stat st;
    int rc = 0;
    if (stat(p, &st) < 0) rc = flab_fail("I1: artifact %s: object %s missing", key, p);
    else if (!S_ISREG(st.st_mode) || (st.st_mode & 0777) != (unsigned)(exec ? 0555 : 0444))
        rc = flab_fail("I2: object %s has mode %o", p, (unsigned)st.st_mode);
    else if (size >= 0 && st.st_size != size)
        rc = flab_fail("I2: object %s has %lld bytes, manifest of %s says %lld", p,
                       (long long)st.st_size, key, (long long)size);
    else if (deep) {
        char got[33];
        if (flab_hash_file(p, got) < 0) rc = -1;
        else if (strcmp(got, hash)) rc = flab_fail("I2: object %s hashes to %s", p, got);
    }
    free(p);
    return rc;
}

/* I4: artifacts/<key>, when present, is exactly the manifest, linked to the objects. */
int cache_i_check_materialized(FlabCache *c, const char *key, const CacheFile *f, size_t n) {
    char *dir = cache_i_artifact_dir(c, key);
    struct stat st;
    if (stat(dir, &st) < 0) { free(dir); return 0; }   /* absent is fine */
    CacheWalkEntry *e;
    size_t ne;
    int rc = cache_i_walk(dir, &e, &ne);
    if (rc == 0 && ne != n) rc = flab_fail("I4: %s has %zu entries, manifest %zu", dir, ne, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int is_dir = (f[i].mode & 0170000) == 0040000;
        if (strcmp(e[i].relpath, f[i].relpath) || is_dir != !!S_ISDIR(e[i].st.st_mode))
            rc = flab_fail("I4: %s: entry %s, manifest %s", dir, e[i].relpath, f[i].relpath);
        else if ((e[i].st.st_mode & 0222) != 0)
            rc = flab_fail("I4: %s/%s is writable", dir, e[i].relpath);
        else if (!is_dir && e[i].st.st_size != f[i].size)
            rc = flab_fail("I4: %s/%s has the wrong size", dir, e[i].relpath);
    }
    if (rc == 0 && (st.st_mode & 0222)) rc = flab_fail("I4: %s is writable", dir);
    if (ne || e) cache_i_walk_free(e, ne);
    free(dir);
    return rc;
}

static int check_artifact(FlabCache *c, const char *key, const char *log_hash, int deep) {
    CacheFile *f;
    size_t n;
    if (cache_i_load_manifest(c, key, &f, &n) < 0) return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if ((f[i].mode & 0170000) != 0040000)
            rc = check_object(c, key, f[i].hash, (f[i].mode & 0111) != 0, f[i].size, deep);
    if (rc == 0 && log_hash) rc = check_object(c, key, log_hash, 0, -1, deep);
    if (rc == 0) rc = cache_i_check_materialized(c, key, f, n);
    cache_i_free_files(f, n);
    return rc;
}

int cache_check_invariants(FlabCache *c, int deep) {
    cache_i_lock(c);
    int rc = check_version(c);
    sqlite3_stmt *st = NULL;
    if (rc == 0 && sqlite3_prepare_v2(c->db, "SELECT key, log_hash FROM artifacts", -1, &st, NULL) != SQLITE_OK)
        rc = cache_i_sql_fail(c, "check");
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        char key[33];
        snprintf(key, sizeof key, "%s", (const char *)sqlite3_column_text(st, 0));
        const unsigned char *log = sqlite3_column_text(st, 1);
        char *log_hash = log ? flab_xstrdup((const char *)log) : NULL;
        rc = check_artifact(c, key, log_hash, deep);
        free(log_hash);
    }
    sqlite3_finalize(st);
    cache_i_unlock(c);
    return rc;
}
