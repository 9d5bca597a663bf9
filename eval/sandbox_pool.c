/* eval/sandbox_pool.c: pool mode of the sandbox (tier 2 only).
 *
 * Starting an interpreter per sample costs more than running most samples.
 * In pool mode each job owns a "zygote": one interpreter started exactly
 * like an exec-mode sample (own PID, network and mount namespaces, read-only
 * tree, tmpfs work dir, uid nobody or a user namespace, no_new_privs) that
 * has imported the common modules once and forks a child per sample
 * (eval_sandbox_zygote_py).  The child sets the rlimits, the private dir and
 * the audit hook, then runs the program.  Between samples the zygote (PID 1
 * of its namespace) kills and reaps every process left and empties its work
 * tmpfs; it is non-dumpable, so a sample cannot ptrace it or write its
 * memory, and signals from inside cannot kill it.
 *
 * Here: one poll() loop over the zygotes' stdout/stderr pipes, reply
 * sockets and pidfds.  A reply "DONE <status> <late>" ends a sample (all its
 * processes are dead then, so draining the pipes to EAGAIN gets all of its
 * output).  Output over the limit, or no reply by timeout + 2 s, kills the
 * zygote (its whole namespace goes with it); a fresh one is started for the
 * next sample.  Requests go over a socketpair with MSG_NOSIGNAL so a dead
 * zygote cannot SIGPIPE the caller. */
#include "eval/sandbox_guard.h"
#include "eval/sandbox_internal.h"
#include "util/error.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BACKSTOP_S 2.0
#define READY_TIMEOUT_MS 20000

typedef struct {
    pid_t pid;
    int pidfd, ctl, reply, fds[2];
    int busy;
    size_t index;
    double start;
    char line[128];
    size_t line_len;
    char *buf[2];
    size_t len[2];
    int truncated, overflow_killed;
    char dir[PATH_MAX], work[PATH_MAX + 8];
    char nums[6][32];
    char *argv[16 + SANDBOX_MAX_HIDE], *envp[8];
    char home[PATH_MAX + 16], tmpdir[PATH_MAX + 16];
} Zygote;

static void build_argv(const EvalSandboxConfig *cfg, const SandboxEnv *env, Zygote *z) {
    int n = 0;
    snprintf(z->nums[0], 32, "%.3f", cfg->timeout_s);
    snprintf(z->nums[1], 32, "%lld", (long long)cfg->timeout_s + 1);
    snprintf(z->nums[2], 32, "%zu", cfg->memory_bytes);
    snprintf(z->nums[3], 32, "%d", cfg->max_procs);
    snprintf(z->nums[4], 32, "%zu", cfg->file_bytes);
    snprintf(z->nums[5], 32, "%d", cfg->max_files);
    char *fixed[] = {(char *)cfg->python, "-I", "-B", "-c", (char *)eval_sandbox_zygote_py, z->work,
                     cfg->audit_hook ? "1" : "0", z->nums[0], z->nums[1], z->nums[2], z->nums[3],
                     z->nums[4], z->nums[5]};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) z->argv[n++] = fixed[i];
    for (int i = 0; i < env->n_hide; i++)
        if (!env->mount_hide[i]) z->argv[n++] = (char *)env->hide[i];
    z->argv[n] = NULL;
    snprintf(z->home, sizeof z->home, "HOME=%s", z->work);
    snprintf(z->tmpdir, sizeof z->tmpdir, "TMPDIR=%s", z->work);
    char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", z->home, z->tmpdir, "LANG=C.UTF-8",
                    "PYTHONIOENCODING=utf-8", NULL};
    memcpy(z->envp, envp, sizeof envp);
}

static void zygote_close(Zygote *z) {
    int *fds[] = {&z->pidfd, &z->ctl, &z->reply, &z->fds[0], &z->fds[1]};
    for (size_t i = 0; i < 5; i++)
        if (*fds[i] >= 0) { close(*fds[i]); *fds[i] = -1; }
    if (z->pid > 0) {
        kill(z->pid, SIGKILL);
        while (waitpid(z->pid, NULL, 0) < 0 && errno == EINTR) {}
        z->pid = 0;
    }
    if (z->dir[0]) { sandbox_remove_tree(z->dir); z->dir[0] = '\0'; }
}

