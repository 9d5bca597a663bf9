/* engine/store.h: what keys, staleness and explain need from the cache.
 *
 * A small interface (like ninja's DiskInterface) so the staleness logic is
 * unit-tested against an in-memory fake (tests/test_plan.c) and runs for
 * real over cache/cache.h (engine/store_cache.c). */
#ifndef FLAB_ENGINE_STORE_H
#define FLAB_ENGINE_STORE_H

typedef struct EngineStore {
    void *ud;
    /* Content hash of a file or directory (stat-cached in the real store). 0/-1. */
    int (*hash_path)(void *ud, const char *abs_path, char out[33]);
    /* 1 when an artifact for key is committed, 0 when not, -1 on error. */
    int (*has_key)(void *ud, const char *key);
    /* The last build recorded for target: 1 with key (and a malloc'd copy of
     * its explain JSON when json != NULL), 0 when none, -1 on error. */
    int (*last_build)(void *ud, const char *target, char key[33], char **json);
} EngineStore;

struct FlabCache;
/* The real store over an open cache (ud = the FlabCache). */
EngineStore store_over_cache(struct FlabCache *c);
#endif
