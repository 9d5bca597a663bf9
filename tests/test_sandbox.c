/* tests/test_sandbox.c: the sandbox contains hostile programs.
 *
 * Each hostile sample must fail itself with a recorded reason while this
 * process survives and nothing outside the sample's directory changes.  The
 * hostile samples run twice: with the Python audit hook (the default) and
 * without it, so that the kernel layers (namespaces, uid, rlimits) are shown
 * to hold on their own; a layer the kernel does not allow here is reported
 * with a SKIP line instead.  Timeouts are 2 s to keep the suite fast. */
#include "eval/sandbox.h"
#include "tests/testlib.h"
#include "util/error.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

static char g_base[256];      /* tmp_base of every sample in this test */
static char g_outside[256];   /* a directory outside every sample dir */
static char g_home[512];      /* the real home of this user */
static EvalIsolation g_iso;

static int g_pool = 1;

static EvalSandboxConfig config(int hook) {
    EvalSandboxConfig c;
    eval_sandbox_config_default(&c);
    c.timeout_s = 2.0;
    c.memory_bytes = (size_t)256 << 20;   /* small: the allocation test hits it fast */
    c.file_bytes = (size_t)8 << 20;
    c.jobs = 2;
    c.audit_hook = hook;
    c.pool = g_pool;
    c.tmp_base = g_base;
    return c;
}

/* Runs one program; the result is for the caller to free. */
static int run1(const EvalSandboxConfig *c, const char *program, EvalSampleResult *r) {
    const char *progs[1] = {program};
    return eval_sandbox_run(c, progs, 1, r, NULL);
}

/* 1 when some process still runs with our tmp_base in its command line:
 * an orphan the sandbox failed to kill. */
static int leftover_processes(void) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d))) {
        char path[300], buf[8192];
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        for (ssize_t i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';
        if (n > 0) { buf[n] = '\0'; if (strstr(buf, g_base)) found = 1; }
    }
    if (d) closedir(d);
    return found;
}

static int base_is_empty(void) {
    DIR *d = opendir(g_base);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d) closedir(d);
    return n == 0;
}

/* ---- ordinary behaviour -------------------------------------------------- */

static void test_probe_reports_isolation(void) {
    EvalSandboxConfig c = config(1);
    eval_sandbox_probe(&c, &g_iso);
    printf("# isolation here: %s\n", g_iso.summary);
    CHECK(strlen(g_iso.summary) > 0);
    CHECK(g_iso.audit_hook == 1);
}

static void test_ok_program_passes(void) {
    EvalSandboxConfig c = config(1);
    EvalSampleResult r;
    REQUIREF(run1(&c, "import math\nprint('hi', math.factorial(5))\n", &r) == 0, "%s", flab_errmsg());
    CHECKF(r.passed, "reason %s err %s", r.reason, r.err);
    CHECK(!strcmp(r.reason, "ok"));
    CHECK(!strcmp(r.out, "hi 120\n"));
    CHECK(r.exit_code == 0);
    eval_sample_result_free(&r);
    CHECK(base_is_empty());
}

static void test_failure_reason_is_last_stderr_line(void) {
    EvalSandboxConfig c = config(1);
    EvalSampleResult r;
    REQUIRE(run1(&c, "def f():\n    raise ValueError('boom')\nf()\n", &r) == 0);
    CHECK(!r.passed);
    CHECKF(!strcmp(r.reason, "failed: ValueError: boom"), "reason %s", r.reason);
    CHECK(r.exit_code == 1);
    eval_sample_result_free(&r);
}

static void test_assertion_failure_fails(void) {
    EvalSandboxConfig c = config(1);
    EvalSampleResult r;
    REQUIRE(run1(&c, "assert 1 + 1 == 3\n", &r) == 0);
    CHECK(!r.passed);
    CHECKF(!strcmp(r.reason, "failed: AssertionError"), "reason %s", r.reason);
    eval_sample_result_free(&r);
}

static void test_stdin_is_closed(void) {
    EvalSandboxConfig c = config(1);
    EvalSampleResult r;
    REQUIRE(run1(&c, "import sys\nprint(repr(sys.stdin.read()))\n", &r) == 0);
    CHECKF(r.passed && !strcmp(r.out, "''\n"), "out %s reason %s", r.out, r.reason);
    eval_sample_result_free(&r);
}

