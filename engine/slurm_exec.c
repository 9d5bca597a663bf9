/* engine/slurm_exec.c: the Slurm executor (see slurm_exec.h).
 *
 * Invariants: a target is submitted only after every dependency in the
 * plan is J_DONE (its key committed); every submitted, unfinished job id is
 * in the jobs file until it finishes; the build returns only when no job
 * it submitted is still active (or after scancel on a signal). */
#include "engine/slurm_exec.h"
#include "engine/log_tail.h"
#include "engine/slurm_resources.h"
#include "cache/cache.h"
#include "util/error.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_S 0.25       /* squeue interval */

typedef enum { S_PENDING, S_ACTIVE, S_DONE, S_FAILED, S_SKIPPED } SState;

typedef struct {
    int target;
    SState state;
    long jobid;
    char node[128];
    double submitted;
} SJob;

typedef struct {
    Graph *g;
    FlabCache *c;
    const BuildOptions *o;
    char *const *defines;
    size_t ndefines;
    BuildResult *res;
    SJob *jobs;
    size_t njobs, nactive, nfinished;
    int *job_of;
    int stop;
    char *flab, *flabfile, *jobs_file, *log_dir;
} SExec;

static volatile sig_atomic_t got_signal;
static void on_signal(int sig) { got_signal = sig; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- running Slurm's commands ------------------------------------------------ */

/* Runs argv (PATH lookup), its stdout into *out (malloc'd, may be NULL),
 * stderr inherited.  Returns the exit status, or -1 when it could not run. */
static int run_capture(char *const argv[], char **out) {
    int fds[2];
    if (pipe(fds) < 0) return flab_fail_errno("pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) { close(fds[0]); close(fds[1]); return flab_fail_errno("fork"); }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "flab: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0, cap = 256;
    char *buf = flab_xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap) buf = flab_xrealloc(buf, cap *= 2);
        ssize_t n = read(fds[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    buf[len] = 0;
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (out) *out = buf; else free(buf);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 127)
        return flab_fail("%s did not run (is Slurm installed and on PATH?)", argv[0]);
    return WEXITSTATUS(status);
}

/* Appends 'text' shell-quoted to a growing string, after a blank unless
 * the string ends with '='. */
static void sh_quote(char **s, size_t *len, const char *text) {
    size_t need = *len + 4 * strlen(text) + 4;
    *s = flab_xrealloc(*s, need);
    char *w = *s + *len;
    if (!*len || w[-1] != '=') *w++ = ' ';
    *w++ = '\'';
    for (const char *p = text; *p; p++) {
        if (*p == '\'') { memcpy(w, "'\\''", 4); w += 4; }
        else *w++ = *p;
    }
    *w++ = '\'';
    *w = 0;
    *len = (size_t)(w - *s);
}

/* ---- the jobs file: what `flab cancel` and signals scancel ------------------------ */

static void write_jobs_file(SExec *x) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", x->jobs_file);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    for (size_t k = 0; k < x->njobs; k++)
        if (x->jobs[k].state == S_ACTIVE) fprintf(f, "%ld\n", x->jobs[k].jobid);
    fclose(f);
    rename(tmp, x->jobs_file);
}

static int scancel_ids(long *ids, size_t n) {
    if (!n) return 0;
    char **argv = flab_xcalloc(n + 3, sizeof *argv);
    argv[0] = "scancel";
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = flab_xmalloc(24);
        snprintf(argv[i + 1], 24, "%ld", ids[i]);
    }
    int r = run_capture(argv, NULL);
    for (size_t i = 0; i < n; i++) free(argv[i + 1]);
    free(argv);
    return r < 0 ? -1 : (int)n;
}

