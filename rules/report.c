/* rules/report.c: the `report` rule: several eval artifacts side by side
 * (original vs pruned vs recovered).  The first artifact is the baseline:
 * for each headline metric (pass@1, bleu4, em, exec_match) and efficiency
 * figure, every model's value, its delta from the baseline and the % of
 * the baseline it retains.  Artifact: report.html (self-contained: a table
 * and one inline SVG bar chart per metric), report.json, report.txt. */
#include "rules/eval_common.h"
#include "rules/eval_html.h"
#include "util/error.h"
#include "util/file.h"
#include <stdlib.h>
#include <string.h>

static const RuleParam report_params[] = {
    {"evals", RULE_PATHS, NULL, 0, -1, NULL, "eval artifacts (@targets), baseline first"},
    {"labels", RULE_STRING, "", 0, -1, NULL, "space-separated names, one per eval"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const char *const METRICS[] = {"pass@1", "bleu4", "em", "exec_match"};
static const char *const EFFICIENCY[] = {"parameters", "checkpoint_bytes", "peak_rss_bytes",
                                         "prefill_tokens_per_s", "decode_tokens_per_s",
                                         "flops_per_generated_token", "energy_joules", "co2_grams"};
#define N_METRICS (sizeof METRICS / sizeof *METRICS)
#define N_EFF (sizeof EFFICIENCY / sizeof *EFFICIENCY)
#define MAX_MODELS 16

typedef struct {
    size_t n;
    char *label[MAX_MODELS];
    cJSON *m[MAX_MODELS];
} Models;

static int load_models(RuleCtx *ctx, Models *ms) {
    size_t n = 0;
    const char *const *dirs = rule_inputs(ctx, "evals", &n);
    if (n == 0 || n > MAX_MODELS) return flab_fail("evals: need 1 to %d eval artifacts", MAX_MODELS);
    char *labels = strdup(rule_str(ctx, "labels")), *save = NULL;
    char *tok = strtok_r(labels, " \t", &save);
    for (size_t i = 0; i < n; i++, ms->n++) {
        char path[4096], *text = NULL, buf[32];
        snprintf(buf, sizeof buf, "model %zu", i + 1);
        ms->label[i] = strdup(tok ? tok : buf);
        if (tok) tok = strtok_r(NULL, " \t", &save);
        snprintf(path, sizeof path, "%s/metrics.json", dirs[i]);
        size_t len;
        if (flab_read_file(path, &text, &len)) { free(labels); return -1; }
        ms->m[i] = cJSON_Parse(text);
        free(text);
        if (!ms->m[i]) { free(labels); return flab_fail("%s: not JSON", path); }
    }
    free(labels);
    return 0;
}

static int get(const cJSON *m, const char *key, int eff, double *v) {
    const cJSON *x = cJSON_GetObjectItem(eff ? cJSON_GetObjectItem(m, "efficiency") : m, key);
    if (!cJSON_IsNumber(x)) return 0;
    *v = x->valuedouble;
    return 1;
}

/* One row per model for key: value, delta, % of baseline. */
static cJSON *metric_rows(const Models *ms, const char *key, int eff) {
    double base;
    if (!get(ms->m[0], key, eff, &base)) return NULL;
    cJSON *rows = cJSON_CreateArray();
    for (size_t i = 0; i < ms->n; i++) {
        double v;
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "model", ms->label[i]);
        if (get(ms->m[i], key, eff, &v)) {
            cJSON_AddNumberToObject(r, "value", v);
            cJSON_AddNumberToObject(r, "delta", v - base);
            if (base != 0) cJSON_AddNumberToObject(r, "retained_pct", 100.0 * v / base);
        }
        cJSON_AddItemToArray(rows, r);
    }
    return rows;
}

static cJSON *build_json(const Models *ms) {
    cJSON *j = cJSON_CreateObject(), *mt = cJSON_AddObjectToObject(j, "metrics");
    cJSON *ef = cJSON_AddObjectToObject(j, "efficiency"), *names = cJSON_AddArrayToObject(j, "models");
    for (size_t i = 0; i < ms->n; i++) cJSON_AddItemToArray(names, cJSON_CreateString(ms->label[i]));
    for (size_t k = 0; k < N_METRICS; k++) {
        cJSON *r = metric_rows(ms, METRICS[k], 0);
        if (r) cJSON_AddItemToObject(mt, METRICS[k], r);
    }
    for (size_t k = 0; k < N_EFF; k++) {
        cJSON *r = metric_rows(ms, EFFICIENCY[k], 1);
        if (r) cJSON_AddItemToObject(ef, EFFICIENCY[k], r);
    }
    return j;
}

static double num(const cJSON *r, const char *k, int *ok) {
    const cJSON *x = cJSON_GetObjectItem(r, k);
    *ok = cJSON_IsNumber(x);
    return *ok ? x->valuedouble : 0;
}

static void write_txt_group(FILE *f, const cJSON *group) {
    for (const cJSON *g = group->child; g; g = g->next) {
        fprintf(f, "%s\n", g->string);
        for (const cJSON *r = g->child; r; r = r->next) {
            int ok, okp;
            double v = num(r, "value", &ok), d = num(r, "delta", &ok), p = num(r, "retained_pct", &okp);
            fprintf(f, "  %-16s %14.6g  delta %+12.6g", cJSON_GetStringValue(cJSON_GetObjectItem(r, "model")), v, d);
            if (okp) fprintf(f, "  %7.1f%%", p);
            fputc('\n', f);
        }
    }
}

/* A horizontal bar chart: one bar per model, scaled to the largest value. */
static void write_svg(FILE *f, const cJSON *rows) {
    double max = 0;
    int ok, n = cJSON_GetArraySize(rows), i = 0;
    for (const cJSON *r = rows->child; r; r = r->next) {
        double v = num(r, "value", &ok);
        if (ok && v > max) max = v;
    }
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"520\" height=\"%d\">\n", 24 * n + 4);
    for (const cJSON *r = rows->child; r; r = r->next, i++) {
        double v = num(r, "value", &ok), w = max > 0 && ok ? 300.0 * v / max : 0;
        fprintf(f, "<text x=\"0\" y=\"%d\" font-size=\"12\">", 24 * i + 16);
        eval_html_escape(f, cJSON_GetStringValue(cJSON_GetObjectItem(r, "model")));
        fprintf(f, "</text><rect x=\"120\" y=\"%d\" width=\"%.1f\" height=\"18\" fill=\"%s\"/>"
                "<text x=\"%.1f\" y=\"%d\" font-size=\"12\">%.4g</text>\n", 24 * i + 3, w,
                i ? "#e8833a" : "#3a78e8", 125 + w, 24 * i + 16, v);
    }
    fputs("</svg>\n", f);
}

