/* engine/plan.c: staleness and the run set (see plan.h). */
#include "engine/plan.h"
#include "engine/keys.h"
#include "util/error.h"
#include <stdlib.h>
#include <string.h>

int plan_make(Graph *g, const int *roots, size_t nroots, int force,
              const EngineStore *s, Plan *out) {
    memset(out, 0, sizeof *out);
    unsigned char *closure = flab_xcalloc(g->n + 1, 1);
    graph_closure(g, roots, nroots, closure);
    if (keys_compute(g, closure, s) < 0) { free(closure); return -1; }
    out->want = flab_xcalloc(g->n + 1, 1);
    out->run = flab_xcalloc(g->n + 1, 1);
    out->order = flab_xmalloc((g->n + 1) * sizeof *out->order);
    for (size_t i = 0; i < nroots; i++) out->want[roots[i]] = 1;
    int r = 0;
    for (size_t k = g->n; k-- > 0 && !r;) {   /* dependents before dependencies */
        int v = g->order[k];
        if (!out->want[v]) continue;
        out->nwant++;
        int has = force ? 0 : s->has_key(s->ud, g->targets[v].key);
        if (has < 0) { r = -1; break; }
        if (has) continue;
        out->run[v] = 1;
        for (size_t i = 0; i < g->targets[v].ndeps; i++) out->want[g->targets[v].deps[i]] = 1;
    }
    for (size_t k = 0; k < g->n; k++)
        if (out->run[g->order[k]]) out->order[out->nrun++] = g->order[k];
    free(closure);
    if (r) plan_free(out);
    return r;
}

void plan_free(Plan *p) {
    free(p->want);
    free(p->run);
    free(p->order);
    memset(p, 0, sizeof *p);
}
