/* cache/objscan.h: walking the object store and the set of objects that
 * index rows reference (verify, gc, check). */
#ifndef FLAB_CACHE_OBJSCAN_H
#define FLAB_CACHE_OBJSCAN_H
#include "cache/internal.h"

/* cb(path, hash, exec, ud) for each object file; nonzero return stops and
 * is returned.  -1 if objects/ cannot be read. */
typedef int (*cache_object_cb)(const char *path, const char *hash, int exec, void *ud);
int cache_i_scan_objects(FlabCache *c, cache_object_cb cb, void *ud);
int cache_i_parse_object_name(const char *sub, const char *name, char hash[33], int *exec);

/* Sorted set of "<hash>" / "<hash>.x" names that rows reference. */
typedef struct { char **v; size_t n, cap; } CacheRefSet;
int cache_i_load_refs(FlabCache *c, CacheRefSet *s);
int cache_i_refs_has(const CacheRefSet *s, const char *hash, int exec);
void cache_i_free_refs(CacheRefSet *s);
#endif