static void write_html_group(FILE *f, const char *title, const cJSON *group) {
    fprintf(f, "<h2>%s</h2>\n", title);
    for (const cJSON *g = group->child; g; g = g->next) {
        fputs("<h3>", f);
        eval_html_escape(f, g->string);
        fputs("</h3>\n<table><tr><th>model</th><th>value</th><th>delta</th><th>% retained</th></tr>\n", f);
        for (const cJSON *r = g->child; r; r = r->next) {
            int ok, okp;
            double v = num(r, "value", &ok), d = num(r, "delta", &ok), p = num(r, "retained_pct", &okp);
            fputs("<tr><td>", f);
            eval_html_escape(f, cJSON_GetStringValue(cJSON_GetObjectItem(r, "model")));
            fprintf(f, "</td><td>%.6g</td><td>%+.6g</td><td>", v, d);
            if (okp) fprintf(f, "%.1f%%", p);
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
        write_svg(f, g);
    }
}

static int write_outputs(RuleCtx *ctx, const cJSON *j) {
    if (eval_write_json(ctx, "report.json", j)) return -1;
    FILE *t = eval_open_out(ctx, "report.txt");
    if (!t) return -1;
    write_txt_group(t, cJSON_GetObjectItem(j, "metrics"));
    write_txt_group(t, cJSON_GetObjectItem(j, "efficiency"));
    if (fclose(t)) return flab_fail_errno("report.txt");
    FILE *f = eval_open_out(ctx, "report.html");
    if (!f) return -1;
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>flab report</title><style>"
          "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:4px 8px}</style></head><body>\n"
          "<h1>flab report</h1>\n<p>The first model is the baseline.</p>\n", f);
    write_html_group(f, "Metrics", cJSON_GetObjectItem(j, "metrics"));
    write_html_group(f, "Efficiency", cJSON_GetObjectItem(j, "efficiency"));
    fputs("</body></html>\n", f);
    if (fclose(f)) return flab_fail_errno("report.html");
    return 0;
}

static int report_run(RuleCtx *ctx) {
    Models ms = {0};
    int rc = load_models(ctx, &ms);
    if (!rc) {
        cJSON *j = build_json(&ms);
        rc = write_outputs(ctx, j);
        cJSON_Delete(j);
    }
    for (size_t i = 0; i < ms.n; i++) { free(ms.label[i]); cJSON_Delete(ms.m[i]); }
    return rc;
}

const Rule rule_report = {
    .name = "report",
    .version = 1,
    .summary = "compare eval artifacts: metric deltas, % retained, efficiency, SVG charts",
    .params = report_params,
    .run = report_run,
};
