/* cache/build.c: the build protocol: begin (lock + staging), commit, abort.
 *
 * Commit order, each step durable before the next (I1-I4, I9):
 *   1. every staged file -> object (hash, fsync, read-only, link, fsync dir)
 *   2. any old artifacts/<key> removed (a directory never outlives its row's
 *      manifest into a new row)
 *   3. one SQLite transaction: artifact row + manifest          <- commit point
 *   4. artifacts/<key> materialised (temp dir + rename)
 *   5. provenance commit (git)
 * Steps 1-3 run under a shared lock on locks/gc.lock, which gc takes
 * exclusively while it deletes unreferenced objects, so gc never deletes an
 * object a commit is about to reference.  The per-key lock (I5) is held from
 * cache_begin to the end of commit/abort. */
#include "cache/internal.h"
#include <stdio.h>
#include "util/error.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct CacheBuild {
    FlabCache *c;
    char key[33];
    int lock_fd;
    char *stage, *outdir, *logpath;
};

/* ---- fault injection (tests) ----------------------------------------- */

static volatile int crash_countdown;

void cache_debug_set_crash_countdown(int n) { crash_countdown = n; }

void cache_i_crashpoint(const char *where) {
    (void)where;
    if (crash_countdown > 0 && --crash_countdown == 0) raise(SIGKILL);
}

/* ---- begin / abort ------------------------------------------------------ */

/* Stale staging dirs of key (their builder died: we hold its lock now). */
static void remove_stale_staging(FlabCache *c, const char *key) {
    char *sdir = cache_i_join(c->dir, "staging");
    DIR *d = opendir(sdir);
    if (d) {
        struct dirent *de;
        size_t klen = strlen(key);
        while ((de = readdir(d))) {
            if (strncmp(de->d_name, key, klen) || de->d_name[klen] != '.') continue;
            char *p = cache_i_join(sdir, de->d_name);
            cache_i_remove_tree(p);
            free(p);
        }
        closedir(d);
    }
    flab_error_clear();
    free(sdir);
}

static int make_staging(CacheBuild *b) {
    char *sdir = cache_i_join(b->c->dir, "staging");
    b->stage = cache_i_unique(b->c, sdir, b->key);
    free(sdir);
    b->outdir = cache_i_join(b->stage, "out");
    b->logpath = cache_i_join(b->stage, "log");
    if (mkdir(b->stage, 0755) < 0) return flab_fail_errno("%s: mkdir", b->stage);
    if (mkdir(b->outdir, 0755) < 0) return flab_fail_errno("%s: mkdir", b->outdir);
    int fd = open(b->logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return flab_fail_errno("%s: create", b->logpath);
    close(fd);
    return 0;
}

static void build_free(CacheBuild *b) {
    if (b->stage) cache_i_remove_tree(b->stage);
    cache_i_unlock_file(b->lock_fd);
    free(b->stage);
    free(b->outdir);
    free(b->logpath);
    free(b);
}

int cache_begin(FlabCache *c, const char *key, int flags, CacheBuild **out) {
    *out = NULL;
    if (!flab_hash_is_valid(key)) return flab_fail("cache: bad key '%s'", key ? key : "(null)");
    int force = flags & CACHE_BEGIN_FORCE, found;
    if (!force && (found = cache_lookup(c, key, NULL)) != 0) return found;
    char *lock = cache_i_key_lock_path(c, key);
    int fd = -1, rc = cache_i_lock_file(lock, flags & CACHE_BEGIN_NOWAIT, &fd);
    free(lock);
    if (rc != 0) return rc < 0 ? -1 : 2;
    if (!force && (found = cache_lookup(c, key, NULL)) != 0) {   /* built while we waited */
        cache_i_unlock_file(fd);
        return found;
    }
    CacheBuild *b = flab_xcalloc(1, sizeof *b);
    b->c = c;
    b->lock_fd = fd;
    memcpy(b->key, key, 33);
    remove_stale_staging(c, key);
    if (make_staging(b) < 0) { build_free(b); return -1; }
    *out = b;
    return 0;
}

const char *cache_build_outdir(const CacheBuild *b) { return b->outdir; }
const char *cache_build_logpath(const CacheBuild *b) { return b->logpath; }
const char *cache_build_key(const CacheBuild *b) { return b->key; }

void cache_abort(CacheBuild *b) {
    if (b) build_free(b);
}

/* ---- commit: objects ------------------------------------------------------ */

typedef struct {
    CacheFile *files;
    size_t n;
    char log_hash[33];
    int64_t total;
} Staged;

static int store_outputs(CacheBuild *b, Staged *s) {
    CacheWalkEntry *e;
    size_t n;
    if (cache_i_walk(b->outdir, &e, &n) < 0) return -1;
    s->files = flab_xcalloc(n ? n : 1, sizeof *s->files);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        CacheFile *f = &s->files[s->n++];
        f->relpath = flab_xstrdup(e[i].relpath);
        if (S_ISDIR(e[i].st.st_mode)) { f->mode = 040755; continue; }
        int exec = (e[i].st.st_mode & 0111) != 0;
        f->mode = exec ? 0755 : 0644;
        char *path = cache_i_join(b->outdir, e[i].relpath);
        rc = cache_i_store_file(b->c, path, &e[i].st, e[i].via_symlink, exec, f->hash, &f->size);
        free(path);
        s->total += f->size;
    }
    cache_i_walk_free(e, n);
    return rc;
}

