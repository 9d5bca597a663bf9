/* tests/test_recode.c: the ReCode parts of the robustness rule without a
 * model: ReCode's metrics on a small hand-computed case (and through the
 * metrics.json builder), the perturbation catalog and its parsing, grouping
 * of equal strings, opening the shipped release archive, loading and
 * aligning its files.
 *
 * The hand-computed case (n = 5 problems, s = 3 seeds):
 *   nominal  1 1 0 1 0            nominal pass@1 = 3/5 = 0.6
 *   seed 0   1 0 0 1 1            pass@1 0.6
 *   seed 1   1 1 0 1 1            pass@1 0.8
 *   seed 2   1 1 0 0 1            pass@1 0.6      mean 10/15
 *   worst    1 0 0 0 1            Robust Pass_3@1 = 2/5 = 0.4
 *   Robust Drop = (0.6 - 0.4) / 0.6 = 1/3
 *   nominal != worst at problems 1, 3 (lost) and 4 (gained):
 *   Robust Relative = 3/5 = 0.6
 * Exact binary fractions are not all representable: tolerance 1e-12. */
#include "eval/recode_catalog.h"
#include "eval/recode_data.h"
#include "eval/recode_metrics.h"
#include "eval/unique.h"
#include "rules/robustness.h"
#include "tests/scratch_testlib.h"
#include "tests/testlib.h"
#include "util/error.h"
#include "util/file.h"
#include <math.h>
#include <unistd.h>

#define NEAR(a, b) (fabs((a) - (b)) < 1e-12)

static const unsigned char NOMINAL[5] = {1, 1, 0, 1, 0};
static const unsigned char SEEDS[3][5] = {{1, 0, 0, 1, 1}, {1, 1, 0, 1, 1}, {1, 1, 0, 0, 1}};

static void test_robust_hand_computed(void) {
    const unsigned char *passed[3] = {SEEDS[0], SEEDS[1], SEEDS[2]};
    double seed_pass[3];
    RecodeRobust m;
    REQUIRE(recode_robust(NOMINAL, passed, 3, 5, seed_pass, &m) == 0);
    CHECK(NEAR(seed_pass[0], 0.6) && NEAR(seed_pass[1], 0.8) && NEAR(seed_pass[2], 0.6));
    CHECK(NEAR(m.nominal_pass, 0.6));
    CHECK(NEAR(m.mean_pass, 10.0 / 15));
    CHECKF(NEAR(m.robust_pass, 0.4), "robust pass %g", m.robust_pass);
    CHECKF(NEAR(m.robust_drop, 1.0 / 3), "robust drop %g", m.robust_drop);
    CHECKF(NEAR(m.robust_relative, 0.6), "robust relative %g", m.robust_relative);
    CHECK(m.n_robust == 2 && m.n_lost == 2 && m.n_gained == 1);
}

static void test_robust_edge_cases(void) {
    const unsigned char zeros[3] = {0, 0, 0}, ones[3] = {1, 1, 1};
    const unsigned char *one_seed[1] = {ones};
    RecodeRobust m;
    /* nominal pass@1 = 0: the drop is undefined (NaN -> null in JSON) */
    REQUIRE(recode_robust(zeros, one_seed, 1, 3, NULL, &m) == 0);
    CHECK(isnan(m.robust_drop));
    CHECK(NEAR(m.robust_pass, 1) && NEAR(m.robust_relative, 1) && m.n_gained == 3);
    /* one seed equal to the nominal: no drop, no change */
    REQUIRE(recode_robust(ones, one_seed, 1, 3, NULL, &m) == 0);
    CHECK(NEAR(m.robust_drop, 0) && NEAR(m.robust_relative, 0));
    CHECK(recode_robust(ones, one_seed, 0, 3, NULL, &m) == -1);
    CHECK(recode_robust(ones, one_seed, 1, 0, NULL, &m) == -1);
}

static void test_category_means(void) {
    RecodeRobust t[2] = {{.nominal_pass = 0.6, .robust_pass = 0.4, .robust_drop = 1.0 / 3,
                          .robust_relative = 0.6},
                         {.nominal_pass = 0.6, .robust_pass = 0.6, .robust_drop = 0,
                          .robust_relative = 0.2}};
    double files[4] = {0.6, 0.8, 0.6, 0.6};   /* 3 seeds of type 0, 1 of type 1 */
    RecodeCategoryMetrics c;
    REQUIRE(recode_category(t, 2, files, 4, &c) == 0);
    CHECK(NEAR(c.pass, 2.6 / 4));
    CHECK(NEAR(c.robust_pass, 0.5));
    CHECK(NEAR(c.robust_drop, 1.0 / 6));
    CHECK(NEAR(c.robust_drop, (c.nominal_pass - c.robust_pass) / c.nominal_pass));
    CHECK(NEAR(c.robust_relative, 0.4));
    t[1].robust_drop = NAN;
    REQUIRE(recode_category(t, 2, files, 4, &c) == 0);
    CHECK(isnan(c.robust_drop));
}

