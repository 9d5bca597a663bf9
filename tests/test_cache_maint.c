/* tests/test_cache_maint.c: verify (corruption is detected and the artifact
 * dropped and rebuildable), gc (frees bytes, keeps what it is told to) and
 * provenance (commits readable back, per target, newest first). */
#include "tests/testlib.h"
#include "tests/cache_testlib.h"
#include "cache/internal.h"
#include <cjson/cJSON.h>

static int commit_files(FlabCache *c, const char *label, const char *target,
                        const char *content, size_t big, CacheArtifact *a) {
    char key[33];
    ct_key(label, key);
    CacheBuild *b;
    if (cache_begin(c, key, 0, &b) != 0) return -1;
    ct_write_str(cache_build_outdir(b), "out.txt", content);
    if (big) {
        char *buf = malloc(big);
        for (size_t i = 0; i < big; i++) buf[i] = (char)(i * 7 + (size_t)content[0]);
        ct_write(cache_build_outdir(b), "big.bin", buf, big, 0644);
        free(buf);
    }
    char prov[256];
    snprintf(prov, sizeof prov, "{\"rule\": \"command\", \"params\": {\"label\": \"%s\"}}", label);
    return cache_commit(b, target, "{\"score\": 0.5}", prov, a);
}

static void count_finding(const char *what, const char *detail, void *ud) {
    (void)detail;
    if (!strcmp(what, "corrupt object")) ++*(int *)ud;
}

static void test_verify_detects_corruption(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    CacheArtifact a, b;
    REQUIRE(commit_files(c, "v1", "t/a", "good data", 0, &a) == 0);
    REQUIRE(commit_files(c, "v2", "t/b", "other data", 0, &b) == 0);
    CacheVerifyReport rep;
    REQUIRE(cache_verify(c, NULL, NULL, &rep) == 0);
    CHECK(rep.objects_checked == 2 && rep.objects_corrupt == 0 && rep.artifacts_dropped == 0);
    /* flip bytes of a's object in place (same size), as a disk error would */
    char *obj = ct_path(a.dir, "out.txt");
    REQUIRE(!ct_scribble(obj, "bad!"));
    int found = 0;
    REQUIRE(cache_verify(c, count_finding, &found, &rep) == 0);
    CHECK(rep.objects_corrupt == 1 && found == 1 && rep.artifacts_dropped == 1);
    CHECK(cache_lookup(c, a.key, NULL) == 0);
    CHECK(cache_lookup(c, b.key, NULL) == 1);
    struct stat st;
    CHECK(stat(a.dir, &st) < 0);
    CHECKF(cache_check_invariants(c, 1) == 0, "%s", flab_errmsg());
    /* rebuilt: the same content is stored fresh, not deduped onto the bad copy */
    CacheArtifact a2;
    REQUIRE(commit_files(c, "v1", "t/a", "good data", 0, &a2) == 0);
    CHECK(ct_file_is(a2.dir, "out.txt", "good data"));
    REQUIRE(cache_verify(c, NULL, NULL, &rep) == 0);
    CHECK(rep.objects_corrupt == 0);
    /* a file deleted from a materialised directory: the directory is rebuilt */
    char *bdir_file = ct_path(b.dir, "out.txt");
    chmod(b.dir, 0755);
    REQUIRE(unlink(bdir_file) == 0);
    chmod(b.dir, 0555);
    REQUIRE(cache_verify(c, NULL, NULL, &rep) == 0);
    CHECK(rep.dirs_removed == 1 && rep.artifacts_dropped == 0);
    CacheArtifact b2;
    REQUIRE(cache_lookup(c, b.key, &b2) == 1);
    CHECK(ct_file_is(b2.dir, "out.txt", "other data"));
    cache_artifact_free(&b2);
    free(bdir_file);
    /* a missing object is found too */
    char *o2 = ct_path(b.dir, "out.txt");
    char h[33];
    REQUIRE(flab_hash_file(o2, h) == 0);
    char *op = cache_i_object_path(c, h, 0);
    REQUIRE(unlink(op) == 0);
    REQUIRE(cache_verify(c, NULL, NULL, &rep) == 0);
    CHECK(rep.artifacts_dropped == 1 && cache_lookup(c, b.key, NULL) == 0);
    CHECKF(cache_check_invariants(c, 1) == 0, "%s", flab_errmsg());
    cache_artifact_free(&a); cache_artifact_free(&b); cache_artifact_free(&a2);
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir); free(obj); free(o2); free(op);
}

