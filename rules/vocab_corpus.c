/* rules/vocab_corpus.c: walking a corpus of files, directories and jsonl
 * fields (see vocab_corpus.h). */
#include "rules/vocab_corpus.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *fields, *base_dir;
    const VcCallbacks *cb;
    void *user;
} Walk;

static const char *relative(const Walk *w, const char *path) {
    size_t b = strlen(w->base_dir);
    if (!strncmp(path, w->base_dir, b) && path[b] == '/') return path + b + 1;
    return path;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* One jsonl row: the named string fields concatenated into *buf.  Returns
 * how many fields were found, -1 on a JSON error. */
static int row_text(const Walk *w, const char *line, char **buf, size_t *len) {
    cJSON *row = cJSON_Parse(line);
    if (!cJSON_IsObject(row)) { cJSON_Delete(row); return -1; }
    int found = 0;
    *len = 0;
    char *names = flab_xstrdup(w->fields), *save = NULL;
    for (char *f = strtok_r(names, " \t", &save); f; f = strtok_r(NULL, " \t", &save)) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, f);
        if (!cJSON_IsString(v)) continue;
        size_t k = strlen(v->valuestring);
        *buf = flab_xrealloc(*buf, *len + k + 1);
        memcpy(*buf + *len, v->valuestring, k + 1);
        *len += k;
        found++;
    }
    free(names);
    cJSON_Delete(row);
    return found;
}

static int walk_jsonl(const Walk *w, const char *path, char *data) {
    const char *rel = relative(w, path);
    char *buf = NULL, src[4200];
    size_t len, lineno = 0, rows = 0;
    int rc = 0;
    for (char *line = data, *next; line && rc == 0; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        lineno++;
        if (strspn(line, " \t\r") == strlen(line)) continue;
        int found = row_text(w, line, &buf, &len);
        if (found < 0) { rc = flab_fail("%s:%zu: not a JSON object", rel, lineno); break; }
        if (found == 0) continue;
        rows++;
        snprintf(src, sizeof src, "%s:%zu", rel, lineno);
        rc = w->cb->text(src, buf, len, w->user);
    }
    free(buf);
    if (rc == 0 && rows == 0 && w->cb->skipped) w->cb->skipped(rel, w->user);
    return rc;
}

static int walk_path(const Walk *w, const char *path);

static int walk_dir(const Walk *w, const char *path) {
    struct dirent **ents;
    int n = scandir(path, &ents, NULL, alphasort), rc = 0;
    if (n < 0) return flab_fail_errno("%s", relative(w, path));
    for (int i = 0; i < n; i++) {
        if (rc == 0 && ents[i]->d_name[0] != '.') {
            size_t k = strlen(path) + strlen(ents[i]->d_name) + 2;
            char *sub = flab_xmalloc(k);
            snprintf(sub, k, "%s/%s", path, ents[i]->d_name);
            rc = walk_path(w, sub);
            free(sub);
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

static int walk_path(const Walk *w, const char *path) {
    struct stat st;
    if (stat(path, &st) < 0) return flab_fail_errno("%s", relative(w, path));
    if (S_ISDIR(st.st_mode)) return walk_dir(w, path);
    char *data;
    size_t len;
    if (flab_read_file(path, &data, &len) < 0) return -1;
    if (memchr(data, '\0', len)) {   /* a text cannot hold NUL; a binary file */
        free(data);
        return flab_fail("%s: contains NUL bytes (a binary file?)", relative(w, path));
    }
    int rc = ends_with(path, ".jsonl") ? walk_jsonl(w, path, data)
                                       : w->cb->text(relative(w, path), data, len, w->user);
    free(data);
    return rc;
}

int vc_walk(const char *const *paths, size_t n, const char *fields, const char *base_dir,
            const VcCallbacks *cb, void *user) {
    Walk w = {fields, base_dir, cb, user};
    for (size_t i = 0; i < n; i++) {
        if (walk_path(&w, paths[i]) < 0) return -1;
        if (cb->done) cb->done(i + 1, n, user);
    }
    return 0;
}
