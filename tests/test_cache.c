/* tests/test_cache.c: hashing, the stat cache, and the build protocol of
 * cache/ (commit, lookup, dedup, abort, records, version check).
 * Hashes are checked against the independent reference `xxhsum -H2`. */
#include "tests/testlib.h"
#include "tests/cache_testlib.h"
#include "cache/internal.h"
#include <pthread.h>
#include <sys/time.h>

/* ---- hashing ------------------------------------------------------------ */

/* xxhsum -H2 of path into out; 0 or -1. */
static int xxhsum(const char *path, char out[33]) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "xxhsum -H2 '%s' 2>/dev/null", path);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    int ok = fscanf(f, "%32s", out) == 1;
    pclose(f);
    return ok && flab_hash_is_valid(out) ? 0 : -1;
}

static void test_hash_matches_xxhsum(void) {
    char *dir = ct_tmpdir();
    REQUIRE(dir);
    /* sizes around XXH3's internal block/stripe sizes and the 64 MiB mmap window */
    const size_t sizes[] = {0, 1, 3, 16, 17, 128, 129, 240, 241, 1024, 65536 + 7, 3 << 20,
                            (64u << 20) + 4097};
    unsigned seed = 12345;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char *buf = malloc(sizes[i] + 1);
        for (size_t j = 0; j < sizes[i]; j++) buf[j] = (unsigned char)((seed = seed * 1103515245 + 12345) >> 16);
        char name[32];
        snprintf(name, sizeof name, "f%zu", i);
        REQUIRE(ct_write(dir, name, buf, sizes[i], 0644) == 0);
        char *p = ct_path(dir, name), got[33], want[33], mem[33];
        CHECKF(flab_hash_file(p, got) == 0, "%s", flab_errmsg());
        if (xxhsum(p, want) == 0) CHECKF(!strcmp(got, want), "size %zu: %s vs xxhsum %s", sizes[i], got, want);
        else CHECKF(0, "xxhsum not runnable (apt-get install xxhash)");
        flab_hash_bytes(buf, sizes[i], mem);
        CHECK(!strcmp(mem, got));
        free(p);
        free(buf);
    }
    ct_rmrf(dir);
    free(dir);
}

static void test_hasher_fields_are_unambiguous(void) {
    char a[33], b[33], n[33];
    FlabHasher *h = flab_hasher_new();
    flab_hasher_str(h, "ab"); flab_hasher_str(h, "c"); flab_hasher_digest(h, a);
    flab_hasher_free(h);
    h = flab_hasher_new();
    flab_hasher_str(h, "a"); flab_hasher_str(h, "bc"); flab_hasher_digest(h, b);
    flab_hasher_free(h);
    h = flab_hasher_new();
    flab_hasher_str(h, NULL); flab_hasher_str(h, "abc"); flab_hasher_digest(h, n);
    flab_hasher_free(h);
    CHECK(strcmp(a, b) != 0);
    CHECK(strcmp(a, n) != 0);
    CHECK(flab_hash_is_valid(a) && !flab_hash_is_valid("abc") && !flab_hash_is_valid("0123456789ABCDEF0123456789abcdef"));
}

/* ---- stat cache ------------------------------------------------------- */

