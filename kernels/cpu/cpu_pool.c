/* kernels/cpu/cpu_pool.c: the thread pool (see cpu_pool.h).
 *
 * Workers sleep on a condition variable until `generation` changes, then
 * pull task numbers from `next` until it passes n_tasks; the last worker to
 * finish signals `done`.  Sleeping (not spinning) on purpose: the machines
 * this runs on are often shared and spinning would steal their cores. */
#include "kernels/cpu/cpu_pool.h"
#include "util/error.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct CpuPool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    unsigned long generation;
    int stop, busy;              /* workers still inside the current run */
    int n_tasks;
    CpuTaskFn fn;
    void *ctx;
    atomic_int next;
};

typedef struct { CpuPool *p; int id; } WorkerArg;

static void pool_drain(CpuPool *p, int worker) {
    for (;;) {
        int t = atomic_fetch_add(&p->next, 1);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, worker);
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
        pthread_mutex_unlock(&p->mu);
        pool_drain(p, id);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

CpuPool *cpu_pool_create(int n_threads) {
    CpuPool *p = flab_xcalloc(1, sizeof *p);
    p->n_threads = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = flab_xcalloc((size_t)p->n_threads, sizeof(pthread_t));
    WorkerArg *args = flab_xcalloc((size_t)p->n_threads, sizeof *args);
    for (int i = 1; i < p->n_threads; i++) {
        args[i] = (WorkerArg){p, i};
        if (pthread_create(&p->threads[i], NULL, pool_worker, &args[i]) != 0) {
            p->n_threads = i;    /* run with the workers we got */
            break;
        }
    }
    /* Workers read their WorkerArg once at entry: an empty run returns only
     * after every worker has started, so args can be freed after it. */
    cpu_pool_run(p, 0, NULL, NULL);
    free(args);
    return p;
}

void cpu_pool_destroy(CpuPool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int cpu_pool_threads(const CpuPool *p) { return p->n_threads; }

void cpu_pool_run(CpuPool *p, int n_tasks, CpuTaskFn fn, void *ctx) {
    if (p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn; p->ctx = ctx; p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    p->busy = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pool_drain(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
