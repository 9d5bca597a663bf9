/* tests/test_tasks.c: benchmark loading, completion cutting, program
 * assembly, output-prediction answers and exact match, CSV parsing, and
 * scoring in the sandbox (canonical passes, wrong fails).  Expected CoT
 * counts and contents come from Python's csv module on the same files. */
#include "eval/csv.h"
#include "eval/score.h"
#include "eval/tasks.h"
#include "tests/scratch_testlib.h"
#include "tests/testlib.h"
#include "util/error.h"
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[256];

static const char *write_tmp(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
    return path;
}

static EvalSandboxConfig sandbox_config(void) {
    EvalSandboxConfig c;
    eval_sandbox_config_default(&c);
    c.timeout_s = 5.0;
    c.jobs = 2;
    return c;
}

/* ---- cutting and assembly ------------------------------------------------ */

static void test_cut_at_first_stop(void) {
    const char *s = "    return x\n\nif __name__:\n    pass\ndef g():\n";
    char *c = eval_cut_completion(s, eval_default_stops, eval_default_n_stops);
    CHECKF(!strcmp(c, "    return x\n"), "got [%s]", c);
    free(c);
    CHECK(eval_cut_at_stops("    return 1", eval_default_stops, eval_default_n_stops) == 12);
    CHECK(eval_cut_at_stops("a\n#x\nclass", eval_default_stops, eval_default_n_stops) == 1);
    CHECK(eval_cut_at_stops("x\nprint(1)", eval_default_stops, eval_default_n_stops) == 1);
    CHECK(eval_cut_at_stops("x\n    if y:", eval_default_stops, eval_default_n_stops) == 11); /* indented if is no stop */
    const char *custom[] = {"", "END"};
    CHECK(eval_cut_at_stops("abcENDdef", custom, 2) == 3);
    CHECK(eval_default_n_stops == 5);
}

static void test_codegen_program_is_humaneval_layout(void) {
    EvalCodegenTask t = {"T/0", "def f(x):\n", "    return x\n", "def check(c):\n    assert c(1) == 1\n", "f"};
    char *p = eval_codegen_program(&t, "    return x + 0");
    CHECKF(!strcmp(p, "def f(x):\n    return x + 0\ndef check(c):\n    assert c(1) == 1\n\ncheck(f)\n"), "got [%s]", p);
    free(p);
}

static void test_output_prompt_answer_and_em(void) {
    EvalOutputTask t = {"s0", "def f(x):\n    return x", "'a'", "'a'", "f"};
    char *p = eval_output_prompt(&t);
    CHECKF(!strcmp(p, "def f(x):\n    return x\nassert f('a') == "), "got [%s]", p);
    free(p);
    char *a = eval_output_answer("  \"a\"  \nassert f(2) == 3\n");
    CHECKF(!strcmp(a, "\"a\""), "got [%s]", a);
    CHECK(eval_output_exact_match(a, "'a'"));
    CHECK(!eval_output_exact_match(a, "'b'"));
    CHECK(eval_output_exact_match("[1, 2]", "[1, 2]"));
    CHECK(!eval_output_exact_match("[1,2]", "[1, 2]"));   /* EM is textual, as in the paper */
    free(a);
    a = eval_output_answer("");
    CHECK(!strcmp(a, ""));
    free(a);
}

static void test_python_literal_round_trips_in_sandbox(void) {
    EvalSandboxConfig c = sandbox_config();
    const char *tricky = "a'b\"c\\d\ne\tf\x01 \xc3\xa9";
    char *lit = eval_python_literal(tricky);
    char prog[512];
    snprintf(prog, sizeof prog, "s = %s\nassert s == 'a\\'b\"c\\\\d\\ne\\tf\\x01 \\u00e9', repr(s)\n", lit);
    free(lit);
    const char *progs[1] = {prog};
    EvalSampleResult r;
    REQUIRE(eval_sandbox_run(&c, progs, 1, &r, NULL) == 0);
    CHECKF(r.passed, "%s", r.reason);
    eval_sample_result_free(&r);
}

/* ---- loaders ------------------------------------------------------------- */

static void test_load_codegen_skips_blank_lines(void) {
    const char *path = write_tmp("ok.jsonl",
        "\n{\"task_id\": \"A/0\", \"prompt\": \"p\", \"canonical_solution\": \"c\", \"test\": \"t\", \"entry_point\": \"e\"}\n"
        "   \n{\"task_id\": 7, \"prompt\": \"p2\", \"canonical_solution\": \"c2\", \"test\": \"t2\", \"entry_point\": \"e2\"}");
    EvalCodegenSet s;
    REQUIREF(eval_load_codegen(path, &s) == 0, "%s", flab_errmsg());
    CHECK(s.n == 2);
    CHECK(!strcmp(s.items[0].task_id, "A/0") && !strcmp(s.items[1].task_id, "7"));
    CHECK(!strcmp(s.items[1].entry_point, "e2"));
    eval_codegen_set_free(&s);
}