static void test_stat_cache_skips_unchanged_files(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache"), *f = ct_path(dir, "in.bin");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    ct_write_str(dir, "in.bin", "hello world");
    char h1[33], h2[33], h3[33];
    CacheStats st;
    /* I8 with the real 2 s slack: a file written just now is re-read every time */
    cache_hash_file(c, f, h1);
    cache_hash_file(c, f, h2);
    cache_get_stats(c, &st);
    CHECKF(st.files_hashed == 2 && st.stat_hits == 0, "hashed %llu hits %llu",
           (unsigned long long)st.files_hashed, (unsigned long long)st.stat_hits);
    cache_debug_set_stat_slack_ns(0);
    /* without the slack the rows stored above are trusted: no more reads */
    cache_hash_file(c, f, h2);
    REQUIRE(cache_hash_file(c, f, h3) == 0);
    cache_get_stats(c, &st);
    CHECK(st.files_hashed == 2 && st.stat_hits == 2);
    CHECK(!strcmp(h1, h3));
    /* same size, new content, later mtime: detected */
    usleep(20000);
    ct_write_str(dir, "in.bin", "hello WORLD");
    REQUIRE(cache_hash_file(c, f, h2) == 0);
    CHECK(strcmp(h1, h2) != 0);
    /* touch with the same content: re-read once, same hash */
    usleep(20000);
    ct_write_str(dir, "in.bin", "hello world");
    REQUIRE(cache_hash_file(c, f, h3) == 0);
    CHECK(!strcmp(h1, h3));
    cache_get_stats(c, &st);
    CHECK(st.files_hashed == 4);
    /* a relative path hits the same row as the absolute one */
    char *cwd = getcwd(NULL, 0);
    REQUIRE(chdir(dir) == 0);
    REQUIRE(cache_hash_file(c, "in.bin", h2) == 0);
    REQUIRE(chdir(cwd) == 0);
    cache_get_stats(c, &st);
    CHECK(st.stat_hits == 3 && !strcmp(h2, h1));
    CHECK(cache_hash_file(c, "/nonexistent/x", h2) < 0 && strstr(flab_errmsg(), "/nonexistent/x"));
    cache_debug_set_stat_slack_ns(-1);
    free(cwd);
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir); free(f);
}

static void test_directory_hash(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache"), *in = ct_path(dir, "in");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    ct_write_str(in, "b.txt", "B");
    ct_write_str(in, "a/x.txt", "X");
    ct_write(in, "run.sh", "#!/bin/sh\n", 10, 0755);
    char h[33], want[33], fb[33], fx[33], fr[33];
    REQUIRE(cache_hash_path(c, in, h) == 0);
    /* the documented format, computed independently */
    flab_hash_bytes("B", 1, fb);
    flab_hash_bytes("X", 1, fx);
    flab_hash_bytes("#!/bin/sh\n", 10, fr);
    FlabHasher *x = flab_hasher_new();
    flab_hasher_update(x, "d a\0\n", 5);
    flab_hasher_update(x, "f a/x.txt\0-\0", 12); flab_hasher_update(x, fx, 32); flab_hasher_update(x, "\n", 1);
    flab_hasher_update(x, "f b.txt\0-\0", 10); flab_hasher_update(x, fb, 32); flab_hasher_update(x, "\n", 1);
    flab_hasher_update(x, "f run.sh\0x\0", 11); flab_hasher_update(x, fr, 32); flab_hasher_update(x, "\n", 1);
    flab_hasher_digest(x, want);
    flab_hasher_free(x);
    CHECKF(!strcmp(h, want), "dir hash %s, expected %s", h, want);
    /* exec bit, empty dir and renames all change the hash */
    char *p = ct_path(in, "run.sh");
    chmod(p, 0644);
    REQUIRE(cache_hash_path(c, in, want) == 0);
    CHECK(strcmp(h, want) != 0);
    char *e = ct_path(in, "empty");
    mkdir(e, 0755);
    REQUIRE(cache_hash_path(c, in, fb) == 0);
    CHECK(strcmp(fb, want) != 0);
    /* a file hashes like cache_hash_file */
    REQUIRE(cache_hash_path(c, p, fx) == 0);
    CHECK(!strcmp(fx, fr));
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir); free(in); free(p); free(e);
}

/* ---- build protocol ------------------------------------------------------ */

static int count_objects(const char *cdir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "find '%s/objects' -type f | wc -l", cdir);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f) { if (fscanf(f, "%d", &n) != 1) n = -1; pclose(f); }
    return n;
}

