/* cache/records.c: the last build of each target, for `flab explain` and
 * `flab status`, and the build history that gc's keep_last reads.
 *
 * The record is written by the engine after a target is known fresh
 * (built or found in the cache); explain_json is opaque to the cache. */
#include "cache/internal.h"
#include <stdio.h>
#include "util/error.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int record_locked(FlabCache *c, const char *target, const char *key, const char *explain) {
    static const char *const sqls[] = {
        "INSERT OR REPLACE INTO targets(target, key, explain, recorded_ns) VALUES(?1, ?2, ?3, ?4)",
        /* history: only when the key changed, so no-op builds do not grow it */
        "INSERT INTO history(target, key, recorded_ns) SELECT ?1, ?2, ?4 WHERE NOT EXISTS ("
        "  SELECT 1 FROM history WHERE seq = (SELECT max(seq) FROM history WHERE target=?1)"
        "  AND key=?2)",
    };
    int64_t t = now_ns();
    if (cache_i_exec(c, "BEGIN IMMEDIATE", "begin record") < 0) return -1;
    for (int i = 1; i >= 0; i--) {   /* history first: it compares with the previous record */
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(c->db, sqls[i], -1, &st, NULL) != SQLITE_OK) goto fail;
        sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
        if (i == 0) sqlite3_bind_text(st, 3, explain, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, t);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) goto fail;
    }
    return cache_i_exec(c, "COMMIT", "commit record");
fail:
    cache_i_sql_fail(c, "record target");
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

int cache_record_target(FlabCache *c, const char *target, const char *key,
                        const char *explain_json) {
    if (!target || !target[0]) return flab_fail("cache: record of a target without a name");
    if (!flab_hash_is_valid(key)) return flab_fail("cache: target %s: bad key", target);
    cache_i_lock(c);
    int rc = record_locked(c, target, key, explain_json);
    cache_i_unlock(c);
    return rc;
}

int cache_last_target(FlabCache *c, const char *target, char key_out[33], char **explain_json) {
    if (explain_json) *explain_json = NULL;
    cache_i_lock(c);
    sqlite3_stmt *st;
    int rc = -1;
    if (sqlite3_prepare_v2(c->db, "SELECT key, explain FROM targets WHERE target=?1",
                           -1, &st, NULL) != SQLITE_OK) {
        cache_i_sql_fail(c, "read target record");
        goto out;
    }
    sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        snprintf(key_out, 33, "%s", (const char *)sqlite3_column_text(st, 0));
        const unsigned char *e = sqlite3_column_text(st, 1);
        if (explain_json && e) *explain_json = flab_xstrdup((const char *)e);
        rc = 1;
    } else rc = step == SQLITE_DONE ? 0 : cache_i_sql_fail(c, "read target record");
    sqlite3_finalize(st);
out:
    cache_i_unlock(c);
    return rc;
}