static void cancel_active(SExec *x) {
    long *ids = flab_xcalloc(x->njobs + 1, sizeof *ids);
    size_t n = 0;
    for (size_t k = 0; k < x->njobs; k++)
        if (x->jobs[k].state == S_ACTIVE) ids[n++] = x->jobs[k].jobid;
    if (scancel_ids(ids, n) > 0) printf("flab: cancelled %zu Slurm job%s\n", n, n == 1 ? "" : "s");
    free(ids);
}

/* ---- submitting ---------------------------------------------------------------- */

/* The requested resources as sbatch options (argv entries, malloc'd) and as
 * a JSON object for provenance. */
static size_t resource_args(SExec *x, const Target *t, char **args, cJSON *json) {
    const char *v[SLURM_NRES];
    slurm_resources_of(x->g->ff, ff_find_target(x->g->ff, t->name), v);
    static const char *const opt[SLURM_NRES] = {
        "--gpus=", "--cpus-per-task=", "--mem=", "--time=", "--partition=", "--account=",
        "--constraint=",
    };
    size_t n = 0;
    for (int i = 0; i < SLURM_NRES; i++) {
        if (!v[i] || (i == 0 && !strcmp(v[i], "0"))) continue;
        size_t len = strlen(opt[i]) + strlen(v[i]) + 1;
        args[n] = flab_xmalloc(len);
        snprintf(args[n++], len, "%s%s", opt[i], v[i]);
        cJSON_AddStringToObject(json, slurm_resource_names[i], v[i]);
    }
    return n;
}

/* The batch script: the node's flab builds exactly this target. */
static char *node_script(SExec *x, const Target *t, const char *resources_json) {
    char *s = flab_xstrdup("#!/bin/sh\nexport FLAB_CACHE=");
    size_t len = strlen(s);
    sh_quote(&s, &len, x->g->cache_dir);
    s = flab_xrealloc(s, len + 64);
    len += (size_t)sprintf(s + len, "\nexport FLAB_SLURM_RESOURCES=");
    sh_quote(&s, &len, resources_json);
    s = flab_xrealloc(s, len + 64);
    len += (size_t)sprintf(s + len, "\nexec");
    sh_quote(&s, &len, x->flab);
    sh_quote(&s, &len, "-f");
    sh_quote(&s, &len, x->flabfile);
    sh_quote(&s, &len, "build");
    sh_quote(&s, &len, "--executor");
    sh_quote(&s, &len, "local");
    for (size_t i = 0; i < x->ndefines; i++) {
        sh_quote(&s, &len, "-D");
        sh_quote(&s, &len, x->defines[i]);
    }
    sh_quote(&s, &len, t->name);
    s = flab_xrealloc(s, len + 2);
    strcpy(s + len, "\n");
    return s;
}

static int submit(SExec *x, SJob *j) {
    const Target *t = &x->g->targets[j->target];
    char *args[SLURM_NRES + 1] = {0};
    cJSON *res = cJSON_CreateObject();
    size_t nres = resource_args(x, t, args, res);
    char *res_json = cJSON_PrintUnformatted(res);
    cJSON_Delete(res);
    char *script = node_script(x, t, res_json);
    free(res_json);
    size_t nlen = strlen(t->name) + 32, olen = strlen(x->log_dir) + 16;
    char *name = flab_xmalloc(nlen), *outp = flab_xmalloc(olen);
    snprintf(name, nlen, "--job-name=flab:%s", t->name);
    snprintf(outp, olen, "%s/%%j.log", x->log_dir);
    char *argv[SLURM_NRES + 16];
    size_t a = 0;
    argv[a++] = "sbatch";
    argv[a++] = "--parsable";
    argv[a++] = name;
    argv[a++] = "-o";
    argv[a++] = outp;
    argv[a++] = "--chdir";
    argv[a++] = x->g->ff->dir;
    for (size_t i = 0; i < nres; i++) argv[a++] = args[i];
    argv[a++] = "--wrap";
    argv[a++] = script;
    argv[a] = NULL;
    char *out = NULL;
    int r = run_capture(argv, &out);
    for (size_t i = 0; i < nres; i++) free(args[i]);
    free(script);
    free(name);
    free(outp);
    long id = out ? strtol(out, NULL, 10) : 0;
    free(out);
    if (r != 0 || id <= 0) {
        if (r >= 0) flab_fail("sbatch failed (exit %d)", r);
        return -1;
    }
    j->jobid = id;
    j->state = S_ACTIVE;
    j->submitted = now_s();
    x->nactive++;
    write_jobs_file(x);
    printf("[%zu/%zu] submitted %s (%s) as Slurm job %ld\n", x->nfinished + x->nactive, x->njobs,
           t->name, t->rule->name, id);
    fflush(stdout);
    return 0;
}