static int commit_simple(FlabCache *c, const char *label, const char *content, CacheArtifact *a) {
    char key[33];
    ct_key(label, key);
    CacheBuild *b;
    if (cache_begin(c, key, 0, &b) != 0) return -1;
    ct_write_str(cache_build_outdir(b), "out.txt", content);
    ct_write_str(cache_build_outdir(b), "sub/dir/deep.txt", "deep");
    ct_write(cache_build_outdir(b), "tool.sh", "#!/bin/sh\necho hi\n", 18, 0755);
    char *empty = ct_path(cache_build_outdir(b), "emptydir");
    mkdir(empty, 0755);
    free(empty);
    FILE *log = fopen(cache_build_logpath(b), "w");
    fprintf(log, "building %s\n", label);
    fclose(log);
    return cache_commit(b, label, "{\"loss\": 1.5}", "{\"rule\": \"command\"}", a);
}

static void test_commit_lookup_round_trip(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    char key[33];
    ct_key("t1", key);
    CHECK(cache_lookup(c, key, NULL) == 0);
    CacheArtifact a;
    REQUIRE(commit_simple(c, "t1", "payload", &a) == 0);
    CHECK(!strcmp(a.key, key) && !strcmp(a.target, "t1"));
    CHECK(ct_file_is(a.dir, "out.txt", "payload"));
    CHECK(ct_file_is(a.dir, "sub/dir/deep.txt", "deep"));
    CHECK(strstr(a.metrics_json, "1.5") != NULL);
    CHECK(a.log_path && ct_file_is("/", a.log_path + 1, "building t1\n"));
    CHECK(a.nfiles == 6);   /* emptydir, out.txt, sub, sub/dir, sub/dir/deep.txt, tool.sh */
    struct stat st;
    char *tool = ct_path(a.dir, "tool.sh"), *out = ct_path(a.dir, "out.txt"), *ed = ct_path(a.dir, "emptydir");
    CHECK(stat(tool, &st) == 0 && (st.st_mode & 0777) == 0555);
    CHECK(stat(out, &st) == 0 && (st.st_mode & 0777) == 0444 && st.st_nlink >= 2);
    CHECK(stat(ed, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0555);
    CHECK(stat(a.dir, &st) == 0 && (st.st_mode & 0222) == 0);
    cache_artifact_free(&a);
    /* reopen: found, and re-materialised if the directory went away */
    cache_close(c);
    REQUIRE(cache_open(cdir, &c) == 0);
    CacheArtifact b;
    REQUIRE(cache_lookup(c, key, &b) == 1);
    ct_rmrf(b.dir);
    cache_artifact_free(&b);
    REQUIRE(cache_lookup(c, key, &b) == 1);
    CHECK(ct_file_is(b.dir, "out.txt", "payload"));
    CHECKF(cache_check_invariants(c, 1) == 0, "%s", flab_errmsg());
    /* begin on a committed key says so */
    CacheBuild *bb;
    CHECK(cache_begin(c, key, 0, &bb) == 1 && bb == NULL);
    cache_artifact_free(&b);
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir); free(tool); free(out); free(ed);
}