static void test_lookup_drops_artifact_with_missing_object(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    CacheArtifact a;
    REQUIRE(commit_files(c, "m1", "m", "will vanish", 0, &a) == 0);
    char h[33], *p = ct_path(a.dir, "out.txt");
    REQUIRE(flab_hash_file(p, h) == 0);
    char *op = cache_i_object_path(c, h, 0);
    unlink(op);
    ct_rmrf(a.dir);
    CacheArtifact b;
    CHECK(cache_lookup(c, a.key, &b) == 0);   /* never a partial directory */
    CHECK(cache_lookup(c, a.key, NULL) == 0);
    cache_artifact_free(&a);
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir); free(p); free(op);
}

static void test_gc_frees_bytes(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    CacheArtifact a, b, d;
    REQUIRE(commit_files(c, "g1", "keep", "kept", 1 << 20, &a) == 0);
    REQUIRE(commit_files(c, "g2", "drop", "dropped", 2 << 20, &b) == 0);
    REQUIRE(commit_files(c, "g3", "hist", "history", 1000, &d) == 0);
    REQUIRE(cache_record_target(c, "hist", d.key, NULL) == 0);
    /* leftovers of a crashed build: a stale staging dir and an orphan object */
    char *stale = ct_path(cdir, "staging/0123456789abcdef0123456789abcdef.99999.1/out");
    flab_mkdir_p(stale, 0755);
    ct_write_str(cdir, "objects/aa/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "orphan");
    /* a stat-cache row of an input that was deleted since */
    char *gone = ct_path(dir, "gone.txt"), gh[33];
    ct_write_str(dir, "gone.txt", "soon deleted");
    REQUIRE(cache_hash_file(c, gone, gh) == 0);
    unlink(gone);
    const char *keep[] = {a.key};
    CacheGcOptions dry = {.keep_keys = keep, .n_keep = 1, .keep_last = 1, .dry_run = 1};
    CacheGcReport rep;
    REQUIRE(cache_gc(c, &dry, &rep) == 0);
    CHECK(rep.artifacts_removed == 1 && cache_lookup(c, b.key, NULL) == 1);
    CacheGcOptions opt = {.keep_keys = keep, .n_keep = 1, .keep_last = 1};
    REQUIRE(cache_gc(c, &opt, &rep) == 0);
    CHECK(rep.artifacts_removed == 1);
    CHECKF(rep.bytes_freed >= (2u << 20) && rep.bytes_freed < (2u << 20) + 4096,
           "freed %llu", (unsigned long long)rep.bytes_freed);
    CHECK(cache_lookup(c, b.key, NULL) == 0);
    CHECK(cache_lookup(c, a.key, NULL) == 1 && ct_file_is(a.dir, "out.txt", "kept"));
    CHECK(cache_lookup(c, d.key, NULL) == 1);   /* last build of "hist" */
    struct stat st;
    CHECK(stat(b.dir, &st) < 0);
    char *sd = ct_path(cdir, "staging/0123456789abcdef0123456789abcdef.99999.1");
    CHECK(stat(sd, &st) < 0);
    CHECKF(cache_check_invariants(c, 1) == 0, "%s", flab_errmsg());
    sqlite3_stmt *q;
    REQUIRE(sqlite3_prepare_v2(c->db, "SELECT count(*) FROM statcache WHERE path=?1", -1, &q, NULL) == SQLITE_OK);
    sqlite3_bind_text(q, 1, gone, -1, SQLITE_STATIC);
    CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 0);
    sqlite3_finalize(q);
    free(gone);
    /* without keep_last the history artifact goes as well */
    CacheGcOptions strict = {.keep_keys = keep, .n_keep = 1};
    REQUIRE(cache_gc(c, &strict, &rep) == 0);
    CHECK(rep.artifacts_removed == 1 && cache_lookup(c, d.key, NULL) == 0);
    CHECK(cache_lookup(c, a.key, NULL) == 1);
    cache_artifact_free(&a); cache_artifact_free(&b); cache_artifact_free(&d);
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir); free(stale); free(sd);
}