/* ---- finishing ----------------------------------------------------------------- */

static void show_job_log(SExec *x, const SJob *j, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%ld.log", x->log_dir, j->jobid);
    FILE *f = fopen(path, "r");
    if (!f) { printf("flab: %s: no job log at %s\n", name, path); return; }
    int cut;
    char *tail = log_tail_read(f, LOG_TAIL_LINES, &cut);
    fclose(f);
    printf("---- log of %s (Slurm job %ld: %s) ----\n", name, j->jobid, path);
    printf("%s", tail);
    printf("---- end of log of %s ----\n", name);
    free(tail);
}

static void fail_job(SExec *x, SJob *j) {
    j->state = S_FAILED;
    x->res->failed++;
    if (!x->o->keep_going) x->stop = 1;
}

/* The job left the queue in state (NULL: Slurm forgot it). */
static void finish_job(SExec *x, SJob *j, const char *state) {
    const Target *t = &x->g->targets[j->target];
    x->nactive--;
    x->nfinished++;
    double dt = now_s() - j->submitted;
    int in_cache = cache_lookup(x->c, t->key, NULL);
    if ((!state || !strcmp(state, "COMPLETED")) && in_cache == 1) {
        j->state = S_DONE;
        x->res->built++;
        printf("[%zu/%zu] done %s (Slurm job %ld on %s, %.1fs)\n", x->nfinished, x->njobs,
               t->name, j->jobid, *j->node ? j->node : "?", dt);
    } else {
        if (got_signal) { j->state = S_FAILED; x->res->failed++; return; }
        printf("flab: %s: Slurm job %ld %s%s\n", t->name, j->jobid,
               state ? state : "vanished from the queue",
               state && !strcmp(state, "COMPLETED") ? " but its key is not in the cache" : "");
        show_job_log(x, j, t->name);
        fail_job(x, j);
    }
    fflush(stdout);
    write_jobs_file(x);
}

static int active_state(const char *s) {
    static const char *const active[] = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING",
                                          "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING",
                                          "STAGE_OUT", "REQUEUE_HOLD", "REQUEUE_FED"};
    for (size_t i = 0; i < sizeof active / sizeof *active; i++)
        if (!strcmp(s, active[i])) return 1;
    return 0;
}

/* One squeue call for all active jobs; finishes those that left. */
static void poll_jobs(SExec *x) {
    if (!x->nactive) return;
    size_t cap = x->nactive * 24 + 8, len = 0;
    char *ids = flab_xmalloc(cap);
    ids[0] = 0;
    for (size_t k = 0; k < x->njobs; k++)
        if (x->jobs[k].state == S_ACTIVE)
            len += (size_t)snprintf(ids + len, cap - len, "%s%ld", len ? "," : "", x->jobs[k].jobid);
    char *argv[] = {"squeue", "-h", "-t", "all", "-o", "%i|%T|%N", "-j", ids, NULL};
    char *out = NULL;
    int r = run_capture(argv, &out);
    free(ids);
    if (r < 0) { free(out); return; }
    unsigned char *seen = flab_xcalloc(x->njobs + 1, 1);
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        long id = strtol(line, NULL, 10);
        char *st = strchr(line, '|'), *node = st ? strchr(st + 1, '|') : NULL;
        if (!node) continue;
        *node++ = 0;
        st++;
        for (size_t k = 0; k < x->njobs; k++) {
            SJob *j = &x->jobs[k];
            if (j->state != S_ACTIVE || j->jobid != id) continue;
            seen[k] = 1;
            if (*node) snprintf(j->node, sizeof j->node, "%s", node);
            if (!active_state(st)) finish_job(x, j, st);
        }
    }
    /* squeue exits non-zero for ids it no longer knows: those are gone */
    for (size_t k = 0; k < x->njobs; k++)
        if (x->jobs[k].state == S_ACTIVE && !seen[k] && (r == 0 || (!*out && x->nactive == 1)))
            finish_job(x, &x->jobs[k], NULL);
    free(seen);
    free(out);
}

