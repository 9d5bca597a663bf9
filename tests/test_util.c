/* tests/test_util.c: util/ error messages and file helpers. */
#include "scratch_testlib.h"
#include "testlib.h"
#include "util/error.h"
#include "util/file.h"
#include <unistd.h>

static void test_error_prefix(void) {
    CHECK(flab_fail("bad %s", "thing") == -1);
    flab_error_prefix("loading %s: ", "x.json");
    CHECK(strcmp(flab_errmsg(), "loading x.json: bad thing") == 0);
}

static void test_atomic_write_and_read(void) {
    char dir[] = "/tmp/flab-test-util-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/a/b/c.txt", dir);
    char sub[256];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    CHECK(flab_mkdir_p(sub, 0755) == 0);
    CHECK(flab_write_file_atomic(path, "hello", 5) == 0);
    char *data; size_t len;
    REQUIRE(flab_read_file(path, &data, &len) == 0);
    CHECK(len == 5 && memcmp(data, "hello", 5) == 0 && data[5] == 0);
    free(data);
    CHECK(flab_read_file("/nonexistent/flab", &data, &len) == -1);
    CHECK(strstr(flab_errmsg(), "/nonexistent/flab") != NULL);
    CHECK(scratch_remove(dir) == 0);
}

int main(void) {
    RUN(test_error_prefix);
    RUN(test_atomic_write_and_read);
    return TEST_SUMMARY();
}
