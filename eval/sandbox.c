/* eval/sandbox.c: the sandbox's scheduler (see sandbox.h for the contract).
 *
 * One thread, one poll() loop over every running sample: its stdout and
 * stderr pipes and a pidfd that becomes readable when it exits (without
 * pidfds the loop wakes every 10 ms to reap).  A sample is finished when its
 * process is reaped and both pipes reached EOF (or a short grace period
 * after the exit passed: a grandchild could hold a pipe open).  After the
 * exit the whole process group is killed, which removes orphans where there
 * is no PID namespace to do it. */
#include "eval/sandbox.h"
#include "eval/sandbox_child.h"
#include "eval/sandbox_internal.h"
#include "eval/sandbox_guard.h"
#include "util/error.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_GRACE_S 0.2

void eval_sandbox_config_default(EvalSandboxConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->python = "/usr/bin/python3";
    cfg->timeout_s = 10.0;
    cfg->memory_bytes = (size_t)2 << 30;
    cfg->file_bytes = (size_t)64 << 20;
    cfg->output_bytes = (size_t)64 << 10;
    cfg->kill_on_overflow = 1;
    cfg->max_procs = 64;
    cfg->max_files = 64;
    cfg->jobs = 1;
    cfg->audit_hook = 1;
    cfg->namespaces = 1;
    cfg->pool = 1;
}

double sandbox_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- private directories ------------------------------------------------ */

static int make_writable(const char *path, const struct stat *st, int type, struct FTW *f) {
    (void)f;
    if (type == FTW_D || type == FTW_DNR) chmod(path, (st->st_mode & 07777) | 0700);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *f) {
    (void)st; (void)type; (void)f;
    remove(path);
    return 0;
}

/* rm -rf that also copes with directories the sample made unwritable. */
void sandbox_remove_tree(const char *dir) {
    nftw(dir, make_writable, 16, FTW_PHYS);
    nftw(dir, remove_entry, 16, FTW_PHYS | FTW_DEPTH);
}

static const char *tmp_base(const EvalSandboxConfig *cfg) {
    if (cfg->tmp_base && *cfg->tmp_base) return cfg->tmp_base;
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

/* Makes DIR/file_name (the sample) and DIR/work, owned by nobody when the
 * child will drop to nobody (it must reach them).  dir receives DIR. */
int sandbox_make_dir_named(const EvalSandboxConfig *cfg, const char *file_name,
                           const char *program, int chown_nobody, char *dir, size_t cap) {
    if ((size_t)snprintf(dir, cap, "%s/flab-sandbox-XXXXXX", tmp_base(cfg)) >= cap)
        return flab_fail("sandbox: temp dir path too long: %s", tmp_base(cfg));
    if (!mkdtemp(dir)) return flab_fail_errno("sandbox: mkdtemp %s", dir);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file_name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    size_t len = strlen(program);
    int ok = fd >= 0 && write(fd, program, len) == (ssize_t)len;
    if (fd >= 0) close(fd);
    if (!ok) { sandbox_remove_tree(dir); return flab_fail_errno("sandbox: writing %s", path); }
    snprintf(path, sizeof path, "%s/work", dir);
    if (mkdir(path, 0700) != 0) { sandbox_remove_tree(dir); return flab_fail_errno("sandbox: mkdir %s", path); }
    if (chown_nobody) {
        const char *names[] = {"", "/work", file_name};
        for (size_t i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s%s%s", dir, i == 2 ? "/" : "", names[i]);
            if (chown(path, SANDBOX_NOBODY, SANDBOX_NOBODY) != 0) {
                sandbox_remove_tree(dir);
                return flab_fail_errno("sandbox: chown %s", path);
            }
        }
    }
    return 0;
}

int sandbox_make_dir(const EvalSandboxConfig *cfg, const char *program, int chown_nobody,
                     char *dir, size_t cap) {
    return sandbox_make_dir_named(cfg, "program.py", program, chown_nobody, dir, cap);
}

/* ---- what every sample shares: hidden dirs, tier ------------------------- */


static int path_under(const char *path, const char *dir) {
    size_t n = strlen(dir);
    return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* The user's home and /root: denied to the guard always; covered by a tmpfs
 * unless the temp dirs or the interpreter live inside (then they must stay). */
static void find_hidden_dirs(const EvalSandboxConfig *cfg, SandboxEnv *env) {
    const struct passwd *pw = getpwuid(getuid());
    const char *cand[] = {getenv("HOME"), pw ? pw->pw_dir : NULL, "/root"};
    char base[PATH_MAX], py[PATH_MAX], real[PATH_MAX];
    if (!realpath(tmp_base(cfg), base)) snprintf(base, sizeof base, "%s", tmp_base(cfg));
    if (!realpath(cfg->python, py)) snprintf(py, sizeof py, "%s", cfg->python);
    for (size_t i = 0; i < sizeof cand / sizeof cand[0] && env->n_hide < SANDBOX_MAX_HIDE; i++) {
        struct stat st;
        if (!cand[i] || !realpath(cand[i], real) || !strcmp(real, "/")) continue;
        if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode) || path_under(base, real)) continue;
        int dup = 0;
        for (int j = 0; j < env->n_hide; j++) dup |= !strcmp(env->hide[j], real);
        if (dup) continue;
        snprintf(env->hide[env->n_hide], PATH_MAX, "%s", real);
        env->mount_hide[env->n_hide++] = !path_under(py, real);
    }
}

