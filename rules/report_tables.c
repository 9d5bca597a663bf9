/* rules/report_tables.c: the tables every report has: the headline (also
 * report.txt, which `make demo` prints), Table 2/3 (each benchmark's
 * headline metric per model, with % of the baseline retained), Table 4
 * (efficiency), and the per-benchmark deltas of every metric.
 *
 * Which number is "the" pass@1 / EM of the headline: the first benchmark
 * (in label order) whose evals report pass@1 / em.  Efficiency figures of a
 * model come from its eval on the first benchmark that has them
 * (report_eff_eval), and the tables say which benchmark that is. */
#include "rules/report.h"
#include "rules/eval_html.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const METRICS[] = {"pass@1", "bleu4", "em", "exec_match"};
#define N_METRICS (sizeof METRICS / sizeof *METRICS)

/* Table 4's columns: efficiency key, title, divisor for display. */
typedef struct { const char *key, *title; double scale; } EffCol;
static const EffCol EFF[] = {
    {"parameters", "parameters", 1},
    {"checkpoint_bytes", "weights (checkpoint, MB)", 1048576},   /* shows quantization */
    {"peak_rss_bytes", "memory (peak RSS, MB)", 1048576},
    {"decode_tokens_per_s", "tokens/s (decode)", 1},
    {"prefill_tokens_per_s", "tokens/s (prefill)", 1},
    {"flops_per_generated_token", "FLOPs/token", 1},
    {"energy_joules", "energy (J)", 1},
    {"co2_grams", "CO2 (g)", 1},
};
#define N_EFF (sizeof EFF / sizeof *EFF)

/* ---- values ------------------------------------------------------------------ */

int report_get(const cJSON *m, const char *key, int eff, double *v) {
    const cJSON *x = cJSON_GetObjectItem(eff ? cJSON_GetObjectItem(m, "efficiency") : m, key);
    if (!cJSON_IsNumber(x)) return 0;
    *v = x->valuedouble;
    return 1;
}

int report_main_metric(const cJSON *m, const char **key, double *v) {
    const char *task = cJSON_GetStringValue(cJSON_GetObjectItem(m, "task"));
    const char *want = !task ? NULL : !strcmp(task, "cot") ? "bleu4" : !strcmp(task, "output") ? "em"
                                                                                                : "pass@1";
    for (size_t k = 0; k < 3; k++) {
        const char *cand = want ? want : METRICS[k];
        if (report_get(m, cand, 0, v)) { *key = cand; return 1; }
        if (want) break;
    }
    return 0;
}

const ReportArt *report_eff_eval(const Report *r, size_t model) {
    double v;
    for (size_t b = 0; b < r->nbench; b++) {
        const ReportArt *a = r->cell[b][model];
        if (a && report_get(a->m, "parameters", 1, &v)) return a;
    }
    return NULL;
}

/* The first benchmark whose baseline (or any model) reports key, or -1. */
static int bench_with(const Report *r, const char *key) {
    double v;
    for (size_t b = 0; b < r->nbench; b++)
        for (size_t m = 0; m < r->nmodels; m++)
            if (r->cell[b][m] && report_get(r->cell[b][m]->m, key, 0, &v)) return (int)b;
    return -1;
}

static int cell_get(const Report *r, int b, size_t m, const char *key, double *v) {
    return b >= 0 && r->cell[b][m] && report_get(r->cell[b][m]->m, key, 0, v);
}

static int pct(double v, int ok, double base, int okb, double *out) {
    if (!ok || !okb || base == 0) return 0;
    *out = 100.0 * v / base;
    return 1;
}

/* ---- report.txt ----------------------------------------------------------------- */

static void txt_num(FILE *f, int width, int ok, double v, int decimals) {
    char buf[64];
    if (!ok) snprintf(buf, sizeof buf, "-");
    else if (decimals < 0) snprintf(buf, sizeof buf, "%.1f%%", v);
    else snprintf(buf, sizeof buf, "%.*f", decimals, v);
    fprintf(f, " %*s", width, buf);
}

