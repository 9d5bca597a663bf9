/* cache/remote_entry.c: the ac/<key> entry of the remote: what a local
 * commit needs to recreate an artifact (files with object hashes, sizes and
 * modes; metrics; the log object; the provenance manifest), as JSON.
 *
 * The entry is untrusted input on pull: every field is validated here, and
 * every path must be a clean relative path so that a hostile entry cannot
 * write outside the staging directory. */
#include "cache/remote_priv.h"
#include "util/error.h"
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_FORMAT "flab-ac-1"

static void add_file(cJSON *arr, const CacheFile *f) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", f->relpath);
    if ((f->mode & 0170000) == 0040000) {
        cJSON_AddStringToObject(o, "type", "dir");
    } else {
        cJSON_AddStringToObject(o, "hash", f->hash);
        cJSON_AddNumberToObject(o, "size", (double)f->size);
        cJSON_AddStringToObject(o, "mode", (f->mode & 0111) ? "0755" : "0644");
    }
    cJSON_AddItemToArray(arr, o);
}

char *remote_entry_build(const CacheArtifact *a, const char *log_hash, int64_t log_size,
                         const char *provenance_json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", ENTRY_FORMAT);
    cJSON_AddStringToObject(o, "key", a->key);
    cJSON_AddStringToObject(o, "target", a->target);
    cJSON *m = cJSON_Parse(a->metrics_json ? a->metrics_json : "{}");
    cJSON_AddItemToObject(o, "metrics", m && cJSON_IsObject(m) ? m : cJSON_CreateObject());
    if (m && !cJSON_IsObject(m)) cJSON_Delete(m);
    if (log_hash && log_hash[0]) {
        cJSON *l = cJSON_AddObjectToObject(o, "log");
        cJSON_AddStringToObject(l, "hash", log_hash);
        cJSON_AddNumberToObject(l, "size", (double)log_size);
    }
    cJSON *files = cJSON_AddArrayToObject(o, "files");
    for (size_t i = 0; i < a->nfiles; i++) add_file(files, &a->files[i]);
    cJSON *p = provenance_json ? cJSON_Parse(provenance_json) : NULL;
    if (p && cJSON_IsObject(p)) cJSON_AddItemToObject(o, "provenance", p);
    else cJSON_Delete(p);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* A clean relative path: components not empty, not "." or "..", no
 * control characters, no leading '/'. */
static int clean_relpath(const char *s) {
    if (!s[0] || s[0] == '/') return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20) return 0;
    const char *c = s;
    for (;;) {
        const char *end = strchr(c, '/');
        size_t len = end ? (size_t)(end - c) : strlen(c);
        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        if (!end) return 1;
        c = end + 1;
    }
}

static int get_size(const cJSON *o, int64_t *out) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "size");
    if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble > 9.0e15 ||
        s->valuedouble != (double)(int64_t)s->valuedouble) return 0;
    *out = (int64_t)s->valuedouble;
    return 1;
}

static int parse_file(const cJSON *o, CacheFile *f, const char *where, size_t i) {
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(o, "path");
    if (!cJSON_IsString(path) || !clean_relpath(path->valuestring))
        return flab_fail("%s: files[%zu]: missing or unsafe path", where, i);
    f->relpath = flab_xstrdup(path->valuestring);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "dir")) { f->mode = 040755; return 0; }
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(o, "hash");
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(o, "mode");
    if (!cJSON_IsString(hash) || !flab_hash_is_valid(hash->valuestring))
        return flab_fail("%s: %s: bad object hash", where, f->relpath);
    memcpy(f->hash, hash->valuestring, 33);
    if (!get_size(o, &f->size)) return flab_fail("%s: %s: bad size", where, f->relpath);
    if (!cJSON_IsString(mode) || (strcmp(mode->valuestring, "0644") && strcmp(mode->valuestring, "0755")))
        return flab_fail("%s: %s: bad mode (expected \"0644\" or \"0755\")", where, f->relpath);
    f->mode = mode->valuestring[2] == '7' ? 0755 : 0644;
    return 0;
}

static int parse_log(const cJSON *o, RemoteEntry *e, const char *where) {
    const cJSON *log = cJSON_GetObjectItemCaseSensitive(o, "log");
    if (!log || cJSON_IsNull(log)) return 0;
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(log, "hash");
    if (!cJSON_IsString(hash) || !flab_hash_is_valid(hash->valuestring) || !get_size(log, &e->log_size))
        return flab_fail("%s: bad \"log\" object", where);
    memcpy(e->log_hash, hash->valuestring, 33);
    return 0;
}

static int parse_fields(const cJSON *o, const char *key, const char *where, RemoteEntry *e) {
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "key");
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(o, "target");
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(o, "metrics");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(o, "files");
    const cJSON *prov = cJSON_GetObjectItemCaseSensitive(o, "provenance");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, ENTRY_FORMAT))
        return flab_fail("%s: not a flab artifact entry (format is not \"" ENTRY_FORMAT "\")", where);
    if (!cJSON_IsString(k) || strcmp(k->valuestring, key))
        return flab_fail("%s: entry is for another key", where);
    if (!cJSON_IsString(target) || !target->valuestring[0])
        return flab_fail("%s: missing target name", where);
    if (!cJSON_IsArray(files)) return flab_fail("%s: missing \"files\" array", where);
    e->target = flab_xstrdup(target->valuestring);
    e->metrics_json = cJSON_IsObject(metrics) ? cJSON_PrintUnformatted(metrics) : flab_xstrdup("{}");
    e->provenance_json = cJSON_IsObject(prov) ? cJSON_PrintUnformatted(prov) : NULL;
    if (parse_log(o, e, where) < 0) return -1;
    size_t n = (size_t)cJSON_GetArraySize(files), i = 0;
    e->files = flab_xcalloc(n ? n : 1, sizeof *e->files);
    const cJSON *f;
    cJSON_ArrayForEach(f, files) {
        e->nfiles = i + 1;
        if (!cJSON_IsObject(f)) return flab_fail("%s: files[%zu] is not an object", where, i);
        if (parse_file(f, &e->files[i], where, i) < 0) return -1;
        i++;
    }
    return 0;
}

int remote_entry_parse(const char *text, const char *key, const char *where, RemoteEntry *e) {
    memset(e, 0, sizeof *e);
    cJSON *o = cJSON_Parse(text);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return flab_fail("%s: not valid JSON (damaged entry?)", where);
    }
    int rc = parse_fields(o, key, where, e);
    cJSON_Delete(o);
    if (rc < 0) remote_entry_free(e);
    return rc;
}

void remote_entry_free(RemoteEntry *e) {
    if (!e) return;
    free(e->target);
    free(e->metrics_json);
    free(e->provenance_json);
    for (size_t i = 0; i < e->nfiles; i++) free(e->files[i].relpath);
    free(e->files);
    memset(e, 0, sizeof *e);
}