void sandbox_fill_child(const EvalSandboxConfig *cfg, const SandboxEnv *env, SandboxChild *c,
                       const char *work) {
    memset(c, 0, sizeof *c);
    c->fd3 = c->fd4 = -1;
    sandbox_child_tier(c, env->level);
    c->work_dir = work;
    snprintf(c->tmpfs_opts, sizeof c->tmpfs_opts, "size=%zu,mode=0700%s", cfg->file_bytes,
             c->drop_to_nobody ? ",uid=65534,gid=65534" : "");
    for (int i = 0; i < env->n_hide; i++)
        if (env->mount_hide[i]) c->hide[c->n_hide++] = env->hide[i];
    rlim_t cpu = (rlim_t)ceil(cfg->timeout_s) + 1;
    c->cpu = (struct rlimit){cpu, cpu + 1};
    c->as = (struct rlimit){cfg->memory_bytes, cfg->memory_bytes};
    c->nproc = (struct rlimit){(rlim_t)cfg->max_procs, (rlim_t)cfg->max_procs};
    c->fsize = (struct rlimit){cfg->file_bytes, cfg->file_bytes};
    c->nofile = (struct rlimit){(rlim_t)cfg->max_files, (rlim_t)cfg->max_files};
    c->python = cfg->python;
}

/* Runs the child set-up of one tier without exec; 0 when it all worked,
 * else -1 with the child's message in why. */
static int try_tier(const EvalSandboxConfig *cfg, SandboxEnv *env, char *why, size_t cap) {
    char dir[PATH_MAX], work[PATH_MAX + 8];
    int drop = getuid() == 0;
    if (sandbox_make_dir(cfg, "", drop, dir, sizeof dir) != 0) {
        snprintf(why, cap, "%s", flab_errmsg());
        return -1;
    }
    snprintf(work, sizeof work, "%s/work", dir);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) { sandbox_remove_tree(dir); snprintf(why, cap, "pipe"); return -1; }
    SandboxChild c;
    sandbox_fill_child(cfg, env, &c, work);
    c.stdin_fd = c.out_fd = c.err_fd = p[1];
    c.exec = 0;
    pid_t pid = sandbox_child_spawn(&c);
    int e = errno, status = -1;
    close(p[1]);
    if (pid > 0) while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    ssize_t got = read(p[0], why, cap - 1);
    why[got > 0 ? got - (why[got - 1] == '\n') : 0] = '\0';
    close(p[0]);
    sandbox_remove_tree(dir);
    if (pid < 0) { snprintf(why, cap, "clone: %s", strerror(e)); return -1; }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void describe(const SandboxEnv *env, const EvalSandboxConfig *cfg, const char *refused,
                     EvalIsolation *iso) {
    SandboxChild c;
    memset(&c, 0, sizeof c);
    sandbox_child_tier(&c, env->level);
    iso->user_ns = c.user_ns; iso->net_ns = c.net_ns;
    iso->pid_ns = c.pid_ns; iso->mount_ns = c.mount_ns;
    iso->dropped_to_nobody = c.drop_to_nobody;
    iso->audit_hook = cfg->audit_hook;
    snprintf(iso->summary, sizeof iso->summary, "namespaces: %s%s%s%s%s; %s; rlimits; audit hook %s%s%s",
             c.user_ns ? "user " : "", c.net_ns ? "net " : "", c.pid_ns ? "pid " : "",
             c.mount_ns ? "mount " : "", env->level ? "" : "NONE (network NOT isolated)",
             c.drop_to_nobody ? "uid nobody" : "caller's uid", cfg->audit_hook ? "on" : "off",
             *refused ? "; kernel refused stronger tier: " : "", refused);
}