static void test_dedup_and_exec_variants(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    CacheArtifact a, b;
    REQUIRE(commit_simple(c, "d1", "same", &a) == 0);
    int n1 = count_objects(cdir);
    REQUIRE(commit_simple(c, "d2", "same", &b) == 0);
    CHECKF(count_objects(cdir) == n1 + 1, "objects %d then %d (only the log differs)", n1, count_objects(cdir));
    struct stat sa, sb;
    char *pa = ct_path(a.dir, "out.txt"), *pb = ct_path(b.dir, "out.txt");
    CHECK(stat(pa, &sa) == 0 && stat(pb, &sb) == 0 && sa.st_ino == sb.st_ino);
    /* same bytes, once plain once executable: two objects */
    char key[33];
    ct_key("d3", key);
    CacheBuild *bd;
    REQUIRE(cache_begin(c, key, 0, &bd) == 0);
    ct_write(cache_build_outdir(bd), "plain", "xyz", 3, 0644);
    ct_write(cache_build_outdir(bd), "exec", "xyz", 3, 0755);
    int n2 = count_objects(cdir);
    REQUIRE(cache_commit(bd, "d3", NULL, NULL, NULL) == 0);
    CHECK(count_objects(cdir) == n2 + 2);
    /* a staged hard link to an input artifact's file is stored without a copy */
    ct_key("d4", key);
    REQUIRE(cache_begin(c, key, 0, &bd) == 0);
    char *dst = ct_path(cache_build_outdir(bd), "linked.txt");
    REQUIRE(link(pa, dst) == 0);
    CacheArtifact d;
    REQUIRE(cache_commit(bd, "d4", NULL, NULL, &d) == 0);
    char *pd = ct_path(d.dir, "linked.txt");
    CHECK(stat(pd, &sb) == 0 && sb.st_ino == sa.st_ino);
    CHECKF(cache_check_invariants(c, 1) == 0, "%s", flab_errmsg());
    cache_artifact_free(&a); cache_artifact_free(&b); cache_artifact_free(&d);
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir); free(pa); free(pb); free(dst); free(pd);
}

static void test_foreign_hard_link_is_copied(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache"), *user = ct_path(dir, "user.txt");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    ct_write_str(dir, "user.txt", "mine");
    char key[33];
    ct_key("h1", key);
    CacheBuild *b;
    REQUIRE(cache_begin(c, key, 0, &b) == 0);
    char *dst = ct_path(cache_build_outdir(b), "u.txt");
    REQUIRE(link(user, dst) == 0);
    CacheArtifact a;
    REQUIRE(cache_commit(b, "h1", NULL, NULL, &a) == 0);
    struct stat su, sa;
    char *pa = ct_path(a.dir, "u.txt");
    CHECK(stat(user, &su) == 0 && stat(pa, &sa) == 0);
    CHECK(su.st_ino != sa.st_ino);               /* the user's file never becomes an object */
    CHECK((su.st_mode & 0777) == 0644);          /* and keeps its mode */
    CHECK(ct_file_is(a.dir, "u.txt", "mine"));
    cache_artifact_free(&a);
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir); free(user); free(dst); free(pa);
}

static void test_symlinked_outputs_never_touch_their_targets(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    ct_write_str(dir, "user/file.txt", "user file");
    ct_write_str(dir, "user/tree/inner.txt", "inner");
    char *ufile = ct_path(dir, "user/file.txt"), *utree = ct_path(dir, "user/tree");
    char *uinner = ct_path(dir, "user/tree/inner.txt");
    CacheArtifact in;
    char key[33];
    ct_key("in", key);
    CacheBuild *b;
    REQUIRE(cache_begin(c, key, 0, &b) == 0);
    ct_write_str(cache_build_outdir(b), "w.bin", "weights");
    REQUIRE(cache_commit(b, "in", NULL, NULL, &in) == 0);
    ct_key("links", key);
    REQUIRE(cache_begin(c, key, 0, &b) == 0);
    char *l1 = ct_path(cache_build_outdir(b), "file.txt"), *l2 = ct_path(cache_build_outdir(b), "tree");
    char *l3 = ct_path(cache_build_outdir(b), "w.bin"), *w = ct_path(in.dir, "w.bin");
    REQUIRE(symlink(ufile, l1) == 0 && symlink(utree, l2) == 0 && symlink(w, l3) == 0);
    CacheArtifact a;
    REQUIRE(cache_commit(b, "links", NULL, NULL, &a) == 0);
    CHECK(ct_file_is(a.dir, "file.txt", "user file") && ct_file_is(a.dir, "tree/inner.txt", "inner"));
    struct stat su, si, sa, sw, sx;
    char *af = ct_path(a.dir, "file.txt"), *ai = ct_path(a.dir, "tree/inner.txt"), *aw = ct_path(a.dir, "w.bin");
    REQUIRE(stat(ufile, &su) == 0 && stat(uinner, &si) == 0);   /* still there */
    CHECK((su.st_mode & 0777) == 0644 && (si.st_mode & 0777) == 0644 && su.st_nlink == 1 && si.st_nlink == 1);
    CHECK(stat(af, &sa) == 0 && sa.st_ino != su.st_ino);
    CHECK(stat(aw, &sw) == 0 && stat(w, &sx) == 0 && sw.st_ino == sx.st_ino);   /* no copy of an input */
    CHECKF(cache_check_invariants(c, 1) == 0, "%s", flab_errmsg());
    /* a dangling symlink is an error naming it */
    ct_key("dangling", key);
    REQUIRE(cache_begin(c, key, 0, &b) == 0);
    char *l4 = ct_path(cache_build_outdir(b), "nowhere");
    REQUIRE(symlink("/nonexistent/target", l4) == 0);
    CHECK(cache_commit(b, "dangling", NULL, NULL, NULL) < 0 && strstr(flab_errmsg(), "nowhere"));
    cache_artifact_free(&in); cache_artifact_free(&a);
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir); free(ufile); free(utree); free(uinner); free(l1); free(l2); free(l3);
    free(l4); free(w); free(af); free(ai); free(aw);
}

