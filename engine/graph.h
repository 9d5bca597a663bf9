/* engine/graph.h: the resolved target graph.
 *
 * graph_build() turns a parsed Flabfile into targets whose rule is known,
 * whose parameters are validated and normalised against the rule's specs
 * (defaults applied), whose inputs are resolved (files and directories to
 * absolute paths, which must exist; @NAME to target indices), and which are
 * ordered so that every target comes after its dependencies.
 *
 * Invariants after a successful graph_build():
 *   G1 every target has a known rule and one normalised value per declared
 *      parameter (values[i] for rule->params[i]);
 *   G2 every input is either a file/dir that existed at build time (abs set,
 *      dep == -1) or a target of this graph (dep >= 0, abs NULL);
 *   G3 the dependency relation is acyclic and `order` lists every target
 *      after all of its dependencies (a cycle is an error naming it).
 * Every error names file:line (or -D for overrides). */
#ifndef FLAB_ENGINE_GRAPH_H
#define FLAB_ENGINE_GRAPH_H
#include "engine/flabfile.h"
#include "rules/rule.h"
#include <stddef.h>

typedef struct {
    int param;        /* index into rule->params */
    char *ref;        /* as written: "data/calib.jsonl" or "@tokenizer" */
    char *abs;        /* absolute path of a file/dir input, NULL for @targets */
    int dep;          /* target index of an @target, -1 for files */
    char key[33];     /* content hash or dependency key (engine/keys.c) */
} Input;

typedef struct {
    char *name;
    int line;                /* line of [name] */
    const Rule *rule;
    size_t nparams;
    char **values;           /* normalised text per param (G1) */
    int *value_lines;        /* line of each value; 0 = default */
    Input *inputs;           /* in parameter order, then flabfile order */
    size_t ninputs;
    int *deps;               /* distinct dependency indices */
    size_t ndeps;
    char key[33];            /* engine/keys.c; "" until computed */
} Target;

typedef struct {
    Flabfile *ff;            /* owned */
    char *cache_dir;         /* absolute: FLAB_CACHE, [flab] cache, or DIR/.flab */
    Target *targets;
    size_t n;
    int *order;              /* topological order (G3) */
    int *sorted;             /* indices sorted by name, for graph_find */
} Graph;

/* Takes ownership of ff (freed on error too).  0 or -1 with file:line. */
int graph_build(Flabfile *ff, Graph **out);
void graph_free(Graph *g);

/* Index of the target called name, or -1. */
int graph_find(const Graph *g, const char *name);

/* Marks in need[] (size g->n, zeroed by the caller) the targets in
 * roots[0..nroots) and everything they depend on. */
void graph_closure(const Graph *g, const int *roots, size_t nroots, unsigned char *need);

/* Resolves target names (NULL/0 = all targets) to indices in *out
 * (malloc'd).  Unknown names: -1 with a suggestion. */
int graph_select(const Graph *g, char *const *names, size_t n, int **out, size_t *nout);
#endif
