/* engine/build.h: running a plan: the scheduler and the rule runner.
 *
 * Scheduler: targets of the plan start in dependency order as soon as all
 * their dependencies are done, up to `jobs` at once (a RULE_EXCLUSIVE rule
 * runs alone).  Each target:
 *   1. cache_begin(key, NOWAIT): 1 -> another flab committed it meanwhile
 *      (done); 2 -> another flab is building it: retry every 100 ms (so two
 *      builds of one cache never build a key twice); 0 -> we build it;
 *   2. its @target inputs are resolved to their materialised artifact dirs;
 *   3. a child process (fork) runs the rule: own process group, SIGKILL when
 *      flab dies, stdout/stderr into the build's log, cwd = flabfile dir;
 *      it reports progress and metrics over a pipe ("P done total",
 *      "M {json}", "D device") and exits 0 or 1;
 *   4. success: cache_commit (provenance manifest included), then
 *      cache_record_target with the explain record; failure: the log is
 *      shown, cache_abort: nothing is recorded, dependents never start.
 * Without keep_going the first failure stops new starts; running targets
 * finish.  SIGINT/SIGTERM kill the running rules and abort their builds. */
#ifndef FLAB_ENGINE_BUILD_H
#define FLAB_ENGINE_BUILD_H
#include "engine/graph.h"
#include "engine/plan.h"
#include <stddef.h>

struct FlabCache;

typedef struct {
    int jobs;          /* >= 1 */
    int keep_going;    /* -k */
    int force;         /* -B: rebuild even committed keys (CACHE_BEGIN_FORCE) */
} BuildOptions;

typedef struct {
    size_t built, failed, skipped, by_other;  /* by_other: committed by another flab */
    int interrupted;                           /* signal number, or 0 */
} BuildResult;

/* 0 when every planned target was built, 1 when some failed (or were
 * skipped because a dependency failed), -1 on an engine/cache error. */
int build_run(Graph *g, struct FlabCache *c, const Plan *plan, const BuildOptions *o,
              BuildResult *res);

/* The provenance manifest of a build of t (JSON object text, malloc'd);
 * device as reported by the rule (rule_device), NULL = "cpu". */
char *build_provenance_json(const Graph *g, const Target *t, const char *device,
                            double start_time, double duration);
#endif
