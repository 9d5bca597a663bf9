/* tests/test_remote.c: unit tests of the remote that need no server: the
 * ac entry format (round trip, and hostile entries refused: unsafe paths,
 * bad hashes, sizes, modes, another key), URL checks (R4), and the file://
 * transport's push -> pull round trip through the cache's commit path with
 * a damaged object refused (R3). */
#include "cache/remote_priv.h"
#include "cache/cache.h"
#include "tests/testlib.h"
#include "util/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY "0123456789abcdef0123456789abcdef"
#define H1 "fedcba9876543210fedcba9876543210"

static const char *entry_with(const char *files) {
    static char buf[2000];
    snprintf(buf, sizeof buf, "{\"format\":\"flab-ac-1\",\"key\":\"" KEY "\",\"target\":\"t\","
             "\"metrics\":{\"x\":1},\"files\":[%s]}", files);
    return buf;
}

static int parses(const char *files) {
    RemoteEntry e;
    int rc = remote_entry_parse(entry_with(files), KEY, "test", &e);
    remote_entry_free(&e);
    return rc == 0;
}

static void test_entry_validation(void) {
    CHECK(parses("{\"path\":\"d\",\"type\":\"dir\"},{\"path\":\"d/f\",\"hash\":\"" H1 "\",\"size\":3,\"mode\":\"0755\"}"));
    const char *bad[] = {
        "{\"path\":\"../x\",\"hash\":\"" H1 "\",\"size\":3,\"mode\":\"0644\"}",
        "{\"path\":\"/etc/x\",\"hash\":\"" H1 "\",\"size\":3,\"mode\":\"0644\"}",
        "{\"path\":\"a/../../x\",\"hash\":\"" H1 "\",\"size\":3,\"mode\":\"0644\"}",
        "{\"path\":\"a//x\",\"hash\":\"" H1 "\",\"size\":3,\"mode\":\"0644\"}",
        "{\"path\":\"x\",\"hash\":\"XYZ\",\"size\":3,\"mode\":\"0644\"}",
        "{\"path\":\"x\",\"hash\":\"" H1 "\",\"size\":-1,\"mode\":\"0644\"}",
        "{\"path\":\"x\",\"hash\":\"" H1 "\",\"size\":1.5,\"mode\":\"0644\"}",
        "{\"path\":\"x\",\"hash\":\"" H1 "\",\"size\":3,\"mode\":\"4755\"}",
        "\"x\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECKF(!parses(bad[i]), "accepted %s", bad[i]);
    RemoteEntry e;
    CHECK(remote_entry_parse(entry_with(""), "ffffffffffffffffffffffffffffffff", "t", &e) < 0);
    CHECK(strstr(flab_errmsg(), "another key") != NULL);
    CHECK(remote_entry_parse("{not json", KEY, "t", &e) < 0);
}

static void test_url_checks(void) {
    FlabRemote *r;
    CHECK(remote_open("http://user:pw@host/x", &r) < 0);
    CHECK(strstr(flab_errmsg(), "pw") == NULL);
    CHECK(remote_open("file://relative", &r) < 0);
    CHECK(remote_open("gopher://x", &r) < 0);
    REQUIRE(remote_open("https://example.invalid:8443/prefix/", &r) == 0);
    CHECK(!strcmp(remote_url(r), "https://example.invalid:8443/prefix"));
    remote_close(r);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_file_roundtrip(void) {
    char tmpl[] = "/tmp/flab-remote-unit.XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    char a[300], b[300], url[300], path[400];
    snprintf(a, sizeof a, "%s/a", tmpl);
    snprintf(b, sizeof b, "%s/b", tmpl);
    snprintf(url, sizeof url, "file://%s/remote", tmpl);
    FlabCache *ca = NULL, *cb = NULL;
    FlabRemote *r = NULL;
    REQUIRE(cache_open(a, &ca) == 0 && cache_open(b, &cb) == 0 && remote_open(url, &r) == 0);
    CacheBuild *bd;
    REQUIRE(cache_begin(ca, KEY, 0, &bd) == 0);
    snprintf(path, sizeof path, "%s/sub", cache_build_outdir(bd));
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/sub/w.bin", cache_build_outdir(bd));
    write_file(path, "weights");
    snprintf(path, sizeof path, "%s/copy.bin", cache_build_outdir(bd));
    write_file(path, "weights");   /* the same object twice */
    write_file(cache_build_logpath(bd), "a log line\n");
    REQUIRE(cache_commit(bd, "t", "{\"acc\":0.5}", NULL, NULL) == 0);
    RemoteStats st = {0};
    CHECK(remote_has(r, KEY) == 0);
    CHECK(remote_push(r, ca, KEY, &st) == 0);
    CHECK(st.objects_sent == 2 && st.artifacts == 1);   /* weights + log */
    CHECK(remote_has(r, KEY) == 1);
    CHECK(remote_pull(r, cb, "ffffffffffffffffffffffffffffffff", NULL) == 0);
    CHECK(remote_pull(r, cb, KEY, &st) == 1);
    CacheArtifact art = {0};
    REQUIRE(cache_lookup(cb, KEY, &art) == 1);
    CHECK(art.nfiles == 3 && !strcmp(art.metrics_json, "{\"acc\":0.5}") && art.log_path);
    CHECK(cache_check_invariants(cb, 1) == 0);
    cache_artifact_free(&art);
    remote_close(r);
    cache_close(ca);
    cache_close(cb);
    snprintf(path, sizeof path, "rm -rf '%s'", tmpl);
    CHECK(system(path) == 0);
}

int main(void) {
    setenv("FLAB_CACHE_FSYNC", "0", 1);
    RUN(test_entry_validation);
    RUN(test_url_checks);
    RUN(test_file_roundtrip);
    return TEST_SUMMARY();
}
