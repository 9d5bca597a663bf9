/* cache/artifacts.c: reading artifact rows: lookup, list, manifests; and
 * dropping a row.
 *
 * cache_lookup is the hot path of a no-op build (one call per target): one
 * indexed query for the row, one for the manifest, one stat() of the
 * materialised directory.  A missing directory is rebuilt from the objects
 * (I4); an artifact whose object has vanished is dropped so that the engine
 * rebuilds it rather than using a partial directory. */
#include "cache/internal.h"
#include <stdio.h>
#include "util/error.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *col_strdup(sqlite3_stmt *st, int i) {
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? flab_xstrdup((const char *)s) : NULL;
}

void cache_i_free_files(CacheFile *f, size_t n) {
    for (size_t i = 0; i < n; i++) free(f[i].relpath);
    free(f);
}

void cache_artifact_free(CacheArtifact *a) {
    if (!a) return;
    free(a->target);
    free(a->dir);
    free(a->metrics_json);
    free(a->log_path);
    cache_i_free_files(a->files, a->nfiles);
    memset(a, 0, sizeof *a);
}

int cache_i_load_manifest(FlabCache *c, const char *key, CacheFile **files, size_t *n) {
    sqlite3_stmt *st;
    *files = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(c->db, "SELECT relpath, hash, size, mode FROM files WHERE key=?1 "
                           "ORDER BY relpath", -1, &st, NULL) != SQLITE_OK)
        return cache_i_sql_fail(c, "read manifest");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) { cap = cap ? 2 * cap : 8; *files = flab_xrealloc(*files, cap * sizeof **files); }
        CacheFile *f = &(*files)[(*n)++];
        f->relpath = col_strdup(st, 0);
        snprintf(f->hash, sizeof f->hash, "%s", (const char *)sqlite3_column_text(st, 1));
        f->size = sqlite3_column_int64(st, 2);
        f->mode = (unsigned)sqlite3_column_int(st, 3);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        cache_i_free_files(*files, *n);
        *files = NULL; *n = 0;
        return cache_i_sql_fail(c, "read manifest");
    }
    return 0;
}

int cache_i_drop_row(FlabCache *c, const char *key) {
    if (cache_i_exec(c, "BEGIN IMMEDIATE", "begin drop") < 0) return -1;
    sqlite3_stmt *st;
    const char *sqls[] = {"DELETE FROM files WHERE key=?1", "DELETE FROM artifacts WHERE key=?1"};
    for (int i = 0; i < 2; i++) {
        if (sqlite3_prepare_v2(c->db, sqls[i], -1, &st, NULL) != SQLITE_OK) goto fail;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) goto fail;
    }
    return cache_i_exec(c, "COMMIT", "commit drop");
fail:
    cache_i_sql_fail(c, "drop artifact");
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* Fills the row part of *a from a statement over
 * (key, target, created_ns, metrics, log_hash, total_bytes, nfiles). */
static void row_to_artifact(FlabCache *c, sqlite3_stmt *st, CacheArtifact *a) {
    memset(a, 0, sizeof *a);
    snprintf(a->key, sizeof a->key, "%s", (const char *)sqlite3_column_text(st, 0));
    a->target = col_strdup(st, 1);
    a->created_ns = sqlite3_column_int64(st, 2);
    a->metrics_json = col_strdup(st, 3);
    const char *log = (const char *)sqlite3_column_text(st, 4);
    a->log_path = log && log[0] ? cache_i_object_path(c, log, 0) : NULL;
    a->total_bytes = sqlite3_column_int64(st, 5);
    a->nfiles = 0;
    a->dir = cache_i_artifact_dir(c, a->key);
}

#define ROW_COLUMNS "key, target, created_ns, metrics, log_hash, total_bytes, nfiles"

/* 1 found (*a filled, no manifest), 0 not, -1 error.  Caller holds mu. */
static int read_row(FlabCache *c, const char *key, CacheArtifact *a) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT " ROW_COLUMNS " FROM artifacts WHERE key=?1",
                           -1, &st, NULL) != SQLITE_OK)
        return cache_i_sql_fail(c, "lookup");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) { found = 1; if (a) row_to_artifact(c, st, a); }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return cache_i_sql_fail(c, "lookup");
    return found;
}

static int lookup_locked(FlabCache *c, const char *key, CacheArtifact *out) {
    int found = read_row(c, key, out);
    if (found <= 0 || !out) return found;
    if (cache_i_load_manifest(c, key, &out->files, &out->nfiles) < 0) goto fail;
    struct stat st;
    if (stat(out->dir, &st) == 0 && S_ISDIR(st.st_mode)) return 1;
    int m = cache_i_materialize(c, key, out->files, out->nfiles, 0);
    if (m == 0) return 1;
    if (m < 0) goto fail;
    /* an object is gone: the artifact cannot be served; drop it (rebuilt later) */
    cache_artifact_free(out);
    return cache_i_drop_row(c, key) < 0 ? -1 : 0;
fail:
    cache_artifact_free(out);
    return -1;
}

int cache_lookup(FlabCache *c, const char *key, CacheArtifact *out) {
    if (!flab_hash_is_valid(key)) return flab_fail("cache lookup: bad key '%s'", key ? key : "(null)");
    cache_i_lock(c);
    int rc = lookup_locked(c, key, out);
    cache_i_unlock(c);
    return rc;
}

int cache_list(FlabCache *c, cache_artifact_cb cb, void *ud) {
    cache_i_lock(c);
    sqlite3_stmt *st;
    int rc = -1;
    if (sqlite3_prepare_v2(c->db, "SELECT " ROW_COLUMNS " FROM artifacts ORDER BY created_ns",
                           -1, &st, NULL) != SQLITE_OK) {
        cache_i_sql_fail(c, "list artifacts");
        goto out;
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        CacheArtifact a;
        row_to_artifact(c, st, &a);
        a.nfiles = (size_t)sqlite3_column_int64(st, 6);
        int stop = cb(&a, ud);
        a.nfiles = 0;
        cache_artifact_free(&a);
        if (stop) break;
    }
    rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : cache_i_sql_fail(c, "list artifacts");
    sqlite3_finalize(st);
out:
    cache_i_unlock(c);
    return rc;
}
