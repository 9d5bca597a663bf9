/* engine/plan.h: which targets a build must run.
 *
 * Given the requested targets, plan_make() computes the keys of everything
 * they could need, then walks the graph from dependents to dependencies:
 * a wanted target runs when forced (-B) or when its key is not in the
 * cache; only a target that runs wants its dependencies.  So a fresh target
 * never causes work, even when artifacts of its dependencies were gc'd.
 * The targets to run come out in dependency order. */
#ifndef FLAB_ENGINE_PLAN_H
#define FLAB_ENGINE_PLAN_H
#include "engine/graph.h"
#include "engine/store.h"

typedef struct {
    unsigned char *want;   /* per target: requested, or needed by one that runs */
    unsigned char *run;    /* per target: must run */
    int *order;            /* targets that run, dependencies first */
    size_t nrun;
    size_t nwant;
} Plan;

int plan_make(Graph *g, const int *roots, size_t nroots, int force,
              const EngineStore *s, Plan *out);
void plan_free(Plan *p);
#endif