/* ---- scheduling ---------------------------------------------------------------- */

static int deps_state(SExec *x, const Target *t) {
    int ready = 1;
    for (size_t i = 0; i < t->ndeps; i++) {
        int jd = x->job_of[t->deps[i]];
        if (jd < 0) continue;
        SState s = x->jobs[jd].state;
        if (s == S_FAILED || s == S_SKIPPED) return -1;
        if (s != S_DONE) ready = 0;
    }
    return ready;
}

/* Submits what is ready; returns how many targets are still pending. */
static size_t schedule(SExec *x) {
    size_t open = 0;
    for (size_t k = 0; k < x->njobs; k++) {
        SJob *j = &x->jobs[k];
        if (j->state != S_PENDING) continue;
        const Target *t = &x->g->targets[j->target];
        int ds = deps_state(x, t);
        if (ds < 0 || x->stop) { j->state = S_SKIPPED; x->res->skipped++; continue; }
        open++;
        if (!ds || got_signal) continue;
        if (submit(x, j) == 0) { open--; continue; }
        printf("flab: %s: cannot submit: %s\n", t->name, flab_errmsg());
        open--;
        x->nfinished++;
        fail_job(x, j);
    }
    return open;
}

static int setup(SExec *x) {
    x->flab = getenv("FLAB_SLURM_FLAB") ? realpath(getenv("FLAB_SLURM_FLAB"), NULL)
                                        : realpath("/proc/self/exe", NULL);
    x->flabfile = realpath(x->g->ff->path, NULL);
    if (!x->flab || !x->flabfile) return flab_fail_errno("slurm: cannot resolve flab or the flabfile");
    size_t n = strlen(x->g->cache_dir) + 64;
    x->log_dir = flab_xmalloc(n);
    snprintf(x->log_dir, n, "%s/slurm", x->g->cache_dir);
    mkdir(x->log_dir, 0777);
    x->jobs_file = flab_xmalloc(n);
    snprintf(x->jobs_file, n, "%s/jobs-%ld", x->log_dir, (long)getpid());
    snprintf(x->log_dir, n, "%s/slurm/logs", x->g->cache_dir);
    if (mkdir(x->log_dir, 0777) < 0 && errno != EEXIST)
        return flab_fail_errno("slurm: cannot create %s", x->log_dir);
    return 0;
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);   /* a signal cuts it short: fine */
}

static void run_loop(SExec *x) {
    int cancelled = 0;
    for (;;) {
        if (got_signal && !cancelled) { cancel_active(x); cancelled = 1; x->stop = 1; }
        size_t open = schedule(x);
        if (!x->nactive && (!open || got_signal)) break;
        sleep_s(POLL_S);
        poll_jobs(x);
    }
}