static void txt_headline(const Report *r, FILE *f) {
    int bp = bench_with(r, "pass@1"), be = bench_with(r, "em");
    double p0 = 0, q0 = 0;
    const ReportArt *e0 = report_eff_eval(r, 0);
    int okp0 = e0 && report_get(e0->m, "parameters", 1, &p0), okq0 = cell_get(r, bp, 0, "pass@1", &q0);
    int w = 10;   /* the model column fits the longest label */
    for (size_t m = 0; m < r->nmodels; m++)
        if ((int)strlen(r->models[m]) > w) w = (int)strlen(r->models[m]);
    fprintf(f, "%-*s %9s %8s %7s %6s %8s %8s %10s %8s %8s %8s\n", w, "model", "params", "ckpt MB",
            "pass@1", "EM", "tok/s", "RSS MB", "FLOPs/tok", "energy J", "%params", "%pass@1");
    for (size_t m = 0; m < r->nmodels; m++) {
        const ReportArt *e = report_eff_eval(r, m);
        double p = 0, q = 0, em = 0, t = 0, rss = 0, fl = 0, j = 0, x = 0, cb = 0;
        int okp = e && report_get(e->m, "parameters", 1, &p), okq = cell_get(r, bp, m, "pass@1", &q);
        int okem = cell_get(r, be, m, "em", &em);
        int okt = e && report_get(e->m, "decode_tokens_per_s", 1, &t);
        int okr = e && report_get(e->m, "peak_rss_bytes", 1, &rss);
        int okf = e && report_get(e->m, "flops_per_generated_token", 1, &fl);
        int okj = e && report_get(e->m, "energy_joules", 1, &j);
        int okcb = e && report_get(e->m, "checkpoint_bytes", 1, &cb);   /* quantized: smaller */
        fprintf(f, "%-*s", w, r->models[m]);
        txt_num(f, 9, okp, p, 0);
        txt_num(f, 8, okcb, cb / 1048576, 2);
        txt_num(f, 7, okq, q, 3);
        txt_num(f, 6, okem, em, 3);
        txt_num(f, 8, okt, t, 0);
        txt_num(f, 8, okr, rss / 1048576, 0);
        txt_num(f, 10, okf, fl, 0);
        txt_num(f, 8, okj, j, 3);
        int ok = pct(p, okp, p0, okp0, &x);
        txt_num(f, 8, ok, x, -1);
        ok = pct(q, okq, q0, okq0, &x);
        txt_num(f, 8, ok, x, -1);
        fputc('\n', f);
    }
}

/* "pass@1 and efficiency: B (n tasks); EM: B; OTHER metric: model v, ..." */
static void txt_summary(const Report *r, FILE *f) {
    int bp = bench_with(r, "pass@1"), be = bench_with(r, "em");
    const ReportArt *e0 = report_eff_eval(r, 0);
    double n;
    if (bp >= 0) {
        fprintf(f, "pass@1: %s", r->bench[bp]);
        if (cell_get(r, bp, 0, "n", &n)) fprintf(f, " (%.0f tasks)", n);
        fputs("; ", f);
    }
    if (e0) fprintf(f, "efficiency: %s; ", e0->bench);
    if (be >= 0) fprintf(f, "EM: %s", r->bench[be]);
    fputc('\n', f);
    for (size_t b = 0; b < r->nbench; b++) {
        if ((int)b == bp || (int)b == be) continue;
        const char *key = NULL;
        double v;
        fprintf(f, "%s:", r->bench[b]);
        for (size_t m = 0; m < r->nmodels; m++)
            if (r->cell[b][m] && report_main_metric(r->cell[b][m]->m, &key, &v))
                fprintf(f, "%s %s %.3f", m ? "," : "", r->models[m], v);
        fprintf(f, " (%s)\n", key ? key : "no headline metric");
    }
}

/* The other artifacts: layers removed, FFN strategy, vocabulary, LoRA loss. */
static const cJSON *prov_of_rule(const Report *r, const char *rule) {
    for (const cJSON *p = r->prov->child; p; p = p->next) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(p, "rule"));
        if (name && !strcmp(name, rule)) return cJSON_GetObjectItem(p, "metrics");
    }
    return NULL;
}

static void txt_pipeline(const Report *r, FILE *f) {
    const cJSON *removed = r->plan.m ? cJSON_GetObjectItem(r->plan.m, "removed") : NULL;
    if (cJSON_IsArray(removed)) {
        fputs("layers removed (original indices, in removal order):", f);
        for (const cJSON *x = removed->child; x; x = x->next) fprintf(f, " %d", x->valueint);
        fputs("; ", f);
    }
    const char *strategy = r->mask.m ? cJSON_GetStringValue(cJSON_GetObjectItem(r->mask.m, "strategy")) : NULL;
    if (strategy) fprintf(f, "FFN strategy: %s; ", strategy);
    const cJSON *v = prov_of_rule(r, "prune_vocab");
    double a, b;
    if (v && report_get(v, "vocab_before", 0, &a) && report_get(v, "vocab_after", 0, &b))
        fprintf(f, "vocabulary %.0f -> %.0f; ", a, b);
    if (r->nloss) fprintf(f, "LoRA loss %.4g -> %.4g over %zu steps", r->loss[0], r->loss[r->nloss - 1], r->nloss);
    fputc('\n', f);
}

