/* engine/explain.h: why a target is stale.
 *
 * Compares the target's current explain record (engine/keys.c) with the one
 * stored at its last build (EngineStore.last_build) and names exactly what
 * differs: the rule or its version, each parameter (old -> new), each input
 * whose content or dependency key changed.  Used by `flab explain`, by
 * `flab status` and by the dry run (`flab build -n`). */
#ifndef FLAB_ENGINE_EXPLAIN_H
#define FLAB_ENGINE_EXPLAIN_H
#include "engine/graph.h"
#include "engine/store.h"

typedef enum {
    EXPLAIN_FRESH,      /* key is in the cache */
    EXPLAIN_NEVER,      /* no build of this target was ever recorded */
    EXPLAIN_CHANGED,    /* the key differs from the last build's: reasons listed */
    EXPLAIN_MISSING,    /* same key as the last build, but the artifact is gone */
} ExplainState;

typedef struct {
    ExplainState state;
    char **reasons;     /* one line each, e.g. "parameter 'remove' changed: 4 -> 6" */
    size_t nreasons;
    char last_key[33];  /* "" when never built */
} Explanation;

/* Needs t->key computed.  0, or -1 on a store error. */
int explain_target(const Graph *g, const Target *t, const EngineStore *s, Explanation *out);
void explanation_free(Explanation *e);
/* The first reason, or a phrase for the state ("never built", ...). */
const char *explanation_summary(const Explanation *e);
#endif