static void test_load_errors_name_file_and_line(void) {
    const char *path = write_tmp("bad.jsonl",
        "{\"task_id\": \"A/0\", \"prompt\": \"p\", \"canonical_solution\": \"c\", \"test\": \"t\", \"entry_point\": \"e\"}\n"
        "\n{\"task_id\": \"A/1\", \"prompt\": \"p\", \"canonical_solution\": \"c\", \"entry_point\": \"e\"}\n");
    EvalCodegenSet s;
    CHECK(eval_load_codegen(path, &s) == -1);
    CHECKF(strstr(flab_errmsg(), "bad.jsonl:3: missing string field 'test'") != NULL, "%s", flab_errmsg());
    path = write_tmp("bad2.jsonl", "{\"code\": \"x\", \"input\": \"1\", \"output\": \"1\"}\n{oops\n");
    EvalOutputSet o;
    CHECK(eval_load_output(path, &o) == -1);
    CHECKF(strstr(flab_errmsg(), "bad2.jsonl:2: not a JSON object") != NULL, "%s", flab_errmsg());
    CHECK(eval_load_codegen("/nonexistent/x.jsonl", &s) == -1);
    CHECK(strstr(flab_errmsg(), "/nonexistent/x.jsonl") != NULL);
}

static void test_load_output_defaults(void) {
    const char *path = write_tmp("out.jsonl",
        "{\"code\": \"def g(a): return a\", \"entry_point\": \"g\", \"input\": \"1,\", \"output\": \"1\"}\n"
        "{\"code\": \"def f(a): return a\", \"input\": \"2\", \"output\": \"2\", \"id\": \"sample_9\"}\n");
    EvalOutputSet s;
    REQUIREF(eval_load_output(path, &s) == 0, "%s", flab_errmsg());
    REQUIRE(s.n == 2);
    CHECK(!strcmp(s.items[0].id, "0") && !strcmp(s.items[0].entry_point, "g"));
    CHECK(!strcmp(s.items[1].id, "sample_9") && !strcmp(s.items[1].entry_point, "f"));
    eval_output_set_free(&s);
}

static void test_csv_rfc4180(void) {
    const char *text = "prompt,cot\r\n\"a, \"\"q\"\"\nline2\",plain\r\nx,\"multi\n\nline\"\n\"\",\n";
    CsvReader r;
    csv_reader_init(&r, "mem.csv", text, strlen(text));
    CsvRecord rec;
    REQUIRE(csv_next(&r, &rec) == 1);
    CHECK(rec.n == 2 && !strcmp(rec.fields[0], "prompt") && rec.line == 1);
    csv_record_free(&rec);
    REQUIRE(csv_next(&r, &rec) == 1);
    CHECKF(rec.n == 2 && !strcmp(rec.fields[0], "a, \"q\"\nline2") && !strcmp(rec.fields[1], "plain"), "[%s]", rec.fields[0]);
    CHECK(rec.line == 2);
    csv_record_free(&rec);
    REQUIRE(csv_next(&r, &rec) == 1);
    CHECK(rec.n == 2 && !strcmp(rec.fields[1], "multi\n\nline") && rec.line == 4);
    csv_record_free(&rec);
    REQUIRE(csv_next(&r, &rec) == 1);
    CHECK(rec.n == 2 && !strcmp(rec.fields[0], "") && !strcmp(rec.fields[1], "") && rec.line == 7);
    csv_record_free(&rec);
    CHECK(csv_next(&r, &rec) == 0);
}

static void test_csv_errors(void) {
    EvalCotSet s;
    const char *path = write_tmp("bad.csv", "prompt,cot\na,b\n\"open,\nnever closed\n");
    CHECK(eval_load_cot(path, &s) == -1);
    CHECKF(strstr(flab_errmsg(), "bad.csv:3: unterminated quoted field") != NULL, "%s", flab_errmsg());
    path = write_tmp("nohdr.csv", "question,answer\na,b\n");
    CHECK(eval_load_cot(path, &s) == -1);
    CHECKF(strstr(flab_errmsg(), "nohdr.csv:1:") != NULL, "%s", flab_errmsg());
    path = write_tmp("short.csv", "prompt,cot\na,b\nonly\n");
    CHECK(eval_load_cot(path, &s) == -1);
    CHECKF(strstr(flab_errmsg(), "short.csv:3: 1 fields, need 2") != NULL, "%s", flab_errmsg());
}