/* Waits for the zygote's "READY" line. */
static int wait_ready(Zygote *z) {
    char buf[16];
    size_t got = 0;
    while (got < 6) {
        struct pollfd p = {z->reply, POLLIN, 0};
        if (poll(&p, 1, READY_TIMEOUT_MS) <= 0) return -1;
        ssize_t r = read(z->reply, buf + got, 6 - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return memcmp(buf, "READY\n", 6) == 0 ? 0 : -1;
}

static int zygote_start(const EvalSandboxConfig *cfg, const SandboxEnv *env, Zygote *z) {
    memset(z, 0, sizeof *z);
    z->pidfd = z->ctl = z->reply = z->fds[0] = z->fds[1] = -1;
    SandboxChild c;
    sandbox_fill_child(cfg, env, &c, z->work);
    if (sandbox_make_dir(cfg, "", c.drop_to_nobody, z->dir, sizeof z->dir) != 0) return -1;
    snprintf(z->work, sizeof z->work, "%s/work", z->dir);
    build_argv(cfg, env, z);
    int ctl[2], reply[2], out[2], err[2], devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int ok = devnull >= 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) == 0;
    ok = ok && pipe2(reply, O_CLOEXEC) == 0;
    ok = ok && pipe2(out, O_CLOEXEC) == 0;
    ok = ok && pipe2(err, O_CLOEXEC) == 0;
    if (!ok) { if (devnull >= 0) close(devnull); zygote_close(z); return flab_fail_errno("sandbox pool: pipes"); }
    c.stdin_fd = devnull; c.out_fd = out[1]; c.err_fd = err[1]; c.fd3 = ctl[1]; c.fd4 = reply[1];
    c.cpu.rlim_cur = c.cpu.rlim_max = RLIM_INFINITY;   /* per sample, set by the child */
    c.argv = z->argv; c.envp = z->envp; c.exec = 1;
    z->pid = sandbox_child_spawn(&c);
    close(devnull); close(ctl[1]); close(reply[1]); close(out[1]); close(err[1]);
    z->ctl = ctl[0]; z->reply = reply[0]; z->fds[0] = out[0]; z->fds[1] = err[0];
    if (z->pid < 0) { z->pid = 0; zygote_close(z); return flab_fail_errno("sandbox pool: clone"); }
    z->pidfd = (int)syscall(SYS_pidfd_open, z->pid, 0);
    if (wait_ready(z) != 0) { zygote_close(z); return flab_fail("sandbox pool: interpreter did not start"); }
    fcntl(z->reply, F_SETFL, O_NONBLOCK);
    fcntl(z->fds[0], F_SETFL, O_NONBLOCK);
    fcntl(z->fds[1], F_SETFL, O_NONBLOCK);
    return 0;
}

static int zygote_submit(const EvalSandboxConfig *cfg, Zygote *z, size_t index, const char *program) {
    char header[32];
    size_t len = strlen(program);
    int hl = snprintf(header, sizeof header, "%zu\n", len);
    if (send(z->ctl, header, (size_t)hl, MSG_NOSIGNAL) != hl) return -1;
    for (size_t off = 0; off < len;) {
        ssize_t w = send(z->ctl, program + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        off += (size_t)w;
    }
    z->busy = 1;
    z->index = index;
    z->start = sandbox_now();
    z->line_len = 0;
    z->truncated = z->overflow_killed = 0;
    for (int i = 0; i < 2; i++) { z->buf[i] = flab_xmalloc(cfg->output_bytes + 1); z->len[i] = 0; }
    return 0;
}

/* Reads what the pipe has into the sample's buffer; over the limit the
 * zygote is killed (kill_on_overflow) or the excess discarded. */
static void read_output(const EvalSandboxConfig *cfg, Zygote *z, int which) {
    char chunk[65536];
    for (int round = 0; round < 16; round++) {
        ssize_t got = read(z->fds[which], chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return;   /* EAGAIN; EOF only when the zygote is gone */
        if (!z->busy) continue;  /* nothing can write between samples; be safe */
        if (sandbox_keep_output(cfg, z->buf[which], &z->len[which], chunk, (size_t)got)) {
            z->truncated = 1;
            if (cfg->kill_on_overflow && !z->overflow_killed) {
                z->overflow_killed = 1;
                kill(z->pid, SIGKILL);
            }
        }
    }
}

static void fill_result(const EvalSandboxConfig *cfg, Zygote *z, int status, int timed_out,
                        EvalSampleResult *r) {
    memset(r, 0, sizeof *r);
    r->reason = sandbox_reason(cfg, z->overflow_killed, timed_out, status, z->buf[1], z->len[1],
                               &r->passed);
    r->exit_code = WIFEXITED(status) && !z->overflow_killed && !timed_out ? WEXITSTATUS(status) : -1;
    r->term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    r->duration_s = sandbox_now() - z->start;
    for (int i = 0; i < 2; i++) z->buf[i][z->len[i]] = '\0';
    r->out = z->buf[0]; r->out_len = z->len[0];
    r->err = z->buf[1]; r->err_len = z->len[1];
    r->truncated = z->truncated;
    r->timed_out = !strncmp(r->reason, "timeout", 7);
    z->buf[0] = z->buf[1] = NULL;
    z->busy = 0;
}

/* A complete "DONE <status> <late>" line ends the sample: 1; else 0. */
static int read_reply(const EvalSandboxConfig *cfg, Zygote *z, EvalSampleResult *results) {
    ssize_t got = read(z->reply, z->line + z->line_len, sizeof z->line - 1 - z->line_len);
    if (got <= 0) return 0;
    z->line_len += (size_t)got;
    z->line[z->line_len] = '\0';
    if (!strchr(z->line, '\n')) return 0;
    int status = 0, late = 0;
    if (sscanf(z->line, "DONE %d %d", &status, &late) != 2) {
        kill(z->pid, SIGKILL);   /* protocol broken: treat as a death */
        return 0;
    }
    read_output(cfg, z, 0);      /* every writer is dead: this drains all */
    read_output(cfg, z, 1);
    fill_result(cfg, z, status, late, &results[z->index]);
    return 1;
}

/* The zygote died (overflow kill, backstop, or a crash): finish its sample. */
static void zygote_died(const EvalSandboxConfig *cfg, Zygote *z, EvalSampleResult *results) {
    if (z->busy) {
        read_output(cfg, z, 0);
        read_output(cfg, z, 1);
        int timed_out = !z->overflow_killed && sandbox_now() - z->start >= cfg->timeout_s;
        int status = 0;
        if (!z->overflow_killed && !timed_out) {
            const char msg[] = "\nflab sandbox: the interpreter died";
            size_t room = cfg->output_bytes - z->len[1], n = sizeof msg - 1 < room ? sizeof msg - 1 : room;
            memcpy(z->buf[1] + z->len[1], msg, n);
            z->len[1] += n;
            status = 1 << 8;   /* exit status 1 */
        }
        fill_result(cfg, z, status, timed_out, &results[z->index]);
    }
    zygote_close(z);
}

static int zygote_exited(Zygote *z) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    return waitid(P_PID, (id_t)z->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0;
}

/* One poll() over every live zygote, then replies, deaths and backstops. */
static size_t pool_step(const EvalSandboxConfig *cfg, Zygote *zs, int jobs, EvalSampleResult *results) {
    struct pollfd pfd[4 * 64];
    int owner[4 * 64], n = 0;
    for (int i = 0; i < jobs; i++) {
        if (zs[i].pid <= 0) continue;
        int fds[4] = {zs[i].fds[0], zs[i].fds[1], zs[i].reply, zs[i].pidfd};
        for (int k = 0; k < 4; k++)
            if (fds[k] >= 0) { pfd[n] = (struct pollfd){fds[k], POLLIN, 0}; owner[n++] = i; }
    }
    poll(pfd, (nfds_t)n, zs[0].pidfd >= 0 ? 50 : 10);
    size_t finished = 0;
    for (int i = 0; i < jobs; i++) {
        Zygote *z = &zs[i];
        if (z->pid <= 0) continue;
        read_output(cfg, z, 0);
        read_output(cfg, z, 1);
        if (z->busy && read_reply(cfg, z, results)) finished++;
        if (z->busy && sandbox_now() - z->start > cfg->timeout_s + BACKSTOP_S) kill(z->pid, SIGKILL);
        if (zygote_exited(z)) { finished += (size_t)z->busy; zygote_died(cfg, z, results); }
    }
    (void)owner;
    return finished;
}

int sandbox_pool_run(const EvalSandboxConfig *cfg, const SandboxEnv *env,
                     const char *const *programs, size_t n, EvalSampleResult *results) {
    int jobs = cfg->jobs < 1 ? 1 : cfg->jobs > 64 ? 64 : cfg->jobs;
    if ((size_t)jobs > n) jobs = n ? (int)n : 1;
    Zygote *zs = flab_xcalloc((size_t)jobs, sizeof *zs);
    size_t next = 0, done = 0;
    int rc = 0;
    while (rc == 0 && done < n) {
        for (int i = 0; rc == 0 && i < jobs && next < n; i++) {
            Zygote *z = &zs[i];
            if (z->busy) continue;
            if (z->pid <= 0 && zygote_start(cfg, env, z) != 0) { rc = -1; break; }
            if (zygote_submit(cfg, z, next, programs[next]) != 0) {
                zygote_close(z);   /* died between samples: start another */
                continue;
            }
            next++;
        }
        if (rc == 0) done += pool_step(cfg, zs, jobs, results);
    }
    for (int i = 0; i < jobs; i++) {
        if (zs[i].busy) { free(zs[i].buf[0]); free(zs[i].buf[1]); }
        zygote_close(&zs[i]);
    }
    free(zs);
    if (rc != 0)
        for (size_t i = 0; i < n; i++) eval_sample_result_free(&results[i]);
    return rc;
}