static void test_abort_leaves_nothing(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    char key[33];
    ct_key("ab", key);
    CacheBuild *b;
    REQUIRE(cache_begin(c, key, 0, &b) == 0);
    ct_write_str(cache_build_outdir(b), "x.txt", "partial");
    cache_abort(b);
    CHECK(cache_lookup(c, key, NULL) == 0);
    CHECK(count_objects(cdir) == 0);
    char *staging = ct_path(cdir, "staging");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", staging);
    CHECK(system(cmd) == 0);
    /* the key can be built after an abort */
    REQUIRE(cache_begin(c, key, 0, &b) == 0);
    cache_abort(b);
    /* a failed commit (bad metrics JSON) also leaves no artifact */
    REQUIRE(cache_begin(c, key, 0, &b) == 0);
    ct_write_str(cache_build_outdir(b), "x.txt", "y");
    CHECK(cache_commit(b, "ab", "{not json", NULL, NULL) < 0 && strstr(flab_errmsg(), "metrics"));
    CHECK(cache_lookup(c, key, NULL) == 0);
    REQUIRE(cache_begin(c, key, 0, &b) == 0);
    CHECK(cache_commit(b, "../evil", NULL, NULL, NULL) < 0);
    CHECK(cache_lookup(c, key, NULL) == 0);
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir); free(staging);
}

static void test_force_rebuild_replaces(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    CacheArtifact a;
    REQUIRE(commit_simple(c, "f1", "first", &a) == 0);
    CacheBuild *b;
    REQUIRE(cache_begin(c, a.key, CACHE_BEGIN_FORCE, &b) == 0);
    ct_write_str(cache_build_outdir(b), "out.txt", "second");
    CacheArtifact a2;
    REQUIRE(cache_commit(b, "f1", NULL, NULL, &a2) == 0);
    CHECK(!strcmp(a.dir, a2.dir) && ct_file_is(a2.dir, "out.txt", "second") && a2.nfiles == 1);
    CHECKF(cache_check_invariants(c, 1) == 0, "%s", flab_errmsg());
    cache_artifact_free(&a); cache_artifact_free(&a2);
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir);
}

static void test_nowait_reports_busy(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    char key[33];
    ct_key("busy", key);
    CacheBuild *b1, *b2;
    REQUIRE(cache_begin(c, key, 0, &b1) == 0);
    CHECK(cache_begin(c, key, CACHE_BEGIN_NOWAIT, &b2) == 2 && b2 == NULL);
    cache_abort(b1);
    CHECK(cache_begin(c, key, CACHE_BEGIN_NOWAIT, &b2) == 0);
    cache_abort(b2);
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir);
}