static void test_home_and_tmpdir_are_private(void) {
    EvalSandboxConfig c = config(1);
    EvalSampleResult r;
    REQUIRE(run1(&c, "import os, tempfile\n"
                     "p = os.path.expanduser('~/x.txt')\n"
                     "open(p, 'w').write('ok')\n"
                     "assert os.getcwd() == os.environ['HOME'] == tempfile.gettempdir()\n"
                     "with tempfile.NamedTemporaryFile() as f: f.write(b'1')\n"
                     "os.remove(p); os.mkdir('d'); os.rmdir('d')\n", &r) == 0);
    CHECKF(r.passed, "reason %s", r.reason);
    eval_sample_result_free(&r);
}

static void test_timeout_is_recorded(void) {
    EvalSandboxConfig c = config(1);
    EvalSampleResult r;
    REQUIRE(run1(&c, "while True:\n    pass\n", &r) == 0);
    CHECK(!r.passed);
    CHECKF(!strcmp(r.reason, "timeout"), "reason %s", r.reason);
    CHECKF(r.duration_s >= 1.9 && r.duration_s < 3.5, "duration %.2f", r.duration_s);
    eval_sample_result_free(&r);
    CHECK(!leftover_processes());
}

static void test_parallel_runs_keep_order(void) {
    EvalSandboxConfig c = config(1);
    enum { N = 6 };
    char text[N][80];
    const char *progs[N];
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof text[i], "import time\ntime.sleep(0.4)\nprint(%d)\n", i);
        progs[i] = text[i];
    }
    EvalSampleResult r[N];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    REQUIRE(eval_sandbox_run(&c, progs, N, r, NULL) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "%d\n", i);
        CHECKF(r[i].passed && !strcmp(r[i].out, want), "sample %d: %s / %s", i, r[i].reason, r[i].out);
        eval_sample_result_free(&r[i]);
    }
    CHECKF(wall < N * 0.4 * 0.85, "-j 2 took %.2f s: not parallel", wall);
}

static void test_missing_interpreter_is_an_error(void) {
    EvalSandboxConfig c = config(1);
    c.python = "/nonexistent/python3";
    EvalSampleResult r;
    CHECK(run1(&c, "print(1)\n", &r) == -1);
    CHECK(strstr(flab_errmsg(), "/nonexistent/python3") != NULL);
}

/* flab runs the sandbox with worker threads alive: the child must not use
 * glibc calls that wait for the parent's other threads (setuid & co). */
static void *idle_thread(void *arg) {
    struct timespec ts = {0, 300000000};
    nanosleep(&ts, NULL);
    return arg;
}

static void test_works_with_other_threads_running(void) {
    pthread_t t[2];
    for (int i = 0; i < 2; i++) REQUIRE(pthread_create(&t[i], NULL, idle_thread, NULL) == 0);
    for (int pool = 0; pool < 2; pool++) {
        EvalSandboxConfig c = config(1);
        c.pool = pool;
        EvalSampleResult r;
        REQUIRE(run1(&c, "print('threads ok')\n", &r) == 0);
        CHECKF(r.passed, "pool=%d: %s", pool, r.reason);
        eval_sample_result_free(&r);
    }
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
}

/* Tier 0 (as on a kernel that refuses namespaces): still runs, says so. */
static void test_without_namespaces_reports_it(void) {
    EvalSandboxConfig c = config(1);
    c.namespaces = 0;
    EvalIsolation iso;
    const char *progs[2] = {"print('fine')\n", "import socket\nsocket.socket()\n"};
    EvalSampleResult r[2];
    REQUIRE(eval_sandbox_run(&c, progs, 2, r, &iso) == 0);
    CHECK(!iso.net_ns && !iso.pid_ns && !iso.mount_ns);
    CHECKF(strstr(iso.summary, "NONE (network NOT isolated)") != NULL, "%.300s", iso.summary);
    CHECKF(r[0].passed && !strcmp(r[0].out, "fine\n"), "%s", r[0].reason);
    CHECKF(!r[1].passed && strstr(r[1].reason, "socket") != NULL, "%s", r[1].reason);
    eval_sample_result_free(&r[0]);
    eval_sample_result_free(&r[1]);
    CHECK(!leftover_processes());
}

/* ---- hostile samples ----------------------------------------------------- */

typedef struct {
    const char *name, *program;
    const char *reason_prefix;   /* NULL: any failure */
    int needs_net_ns, needs_mount_or_nobody;
} Hostile;

static const char *reason_ok_for(const Hostile *h, const char *reason) {
    if (!h->reason_prefix) return "";
    return strncmp(reason, h->reason_prefix, strlen(h->reason_prefix)) ? h->reason_prefix : "";
}

static char g_prog_write[1024], g_prog_delete[1024], g_prog_home_write[1024], g_prog_socket[1024],
            g_prog_read_home[1024];
