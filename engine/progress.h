/* engine/progress.h: what a build prints while it runs.
 *
 * Ninja-style: each finished target prints "[k/N] name (rule) 1.23s" where
 * N is the number of targets this build runs.  While targets run:
 *   - on a terminal, one status line at the bottom is redrawn in place:
 *     "[k/N] name (rule) 12.3s [#######.......] 45% ETA 15s" for the most
 *     recently reporting target (rules report progress via rule_progress);
 *   - otherwise (logs, CI) plain lines "  name: 45% (450/1000) 12.3s ETA 15s"
 *     at most every 10 seconds per target, so logs stay short.
 * FLAB_PROGRESS=plain forces plain lines, =tty forces the status line. */
#ifndef FLAB_ENGINE_PROGRESS_H
#define FLAB_ENGINE_PROGRESS_H
#include <stddef.h>
#include <stdio.h>

typedef struct Progress Progress;

Progress *progress_new(FILE *out, size_t total);
void progress_free(Progress *p);

/* slot identifies a running target (0..jobs-1). */
void progress_start(Progress *p, int slot, const char *name, const char *rule);
void progress_update(Progress *p, int slot, double done, double total);
/* Prints the ninja line; ok = 0 prints "FAILED: ..." instead. Returns elapsed seconds. */
double progress_finish(Progress *p, int slot, int ok);
/* A planned target that needed no run after all (its key was built
 * elsewhere meanwhile): "[k/N] name (rule) from cache". */
void progress_cached(Progress *p, const char *name, const char *rule);
/* Redraws the status line (call a few times a second while waiting). */
void progress_tick(Progress *p);
/* Prints a full line above the status line. */
void progress_print(Progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

double progress_now(void);   /* monotonic seconds */
#endif