static void txt_deltas(const Report *r, FILE *f) {
    for (size_t b = 0; b < r->nbench; b++)
        for (size_t k = 0; k < N_METRICS; k++) {
            double base, v, x;
            int okb = r->cell[b][0] && report_get(r->cell[b][0]->m, METRICS[k], 0, &base);
            if (!okb) continue;
            fprintf(f, "%s%s%s\n", r->bench[b], *r->bench[b] ? " " : "", METRICS[k]);
            for (size_t m = 0; m < r->nmodels; m++) {
                if (!cell_get(r, (int)b, m, METRICS[k], &v)) continue;
                fprintf(f, "  %-16s %14.6g  delta %+12.6g", r->models[m], v, v - base);
                if (pct(v, 1, base, 1, &x)) fprintf(f, "  %7.1f%%", x);
                fputc('\n', f);
            }
        }
}

int report_write_txt(const Report *r, FILE *f) {
    txt_headline(r, f);
    txt_summary(r, f);
    if (r->plan.m || r->mask.m || r->nloss) txt_pipeline(r, f);
    fputc('\n', f);
    txt_deltas(r, f);
    return ferror(f) ? -1 : 0;
}

/* ---- report.json -------------------------------------------------------------------- */

static cJSON *rows(const Report *r, size_t b, const char *key, int eff) {
    const ReportArt *base = eff ? report_eff_eval(r, 0) : r->cell[b][0];
    double bv, v, x;
    if (!base || !report_get(base->m, key, eff, &bv)) return NULL;
    cJSON *arr = cJSON_CreateArray();
    for (size_t m = 0; m < r->nmodels; m++) {
        const ReportArt *a = eff ? report_eff_eval(r, m) : r->cell[b][m];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", r->models[m]);
        if (a && report_get(a->m, key, eff, &v)) {
            cJSON_AddNumberToObject(o, "value", v);
            cJSON_AddNumberToObject(o, "delta", v - bv);
            if (pct(v, 1, bv, 1, &x)) cJSON_AddNumberToObject(o, "retained_pct", x);
            if (a->key[0]) cJSON_AddStringToObject(o, "key", a->key);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

cJSON *report_json(const Report *r) {
    cJSON *j = cJSON_CreateObject(), *names = cJSON_AddArrayToObject(j, "models");
    for (size_t i = 0; i < r->nmodels; i++) cJSON_AddItemToArray(names, cJSON_CreateString(r->models[i]));
    cJSON *bn = cJSON_AddArrayToObject(j, "benchmarks");
    for (size_t i = 0; i < r->nbench; i++) cJSON_AddItemToArray(bn, cJSON_CreateString(r->bench[i]));
    cJSON *mt = cJSON_AddObjectToObject(j, "metrics"), *ef = cJSON_AddObjectToObject(j, "efficiency");
    for (size_t b = 0; b < r->nbench; b++) {
        cJSON *g = cJSON_AddObjectToObject(mt, r->bench[b]);
        for (size_t k = 0; k < N_METRICS; k++) {
            cJSON *x = rows(r, b, METRICS[k], 0);
            if (x) cJSON_AddItemToObject(g, METRICS[k], x);
        }
    }
    for (size_t k = 0; k < N_EFF; k++) {
        cJSON *x = rows(r, 0, EFF[k].key, 1);
        if (x) cJSON_AddItemToObject(ef, EFF[k].key, x);
    }
    return j;
}

/* ---- HTML ------------------------------------------------------------------------------ */

/* A <td> with v / scale (linked to a's metrics.json) and, when with_pct,
 * v as a % of the baseline's base in brackets. */
static void html_pct_cell(FILE *f, const ReportArt *a, int ok, double v, double scale, int okb,
                          double base, int with_pct) {
    double x = 0;
    fputs("<td>", f);
    report_cell(f, a, "metrics.json", ok, v / scale);
    if (with_pct && pct(v, ok, base, okb, &x)) fprintf(f, " <span class=\"ret\">(%.1f%%)</span>", x);
    fputs("</td>", f);
}

/* Table 2/3: one column per benchmark (its headline metric). */
static void html_effectiveness(const Report *r, FILE *f) {
    fputs("<h2 id=\"table-effectiveness\">Effectiveness (paper Tables 2/3)</h2>\n"
          "<p>Each benchmark's headline metric (pass@1 for code generation, BLEU-4 for CoT, "
          "exact match for CRUXEval-O); in brackets the % of the baseline (", f);
    eval_html_escape(f, r->models[0]);
    fputs(") retained.</p>\n<table><tr><th>model</th>", f);
    const char *keys[REPORT_MAX_BENCH] = {0};
    for (size_t b = 0; b < r->nbench; b++) {
        double v;
        for (size_t m = 0; m < r->nmodels && !keys[b]; m++)
            if (r->cell[b][m]) report_main_metric(r->cell[b][m]->m, &keys[b], &v);
        fputs("<th>", f);
        eval_html_escape(f, *r->bench[b] ? r->bench[b] : "benchmark");
        fprintf(f, " %s</th>", keys[b] ? keys[b] : "");
    }
    fputs("</tr>\n", f);
    for (size_t m = 0; m < r->nmodels; m++) {
        fputs("<tr><td>", f);
        eval_html_escape(f, r->models[m]);
        fputs("</td>", f);
        for (size_t b = 0; b < r->nbench; b++) {
            double v = 0, base = 0;
            int ok = keys[b] && cell_get(r, (int)b, m, keys[b], &v);
            int okb = keys[b] && cell_get(r, (int)b, 0, keys[b], &base);
            html_pct_cell(f, r->cell[b][m], ok, v, 1, okb, base, m > 0);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* Table 4: efficiency of each model's eval on its first benchmark. */
static void html_efficiency(const Report *r, FILE *f) {
    const ReportArt *e0 = report_eff_eval(r, 0);
    if (!e0) return;
    fputs("<h2 id=\"table-efficiency\">Efficiency (paper Table 4)</h2>\n<p>Measured while evaluating ", f);
    eval_html_escape(f, *e0->bench ? e0->bench : "the benchmark");
    const char *src = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(e0->m, "efficiency"), "energy_source"));
    fputs(" (energy: ", f);
    eval_html_escape(f, src ? src : "unknown");
    fputs("); in brackets the % of the baseline.</p>\n<table><tr><th>model</th>", f);
    for (size_t k = 0; k < N_EFF; k++) fprintf(f, "<th>%s</th>", EFF[k].title);
    fputs("</tr>\n", f);
    for (size_t m = 0; m < r->nmodels; m++) {
        const ReportArt *e = report_eff_eval(r, m);
        fputs("<tr><td>", f);
        eval_html_escape(f, r->models[m]);
        fputs("</td>", f);
        for (size_t k = 0; k < N_EFF; k++) {
            double v = 0, base = 0;
            int ok = e && report_get(e->m, EFF[k].key, 1, &v), okb = report_get(e0->m, EFF[k].key, 1, &base);
            html_pct_cell(f, e, ok, v, EFF[k].scale, okb, base, m > 0);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* Every metric of every benchmark: value, delta, % retained, and a chart. */
static void html_deltas(const Report *r, FILE *f) {
    fputs("<h2 id=\"deltas\">Per-benchmark deltas</h2>\n", f);
    for (size_t b = 0; b < r->nbench; b++)
        for (size_t k = 0; k < N_METRICS; k++) {
            double base, v[REPORT_MAX_MODELS], x = 0;
            if (!cell_get(r, (int)b, 0, METRICS[k], &base)) continue;
            char title[256];
            snprintf(title, sizeof title, "%s%s%s", r->bench[b], *r->bench[b] ? " " : "", METRICS[k]);
            fputs("<h3>", f);
            eval_html_escape(f, title);
            fputs("</h3>\n<table><tr><th>model</th><th>value</th><th>delta</th><th>% retained</th></tr>\n", f);
            for (size_t m = 0; m < r->nmodels; m++) {
                int ok = cell_get(r, (int)b, m, METRICS[k], &v[m]);
                if (!ok) v[m] = NAN;
                fputs("<tr><td>", f);
                eval_html_escape(f, r->models[m]);
                fputs("</td><td>", f);
                report_cell(f, r->cell[b][m], "metrics.json", ok, v[m]);
                if (ok) fprintf(f, "</td><td>%+.6g</td><td>", v[m] - base);
                else fputs("</td><td>-</td><td>", f);
                if (pct(v[m], ok, base, 1, &x)) fprintf(f, "%.1f%%", x);
                fputs("</td></tr>\n", f);
            }
            fputs("</table>\n", f);
            report_svg_bars(f, title, r->nmodels, (const char *const *)r->models, v, -1);
        }
}

static void html_headline(const Report *r, FILE *f) {
    fputs("<h2 id=\"headline\">Headline</h2>\n<pre class=\"headline\">", f);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (m) {
        txt_headline(r, m);
        txt_summary(r, m);
        if (r->plan.m || r->mask.m || r->nloss) txt_pipeline(r, m);
        fclose(m);
        eval_html_escape(f, buf);
    }
    free(buf);
    fputs("</pre>\n", f);
}

void report_html_tables(const Report *r, FILE *f) {
    html_headline(r, f);
    html_effectiveness(r, f);
    html_efficiency(r, f);
    html_deltas(r, f);
}
