/* tests/test_cache_crash.c: the crash and concurrency promises of cache/.
 *
 * Crashes: a child process commits an artifact and is killed with SIGKILL
 * at every crash point of the commit in turn (deterministic fault
 * injection, SQLite style), then at random moments of a commit loop, and
 * inside gc and verify.  After every kill the parent checks the invariants
 * (deep: every object re-hashed) and that a lookup returns the complete
 * artifact or nothing.  Then every key is built to the end and checked.
 * Concurrency: several processes begin the same key (exactly one builds,
 * the others wait and then find it), commit equal content under different
 * keys (dedup and provenance races), and gc runs while commits happen. */
#include "tests/testlib.h"
#include "tests/cache_testlib.h"
#include "cache/internal.h"
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define NFILES 4
#define FILE_BYTES (48 * 1024)

/* Deterministic content of file i of the artifact labelled label. */
static char *content_of(const char *label, int i, size_t *len) {
    *len = FILE_BYTES + (size_t)i * 1000;
    char *buf = malloc(*len + 1);
    size_t n = strlen(label);
    for (size_t j = 0; j < *len; j++) buf[j] = (char)(label[j % n] + i + (int)(j / 4096));
    buf[*len] = 0;
    return buf;
}

static int write_outputs(CacheBuild *b, const char *label) {
    for (int i = 0; i < NFILES; i++) {
        char name[32];
        snprintf(name, sizeof name, "d%d/file%d.bin", i % 2, i);
        size_t len;
        char *buf = content_of(label, i, &len);
        int rc = ct_write(cache_build_outdir(b), name, buf, len, i == 3 ? 0755 : 0644);
        free(buf);
        if (rc < 0) return -1;
    }
    FILE *log = fopen(cache_build_logpath(b), "w");
    if (!log) return -1;
    fprintf(log, "log of %s\n", label);
    fclose(log);
    return 0;
}

/* 1 if artifact dir holds exactly what write_outputs wrote for label. */
static int artifact_is_complete(const CacheArtifact *a, const char *label) {
    if (a->nfiles != NFILES + 2) return 0;   /* + directories d0, d1 */
    for (int i = 0; i < NFILES; i++) {
        char name[32];
        snprintf(name, sizeof name, "d%d/file%d.bin", i % 2, i);
        size_t len;
        char *want = content_of(label, i, &len);
        int ok = ct_file_is(a->dir, name, want);
        free(want);
        if (!ok) return 0;
    }
    return 1;
}

/* Child: build label (optionally dying at crash point `countdown`).
 * Exit 0 committed, 3 already there, 1 error. */
static void child_commit(const char *cdir, const char *label, int countdown) {
    FlabCache *c;
    char key[33];
    ct_key(label, key);
    if (cache_open(cdir, &c) < 0) _exit(1);
    CacheBuild *b;
    int r = cache_begin(c, key, 0, &b);
    if (r != 0) _exit(r == 1 ? 3 : 1);
    if (write_outputs(b, label) < 0) _exit(1);
    cache_debug_set_crash_countdown(countdown);
    char prov[64];
    snprintf(prov, sizeof prov, "{\"label\": \"%s\"}", label);
    int rc = cache_commit(b, label, NULL, prov, NULL);
    cache_close(c);
    _exit(rc == 0 ? 0 : 1);
}

/* Parent side check after a kill: invariants, and all-or-nothing lookup. */
static int check_after_kill(const char *cdir, const char *label, int *found) {
    FlabCache *c;
    if (cache_open(cdir, &c) < 0) return -1;
    int rc = cache_check_invariants(c, 1);
    char key[33];
    ct_key(label, key);
    CacheArtifact a;
    *found = rc == 0 ? cache_lookup(c, key, &a) : -1;
    if (*found == 1) {
        if (!artifact_is_complete(&a, label)) rc = flab_fail("%s: partial artifact served", label);
        cache_artifact_free(&a);
    } else if (*found < 0) rc = -1;
    cache_close(c);
    return rc;
}

static int run_child_commit(const char *cdir, const char *label, int countdown, int *status) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) child_commit(cdir, label, countdown);
    return waitpid(pid, status, 0) == pid ? 0 : -1;
}

static int build_to_end(const char *cdir, const char *label) {
    int status, found;
    if (run_child_commit(cdir, label, 0, &status) < 0) return -1;
    if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3)) return -1;
    if (check_after_kill(cdir, label, &found) < 0 || found != 1) return -1;
    return 0;
}