static int store_log(CacheBuild *b, Staged *s) {
    struct stat st;
    s->log_hash[0] = 0;
    if (stat(b->logpath, &st) < 0 || st.st_size == 0) return 0;
    int64_t size;
    return cache_i_store_file(b->c, b->logpath, &st, 0, 0, s->log_hash, &size);
}

/* ---- commit: the index row (the commit point, I1) ------------------------ */

static int insert_files(FlabCache *c, const char *key, const Staged *s) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "INSERT INTO files(key, relpath, hash, size, mode) "
                           "VALUES(?1,?2,?3,?4,?5)", -1, &st, NULL) != SQLITE_OK) return -1;
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->files[i].relpath, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, s->files[i].hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, s->files[i].size);
        sqlite3_bind_int(st, 5, (int)s->files[i].mode);
        if (sqlite3_step(st) != SQLITE_DONE) rc = -1;
    }
    sqlite3_finalize(st);
    return rc;
}

static int write_row(FlabCache *c, const char *key, const char *target,
                     const char *metrics, const Staged *s) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sqlite3_stmt *st = NULL;
    if (cache_i_exec(c, "BEGIN IMMEDIATE", "begin commit") < 0) return -1;
    if (sqlite3_prepare_v2(c->db, "DELETE FROM files WHERE key=?1", -1, &st, NULL) != SQLITE_OK) goto fail;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO artifacts(key, target, created_ns, "
                           "metrics, log_hash, total_bytes, nfiles) VALUES(?1,?2,?3,?4,?5,?6,?7)",
                           -1, &st, NULL) != SQLITE_OK) goto fail;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
    sqlite3_bind_text(st, 4, metrics, -1, SQLITE_STATIC);
    if (s->log_hash[0]) sqlite3_bind_text(st, 5, s->log_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, s->total);
    sqlite3_bind_int64(st, 7, (int64_t)s->n);
    if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    sqlite3_finalize(st);
    st = NULL;
    if (insert_files(c, key, s) < 0) goto fail;
    cache_i_crashpoint("row written, not committed");
    return cache_i_exec(c, "COMMIT", "commit artifact");
fail:
    cache_i_sql_fail(c, "commit artifact");
    sqlite3_finalize(st);
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* ---- commit: provenance manifest ------------------------------------------ */

/* A target name becomes the path targets/<name>.json: no empty, "." or ".."
 * components, no leading/trailing '/', no control characters. */
static int check_target_name(const char *t) {
    if (!t || !t[0]) return flab_fail("cache commit: empty target name");
    const char *p = t;
    for (;;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return flab_fail("cache commit: target name '%s' is not a clean relative path", t);
        if (!end) break;
        p = end + 1;
    }
    for (p = t; *p; p++)
        if ((unsigned char)*p < 0x20) return flab_fail("cache commit: target name has a control character");
    return 0;
}