static void test_real_benchmarks_load(void) {
    EvalCodegenSet c;
    REQUIREF(eval_load_codegen("data/HumanEval.jsonl", &c) == 0, "%s", flab_errmsg());
    CHECK(c.n == 164 && !strcmp(c.items[0].task_id, "HumanEval/0"));
    CHECK(!strcmp(c.items[0].entry_point, "has_close_elements"));
    eval_codegen_set_free(&c);
    REQUIREF(eval_load_codegen("data/CodeHarmony_valid.jsonl", &c) == 0, "%s", flab_errmsg());
    CHECK(c.n == 200);
    eval_codegen_set_free(&c);
    EvalOutputSet o;
    REQUIREF(eval_load_output("data/cruxeval.jsonl", &o) == 0, "%s", flab_errmsg());
    CHECK(o.n == 800 && !strcmp(o.items[0].id, "sample_0") && !strcmp(o.items[0].entry_point, "f"));
    eval_output_set_free(&o);
    REQUIREF(eval_load_output("data/CodeHarmony_output_prediction.jsonl", &o) == 0, "%s", flab_errmsg());
    CHECK(o.n == 452 && !strcmp(o.items[0].entry_point, "classify_text"));
    eval_output_set_free(&o);
    /* Expected values from Python: csv.DictReader(open(f, newline='')). */
    struct { const char *file; size_t n; const char *last_cot_tail; size_t first_prompt_len; } cot[] = {
        {"data/humaneval_cot.csv", 164, "Step 4. Return the sorted list of even digits.", 189},
        {"data/openeval_cot.csv", 178, "turn the difference between the sum and the largest integer.", 414},
        {"data/CodeHarmony_cot_test.csv", 153, "Step 4. Return the updated date.", 117},
    };
    for (size_t i = 0; i < 3; i++) {
        EvalCotSet s;
        REQUIREF(eval_load_cot(cot[i].file, &s) == 0, "%s", flab_errmsg());
        CHECKF(s.n == cot[i].n, "%s: %zu rows", cot[i].file, s.n);
        if (s.n == cot[i].n) {
            const char *last = s.items[s.n - 1].cot;
            size_t tl = strlen(cot[i].last_cot_tail), ll = strlen(last);
            CHECKF(ll >= tl && !strcmp(last + ll - tl, cot[i].last_cot_tail), "%s: last cot", cot[i].file);
            CHECK(strlen(s.items[0].prompt) == cot[i].first_prompt_len);
        }
        eval_cot_set_free(&s);
    }
}

/* ---- scoring ------------------------------------------------------------- */

static void test_canonical_passes_and_wrong_fails(void) {
    EvalCodegenSet set;
    REQUIRE(eval_load_codegen("data/HumanEval.jsonl", &set) == 0);
    EvalSandboxConfig c = sandbox_config();
    EvalSampleResult r[4];
    CHECK(eval_codegen_score(&c, &set, 4, NULL, r, NULL) == 4);
    for (int i = 0; i < 4; i++) eval_sample_result_free(&r[i]);
    const char *wrong[4] = {"    return None\n", "    return []\n", "    return 0.5\n", "    return False\n"};
    CHECK(eval_codegen_score(&c, &set, 4, wrong, r, NULL) == 0);
    for (int i = 0; i < 4; i++) {
        CHECKF(!strncmp(r[i].reason, "failed: AssertionError", 22), "%d: %s", i, r[i].reason);
        eval_sample_result_free(&r[i]);
    }
    /* The completion is cut before it is scored by the caller; an uncut
     * completion that runs off into a new top-level statement still runs. */
    const char *cut_me = "    return None\nprint('extra')\n";
    char *cut = eval_cut_completion(cut_me, eval_default_stops, eval_default_n_stops);
    CHECK(!strcmp(cut, "    return None"));
    free(cut);
    eval_codegen_set_free(&set);
}

static void test_output_scoring(void) {
    EvalOutputSet set;
    REQUIRE(eval_load_output("data/cruxeval.jsonl", &set) == 0);
    EvalSandboxConfig c = sandbox_config();
    size_t em, ex;
    REQUIRE(eval_output_score(&c, &set, 6, NULL, &em, &ex, NULL, NULL) == 0);
    CHECKF(em == 6 && ex == 6, "gold: em %zu exec %zu", em, ex);
    /* sample_0's gold is a list of tuples: a prediction with other spacing
     * and quotes fails EM but passes the execution match. */
    const char *pred[2] = {"[(4,1),(4,1),(4,1),(4,1),(2,3),(2,3)]", "{1: None}"};
    EvalSampleResult r[2];
    REQUIRE(eval_output_score(&c, &set, 2, pred, &em, &ex, r, NULL) == 0);
    CHECK(em == 0 && ex == 1);
    CHECK(r[0].passed && !r[1].passed);
    eval_sample_result_free(&r[0]);
    eval_sample_result_free(&r[1]);
    EvalSampleResult g[3];
    CHECK(eval_output_check_gold(&c, &set, 3, g, NULL) == 3);
    for (int i = 0; i < 3; i++) eval_sample_result_free(&g[i]);
    eval_output_set_free(&set);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/flab-test-tasks-%d", (int)getpid());
    mkdir(g_tmp, 0700);
    RUN(test_cut_at_first_stop);
    RUN(test_codegen_program_is_humaneval_layout);
    RUN(test_output_prompt_answer_and_em);
    RUN(test_python_literal_round_trips_in_sandbox);
    RUN(test_load_codegen_skips_blank_lines);
    RUN(test_load_errors_name_file_and_line);
    RUN(test_load_output_defaults);
    RUN(test_csv_rfc4180);
    RUN(test_csv_errors);
    RUN(test_real_benchmarks_load);
    RUN(test_canonical_passes_and_wrong_fails);
    RUN(test_output_scoring);
    if (scratch_remove(g_tmp)) fprintf(stderr, "could not remove %s\n", g_tmp);
    return TEST_SUMMARY();
}
