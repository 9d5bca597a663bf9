/* engine/params.h: validating flabfile values against a rule's RuleParam
 * specs, and suggesting the closest name for a typo. */
#ifndef FLAB_ENGINE_PARAMS_H
#define FLAB_ENGINE_PARAMS_H
#include "rules/rule.h"
#include <stddef.h>

/* Checks text against spec and returns its canonical form (malloc'd) in
 * *out, so that equal values give equal keys: ints in decimal ("04" -> "4"),
 * floats as "%.17g" ("0.50" -> "0.5"), bools "true"/"false", strings and
 * input lists with surrounding whitespace removed (inputs: single spaces).
 * -1 with a message (no file:line; the caller adds it) on a bad value. */
int param_normalise(const RuleParam *spec, const char *text, char **out);

/* Splits an input list on whitespace; returns the count, *items malloc'd
 * array of malloc'd strings (free with param_free_list). */
size_t param_split(const char *text, char ***items);
void param_free_list(char **items, size_t n);

/* The candidate closest to name (Levenshtein), if close enough to be a
 * plausible typo, else NULL. */
const char *suggest_closest(const char *name, const char *const *candidates, size_t n);
#endif
