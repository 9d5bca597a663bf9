/* cache/objscan.c: enumerating the object store and the objects the index
 * references; shared by verify, gc and the invariant checker.
 *
 * An object name is <32 hex>[.x] inside objects/<first two hex>/; anything
 * else there is not an object (and never read as one). */
#include "cache/objscan.h"
#include <stdio.h>
#include "util/error.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

int cache_i_parse_object_name(const char *sub, const char *name, char hash[33], int *exec) {
    size_t n = strlen(name);
    if (n != 32 && !(n == 34 && !strcmp(name + 32, ".x"))) return 0;
    memcpy(hash, name, 32);
    hash[32] = 0;
    *exec = n == 34;
    return flab_hash_is_valid(hash) && !strncmp(hash, sub, 2);
}

int cache_i_scan_objects(FlabCache *c, cache_object_cb cb, void *ud) {
    char *odir = cache_i_join(c->dir, "objects");
    DIR *top = opendir(odir);
    if (!top) { flab_fail_errno("%s: opendir", odir); free(odir); return -1; }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(top))) {
        if (strlen(de->d_name) != 2) continue;
        char *sub = cache_i_join(odir, de->d_name);
        DIR *d = opendir(sub);
        struct dirent *fe;
        while (d && rc == 0 && (fe = readdir(d))) {
            char hash[33];
            int exec;
            if (!cache_i_parse_object_name(de->d_name, fe->d_name, hash, &exec)) continue;
            char *path = cache_i_join(sub, fe->d_name);
            rc = cb(path, hash, exec, ud);
            free(path);
        }
        if (d) closedir(d);
        free(sub);
    }
    closedir(top);
    free(odir);
    return rc;
}

/* ---- the referenced set ---------------------------------------------------- */

static int cmp_ref(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void refset_add(CacheRefSet *s, const char *hash, int exec) {
    if (s->n == s->cap) { s->cap = s->cap ? 2 * s->cap : 64; s->v = flab_xrealloc(s->v, s->cap * sizeof *s->v); }
    char *e = flab_xmalloc(35);
    snprintf(e, 35, "%s%s", hash, exec ? ".x" : "");
    s->v[s->n++] = e;
}

int cache_i_load_refs(FlabCache *c, CacheRefSet *s) {
    memset(s, 0, sizeof *s);
    sqlite3_stmt *st;
    const char *sql = "SELECT DISTINCT hash, (mode & 73) != 0 FROM files WHERE hash != '' "
                      "UNION SELECT DISTINCT log_hash, 0 FROM artifacts WHERE log_hash IS NOT NULL";
    cache_i_lock(c);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        cache_i_unlock(c);
        return cache_i_sql_fail(c, "read object references");
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        refset_add(s, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1));
    sqlite3_finalize(st);
    cache_i_unlock(c);
    if (rc != SQLITE_DONE) { cache_i_free_refs(s); return cache_i_sql_fail(c, "read object references"); }
    if (s->n) qsort(s->v, s->n, sizeof *s->v, cmp_ref);
    return 0;
}

int cache_i_refs_has(const CacheRefSet *s, const char *hash, int exec) {
    char e[35];
    snprintf(e, sizeof e, "%s%s", hash, exec ? ".x" : "");
    const char *p = e;
    return s->n && bsearch(&p, s->v, s->n, sizeof *s->v, cmp_ref) != NULL;
}

void cache_i_free_refs(CacheRefSet *s) {
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}
