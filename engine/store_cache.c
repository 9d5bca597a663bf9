/* engine/store_cache.c: EngineStore over the real cache (cache/cache.h). */
#include "engine/store.h"
#include "cache/cache.h"

static int hash_path(void *ud, const char *path, char out[33]) {
    return cache_hash_path(ud, path, out);
}

static int has_key(void *ud, const char *key) {
    return cache_lookup(ud, key, NULL);
}

static int last_build(void *ud, const char *target, char key[33], char **json) {
    return cache_last_target(ud, target, key, json);
}

EngineStore store_over_cache(struct FlabCache *c) {
    return (EngineStore){c, hash_path, has_key, last_build};
}
