/* engine/record_state.c: the no-op shortcut for build records (see record_state.h). */
#include "engine/record_state.h"
#include "util/error.h"
#include "util/file.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define STATE_FILE "engine-records.state"
#define STATE_MAGIC "flab-records-1 "

static char *state_path(const char *cache_dir) {
    size_t n = strlen(cache_dir) + sizeof STATE_FILE + 2;
    char *p = flab_xmalloc(n);
    snprintf(p, n, "%s/%s", cache_dir, STATE_FILE);
    return p;
}

void record_state_hash(const Graph *g, const unsigned char *want, char out[33]) {
    XXH3_state_t *st = XXH3_createState();
    XXH3_128bits_reset(st);
    for (size_t k = 0; k < g->n; k++) {
        const Target *t = &g->targets[g->order[k]];
        if (!want[g->order[k]]) continue;
        XXH3_128bits_update(st, t->name, strlen(t->name) + 1);   /* NUL separates */
        XXH3_128bits_update(st, t->key, 33);
    }
    XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

int record_state_matches(const char *cache_dir, const char *hash) {
    char *path = state_path(cache_dir), buf[80] = {0};
    FILE *f = fopen(path, "r");
    free(path);
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return !strncmp(buf, STATE_MAGIC, sizeof STATE_MAGIC - 1) &&
           !strcmp(buf + sizeof STATE_MAGIC - 1, hash);
}

int record_state_invalidate(const char *cache_dir) {
    char *path = state_path(cache_dir);
    int r = unlink(path) < 0 && errno != ENOENT ? flab_fail_errno("%s", path) : 0;
    free(path);
    return r;
}

int record_state_write(const char *cache_dir, const char *hash) {
    char *path = state_path(cache_dir), buf[80];
    int n = snprintf(buf, sizeof buf, STATE_MAGIC "%s", hash);
    int r = flab_write_file_atomic(path, buf, (size_t)n);
    free(path);
    return r;
}
