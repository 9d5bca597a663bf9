/* cache/remote_push.c: uploading a committed artifact (remote.h R1, R2).
 *
 * Order: the entry ac/<key> is checked first (already there: nothing to
 * do); then every distinct object of the manifest and the log object is
 * HEAD-checked and the missing ones (or ones of the wrong size: a damaged
 * remote copy) are uploaded in one parallel batch; the entry goes last. */
#include "cache/internal.h"
#include "cache/remote_priv.h"
#include "util/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    RemotePut *puts;
    char (*paths)[40];
    char **files;
    size_t n;
} Uploads;

static void uploads_free(Uploads *u) {
    for (size_t i = 0; i < u->n; i++) free(u->files[i]);
    free(u->puts);
    free(u->paths);
    free(u->files);
}

static int already_listed(const Uploads *u, const char *hash) {
    for (size_t i = 0; i < u->n; i++)
        if (!strcmp(u->puts[i].hash, hash)) return 1;
    return 0;
}

/* Adds object hash (local file `obj`) unless the remote has it (R2). */
static int consider_object(FlabRemote *r, Uploads *u, const char *hash, const char *obj,
                           int64_t size, RemoteStats *st) {
    if (already_listed(u, hash)) return 0;
    char path[40];
    snprintf(path, sizeof path, "cas/%s", hash);
    int64_t have = -1;
    int h = r->t->head(r, path, &have);
    if (h < 0) return -1;
    if (h == 1 && (have == size || have < 0)) {
        st->objects_skipped++;
        return 0;
    }
    memcpy(u->paths[u->n], path, sizeof path);
    u->files[u->n] = flab_xstrdup(obj);
    u->puts[u->n] = (RemotePut){.path = u->paths[u->n], .file = u->files[u->n],
                                .hash = u->paths[u->n] + 4, .size = size};
    u->n++;
    return 0;
}

/* The provenance manifest recorded for key, or NULL (lost, I9). */
typedef struct {
    const char *key;
    char *json;
} ProvFind;

static int find_prov(const CacheProvEntry *e, void *ud) {
    ProvFind *f = ud;
    if (strcmp(e->key, f->key)) return 0;
    f->json = flab_xstrdup(e->manifest_json);
    return 1;
}

static int collect(FlabRemote *r, FlabCache *c, const CacheArtifact *a, const char *log_hash,
                   int64_t log_size, Uploads *u, RemoteStats *st) {
    u->puts = flab_xcalloc(a->nfiles + 2, sizeof *u->puts);
    u->paths = flab_xcalloc(a->nfiles + 2, sizeof *u->paths);
    u->files = flab_xcalloc(a->nfiles + 2, sizeof *u->files);
    for (size_t i = 0; i < a->nfiles; i++) {
        const CacheFile *f = &a->files[i];
        if ((f->mode & 0170000) == 0040000) continue;
        char *obj = cache_i_object_path(c, f->hash, (f->mode & 0111) != 0);
        int rc = consider_object(r, u, f->hash, obj, f->size, st);
        free(obj);
        if (rc < 0) return -1;
    }
    if (log_hash[0] && consider_object(r, u, log_hash, a->log_path, log_size, st) < 0) return -1;
    return 0;
}

static int push_artifact(FlabRemote *r, FlabCache *c, const CacheArtifact *a, RemoteStats *st) {
    char log_hash[33] = "";
    int64_t log_size = 0;
    struct stat ls;
    if (a->log_path && stat(a->log_path, &ls) == 0) {
        const char *base = strrchr(a->log_path, '/') + 1;
        if (flab_hash_is_valid(base)) { memcpy(log_hash, base, 33); log_size = ls.st_size; }
    }
    Uploads u = {0};
    int rc = collect(r, c, a, log_hash, log_size, &u, st);
    if (rc == 0 && u.n) rc = r->t->put(r, u.puts, u.n);
    for (size_t i = 0; rc == 0 && i < u.n; i++) {
        st->objects_sent++;
        st->bytes_sent += (uint64_t)u.puts[i].size;
    }
    uploads_free(&u);
    if (rc < 0) return -1;
    ProvFind pf = {a->key, NULL};
    if (cache_provenance_log(c, a->target, find_prov, &pf) < 0) flab_error_clear();
    char *entry = remote_entry_build(a, log_hash, log_size, pf.json);
    free(pf.json);
    char path[40];
    snprintf(path, sizeof path, "ac/%s", a->key);
    RemotePut p = {.path = path, .data = entry, .len = strlen(entry), .hash = "",
                   .size = (int64_t)strlen(entry)};
    rc = r->t->put(r, &p, 1);   /* last: R1 */
    free(entry);
    if (rc == 0) st->artifacts++;
    return rc;
}

int remote_push(FlabRemote *r, FlabCache *c, const char *key, RemoteStats *stats) {
    RemoteStats local = {0};
    RemoteStats *st = stats ? stats : &local;
    int has = remote_has(r, key);
    if (has != 0) return has < 0 ? -1 : 0;
    CacheArtifact a = {0};
    int found = cache_lookup(c, key, &a);
    if (found <= 0) {
        cache_artifact_free(&a);
        return found < 0 ? -1 : flab_fail("push: artifact %s is not in the local cache", key);
    }
    int rc = push_artifact(r, c, &a, st);
    if (rc < 0) flab_error_prefix("push of %s (%s): ", a.target, key);
    cache_artifact_free(&a);
    return rc;
}
