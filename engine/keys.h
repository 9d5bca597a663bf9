/* engine/keys.h: target keys.
 *
 * key(T) = XXH3-128 over a length-prefixed, typed encoding of
 *   "flab-key-1", rule name, rule version,
 *   for every declared parameter in declaration order (after defaults):
 *     its name, then
 *       - plain parameters: the normalised value;
 *       - input parameters: the number of inputs, then for each input
 *         either ("file", path as written, content hash of the file or
 *         directory) or ("target", the dependency's key).
 * A dependency enters by its key, not its name, so renaming a target does
 * not rebuild its dependents; a file input enters by path and content.
 * Keys are computed in topological order so dependency keys are known. */
#ifndef FLAB_ENGINE_KEYS_H
#define FLAB_ENGINE_KEYS_H
#include "engine/graph.h"
#include "engine/store.h"

/* Computes t->key and every t->inputs[i].key for the targets marked in
 * need (NULL: all).  0, or -1 naming the input that could not be hashed. */
int keys_compute(Graph *g, const unsigned char *need, const EngineStore *s);

/* The explain record of t (keys computed): a JSON object
 *   {"rule": R, "version": V, "params": {name: value...},
 *    "inputs": [{"param": P, "ref": "@x"|"path", "key": K}...]}
 * malloc'd text; stored with each build for `flab explain`. */
char *keys_describe(const Graph *g, const Target *t);
#endif