static char g_victim[300], g_created[300], g_home_created[600], g_secret[600];
static int g_listener = -1;

static void make_hostile_fixtures(void) {
    snprintf(g_victim, sizeof g_victim, "%s/victim.txt", g_outside);
    snprintf(g_created, sizeof g_created, "%s/created.txt", g_outside);
    snprintf(g_home_created, sizeof g_home_created, "%s/.flab-sandbox-test-%d", g_home, (int)getpid());
    snprintf(g_secret, sizeof g_secret, "%s/.flab-sandbox-secret-%d", g_home, (int)getpid());
    FILE *f = fopen(g_victim, "w");
    if (f) { fputs("keep me\n", f); fclose(f); }
    f = fopen(g_secret, "w");
    if (f) { fputs("TOPSECRET-42\n", f); fclose(f); }
    chmod(g_secret, 0644);
    g_listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = 0;
    if (g_listener >= 0 && bind(g_listener, (struct sockaddr *)&a, sizeof a) == 0 &&
        listen(g_listener, 4) == 0 && getsockname(g_listener, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    snprintf(g_prog_write, sizeof g_prog_write, "open('%s', 'w').write('pwned')\n", g_created);
    snprintf(g_prog_delete, sizeof g_prog_delete, "import os\nos.remove('%s')\n", g_victim);
    snprintf(g_prog_home_write, sizeof g_prog_home_write, "open('%s', 'w').write('pwned')\n",
             g_home_created);
    snprintf(g_prog_socket, sizeof g_prog_socket,
             "import socket\ns = socket.create_connection(('127.0.0.1', %d), timeout=1)\n"
             "s.sendall(b'pwned')\n", port);
    snprintf(g_prog_read_home, sizeof g_prog_read_home, "print(open('%s').read())\n", g_secret);
}

static void run_hostile_set(int hook) {
    static const char fork_bomb[] = "import os\nwhile True:\n    os.fork()\n";
    static const char alloc[] = "x = []\nwhile True:\n    x.append(bytearray(10**7))\n";
    static const char huge_file[] = "with open('big.bin', 'wb') as f:\n"
                                    "    for _ in range(100):\n        f.write(b'x' * 10**6)\n";
    static const char kill_parent[] = "import os, sys\nos.kill(os.getppid(), 9)\nsys.exit('the parent survived')\n";
    static const char print_gb[] = "import sys\nwhile True:\n    sys.stdout.write('x' * 10**6)\n";
    static const char loop[] = "while True:\n    pass\n";
    Hostile hs[] = {
        {"infinite loop", loop, "timeout", 0, 0},
        {"fork bomb", fork_bomb, NULL, 0, 0},
        {"unbounded allocation", alloc, "memory", 0, 0},
        {"huge file write", huge_file, "failed: OSError", 0, 0},
        {"write outside", g_prog_write, "failed:", 0, 1},
        {"delete outside", g_prog_delete, "failed:", 0, 1},
        {"write real home", g_prog_home_write, "failed:", 0, 1},
        {"socket to a local listener", g_prog_socket, "failed:", 1, 0},
        {"read real home", g_prog_read_home, "failed:", 0, 1},
        {"kill parent", kill_parent, NULL, 0, 0},
        {"print gigabytes", print_gb, "output truncated", 0, 0},
    };
    enum { NH = sizeof hs / sizeof hs[0] };
    EvalSandboxConfig c = config(hook);
    const char *progs[NH];
    int skip[NH];
    int n = 0;
    Hostile *use[NH];
    for (int i = 0; i < NH; i++) {
        skip[i] = !hook && ((hs[i].needs_net_ns && !g_iso.net_ns) ||
                            (hs[i].needs_mount_or_nobody && !g_iso.mount_ns && !g_iso.dropped_to_nobody) ||
                            (!strcmp(hs[i].name, "kill parent") && !g_iso.pid_ns && !g_iso.dropped_to_nobody) ||
                            (!strcmp(hs[i].name, "fork bomb") && !g_iso.pid_ns));
        if (skip[i]) { printf("SKIP hostile '%s' without audit hook: kernel layer missing here\n", hs[i].name); continue; }
        use[n] = &hs[i];
        progs[n++] = hs[i].program;
    }
    EvalSampleResult r[NH];
    REQUIREF(eval_sandbox_run(&c, progs, (size_t)n, r, NULL) == 0, "%s", flab_errmsg());
    for (int i = 0; i < n; i++) {
        CHECKF(!r[i].passed, "hook=%d '%s' passed", hook, use[i]->name);
        const char *want = reason_ok_for(use[i], r[i].reason);
        CHECKF(!*want, "hook=%d '%s': reason '%s', want '%s...'", hook, use[i]->name, r[i].reason, want);
        CHECKF(!strstr(r[i].out, "TOPSECRET"), "hook=%d: home file was read", hook);
        printf("# %s hook=%d %-28s -> %s (%.2f s)\n", g_pool ? "pool" : "exec", hook, use[i]->name,
               r[i].reason, r[i].duration_s);
        eval_sample_result_free(&r[i]);
    }
    CHECKF(access(g_victim, F_OK) == 0, "hook=%d: victim deleted", hook);
    CHECKF(access(g_created, F_OK) != 0, "hook=%d: file created outside", hook);
    CHECKF(access(g_home_created, F_OK) != 0, "hook=%d: file created in home", hook);
    int conn = g_listener >= 0 ? accept(g_listener, NULL, NULL) : -1;
    CHECKF(conn < 0, "hook=%d: the listener got a connection", hook);
    if (conn >= 0) close(conn);
    CHECK(!leftover_processes());
    CHECK(base_is_empty());
}

static void test_hostile_samples_with_audit_hook(void) { run_hostile_set(1); }
static void test_hostile_samples_kernel_layers_only(void) { run_hostile_set(0); }
static void test_hostile_samples_exec_mode(void) { g_pool = 0; run_hostile_set(1); run_hostile_set(0); g_pool = 1; }

/* Pool mode: what one sample leaves (a detached process, files beside its
 * directory) is gone before the next sample of the same interpreter runs. */
static void test_pool_samples_do_not_see_each_other(void) {
    EvalSandboxConfig c = config(0);
    c.jobs = 1;
    EvalIsolation iso;
    const char *progs[2] = {
        "import os, time\nopen('../leftover', 'w').write('x')\nopen('mine', 'w').write('x')\n"
        "if os.fork() == 0:\n    os.setsid()\n    time.sleep(30)\n",
        "import os\nassert not os.path.exists('../leftover'), 'file left by the previous sample'\n"
        "assert os.listdir('.') == ['program.py'], os.listdir('.')\n"
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "assert len(pids) == 2, 'processes: %r' % pids\n"};
    EvalSampleResult r[2];
    REQUIRE(eval_sandbox_run(&c, progs, 2, r, &iso) == 0);
    if (!iso.pool) {   /* exec mode: /proc may show the host's processes */
        printf("SKIP pool isolation: pool mode not available here (%.300s)\n", iso.summary);
        eval_sample_result_free(&r[0]);
        eval_sample_result_free(&r[1]);
        return;
    }
    CHECKF(r[0].passed, "%s", r[0].reason);
    CHECKF(r[1].passed, "%s", r[1].reason);
    eval_sample_result_free(&r[0]);
    eval_sample_result_free(&r[1]);
    CHECK(!leftover_processes());
}

int main(void) {
    snprintf(g_base, sizeof g_base, "/tmp/flab-test-sandbox-%d", (int)getpid());
    snprintf(g_outside, sizeof g_outside, "/tmp/flab-test-outside-%d", (int)getpid());
    mkdir(g_base, 0755);
    mkdir(g_outside, 0777);
    chmod(g_outside, 0777);   /* writable by anyone: only the sandbox may stop the write */
    const struct passwd *pw = getpwuid(getuid());
    snprintf(g_home, sizeof g_home, "%s", pw ? pw->pw_dir : "/root");
    make_hostile_fixtures();
    RUN(test_probe_reports_isolation);
    RUN(test_ok_program_passes);
    RUN(test_failure_reason_is_last_stderr_line);
    RUN(test_assertion_failure_fails);
    RUN(test_stdin_is_closed);
    RUN(test_home_and_tmpdir_are_private);
    RUN(test_timeout_is_recorded);
    RUN(test_parallel_runs_keep_order);
    RUN(test_missing_interpreter_is_an_error);
    RUN(test_without_namespaces_reports_it);
    RUN(test_works_with_other_threads_running);
    RUN(test_hostile_samples_with_audit_hook);
    RUN(test_hostile_samples_kernel_layers_only);
    RUN(test_hostile_samples_exec_mode);
    RUN(test_pool_samples_do_not_see_each_other);
    if (g_listener >= 0) close(g_listener);
    unlink(g_victim); unlink(g_created); unlink(g_home_created); unlink(g_secret);
    rmdir(g_outside);
    rmdir(g_base);
    return TEST_SUMMARY();
}