static void probe(const EvalSandboxConfig *cfg, SandboxEnv *env, EvalIsolation *iso) {
    char why[200] = "", first_refusal[200] = "";
    memset(env, 0, sizeof *env);
    find_hidden_dirs(cfg, env);
    for (env->level = cfg->namespaces ? 2 : 0; env->level > 0; env->level--) {
        if (try_tier(cfg, env, why, sizeof why) == 0) break;
        if (!*first_refusal) snprintf(first_refusal, sizeof first_refusal, "%s", why);
    }
    EvalIsolation tmp;
    describe(env, cfg, first_refusal, iso ? iso : &tmp);
}

void eval_sandbox_probe(const EvalSandboxConfig *cfg, EvalIsolation *iso) {
    SandboxEnv env;
    probe(cfg, &env, iso);
}

/* ---- one running sample -------------------------------------------------- */

typedef struct { char data[256]; size_t len; } StrBufLite;

typedef struct {
    size_t index;
    pid_t pid;
    int pidfd, fds[2];                  /* stdout, stderr read ends (-1: closed) */
    char *buf[2];
    size_t len[2];
    int truncated, overflow_killed, timed_out, exited, status;
    double start, deadline, exit_time;
    char dir[PATH_MAX];
    char work[PATH_MAX + 8], prog[PATH_MAX + 16], home[PATH_MAX + 16], tmpdir[PATH_MAX + 16];
    char *argv[8 + SANDBOX_MAX_HIDE], *envp[8];
    const EvalSandboxJob *job;          /* NULL: a Python program */
    char **step_argv[SANDBOX_MAX_STEPS]; /* job steps, placeholders replaced */
    int status_fd;                      /* read end of the supervisor's records */
} Slot;

static void build_argv(const EvalSandboxConfig *cfg, const SandboxEnv *env, Slot *s) {
    int n = 0;
    s->argv[n++] = (char *)cfg->python;
    s->argv[n++] = "-I";
    s->argv[n++] = "-B";
    if (cfg->audit_hook) {
        s->argv[n++] = "-c";
        s->argv[n++] = (char *)eval_sandbox_guard_py;
        s->argv[n++] = s->prog;
        s->argv[n++] = s->work;
        /* Only the home dirs no tmpfs covers: the read check costs a
         * realpath per open, which slows every import. */
        for (int i = 0; i < env->n_hide; i++)
            if (!(env->level >= 2 && env->mount_hide[i])) s->argv[n++] = (char *)env->hide[i];
    } else {
        s->argv[n++] = s->prog;
    }
    s->argv[n] = NULL;
    snprintf(s->home, sizeof s->home, "HOME=%s", s->work);
    snprintf(s->tmpdir, sizeof s->tmpdir, "TMPDIR=%s", s->work);
    n = 0;
    s->envp[n++] = "PATH=/usr/local/bin:/usr/bin:/bin";
    s->envp[n++] = s->home;
    s->envp[n++] = s->tmpdir;
    s->envp[n++] = "LANG=C.UTF-8";
    s->envp[n++] = "PYTHONIOENCODING=utf-8";
    s->envp[n] = NULL;
}