static cJSON *parse_object(const char *json, const char *what, const char *target) {
    if (!json) return cJSON_CreateObject();
    cJSON *o = cJSON_Parse(json);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        flab_fail("cache commit of %s: %s is not a JSON object", target, what);
        return NULL;
    }
    return o;
}

static void set_field(cJSON *o, const char *name, cJSON *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, name);
    cJSON_AddItemToObject(o, name, v);
}

static char *provenance_manifest(cJSON *prov, const char *target, const char *key,
                                 const cJSON *metrics, const Staged *s) {
    set_field(prov, "target", cJSON_CreateString(target));
    set_field(prov, "key", cJSON_CreateString(key));
    cJSON *outs = cJSON_CreateObject();
    for (size_t i = 0; i < s->n; i++) {
        if ((s->files[i].mode & 0170000) == 0040000) continue;
        cJSON *f = cJSON_AddObjectToObject(outs, s->files[i].relpath);
        cJSON_AddStringToObject(f, "hash", s->files[i].hash);
        cJSON_AddNumberToObject(f, "size", (double)s->files[i].size);
        cJSON_AddStringToObject(f, "mode", (s->files[i].mode & 0111) ? "0755" : "0644");
    }
    set_field(prov, "outputs", outs);
    set_field(prov, "metrics", cJSON_Duplicate(metrics, 1));
    if (s->log_hash[0]) set_field(prov, "log", cJSON_CreateString(s->log_hash));
    return cJSON_Print(prov);
}

/* ---- commit ------------------------------------------------------------ */

static int commit_objects_and_row(CacheBuild *b, const char *target, const char *metrics,
                                  Staged *s) {
    FlabCache *c = b->c;
    char *gc_lock = cache_i_join3(c->dir, "locks", "gc.lock");
    int gfd = -1, rc = cache_i_lock_file_shared(gc_lock, &gfd);
    free(gc_lock);
    if (rc < 0) return -1;
    rc = store_outputs(b, s);
    if (rc == 0) rc = store_log(b, s);
    cache_i_crashpoint("objects stored");
    if (rc == 0) rc = cache_i_unmaterialize(c, b->key);   /* step 2 */
    if (rc == 0) {
        cache_i_lock(c);
        rc = write_row(c, b->key, target, metrics, s);
        cache_i_unlock(c);
    }
    cache_i_crashpoint("row committed");
    cache_i_unlock_file(gfd);
    return rc;
}

static int commit_locked(CacheBuild *b, const char *target, const char *metrics_json,
                         const char *provenance_json, CacheArtifact *out) {
    if (check_target_name(target) < 0) return -1;
    Staged s = {0};
    cJSON *metrics = parse_object(metrics_json, "metrics", target);
    cJSON *prov = metrics ? parse_object(provenance_json, "provenance", target) : NULL;
    char *mtext = metrics ? cJSON_PrintUnformatted(metrics) : NULL, *manifest = NULL;
    int rc = prov ? 0 : -1;
    if (rc == 0) rc = commit_objects_and_row(b, target, mtext, &s);
    if (rc == 0) rc = cache_i_materialize(b->c, b->key, s.files, s.n, 1) == 0 ? 0
                      : (flab_errmsg()[0] ? -1 : flab_fail("cache commit of %s: object vanished", target));
    if (rc == 0) {
        manifest = provenance_manifest(prov, target, b->key, metrics, &s);
        if (cache_i_provenance_commit(b->c, target, b->key, manifest) < 0) {
            flab_error_prefix("%s: artifact %s committed, but its provenance was not: ", target, b->key);
            rc = -1;
        }
    }
    if (rc == 0 && out && cache_lookup(b->c, b->key, out) != 1)
        rc = flab_errmsg()[0] ? -1 : flab_fail("cache commit of %s: artifact vanished", target);
    cache_i_free_files(s.files, s.n);
    cJSON_Delete(metrics);
    cJSON_Delete(prov);
    free(mtext);
    free(manifest);
    return rc;
}

int cache_commit(CacheBuild *b, const char *target, const char *metrics_json,
                 const char *provenance_json, CacheArtifact *out) {
    if (out) memset(out, 0, sizeof *out);
    flab_error_clear();
    int rc = commit_locked(b, target, metrics_json, provenance_json, out);
    build_free(b);
    return rc;
}
