/* tests/test_progress.c: build output (engine/progress.c): ninja lines,
 * the terminal status line with bar and ETA, and the plain mode. */
#include "engine/progress.h"
#include "tests/testlib.h"
#include <stdlib.h>

static char *render(const char *mode, int with_update) {
    setenv("FLAB_PROGRESS", mode, 1);
    FILE *f = tmpfile();
    Progress *p = progress_new(f, 2);
    progress_start(p, 0, "layers/plan", "layer_search");
    if (with_update) progress_update(p, 0, 45, 100);
    progress_tick(p);
    progress_print(p, "a message\n");
    progress_finish(p, 0, 1);
    progress_start(p, 1, "bad", "command");
    progress_finish(p, 1, 0);
    progress_cached(p, "elsewhere", "command");
    progress_free(p);
    long n = ftell(f);
    rewind(f);
    char *buf = calloc(1, (size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) buf[0] = 0;
    fclose(f);
    unsetenv("FLAB_PROGRESS");
    return buf;
}

static void test_plain(void) {
    char *s = render("plain", 1);
    CHECKF(strstr(s, "[1/2] layers/plan (layer_search) ") != NULL, "%s", s);
    CHECK(strstr(s, "FAILED: bad (command) after ") != NULL);
    CHECK(strstr(s, "a message\n") != NULL);
    CHECK(strstr(s, "[2/2] elsewhere (command) from cache\n") != NULL);
    CHECK(strchr(s, '\r') == NULL && strstr(s, "\033[") == NULL);   /* no terminal codes in logs */
    free(s);
}

static void test_tty_bar(void) {
    char *s = render("tty", 1);
    CHECKF(strstr(s, "\r\033[K[1/2] layers/plan (layer_search) ") != NULL, "%s", s);
    CHECK(strstr(s, "[#########...........] 45%") != NULL);
    CHECK(strstr(s, "ETA ") != NULL);
    CHECK(strstr(s, "[1/2] layers/plan (layer_search) ") != NULL);
    free(s);
}

static void test_tty_without_progress(void) {
    char *s = render("tty", 0);
    CHECK(strstr(s, "%") == NULL);   /* no bar when the rule reports nothing */
    CHECK(strstr(s, "[1/2] layers/plan (layer_search)") != NULL);
    free(s);
}

int main(void) {
    RUN(test_plain);
    RUN(test_tty_bar);
    RUN(test_tty_without_progress);
    return TEST_SUMMARY();
}
