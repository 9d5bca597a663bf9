/* engine/cli_build.c: `flab build [-n] [-B] [-k] [-j N] [-f FILE] [-D T.P=V]... [TARGET...]`.
 *
 * Plans (engine/plan.c), then either prints what would run and why (-n) or
 * runs the plan (engine/build.c).  Targets that are fresh but whose last
 * recorded build had another key (a reverted change restored from the
 * cache) get their record updated, so `flab explain` compares against what
 * the target now is (skipped when engine/record_state.h proves them current). */
#include "engine/build.h"
#include "engine/cli_common.h"
#include "engine/cli_remote.h"
#include "engine/commands.h"
#include "engine/explain.h"
#include "engine/plan.h"
#include "engine/progress.h"
#include "engine/record_state.h"
#include "engine/slurm_exec.h"
#include "engine/keys.h"
#include "cache/cache.h"
#include "util/error.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void build_usage(void) {
    fprintf(stderr, "usage: flab build [-n] [-B] [-k] [-j N] [--no-remote] [--executor local|slurm] "
                    "[-f FLABFILE] [-D TARGET.PARAM=VALUE]... [TARGET...]\n");
}

static void dry_run(Project *p, const Plan *plan) {
    for (size_t k = 0; k < plan->nrun; k++) {
        const Target *t = &p->g->targets[plan->order[k]];
        Explanation e;
        const char *why = "forced (-B)";
        int fresh_anyway = 0;
        if (explain_target(p->g, t, &p->store, &e) == 0) {
            if (e.state != EXPLAIN_FRESH) why = explanation_summary(&e);
            else fresh_anyway = 1;
        } else why = flab_errmsg();
        printf("would run [%zu/%zu] %s (%s): %s\n", k + 1, plan->nrun, t->name, t->rule->name,
               fresh_anyway ? "forced (-B)" : why);
        explanation_free(&e);
    }
    printf("flab: %zu target%s would run, %zu fresh\n", plan->nrun, plan->nrun == 1 ? "" : "s",
           plan->nwant - plan->nrun);
}

/* Fresh targets restored from the cache become the "last build" again. */
static void record_fresh(Project *p, const Plan *plan) {
    for (size_t i = 0; i < p->g->n; i++) {
        if (!plan->want[i] || plan->run[i]) continue;
        const Target *t = &p->g->targets[i];
        char last[33];
        int r = cache_last_target(p->c, t->name, last, NULL);
        if (r == 1 && !strcmp(last, t->key)) continue;
        if (r < 0) continue;
        char *desc = keys_describe(p->g, t);
        cache_record_target(p->c, t->name, t->key, desc);
        free(desc);
    }
}

typedef struct {
    ProjectArgs pa;
    BuildOptions bo;
    int dry;
    int no_remote;     /* --no-remote: neither ask nor push to the remote */
    const char *executor;   /* --executor, else [flab] executor, else local */
} BuildArgs;

static int parse_build_args(int argc, char **argv, BuildArgs *a) {
    memset(a, 0, sizeof *a);
    a->bo.jobs = 1;
    optind = 1;
    static const struct option longs[] = {{"no-remote", no_argument, NULL, 'R'},
                                          {"executor", required_argument, NULL, 'E'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "nBkj:f:D:", longs, NULL)) != -1) {
        switch (c) {
        case 'R': a->no_remote = 1; break;
        case 'E': a->executor = optarg; break;
        case 'n': a->dry = 1; break;
        case 'B': a->bo.force = 1; break;
        case 'k': a->bo.keep_going = 1; break;
        case 'f': a->pa.flabfile = optarg; break;
        case 'D': project_args_define(&a->pa, optarg); break;
        case 'j': {
            char *end;
            long j = strtol(optarg, &end, 10);
            if (*end || j < 1 || j > 256) { cli_error("-j %s: expected 1..256", optarg); return -1; }
            a->bo.jobs = (int)j;
            break;
        }
        default: build_usage(); return -1;
        }
    }
    return 0;
}

/* 1 for the Slurm executor (docs/SLURM.md), 0 local, -1 (printed) unknown. */
static int use_slurm(const BuildArgs *a, const Graph *g) {
    const FfEntry *e = ff_section_get(&g->ff->global, "executor");
    const char *ex = a->executor ? a->executor : e && *e->value ? e->value : "local";
    if (!strcmp(ex, "local")) return 0;
    if (!strcmp(ex, "slurm")) return 1;
    cli_error("executor '%s': expected local or slurm", ex);
    return -1;
}