int slurm_build_run(Graph *g, FlabCache *c, const Plan *plan, const BuildOptions *o,
                    char *const *defines, size_t ndefines, BuildResult *res) {
    memset(res, 0, sizeof *res);
    SExec x = {.g = g, .c = c, .o = o, .res = res, .njobs = plan->nrun, .defines = defines,
               .ndefines = ndefines};
    if (o->force) {
        flab_fail("-B is not supported with executor slurm (it would rebuild dependencies on "
                  "the node); rebuild locally or gc the keys");
        return -1;
    }
    if (setup(&x) < 0) { free(x.flab); free(x.flabfile); free(x.log_dir); free(x.jobs_file); return -1; }
    x.jobs = flab_xcalloc(plan->nrun + 1, sizeof *x.jobs);
    x.job_of = flab_xmalloc((g->n + 1) * sizeof *x.job_of);
    for (size_t i = 0; i < g->n; i++) x.job_of[i] = -1;
    for (size_t k = 0; k < plan->nrun; k++) {
        x.jobs[k] = (SJob){.target = plan->order[k]};
        x.job_of[plan->order[k]] = (int)k;
    }
    got_signal = 0;
    struct sigaction sa = {.sa_handler = on_signal}, old[3];
    sigaction(SIGINT, &sa, &old[0]);
    sigaction(SIGTERM, &sa, &old[1]);
    sigaction(SIGHUP, &sa, &old[2]);
    run_loop(&x);
    sigaction(SIGINT, &old[0], NULL);
    sigaction(SIGTERM, &old[1], NULL);
    sigaction(SIGHUP, &old[2], NULL);
    res->interrupted = got_signal;
    unlink(x.jobs_file);
    free(x.jobs);
    free(x.job_of);
    free(x.flab);
    free(x.flabfile);
    free(x.log_dir);
    free(x.jobs_file);
    return res->failed || res->skipped || res->interrupted ? 1 : 0;
}

/* ---- flab cancel ----------------------------------------------------------------- */

static void read_ids(const char *path, long **ids, size_t *n, size_t *cap) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    long id;
    while (fscanf(f, "%ld", &id) == 1) {
        if (*n == *cap) *ids = flab_xrealloc(*ids, (*cap = *cap ? 2 * *cap : 16) * sizeof **ids);
        (*ids)[(*n)++] = id;
    }
    fclose(f);
}

int slurm_cancel_all(const char *cache_dir) {
    size_t len = strlen(cache_dir) + 300;
    char *dir = flab_xmalloc(len), *path = flab_xmalloc(len);
    snprintf(dir, len, "%s/slurm", cache_dir);
    DIR *d = opendir(dir);
    long *ids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long pid;
        char extra;
        if (sscanf(e->d_name, "jobs-%ld%c", &pid, &extra) != 1) continue;
        snprintf(path, len, "%s/%s", dir, e->d_name);
        if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) { unlink(path); continue; }  /* stale */
        read_ids(path, &ids, &n, &cap);
    }
    if (d) closedir(d);
    int r = scancel_ids(ids, n);
    free(ids);
    free(dir);
    free(path);
    return r;
}

/* ---- provenance (in the node's flab) ----------------------------------------------- */

void slurm_provenance_add(cJSON *prov) {
    const char *id = getenv("SLURM_JOB_ID");
    if (!id || !*id) return;
    cJSON *s = cJSON_AddObjectToObject(prov, "slurm");
    cJSON_AddNumberToObject(s, "job_id", strtod(id, NULL));
    static const char *const env[][2] = {
        {"node", "SLURMD_NODENAME"}, {"partition", "SLURM_JOB_PARTITION"},
        {"cpus_on_node", "SLURM_CPUS_ON_NODE"}, {"account", "SLURM_JOB_ACCOUNT"},
        {"gpus", "SLURM_JOB_GPUS"},
    };
    for (size_t i = 0; i < sizeof env / sizeof *env; i++) {
        const char *v = getenv(env[i][1]);
        if (v && *v) cJSON_AddStringToObject(s, env[i][0], v);
    }
    const char *req = getenv("FLAB_SLURM_RESOURCES");
    cJSON *r = req ? cJSON_Parse(req) : NULL;
    cJSON_AddItemToObject(s, "requested", r ? r : cJSON_CreateObject());
}