static void kill_group(Slot *s) {
    kill(-s->pid, SIGKILL);
    kill(s->pid, SIGKILL);
}

/* malloc'd copy of arg with "{file}" and "{dir}" replaced. */
static char *substitute(const char *arg, const char *file, const char *dir) {
    size_t cap = strlen(arg) + 1, len = 0;
    for (const char *p = arg; (p = strchr(p, '{')); p++) cap += strlen(file) + strlen(dir);
    char *out = flab_xmalloc(cap);
    for (const char *p = arg; *p;) {
        if (!strncmp(p, "{file}", 6)) { len += (size_t)sprintf(out + len, "%s", file); p += 6; }
        else if (!strncmp(p, "{dir}", 5)) { len += (size_t)sprintf(out + len, "%s", dir); p += 5; }
        else out[len++] = *p++;
    }
    out[len] = '\0';
    return out;
}

static void free_step_argv(Slot *s) {
    for (int k = 0; k < SANDBOX_MAX_STEPS; k++) {
        for (size_t i = 0; s->step_argv[k] && s->step_argv[k][i]; i++) free(s->step_argv[k][i]);
        free(s->step_argv[k]);
        s->step_argv[k] = NULL;
    }
}

/* Steps mode: argv per step, the job's limits, the status pipe (p). */
static int setup_job(Slot *s, SandboxChild *c, int p[2]) {
    const EvalSandboxJob *j = s->job;
    if (pipe2(p, O_CLOEXEC) != 0) return flab_fail_errno("sandbox: pipe");
    c->n_steps = j->n_steps;
    c->status_fd = p[1];
    double total = 0;
    for (int k = 0; k < j->n_steps; k++) {
        size_t n = 0;
        while (j->argv[k][n]) n++;
        s->step_argv[k] = flab_xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) s->step_argv[k][i] = substitute(j->argv[k][i], s->prog, s->work);
        c->step_argv[k] = s->step_argv[k];
        rlim_t cpu = (rlim_t)ceil(j->timeout_s[k]) + 1;
        c->step_cpu[k] = (struct rlimit){cpu, cpu + 1};
        c->step_timeout[k] = j->timeout_s[k];
        total += j->timeout_s[k];
    }
    c->cpu.rlim_cur = c->cpu.rlim_max = RLIM_INFINITY;   /* the supervisor only waits */
    if (j->memory_bytes) c->as = (struct rlimit){j->memory_bytes, j->memory_bytes};
    if (j->max_procs) c->nproc = (struct rlimit){(rlim_t)j->max_procs, (rlim_t)j->max_procs};
    if (j->max_files) c->nofile = (struct rlimit){(rlim_t)j->max_files, (rlim_t)j->max_files};
    c->python = s->step_argv[0][0];
    s->deadline = sandbox_now() + total + 2.0;   /* backstop: the supervisor times steps */
    return 0;
}