/* The same case through metrics.json: func_name types are compared with
 * the HumanEval nominal set, not the partial one. */
static void test_metrics_json(void) {
    unsigned char nom[5], part[5] = {0}, camel[5] = {1, 1, 0, 1, 0}, seeds[3][5];
    memcpy(nom, NOMINAL, 5);
    memcpy(seeds, SEEDS, sizeof seeds);
    RobustUnit u[6] = {
        {.pert = -1, .nominal = RECODE_NOMINAL_FULL, .seed = -1, .rel = "nominal/HumanEval.jsonl", .passed = nom},
        {.pert = -1, .nominal = RECODE_NOMINAL_PARTIAL, .seed = -1, .rel = "nominal/humaneval_partial.jsonl", .passed = part},
        {.pert = 6, .nominal = RECODE_NOMINAL_FULL, .seed = 0, .rel = "c", .passed = camel},
        {.pert = 7, .nominal = RECODE_NOMINAL_FULL, .seed = 0, .rel = "b0", .passed = seeds[0]},
        {.pert = 7, .nominal = RECODE_NOMINAL_FULL, .seed = 1, .rel = "b1", .passed = seeds[1]},
        {.pert = 7, .nominal = RECODE_NOMINAL_FULL, .seed = 2, .rel = "b2", .passed = seeds[2]},
    };
    REQUIRE(!strcmp(recode_perturbations[6].name, "FuncRenameCamelCase"));
    REQUIRE(!strcmp(recode_perturbations[7].name, "FuncRenameButterFinger"));
    RobustSets s = {.units = u, .n_units = 6, .n = 5, .nominal_unit = {0, 1}};
    unsigned char selected[RECODE_N_PERTURBATIONS] = {0};
    selected[6] = selected[7] = 1;
    cJSON *m = robust_metrics(&s, selected);
    const cJSON *nomj = cJSON_GetObjectItem(m, "nominal");
    CHECK(NEAR(cJSON_GetObjectItem(nomj, "pass@1")->valuedouble, 0.6));
    const cJSON *bf = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "perturbations"), "FuncRenameButterFinger");
    REQUIRE(bf);
    CHECK(NEAR(cJSON_GetObjectItem(bf, "robust_pass")->valuedouble, 0.4));
    CHECK(NEAR(cJSON_GetObjectItem(bf, "robust_drop")->valuedouble, 1.0 / 3));
    CHECK(NEAR(cJSON_GetObjectItem(bf, "robust_relative")->valuedouble, 0.6));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(bf, "pass@1_per_seed")) == 3);
    const cJSON *cat = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "categories"), "func_name");
    REQUIRE(cat);
    /* CamelCase equals the nominal: RP 0.6, RD 0, RR 0; files 0.6 0.6 0.8 0.6 */
    CHECK(NEAR(cJSON_GetObjectItem(cat, "pass@1")->valuedouble, 2.6 / 4));
    CHECK(NEAR(cJSON_GetObjectItem(cat, "robust_pass")->valuedouble, 0.5));
    CHECK(NEAR(cJSON_GetObjectItem(cat, "robust_drop")->valuedouble, 1.0 / 6));
    CHECK(NEAR(cJSON_GetObjectItem(cat, "robust_relative")->valuedouble, 0.3));
    CHECK(!cJSON_GetObjectItem(cJSON_GetObjectItem(m, "categories"), "format"));
    cJSON_Delete(m);
}

static void test_select(void) {
    unsigned char sel[RECODE_N_PERTURBATIONS];
    CHECK(recode_select("format func_name natgen nlaugmenter", sel) == 28);
    CHECK(recode_select("all", sel) == 28);
    CHECK(recode_select("natgen", sel) == 6);
    CHECK(recode_select("DeadCodeInserterLast", sel) == 1);
    CHECK(recode_select(" Format,new_lines ,  ", sel) == 6);
    CHECK(recode_select("new_lines FuncRenameCamelCase", sel) == 2);
    CHECK(recode_select("format bogus", sel) == -1);
    CHECK(strstr(flab_errmsg(), "'bogus'") && strstr(flab_errmsg(), "VarRenamerRN") &&
          strstr(flab_errmsg(), "category nlaugmenter:"));
    CHECK(recode_select(" , ", sel) == -1);
    CHECK(strstr(flab_errmsg(), "names no perturbation") != NULL);
}

static void test_unique(void) {
    const char *s[5] = {"a", "b", "a", "c", "b"};
    size_t group[5], first[5];
    REQUIRE(eval_unique_strings(s, 5, group, first) == 3);
    CHECK(group[0] == 0 && group[1] == 1 && group[2] == 0 && group[3] == 2 && group[4] == 1);
    CHECK(first[0] == 0 && first[1] == 1 && first[2] == 3);
    CHECK(eval_unique_strings(s, 0, group, first) == 0);
}