static void test_kill_at_every_crash_point(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    int kills = 0, k;
    for (k = 1; k < 100; k++) {
        char label[32];
        snprintf(label, sizeof label, "crash-%d", k);
        int status, found;
        REQUIRE(run_child_commit(cdir, label, k, &status) == 0);
        int killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        REQUIRE(killed || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
        kills += killed;
        int ok = check_after_kill(cdir, label, &found) == 0;
        REQUIREF(ok, "after kill at point %d: %s", k, flab_errmsg());
        if (!killed) { CHECK(found == 1); break; }
    }
    CHECKF(kills >= 14, "only %d crash points reached", kills);
    /* every interrupted key builds correctly afterwards (stale locks, staging, dirs) */
    for (int i = 1; i <= k; i++) {
        char label[32];
        snprintf(label, sizeof label, "crash-%d", i);
        CHECKF(build_to_end(cdir, label) == 0, "rebuild of %s: %s", label, flab_errmsg());
    }
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    CacheGcReport gr;
    CacheVerifyReport vr;
    CHECKF(cache_gc(c, NULL, &gr) == 0, "%s", flab_errmsg());
    REQUIRE(cache_verify(c, NULL, NULL, &vr) == 0);
    CHECK(vr.objects_corrupt == 0);
    CHECKF(cache_check_invariants(c, 1) == 0, "%s", flab_errmsg());
    cache_close(c);
    printf("# %d kills at crash points\n", kills);
    ct_rmrf(dir);
    free(dir); free(cdir);
}

static void test_kill_at_random_moments(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    srand((unsigned)time(NULL));
    int kills = 0;
    for (int round = 0; round < 12; round++) {
        fflush(stdout);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {   /* commits one key after another until killed */
            for (int i = 0;; i++) {
                char label[32];
                snprintf(label, sizeof label, "rnd-%d-%d", round, i);
                FlabCache *c;
                char key[33];
                ct_key(label, key);
                CacheBuild *b;
                if (cache_open(cdir, &c) < 0 || cache_begin(c, key, 0, &b) != 0) _exit(1);
                if (write_outputs(b, label) < 0 || cache_commit(b, label, NULL, NULL, NULL) < 0) _exit(1);
                cache_close(c);
            }
        }
        usleep((useconds_t)(5000 + rand() % 120000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECKF(WIFSIGNALED(status), "child exited %d before the kill", WEXITSTATUS(status));
        kills++;
        FlabCache *c;
        REQUIRE(cache_open(cdir, &c) == 0);
        CHECKF(cache_check_invariants(c, 1) == 0, "round %d: %s", round, flab_errmsg());
        for (int i = 0; i < 64; i++) {
            char label[32], key[33];
            snprintf(label, sizeof label, "rnd-%d-%d", round, i);
            ct_key(label, key);
            CacheArtifact a;
            int r = cache_lookup(c, key, &a);
            if (r == 1) { CHECKF(artifact_is_complete(&a, label), "partial %s", label); cache_artifact_free(&a); }
        }
        cache_close(c);
    }
    printf("# %d kills at random moments\n", kills);
    ct_rmrf(dir);
    free(dir); free(cdir);
}

/* Kills inside gc and verify: the cache stays consistent. */
static void test_kill_inside_gc_and_verify(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    for (int k = 1; k <= 4; k++) {
        for (int i = 0; i < 3; i++) {
            char label[32];
            snprintf(label, sizeof label, "gc-%d-%d", k, i);
            REQUIRE(build_to_end(cdir, label) == 0);
        }
        if (k % 2) {   /* corrupt one object of gc-k-0: verify has work to do */
            char label[32], key[33];
            snprintf(label, sizeof label, "gc-%d-0", k);
            ct_key(label, key);
            FlabCache *c;
            CacheArtifact a;
            REQUIRE(cache_open(cdir, &c) == 0);
            REQUIRE(cache_lookup(c, key, &a) == 1);
            char *p = ct_path(a.dir, "d0/file0.bin");
            REQUIRE(!ct_scribble(p, "corrupt"));
            chmod(p, 0444);
            free(p);
            cache_artifact_free(&a);
            cache_close(c);
        }
        fflush(stdout);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            FlabCache *c;
            if (cache_open(cdir, &c) < 0) _exit(1);
            cache_debug_set_crash_countdown((k + 1) / 2);
            CacheGcReport gr;
            CacheVerifyReport vr;
            int rc = k % 2 ? cache_verify(c, NULL, NULL, &vr) : cache_gc(c, NULL, &gr);
            _exit(rc == 0 ? 0 : 1);
        }
        int status;
        waitpid(pid, &status, 0);
        FlabCache *c;
        REQUIRE(cache_open(cdir, &c) == 0);
        /* an interrupted verify may leave the corrupt object (found next time);
         * the structural invariants hold regardless */
        CHECKF(cache_check_invariants(c, 0) == 0, "k=%d: %s", k, flab_errmsg());
        CacheVerifyReport vr;
        REQUIRE(cache_verify(c, NULL, NULL, &vr) == 0);
        CHECKF(cache_check_invariants(c, 1) == 0, "k=%d after verify: %s", k, flab_errmsg());
        cache_close(c);
    }
    ct_rmrf(dir);
    free(dir); free(cdir);
}

/* ---- concurrency ---------------------------------------------------------- */

static void test_same_key_built_once(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache"), *marks = ct_path(dir, "marks");
    enum { N = 3 };
    pid_t pids[N];
    fflush(stdout);
    for (int p = 0; p < N; p++) {
        pids[p] = fork();
        REQUIRE(pids[p] >= 0);
        if (pids[p]) continue;
        FlabCache *c;
        char key[33];
        ct_key("shared", key);
        CacheBuild *b;
        if (cache_open(cdir, &c) < 0) _exit(1);
        int r = cache_begin(c, key, 0, &b);
        if (r == 0) {
            int fd = open(marks, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd < 0 || write(fd, "B\n", 2) != 2) _exit(1);
            close(fd);
            usleep(200000);   /* the others must wait, not build */
            if (write_outputs(b, "shared") < 0 || cache_commit(b, "shared", NULL, NULL, NULL) < 0) _exit(1);
        } else if (r != 1) _exit(1);
        CacheArtifact a;
        if (cache_lookup(c, key, &a) != 1 || !artifact_is_complete(&a, "shared")) _exit(2);
        cache_artifact_free(&a);
        cache_close(c);
        _exit(0);
    }
    for (int p = 0; p < N; p++) {
        int status;
        waitpid(pids[p], &status, 0);
        CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %d: status %d", p, status);
    }
    char *data = NULL;
    size_t len = 0;
    CHECK(flab_read_file(marks, &data, &len) == 0 && len == 2);
    free(data);
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    CHECKF(cache_check_invariants(c, 1) == 0, "%s", flab_errmsg());
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir); free(marks);
}

static int count_log(const CacheProvEntry *e, void *ud) { (void)e; ++*(int *)ud; return 0; }

static void test_parallel_commits_and_gc(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    enum { P = 4, K = 5 };
    pid_t pids[P + 1];
    fflush(stdout);
    for (int p = 0; p <= P; p++) {
        pids[p] = fork();
        REQUIRE(pids[p] >= 0);
        if (pids[p]) continue;
        FlabCache *c;
        if (cache_open(cdir, &c) < 0) _exit(1);
        if (p == P) {   /* a gc that keeps nothing, running meanwhile */
            for (int i = 0; i < 5; i++) {
                CacheGcReport gr;
                if (cache_gc(c, NULL, &gr) < 0) _exit(1);
                usleep(10000);
            }
            _exit(0);
        }
        for (int i = 0; i < K; i++) {
            char label[32], key[33];
            snprintf(label, sizeof label, "par-%d-%d", p, i);
            ct_key(label, key);
            CacheBuild *b;
            if (cache_begin(c, key, 0, &b) != 0) _exit(1);
            /* the same bytes in every process: objects are shared (dedup race) */
            if (write_outputs(b, "same-content") < 0) _exit(1);
            if (cache_commit(b, label, NULL, NULL, NULL) < 0) _exit(1);
        }
        cache_close(c);
        _exit(0);
    }
    for (int p = 0; p <= P; p++) {
        int status;
        waitpid(pids[p], &status, 0);
        CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %d: status %d", p, status);
    }
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    CHECKF(cache_check_invariants(c, 1) == 0, "%s", flab_errmsg());
    int n = 0;
    REQUIRE(cache_provenance_log(c, NULL, count_log, &n) == 0);
    CHECKF(n == P * K, "provenance has %d commits, want %d", n, P * K);
    /* what gc dropped is simply absent; what is there is complete */
    for (int p = 0; p < P; p++)
        for (int i = 0; i < K; i++) {
            char label[32], key[33];
            snprintf(label, sizeof label, "par-%d-%d", p, i);
            ct_key(label, key);
            CacheArtifact a;
            if (cache_lookup(c, key, &a) == 1) {
                CHECK(artifact_is_complete(&a, "same-content"));
                cache_artifact_free(&a);
            }
        }
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* RUN, printing each test's wall time (this file holds the slow tests). */
#define TIMED_RUN(fn) do { double t0_ = now_s(); RUN(fn); \
    printf("# %s: %.2f s\n", #fn, now_s() - t0_); } while (0)

int main(void) {
    TIMED_RUN(test_kill_at_every_crash_point);
    TIMED_RUN(test_kill_at_random_moments);
    TIMED_RUN(test_kill_inside_gc_and_verify);
    TIMED_RUN(test_same_key_built_once);
    TIMED_RUN(test_parallel_commits_and_gc);
    return TEST_SUMMARY();
}
