/* kernels/cpu/cpu_pool.c: the thread pool (see cpu_pool.h).
 *
 * A run publishes a Job (on the caller's stack) as `current` and wakes the
 * workers; everyone, the caller included, pulls task numbers from the job's
 * atomic counter.  The caller returns once it finds no task left and no
 * worker still holds the job (refs == 0: every task taken is finished) -- it never waits for a worker that has
 * not woken up yet: such a worker finds `current` NULL (or a later job) and
 * goes back to sleep.  This matters on shared machines, where a sleeping
 * worker may not be scheduled for milliseconds; the caller then simply runs
 * all the tasks itself.  Workers sleep on a condition variable (no
 * spinning, which would steal cores from other users). */
#include "kernels/cpu/cpu_pool.h"
#include "util/error.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct CpuPool CpuPool_;
typedef struct { CpuPool_ *p; int id; } WorkerArg;

typedef struct {
    CpuTaskFn fn;
    void *ctx;
    int n_tasks;
    atomic_int next;
    int refs;                    /* workers inside this job (under mu) */
} Job;

struct CpuPool {
    int n_threads;
    pthread_t *threads;
    WorkerArg *args;             /* one per worker, read by it at start */
    pthread_mutex_t mu;
    pthread_cond_t wake, idle;
    unsigned long generation;
    int stop;
    Job *current;                /* NULL between runs */
};


static void job_drain(Job *j, int worker) {
    for (;;) {
        int t = atomic_fetch_add(&j->next, 1);
        if (t >= j->n_tasks) break;
        j->fn(j->ctx, t, worker);
    }
}

static void *pool_worker(void *arg) {
    WorkerArg *wa = arg;
    CpuPool *p = wa->p;
    int id = wa->id;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        Job *j = p->current;
        if (!j) continue;
        j->refs++;
        pthread_mutex_unlock(&p->mu);
        job_drain(j, id);
        pthread_mutex_lock(&p->mu);
        if (--j->refs == 0) pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

CpuPool *cpu_pool_create(int n_threads) {
    CpuPool *p = flab_xcalloc(1, sizeof *p);
    p->n_threads = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->idle, NULL);
    p->threads = flab_xcalloc((size_t)p->n_threads, sizeof(pthread_t));
    WorkerArg *args = p->args = flab_xcalloc((size_t)p->n_threads, sizeof *args);
    for (int i = 1; i < p->n_threads; i++) {
        args[i] = (WorkerArg){p, i};
        if (pthread_create(&p->threads[i], NULL, pool_worker, &args[i]) != 0) {
            p->n_threads = i;    /* run with the workers we got */
            break;
        }
    }
    return p;
}

void cpu_pool_destroy(CpuPool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    free(p->args);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->idle);
    free(p->threads);
    free(p);
}

int cpu_pool_threads(const CpuPool *p) { return p->n_threads; }

void cpu_pool_run(CpuPool *p, int n_tasks, CpuTaskFn fn, void *ctx) {
    if (p->n_threads == 1 || n_tasks <= 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    Job j = {.fn = fn, .ctx = ctx, .n_tasks = n_tasks};
    atomic_init(&j.next, 0);
    pthread_mutex_lock(&p->mu);
    p->current = &j;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    job_drain(&j, 0);
    pthread_mutex_lock(&p->mu);
    p->current = NULL;           /* late wakers skip this job */
    while (j.refs > 0) pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