static int start_slot(const EvalSandboxConfig *cfg, const SandboxEnv *env, const char *program,
                      Slot *s) {
    SandboxChild c;
    sandbox_fill_child(cfg, env, &c, s->work);
    const char *file = s->job ? s->job->file_name : "program.py";
    if (s->job) program = s->job->source;
    if (sandbox_make_dir_named(cfg, file, program, c.drop_to_nobody, s->dir, sizeof s->dir) != 0) return -1;
    snprintf(s->work, sizeof s->work, "%s/work", s->dir);
    snprintf(s->prog, sizeof s->prog, "%s/%s", s->dir, file);
    build_argv(cfg, env, s);
    s->status_fd = -1;
    int st[2] = {-1, -1};
    if (s->job && setup_job(s, &c, st) != 0) { free_step_argv(s); sandbox_remove_tree(s->dir); return -1; }
    int out[2], err[2], devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || pipe2(out, O_CLOEXEC) != 0) {
        if (devnull >= 0) close(devnull);
        if (st[0] >= 0) { close(st[0]); close(st[1]); }
        free_step_argv(s); sandbox_remove_tree(s->dir);
        return flab_fail_errno("sandbox: pipe");
    }
    if (pipe2(err, O_CLOEXEC) != 0) {
        close(devnull); close(out[0]); close(out[1]);
        if (st[0] >= 0) { close(st[0]); close(st[1]); }
        free_step_argv(s); sandbox_remove_tree(s->dir);
        return flab_fail_errno("sandbox: pipe");
    }
    c.stdin_fd = devnull; c.out_fd = out[1]; c.err_fd = err[1];
    c.argv = s->argv; c.envp = s->envp; c.exec = 1;
    s->start = sandbox_now();
    if (!s->job) s->deadline = s->start + cfg->timeout_s;
    s->pid = sandbox_child_spawn(&c);
    int e = errno;
    close(devnull); close(out[1]); close(err[1]);
    if (st[1] >= 0) close(st[1]);
    s->fds[0] = out[0]; s->fds[1] = err[0]; s->status_fd = st[0];
    if (s->pid < 0) {
        close(out[0]); close(err[0]);
        if (st[0] >= 0) close(st[0]);
        free_step_argv(s); sandbox_remove_tree(s->dir);
        errno = e;
        return flab_fail_errno("sandbox: starting %s", c.python);
    }
    for (int i = 0; i < 2; i++) {
        fcntl(s->fds[i], F_SETFL, O_NONBLOCK);
        s->buf[i] = flab_xmalloc(cfg->output_bytes + 1);
        s->len[i] = 0;
    }
    if (s->status_fd >= 0) fcntl(s->status_fd, F_SETFL, O_NONBLOCK);
    s->pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
    return 0;
}

int sandbox_keep_output(const EvalSandboxConfig *cfg, char *buf, size_t *len, const char *chunk,
                        size_t got) {
    size_t room = cfg->output_bytes - *len;
    size_t keep = got < room ? got : room;
    memcpy(buf + *len, chunk, keep);
    *len += keep;
    return keep < got;
}

/* Reads what the pipe has; keeps the first output_bytes, kills or discards
 * past them. */
static void read_pipe(const EvalSandboxConfig *cfg, Slot *s, int which) {
    char chunk[65536];
    for (int round = 0; round < 16; round++) {
        ssize_t got = read(s->fds[which], chunk, sizeof chunk);
        if (got < 0 && (errno == EINTR)) continue;
        if (got < 0 && errno == EAGAIN) return;
        if (got <= 0) { close(s->fds[which]); s->fds[which] = -1; return; }
        if (sandbox_keep_output(cfg, s->buf[which], &s->len[which], chunk, (size_t)got)) {
            s->truncated = 1;
            if (cfg->kill_on_overflow && !s->overflow_killed && !s->exited) {
                s->overflow_killed = 1;
                kill_group(s);
            }
        }
    }
}

/* Notices the exit without reaping (WNOWAIT), kills the group while the
 * leader's pid cannot yet be reused, then reaps. */
static void check_exit(Slot *s) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)s->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0)
        return;
    kill(-s->pid, SIGKILL);
    while (waitpid(s->pid, &s->status, 0) < 0 && errno == EINTR) {}
    s->exited = 1;
    s->exit_time = sandbox_now();
}

/* ---- results ------------------------------------------------------------- */

/* The last non-empty line of the captured stderr, at most 200 bytes. */
static char *last_line(const char *text, size_t len) {
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) len--;
    size_t start = len;
    while (start && text[start - 1] != '\n') start--;
    size_t n = len - start < 200 ? len - start : 200;
    char *line = flab_xmalloc(n + 1);
    memcpy(line, text + start, n);
    line[n] = '\0';
    return line;
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...) {
    char tmp[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return flab_xstrdup(tmp);
}

char *sandbox_reason(const EvalSandboxConfig *cfg, int overflow_killed, int timed_out, int status,
                     const char *err, size_t err_len, int *passed) {
    *passed = 0;
    if (overflow_killed) return format("output truncated at %zu bytes", cfg->output_bytes);
    if (timed_out) return flab_xstrdup("timeout");
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGXCPU) return flab_xstrdup("timeout (cpu limit)");
        const char *name = sigabbrev_np(sig);
        return format("killed by signal %d (SIG%s)", sig, name ? name : "?");
    }
    int code = WEXITSTATUS(status);
    if (code == 0) { *passed = 1; return flab_xstrdup("ok"); }
    char *line = last_line(err, err_len);
    char *reason = strstr(line, "MemoryError") ? flab_xstrdup("memory")
                 : *line ? format("failed: %s", line) : format("failed: exit code %d", code);
    free(line);
    return reason;
}

