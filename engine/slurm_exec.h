/* engine/slurm_exec.h: the Slurm executor (`[flab] executor = slurm`,
 * `flab build --executor slurm`) and `flab cancel`.
 *
 * Each target of the plan becomes one sbatch job once all its dependencies
 * are committed (flab submits as dependencies finish; no afterok chains, so
 * a failed dependency never leaves jobs pending forever and -k works as
 * locally).  The job runs flab itself on the node:
 *     FLAB_CACHE=<cache> flab -f <flabfile> build --executor local [-D..] T
 * which builds exactly T against the same cache (a path every node sees):
 * T's dependencies are already committed, so only T runs, with the engine's
 * cache_begin/commit guarantees (a node killed mid-job leaves only
 * staging garbage; the key stays absent and a re-run resubmits it).
 * Independent targets are submitted together and run as concurrent jobs;
 * Slurm does the placement.  State is polled with `squeue -t all` (no
 * accounting store needed).  A job's flab output goes to
 * <cache>/slurm/logs/<jobid>.log and is shown when the job fails; the
 * rule's own log is stored with the artifact by the node's flab.
 * Submitted job ids are listed in <cache>/slurm/jobs-<pid> while the build
 * runs; SIGINT/SIGTERM and `flab cancel` scancel them.
 * Provenance (written by the node's flab) gets a "slurm" object: job id,
 * node, partition and the requested resources. */
#ifndef FLAB_ENGINE_SLURM_EXEC_H
#define FLAB_ENGINE_SLURM_EXEC_H
#include "engine/build.h"
#include <stddef.h>

struct cJSON;

/* Runs the plan through Slurm.  defines: the build's -D specs, passed on to
 * the node's flab.  Same return convention as build_run. */
int slurm_build_run(Graph *g, struct FlabCache *c, const Plan *plan, const BuildOptions *o,
                    char *const *defines, size_t ndefines, BuildResult *res);

/* scancels every job listed by running builds of the cache at cache_dir;
 * returns the number of jobs cancelled, or -1 with a message. */
int slurm_cancel_all(const char *cache_dir);

/* When running inside a Slurm job, adds "slurm": {job_id, node, partition,
 * resources} to a provenance object; otherwise does nothing. */
void slurm_provenance_add(struct cJSON *prov);
#endif