static void test_target_records(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    char k1[33], k2[33], got[33];
    char *ex = NULL;
    ct_key("k1", k1);
    ct_key("k2", k2);
    CHECK(cache_last_target(c, "layers/plan", got, &ex) == 0 && ex == NULL);
    REQUIRE(cache_record_target(c, "layers/plan", k1, "{\"remove\":4}") == 0);
    REQUIRE(cache_record_target(c, "layers/plan", k2, "{\"remove\":6}") == 0);
    CHECK(cache_last_target(c, "layers/plan", got, &ex) == 1 && !strcmp(got, k2));
    CHECK(ex && !strcmp(ex, "{\"remove\":6}"));
    free(ex);
    CHECK(cache_record_target(c, "x", "notakey", NULL) < 0);
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir);
}

static void test_unknown_index_version_is_refused(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    cache_close(c);
    char *idx = ct_path(cdir, "index.sqlite");
    sqlite3 *db;
    REQUIRE(sqlite3_open(idx, &db) == SQLITE_OK);
    sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL);
    sqlite3_close(db);
    CHECK(cache_open(cdir, &c) < 0 && strstr(flab_errmsg(), "version 99"));
    /* a foreign SQLite file is refused too */
    char *other = ct_path(dir, "other");
    flab_mkdir_p(other, 0755);
    char *oidx = ct_path(other, "index.sqlite");
    REQUIRE(sqlite3_open(oidx, &db) == SQLITE_OK);
    sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL);
    sqlite3_close(db);
    CHECK(cache_open(other, &c) < 0 && strstr(flab_errmsg(), "not a flab cache"));
    ct_rmrf(dir);
    free(dir); free(cdir); free(idx); free(other); free(oidx);
}

/* ---- threads ------------------------------------------------------------ */

typedef struct { FlabCache *c; const char *cdir; int id, ok; } ThreadArg;

static void *thread_main(void *p) {
    ThreadArg *t = p;
    t->ok = 1;
    for (int i = 0; i < 4; i++) {
        char label[32], key[33], h[33];
        snprintf(label, sizeof label, "thr-%d-%d", t->id, i);
        ct_key(label, key);
        CacheBuild *b;
        if (cache_begin(t->c, key, 0, &b) != 0) { t->ok = 0; continue; }
        ct_write_str(cache_build_outdir(b), "out.txt", label);
        ct_write_str(cache_build_outdir(b), "shared.txt", "same in every thread");
        CacheArtifact a;
        if (cache_commit(b, label, NULL, NULL, &a) < 0) { t->ok = 0; continue; }
        if (!ct_file_is(a.dir, "out.txt", label)) t->ok = 0;
        if (cache_hash_path(t->c, a.dir, h) < 0) t->ok = 0;
        cache_artifact_free(&a);
    }
    return NULL;
}

static void test_one_handle_many_threads(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    enum { T = 4 };
    pthread_t th[T];
    ThreadArg args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (ThreadArg){c, cdir, i, 0};
        REQUIRE(pthread_create(&th[i], NULL, thread_main, &args[i]) == 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        CHECKF(args[i].ok, "thread %d failed", i);
    }
    CHECKF(cache_check_invariants(c, 1) == 0, "%s", flab_errmsg());
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir);
}

int main(void) {
    RUN(test_hash_matches_xxhsum);
    RUN(test_hasher_fields_are_unambiguous);
    RUN(test_stat_cache_skips_unchanged_files);
    RUN(test_directory_hash);
    RUN(test_commit_lookup_round_trip);
    RUN(test_dedup_and_exec_variants);
    RUN(test_foreign_hard_link_is_copied);
    RUN(test_symlinked_outputs_never_touch_their_targets);
    RUN(test_abort_leaves_nothing);
    RUN(test_force_rebuild_replaces);
    RUN(test_nowait_reports_busy);
    RUN(test_target_records);
    RUN(test_unknown_index_version_is_refused);
    RUN(test_one_handle_many_threads);
    return TEST_SUMMARY();
}