/* The supervisor's last record: which step ended the sample, how. */
static int last_step_record(Slot *s, int *step, int *status, int *timed_out) {
    char buf[512];
    ssize_t got = s->status_fd >= 0 ? read(s->status_fd, buf, sizeof buf - 1) : -1;
    if (got <= 0) return -1;
    buf[got] = '\0';
    int found = -1;
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (sscanf(line, "STEP %d %d %d", step, status, timed_out) == 3) found = 0;
    return found;
}

/* Is [a, z) of text the line worth reporting?  stderr: a compiler
 * diagnostic ("...: error: ...", as javac, kotlinc, swiftc, gcc print
 * them; final) or an unindented line with a letter (stack frames "\tat
 * ...", a compiler's echo of the source line and its caret are indented);
 * stdout: a test framework's "Failure:" / "Error:" line (final). */
static int line_kind(const char *line, size_t len, int on_stdout) {
    if (on_stdout)
        return memmem(line, len, "Failure:", 8) || memmem(line, len, "Error:", 6) ? 2 : 0;
    if (memmem(line, len, ": error:", 8)) return 2;
    for (size_t i = 0; i < len; i++)
        if (((line[i] | 32) >= 'a' && (line[i] | 32) <= 'z')) return line[0] != ' ' && line[0] != '\t';
    return 0;
}

/* The line of a step's output that says what went wrong: the first final
 * one, else the last candidate (line_kind); the sample's private dir is
 * cut from it so reasons do not vary run to run.  NULL when none. */
static char *job_error_line(const char *text, size_t len, const char *sample_dir, int on_stdout) {
    const char *best = NULL;
    size_t best_len = 0;
    for (size_t a = 0; a < len;) {
        size_t z = a;
        while (z < len && text[z] != '\n') z++;
        int kind = z > a ? line_kind(text + a, z - a, on_stdout) : 0;
        if (kind) { best = text + a; best_len = z - a; }
        if (kind == 2) break;
        a = z + 1;
    }
    if (!best) return NULL;
    while (best_len && (best[best_len - 1] == ' ' || best[best_len - 1] == '\r')) best_len--;
    if (best_len > 200) best_len = 200;
    char dir[PATH_MAX + 2];
    snprintf(dir, sizeof dir, "%s/", sample_dir);
    size_t dl = strlen(dir);
    StrBufLite out = {0};
    for (size_t i = 0; i < best_len;) {
        if (i + dl <= best_len && !strncmp(best + i, dir, dl)) { i += dl; continue; }
        if (out.len + 1 < sizeof out.data) out.data[out.len++] = best[i];
        i++;
    }
    out.data[out.len] = '\0';
    return flab_xstrdup(out.data);
}

/* Reason of a job: the step that failed decides; a step before the last
 * is the compile step. */
static char *job_reason(const EvalSandboxConfig *cfg, Slot *s, EvalSampleResult *r) {
    int step = 0, status = s->status, step_timeout = 0;
    int have = last_step_record(s, &step, &status, &step_timeout) == 0;
    if (!have) step = 0;
    if (s->timed_out && have && WIFEXITED(status) && WEXITSTATUS(status) == 0) step++;
    if (step >= s->job->n_steps) step = s->job->n_steps - 1;
    r->n_steps = s->job->n_steps;
    r->step = step;
    if (s->overflow_killed || s->timed_out || !have)
        return sandbox_reason(cfg, s->overflow_killed, s->timed_out, s->status, s->buf[1],
                              s->len[1], &r->passed);
    char *reason = sandbox_reason(cfg, 0, step_timeout, status, s->buf[1], s->len[1], &r->passed);
    char *line = NULL;
    if (!strncmp(reason, "failed: ", 8)) {   /* stderr first; test runners that report on stdout */
        line = job_error_line(s->buf[1], s->len[1], s->dir, 0);
        if (!line) line = job_error_line(s->buf[0], s->len[0], s->dir, 1);
    }
    if (line) {
        free(reason);
        reason = format("failed: %s", line);
        free(line);
    }
    if (r->passed || step == s->job->n_steps - 1) return reason;
    char tmp[400];
    if (step_timeout) snprintf(tmp, sizeof tmp, "compile timeout");
    else if (!strncmp(reason, "failed: ", 8)) snprintf(tmp, sizeof tmp, "compile error: %s", reason + 8);
    else snprintf(tmp, sizeof tmp, "compile %s", reason);
    free(reason);
    return flab_xstrdup(tmp);
}

