/* tests/testlib.h: the smallest test harness that does what we need.
 *
 * A test file defines `static void test_x(void)` functions and a main() that
 * calls RUN(test_x) for each, then returns TEST_SUMMARY().  Each test prints
 * one line, "PASS name" or "FAIL name: file:line: what", which tests/run.sh
 * counts.  CHECK() records a failure and goes on; REQUIRE() also returns. */
#ifndef FLAB_TESTLIB_H
#define FLAB_TESTLIB_H
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int tl_failed_now, tl_failed_total, tl_passed_total;
static char tl_first_failure[512];

#define TL_FAIL_(...) do { \
    if (!tl_failed_now) snprintf(tl_first_failure, sizeof tl_first_failure, __VA_ARGS__); \
    tl_failed_now++; } while (0)

#define CHECK(cond) do { if (!(cond)) \
    TL_FAIL_("%s:%d: CHECK(%s)", __FILE__, __LINE__, #cond); } while (0)
#define CHECKF(cond, ...) do { if (!(cond)) { char tl_m_[400]; \
    snprintf(tl_m_, sizeof tl_m_, __VA_ARGS__); \
    TL_FAIL_("%s:%d: %s", __FILE__, __LINE__, tl_m_); } } while (0)
#define REQUIRE(cond) do { if (!(cond)) { \
    TL_FAIL_("%s:%d: REQUIRE(%s)", __FILE__, __LINE__, #cond); return; } } while (0)
#define REQUIREF(cond, ...) do { if (!(cond)) { char tl_m_[400]; \
    snprintf(tl_m_, sizeof tl_m_, __VA_ARGS__); \
    TL_FAIL_("%s:%d: %s", __FILE__, __LINE__, tl_m_); return; } } while (0)

#define RUN(fn) do { tl_failed_now = 0; fn(); \
    if (tl_failed_now) { tl_failed_total++; printf("FAIL %s: %s\n", #fn, tl_first_failure); } \
    else { tl_passed_total++; printf("PASS %s\n", #fn); } fflush(stdout); } while (0)

#define TEST_SUMMARY() (tl_failed_total ? 1 : 0)

/* Where the repository's test fixtures live (tests run from the repo root). */
#define FIXTURE_DIR "tests/fixtures"
#endif
