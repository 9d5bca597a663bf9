/* rules/report_paper.c: the paper's tables that appear only when their
 * inputs exist.
 *
 * Table 7 (robustness, ReCode): from `robustness` artifacts, whose
 * metrics.json holds "nominal": {"pass@1": x} and "categories": {CAT:
 * {"pass@1", "robust_pass", "robust_drop", "robust_relative"}}; one row per
 * category (in order of first appearance), four columns per model.
 * Table 9 (languages, MultiPL-E): from evals whose metrics.json holds
 * "languages": {LANG: {"pass@1": x, "n": N} or {"skipped": "why"}}; one row
 * per (benchmark, language), one column per model.  A skipped language is
 * shown with its reason, never as 0. */
#include "rules/report.h"
#include "rules/eval_html.h"
#include <string.h>

#define MAX_ROWS 128

/* Adds the member names of obj to names (first appearance order). */
static void union_keys(const cJSON *obj, const char **names, size_t *n) {
    for (const cJSON *c = cJSON_IsObject(obj) ? obj->child : NULL; c; c = c->next) {
        size_t i = 0;
        while (i < *n && strcmp(names[i], c->string)) i++;
        if (i == *n && *n < MAX_ROWS) names[(*n)++] = c->string;
    }
}

static const ReportArt *rob_of(const Report *r, size_t model) {
    for (size_t i = 0; i < r->nrob; i++)
        if (!strcmp(r->rob[i].model, r->models[model])) return &r->rob[i];
    return NULL;
}

/* One header cell per model: the tag `th` (an opening <th ...>), the
 * escaped model name, </th>. */
static void model_headers(const Report *r, FILE *f, const char *th) {
    for (size_t m = 0; m < r->nmodels; m++) {
        fputs(th, f);
        eval_html_escape(f, r->models[m]);
        fputs("</th>", f);
    }
}

/* ---- Table 7 ----------------------------------------------------------------- */

static const char *const ROB_KEYS[] = {"pass@1", "robust_pass", "robust_drop", "robust_relative"};
static const char *const ROB_TITLES[] = {"pass@1", "Robust Pass", "Robust Drop", "Robust Relative"};

static void rob_row(const Report *r, FILE *f, const char *cat) {
    fputs("<tr><td>", f);
    eval_html_escape(f, cat ? cat : "nominal");
    fputs("</td>", f);
    for (size_t m = 0; m < r->nmodels; m++) {
        const ReportArt *a = rob_of(r, m);
        const cJSON *o = !a ? NULL : cat ? cJSON_GetObjectItem(cJSON_GetObjectItem(a->m, "categories"), cat)
                                         : cJSON_GetObjectItem(a->m, "nominal");
        for (size_t k = 0; k < 4; k++) {
            double v = 0;
            int ok = o && report_get(o, ROB_KEYS[k], 0, &v);
            fputs("<td>", f);
            if (ok || cat) report_cell(f, a, "metrics.json", ok, v);
            fputs("</td>", f);
        }
    }
    fputs("</tr>\n", f);
}

void report_html_robustness(const Report *r, FILE *f) {
    const char *cats[MAX_ROWS];
    size_t ncat = 0, nmodels = 0;
    for (size_t m = 0; m < r->nmodels; m++) {
        const ReportArt *a = rob_of(r, m);
        if (a) { nmodels++; union_keys(cJSON_GetObjectItem(a->m, "categories"), cats, &ncat); }
    }
    if (!nmodels) return;
    fputs("<h2 id=\"table-robustness\">Robustness per perturbation category (paper Table 7)</h2>\n"
          "<p>ReCode's metrics as the robustness artifacts report them: Robust Pass = share of problems "
          "solved under every seed (worst case); Robust Drop and Robust Relative are measured against "
          "the nominal set.</p>\n"
          "<table><tr><th rowspan=\"2\">category</th>", f);
    model_headers(r, f, "<th colspan=\"4\">");
    fputs("</tr>\n<tr>", f);
    for (size_t m = 0; m < r->nmodels; m++)
        for (size_t k = 0; k < 4; k++) fprintf(f, "<th>%s</th>", ROB_TITLES[k]);
    fputs("</tr>\n", f);
    rob_row(r, f, NULL);
    for (size_t c = 0; c < ncat; c++) rob_row(r, f, cats[c]);
    fputs("</table>\n", f);
}

/* ---- Table 9 ------------------------------------------------------------------- */

static void lang_cell(FILE *f, const ReportArt *a, const char *lang) {
    const cJSON *o = a ? cJSON_GetObjectItem(cJSON_GetObjectItem(a->m, "languages"), lang) : NULL;
    const char *skipped = cJSON_GetStringValue(cJSON_GetObjectItem(o, "skipped"));
    double v = 0, n;
    fputs("<td>", f);
    if (skipped) {
        fputs("<span class=\"skip\">skipped: ", f);
        eval_html_escape(f, skipped);
        fputs("</span>", f);
    } else {
        int ok = o && report_get(o, "pass@1", 0, &v);
        report_cell(f, a, "metrics.json", ok, v);
        if (o && report_get(o, "n", 0, &n)) fprintf(f, " <span class=\"n\">(n=%.0f)</span>", n);
    }
    fputs("</td>", f);
}

void report_html_languages(const Report *r, FILE *f) {
    int header = 0;
    for (size_t b = 0; b < r->nbench; b++) {
        const char *langs[MAX_ROWS];
        size_t nl = 0;
        for (size_t m = 0; m < r->nmodels; m++)
            if (r->cell[b][m]) union_keys(cJSON_GetObjectItem(r->cell[b][m]->m, "languages"), langs, &nl);
        if (!nl) continue;
        if (!header++) {
            fputs("<h2 id=\"table-languages\">Other languages (paper Table 9)</h2>\n"
                  "<p>pass@1 per language; a language whose toolchain is missing is skipped "
                  "with its reason, not scored.</p>\n<table><tr><th>benchmark</th><th>language</th>", f);
            model_headers(r, f, "<th>");
            fputs("</tr>\n", f);
        }
        for (size_t l = 0; l < nl; l++) {
            fputs("<tr><td>", f);
            eval_html_escape(f, r->bench[b]);
            fputs("</td><td>", f);
            eval_html_escape(f, langs[l]);
            fputs("</td>", f);
            for (size_t m = 0; m < r->nmodels; m++) lang_cell(f, r->cell[b][m], langs[l]);
            fputs("</tr>\n", f);
        }
    }
    if (header) fputs("</table>\n", f);
}