static void finish_slot(const EvalSandboxConfig *cfg, Slot *s, EvalSampleResult *r) {
    for (int i = 0; i < 2; i++)
        if (s->fds[i] >= 0) { close(s->fds[i]); s->fds[i] = -1; }
    if (s->pidfd >= 0) close(s->pidfd);
    memset(r, 0, sizeof *r);
    if (s->job) r->reason = job_reason(cfg, s, r);
    else r->reason = sandbox_reason(cfg, s->overflow_killed, s->timed_out, s->status, s->buf[1],
                                    s->len[1], &r->passed);
    if (s->status_fd >= 0) { close(s->status_fd); s->status_fd = -1; }
    free_step_argv(s);
    r->timed_out = !strncmp(r->reason, "timeout", 7) || !strcmp(r->reason, "compile timeout");
    r->exit_code = WIFEXITED(s->status) ? WEXITSTATUS(s->status) : -1;
    r->term_signal = WIFSIGNALED(s->status) ? WTERMSIG(s->status) : 0;
    r->duration_s = s->exit_time - s->start;
    s->buf[0][s->len[0]] = '\0';
    s->buf[1][s->len[1]] = '\0';
    r->out = s->buf[0]; r->out_len = s->len[0];
    r->err = s->buf[1]; r->err_len = s->len[1];
    r->truncated = s->truncated;
    sandbox_remove_tree(s->dir);
}