int cmd_build(int argc, char **argv) {
    BuildArgs a;
    if (parse_build_args(argc, argv, &a) < 0) { project_args_free(&a.pa); return EXIT_USAGE; }
    double t0 = progress_now();
    Project p;
    int rc = EXIT_USAGE;
    if (project_open(&a.pa, &p) < 0) { project_args_free(&a.pa); return EXIT_USAGE; }
    double t_load = progress_now();
    int *roots = NULL;
    size_t nroots;
    Plan plan = {0};
    FlabRemote *remote = NULL;
    int push_after = 0;
    if (graph_select(p.g, argv + optind, (size_t)(argc - optind), &roots, &nroots) < 0) {
        cli_error("%s", flab_errmsg());
        goto out;
    }
    project_read_begin(&p);   /* planning reads the cache a few times per target */
    if (plan_make(p.g, roots, nroots, a.bo.force, &p.store, &plan) < 0) {
        project_read_end(&p);
        cli_error("%s", flab_errmsg());
        goto out;
    }
    double t_plan = progress_now();
    if (a.dry) { dry_run(&p, &plan); project_read_end(&p); rc = EXIT_OK; goto out; }
    /* make the wanted targets' records current, unless they provably are (R1) */
    char state[33];
    record_state_hash(p.g, plan.want, state);
    int records_current = !plan.nrun && record_state_matches(p.g->cache_dir, state);
    if (!records_current) {
        record_state_invalidate(p.g->cache_dir);
        record_fresh(&p, &plan);
    }
    project_read_end(&p);
    /* the team remote (engine/cli_remote.c): pull what it has before building;
     * pulled targets get their records there */
    size_t pulled = 0;
    if (!a.no_remote && plan.nrun && cli_remote_open(&p, &remote, &push_after) < 0) goto out;
    if (remote && !a.bo.force && cli_remote_prefetch(&p, remote, roots, nroots, &plan, &pulled) < 0)
        goto out;
    if (getenv("FLAB_TIMING"))   /* like ninja -d stats: where a no-op build spends its time */
        fprintf(stderr, "flab: timing: load %.1f ms, plan %.1f ms, records %.1f ms\n",
                (t_load - t0) * 1e3, (t_plan - t_load) * 1e3, (progress_now() - t_plan) * 1e3);
    if (!plan.nrun) {
        if (!records_current && !pulled) record_state_write(p.g->cache_dir, state);
        if (pulled) printf("flab: pulled %zu target%s from the remote\n", pulled, pulled == 1 ? "" : "s");
        else printf("flab: no work to do (%zu target%s fresh)\n", plan.nwant, plan.nwant == 1 ? "" : "s");
        rc = EXIT_OK;
        goto out;
    }
    BuildResult res;
    int slurm = use_slurm(&a, p.g);
    if (slurm < 0) { rc = EXIT_USAGE; goto out; }
    int r = slurm ? slurm_build_run(p.g, p.c, &plan, &a.bo, a.pa.defines, a.pa.ndefines, &res)
                  : build_run(p.g, p.c, &plan, &a.bo, &res);
    if (r < 0) { cli_error("%s", flab_errmsg()); rc = EXIT_USAGE; goto out; }
    double dt = progress_now() - t0;
    if (res.interrupted) {
        printf("flab: interrupted by signal %d: nothing of the running targets was recorded\n",
               res.interrupted);
        rc = 128 + res.interrupted;
    } else if (r == 0) {
        record_state_write(p.g->cache_dir, state);
        printf("flab: built %zu target%s (%zu fresh) in %.2fs\n", res.built + res.by_other,
               res.built + res.by_other == 1 ? "" : "s", plan.nwant - plan.nrun, dt);
        rc = EXIT_OK;
        if (remote && push_after && cli_remote_push_built(&p, remote, &plan) < 0) {
            cli_error("built locally, but the push to the remote failed");
            rc = EXIT_FAILED;
        }
    } else {
        printf("flab: %zu failed, %zu not built (dependency failed or stopped), %zu built in %.2fs\n",
               res.failed, res.skipped, res.built + res.by_other, dt);
        rc = EXIT_FAILED;
    }
out:
    remote_close(remote);
    plan_free(&plan);
    free(roots);
    project_close(&p);
    project_args_free(&a.pa);
    return rc;
}