/* The shipped archive: unpacked to a private dir, seeds discovered, the
 * dir removed on close; files load and align. */
static void test_release_archive(void) {
    RecodeData d;
    REQUIRE(recode_data_open("data/recode-humaneval.tar.xz", &d) == 0);
    char *tmp = flab_xstrdup(d.tmpdir);
    int new_lines = -1, tab = -1;
    for (int p = 0; p < RECODE_N_PERTURBATIONS; p++) {
        if (!strcmp(recode_perturbations[p].name, "new_lines")) new_lines = p;
        if (!strcmp(recode_perturbations[p].name, "tab_indent")) tab = p;
        CHECKF(recode_seed_count(&d, p, 0) >= 1, "%s", recode_perturbations[p].name);
    }
    CHECK(recode_seed_count(&d, new_lines, 0) == 10);
    CHECK(recode_seed_count(&d, new_lines, 3) == 3);
    CHECK(recode_seed_count(&d, tab, 0) == 1);
    unsigned char sel[RECODE_N_PERTURBATIONS];
    REQUIRE(recode_select("format", sel) == 6);
    RobustSets s;
    REQUIRE(robust_sets_load(&d, sel, 2, 4, &s) == 0);
    CHECK(s.n == 4);
    CHECK(s.n_units == 2 + 7);   /* 2 nominal + 5 one-seed types + new_lines s0, s1 */
    CHECK(s.nominal_unit[RECODE_NOMINAL_PARTIAL] == 1);
    CHECK(!strcmp(s.units[2].rel, "perturbed_finalized/humaneval/full/format/humaneval_tab_indent_s0.jsonl"));
    robust_sets_free(&s);
    recode_data_close(&d);
    CHECK(!flab_path_exists(tmp));
    free(tmp);
}

static void write_text(const char *path, const char *text) {
    CHECK(flab_write_file_atomic(path, text, strlen(text)) == 0);
}

static void test_bad_data(void) {
    RecodeData d;
    CHECK(recode_data_open("tests/fixtures/tiny-qwen2", &d) == -1);
    CHECK(strstr(flab_errmsg(), "not a ReCode release") != NULL);
    CHECK(recode_data_open("no/such/recode.tar.xz", &d) == -1);
    /* a perturbed file whose rows are not in the nominal order */
    char dir[] = "/tmp/flab-test-recode.XXXXXX";
    REQUIRE(mkdtemp(dir));
    char p[512];
    const char *row0 = "{\"task_id\":\"T/0\",\"prompt\":\"\",\"canonical_solution\":\"\",\"test\":\"\",\"entry_point\":\"f\"}\n";
    const char *row1 = "{\"task_id\":\"T/1\",\"prompt\":\"\",\"canonical_solution\":\"\",\"test\":\"\",\"entry_point\":\"f\"}\n";
    char both[512], swapped[512];
    snprintf(both, sizeof both, "%s%s", row0, row1);
    snprintf(swapped, sizeof swapped, "%s%s", row1, row0);
    snprintf(p, sizeof p, "%s/nominal", dir);
    flab_mkdir_p(p, 0700);
    snprintf(p, sizeof p, "%s/perturbed_finalized/humaneval/full/func_name", dir);
    flab_mkdir_p(p, 0700);
    snprintf(p, sizeof p, "%s/nominal/HumanEval.jsonl", dir);
    write_text(p, both);
    snprintf(p, sizeof p, "%s/perturbed_finalized/humaneval/full/func_name/humaneval_FuncRenameCamelCase_s0.jsonl", dir);
    write_text(p, swapped);
    REQUIRE(recode_data_open(dir, &d) == 0);
    CHECK(d.tmpdir == NULL);
    unsigned char sel[RECODE_N_PERTURBATIONS];
    REQUIRE(recode_select("FuncRenameCamelCase", sel) == 1);
    RobustSets s;
    CHECK(robust_sets_load(&d, sel, 0, 0, &s) == -1);
    CHECKF(strstr(flab_errmsg(), "humaneval_FuncRenameCamelCase_s0.jsonl: row 1 is T/1") != NULL,
           "%s", flab_errmsg());
    REQUIRE(recode_select("FuncRenameSwapChar", sel) == 1);
    CHECK(robust_sets_load(&d, sel, 0, 0, &s) == -1);
    CHECKF(strstr(flab_errmsg(), "humaneval_FuncRenameSwapChar_s0.jsonl: missing") != NULL,
           "%s", flab_errmsg());
    recode_data_close(&d);
    CHECK(flab_path_exists(dir));   /* a directory given as data is never removed */
    CHECK(scratch_remove(dir) == 0);
}

int main(void) {
    RUN(test_robust_hand_computed);
    RUN(test_robust_edge_cases);
    RUN(test_category_means);
    RUN(test_metrics_json);
    RUN(test_select);
    RUN(test_unique);
    RUN(test_release_archive);
    RUN(test_bad_data);
    return TEST_SUMMARY();
}
