/* engine/cli_remote.h: the remote in the CLI: `flab push`, `flab pull`
 * (commands.h) and the two hooks of `flab build` (remote check before
 * running rules, push after building when [flab] push = true).
 * See docs/REMOTE.md. */
#ifndef FLAB_ENGINE_CLI_REMOTE_H
#define FLAB_ENGINE_CLI_REMOTE_H
#include "engine/cli_common.h"
#include "engine/plan.h"
#include "cache/remote.h"

/* The project's remote: $FLAB_REMOTE, else [flab] remote; *out = NULL when
 * neither is set.  *push_after: [flab] push (bool, default false; may be
 * NULL).  Prints the error and returns -1 on a bad URL or setting. */
int cli_remote_open(Project *p, FlabRemote **out, int *push_after);

/* flab build: for each target the plan would run (dependents first), asks
 * the remote for its key and pulls it when present, then re-plans, so a
 * target found on the remote never runs and needs none of its
 * dependencies.  A remote that fails (unreachable, authentication, a
 * corrupt object) is reported once as a warning and no longer asked: the
 * build goes on locally.  *pulled counts the artifacts pulled.  0, or -1
 * on a planning error (printed). */
int cli_remote_prefetch(Project *p, FlabRemote *r, const int *roots, size_t nroots, Plan *plan,
                        size_t *pulled);

/* flab build with push = true: pushes every target the plan ran that is now
 * in the cache.  0, or -1 when a push failed (printed). */
int cli_remote_push_built(Project *p, FlabRemote *r, const Plan *plan);
#endif