typedef struct { int n; char targets[8][32]; char keys[8][33]; char *first_manifest; } LogSeen;

static int collect(const CacheProvEntry *e, void *ud) {
    LogSeen *s = ud;
    if (s->n < 8) {
        snprintf(s->targets[s->n], 32, "%s", e->target);
        snprintf(s->keys[s->n], 33, "%s", e->key);
        if (s->n == 0) s->first_manifest = strdup(e->manifest_json);
    }
    s->n++;
    return 0;
}

static void test_provenance_log(void) {
    char *dir = ct_tmpdir(), *cdir = ct_path(dir, "cache");
    FlabCache *c;
    REQUIRE(cache_open(cdir, &c) == 0);
    LogSeen s = {0};
    REQUIRE(cache_provenance_log(c, NULL, collect, &s) == 0);
    CHECK(s.n == 0);
    CacheArtifact a1, a2, b;
    REQUIRE(commit_files(c, "p1", "layers/plan", "one", 0, &a1) == 0);
    REQUIRE(commit_files(c, "p2", "tokens", "two", 0, &b) == 0);
    REQUIRE(commit_files(c, "p3", "layers/plan", "three", 0, &a2) == 0);
    REQUIRE(cache_provenance_log(c, NULL, collect, &s) == 0);
    CHECK(s.n == 3 && !strcmp(s.keys[0], a2.key) && !strcmp(s.keys[1], b.key) && !strcmp(s.keys[2], a1.key));
    free(s.first_manifest);
    memset(&s, 0, sizeof s);
    REQUIRE(cache_provenance_log(c, "layers/plan", collect, &s) == 0);
    REQUIRE(s.n == 2);
    CHECK(!strcmp(s.targets[0], "layers/plan") && !strcmp(s.keys[0], a2.key) && !strcmp(s.keys[1], a1.key));
    /* the manifest: engine fields kept, cache fields added */
    cJSON *m = cJSON_Parse(s.first_manifest);
    REQUIRE(m);
    CHECK(!strcmp(cJSON_GetObjectItem(m, "key")->valuestring, a2.key));
    CHECK(!strcmp(cJSON_GetObjectItem(m, "rule")->valuestring, "command"));
    cJSON *outs = cJSON_GetObjectItem(m, "outputs"), *o = cJSON_GetObjectItem(outs, "out.txt");
    char h[33];
    flab_hash_bytes("three", 5, h);
    CHECK(o && !strcmp(cJSON_GetObjectItem(o, "hash")->valuestring, h));
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "metrics"), "score")->valuedouble == 0.5);
    cJSON_Delete(m);
    free(s.first_manifest);
    /* readable by git itself */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "command -v git >/dev/null || exit 0; "
             "git -C '%s/provenance.git' log --format=%%s | grep -qx 'build tokens %s'", cdir, b.key);
    CHECK(system(cmd) == 0);
    cache_artifact_free(&a1); cache_artifact_free(&a2); cache_artifact_free(&b);
    cache_close(c);
    ct_rmrf(dir);
    free(dir); free(cdir);
}

int main(void) {
    RUN(test_verify_detects_corruption);
    RUN(test_lookup_drops_artifact_with_missing_object);
    RUN(test_gc_frees_bytes);
    RUN(test_provenance_log);
    return TEST_SUMMARY();
}
