/* kernels/cpu/cpu_pool.h: a tiny persistent thread pool for the CPU ops.
 *
 * cpu_pool_run(pool, n_tasks, fn, ctx) calls fn(ctx, task, worker) once for
 * every task in [0, n_tasks), spread over the workers (the calling thread is
 * worker 0 and takes part), and returns when all have finished.  Tasks are
 * handed out dynamically (an atomic counter), so uneven tasks balance.
 * One run at a time per pool (the backend is not re-entrant). */
#ifndef FLAB_KERNELS_CPU_POOL_H
#define FLAB_KERNELS_CPU_POOL_H

typedef struct CpuPool CpuPool;
typedef void (*CpuTaskFn)(void *ctx, int task, int worker);

CpuPool *cpu_pool_create(int n_threads);   /* n_threads >= 1 */
void cpu_pool_destroy(CpuPool *p);
int cpu_pool_threads(const CpuPool *p);
void cpu_pool_run(CpuPool *p, int n_tasks, CpuTaskFn fn, void *ctx);
#endif
