/* engine/record_state.h: skipping the per-target "last build" check of a
 * no-op build.
 *
 * After planning, `flab build` makes every wanted target's last-build record
 * (cache_record_target, used by `flab explain`) name its current key: a
 * target restored from the cache becomes the last build again.  That is one
 * cache query per target.  To avoid it on repeated no-op builds, the engine
 * keeps one small file, CACHE/engine-records.state, holding a hash of the
 * (target, key) pairs whose records were last made current.
 *
 * Invariant R1: if the file holds hash H, then for every (target, key) pair
 * hashed into H, the target's record named that key when the file was
 * written, and no flab process has recorded a build since: every process
 * removes the file before it records anything (record_state_invalidate), and
 * writes it (atomically) only after all its records are done.  A missing or
 * unreadable file only means "check every record".  (Two builds of
 * different variants running at the same moment can break R1 for a target
 * both recorded; the cost is an explain that compares with the other
 * variant's build, never a wrong build: records are not used for staleness.) */
#ifndef FLAB_ENGINE_RECORD_STATE_H
#define FLAB_ENGINE_RECORD_STATE_H
#include "engine/graph.h"

/* The hash of (name, key) of the targets marked in want (size g->n). */
void record_state_hash(const Graph *g, const unsigned char *want, char out[33]);
/* 1 when the state file holds exactly hash, else 0. */
int record_state_matches(const char *cache_dir, const char *hash);
/* Removes the state file (before recording anything).  0 or -1. */
int record_state_invalidate(const char *cache_dir);
/* Writes hash to the state file, atomically.  0 or -1. */
int record_state_write(const char *cache_dir, const char *hash);
#endif