void eval_sample_result_free(EvalSampleResult *r) {
    if (!r) return;
    free(r->reason);
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* ---- the loop ------------------------------------------------------------ */

static int slot_done(const Slot *s, double now) {
    return s->exited && ((s->fds[0] < 0 && s->fds[1] < 0) || now > s->exit_time + DRAIN_GRACE_S);
}

/* Waits for pipes, exits and deadlines of the running slots (one poll). */
static void poll_slots(const EvalSandboxConfig *cfg, Slot *slots, int active) {
    struct pollfd pfd[3 * 64];
    Slot *owner[3 * 64];
    int which[3 * 64], n = 0, have_pidfds = 1;
    double now = sandbox_now(), wait = 0.1;
    for (int i = 0; i < active; i++) {
        Slot *s = &slots[i];
        for (int k = 0; k < 2; k++)
            if (s->fds[k] >= 0) { pfd[n] = (struct pollfd){s->fds[k], POLLIN, 0}; owner[n] = s; which[n++] = k; }
        if (!s->exited && s->pidfd >= 0) { pfd[n] = (struct pollfd){s->pidfd, POLLIN, 0}; owner[n] = s; which[n++] = 2; }
        if (!s->exited && s->pidfd < 0) have_pidfds = 0;
        double left = (s->exited ? s->exit_time + DRAIN_GRACE_S : s->deadline) - now;
        if (left < wait) wait = left;
    }
    if (!have_pidfds && wait > 0.01) wait = 0.01;
    int ms = wait > 0 ? (int)(wait * 1000) + 1 : 0;
    if (poll(pfd, (nfds_t)n, ms) > 0)
        for (int i = 0; i < n; i++)
            if (pfd[i].revents && which[i] < 2 && owner[i]->fds[which[i]] >= 0) read_pipe(cfg, owner[i], which[i]);
    now = sandbox_now();
    for (int i = 0; i < active; i++) {
        Slot *s = &slots[i];
        if (!s->exited) check_exit(s);
        if (!s->exited && now >= s->deadline && !s->timed_out) { s->timed_out = 1; kill_group(s); }
    }
}

/* Exec mode: up to cfg->jobs slots at once, each sample programs[i] (a
 * Python program) or jobs[i] (steps). */
static int run_exec(const EvalSandboxConfig *cfg, const SandboxEnv *env, const char *const *programs,
                    const EvalSandboxJob *jobs, size_t n, EvalSampleResult *results) {
    int nj = cfg->jobs < 1 ? 1 : cfg->jobs > 64 ? 64 : cfg->jobs;
    Slot *slots = flab_xcalloc((size_t)nj, sizeof *slots);
    size_t next = 0, done = 0;
    int active = 0, rc = 0;
    while (done < n) {
        while (rc == 0 && active < nj && next < n) {
            Slot *s = &slots[active];
            memset(s, 0, sizeof *s);
            s->index = next;
            s->job = jobs ? &jobs[next] : NULL;
            if (start_slot(cfg, env, programs ? programs[next] : NULL, s) != 0) { rc = -1; break; }
            active++; next++;
        }
        if (active == 0) break;
        poll_slots(cfg, slots, active);
        double now = sandbox_now();
        for (int i = 0; i < active; i++) {
            if (!slot_done(&slots[i], now)) continue;
            finish_slot(cfg, &slots[i], &results[slots[i].index]);
            done++;
            slots[i--] = slots[--active];
        }
    }
    if (rc != 0) {   /* systemic failure: drop everything, report nothing */
        for (int i = 0; i < active; i++) {
            kill_group(&slots[i]);
            while (waitpid(slots[i].pid, NULL, 0) < 0 && errno == EINTR) {}
            finish_slot(cfg, &slots[i], &results[slots[i].index]);
        }
        for (size_t i = 0; i < next; i++) eval_sample_result_free(&results[i]);
    }
    free(slots);
    return rc;
}

int eval_sandbox_run(const EvalSandboxConfig *cfg, const char *const *programs, size_t n,
                     EvalSampleResult *results, EvalIsolation *iso) {
    if (access(cfg->python, X_OK) != 0)
        return flab_fail_errno("sandbox: interpreter %s is not executable", cfg->python);
    SandboxEnv env;
    EvalIsolation own_iso;
    if (!iso) iso = &own_iso;
    probe(cfg, &env, iso);
    if (cfg->pool && env.level >= 2) {
        if (sandbox_pool_run(cfg, &env, programs, n, results) == 0) {
            iso->pool = 1;
            size_t len = strlen(iso->summary);
            snprintf(iso->summary + len, sizeof iso->summary - len, "; pool of forking interpreters");
            return 0;
        }
        flab_error_clear();   /* the pool could not start: exec mode below */
    }
    return run_exec(cfg, &env, programs, NULL, n, results);
}

int eval_sandbox_run_jobs(const EvalSandboxConfig *cfg, const EvalSandboxJob *jobs, size_t n,
                          EvalSampleResult *results, EvalIsolation *iso) {
    for (size_t i = 0; i < n; i++) {
        const EvalSandboxJob *j = &jobs[i];
        if (j->n_steps < 1 || j->n_steps > EVAL_SANDBOX_MAX_STEPS || !j->file_name ||
            !*j->file_name || strchr(j->file_name, '/') || !j->source)
            return flab_fail("sandbox: job %zu: bad file name or step count", i);
        for (int k = 0; k < j->n_steps; k++)
            if (!j->argv[k] || !j->argv[k][0] || j->argv[k][0][0] != '/')
                return flab_fail("sandbox: job %zu: step %d needs an absolute program path", i, k);
    }
    SandboxEnv env;
    EvalIsolation own_iso;
    if (!iso) iso = &own_iso;
    EvalSandboxConfig c = *cfg;
    c.audit_hook = 0;       /* the guard is Python's; other languages go without */
    probe(&c, &env, iso);
    return run_exec(&c, &env, NULL, jobs, n, results);
}
