/* rules/eval_html.c: see eval_html.h. */
#include "rules/eval_html.h"
#include "util/error.h"
#include <string.h>

void eval_html_escape(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void write_kv_table(FILE *f, const cJSON *obj) {
    fputs("<table>\n", f);
    for (const cJSON *it = obj ? obj->child : NULL; it; it = it->next) {
        if (cJSON_IsObject(it) || cJSON_IsArray(it)) continue;
        fputs("<tr><th>", f);
        eval_html_escape(f, it->string);
        fputs("</th><td>", f);
        if (cJSON_IsNumber(it)) fprintf(f, "%.6g", it->valuedouble);
        else if (cJSON_IsString(it)) eval_html_escape(f, it->valuestring);
        else fputs(cJSON_IsTrue(it) ? "true" : "false", f);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void write_failures(FILE *f, const cJSON *samples) {
    int n = 0;
    fputs("<h2>Failed samples</h2>\n<table>\n<tr><th>id</th><th>reason</th><th>completion</th></tr>\n", f);
    for (const cJSON *s = samples ? samples->child : NULL; s; s = s->next) {
        if (cJSON_IsTrue(cJSON_GetObjectItem(s, "passed"))) continue;
        n++;
        fputs("<tr><td>", f);
        eval_html_escape(f, cJSON_GetStringValue(cJSON_GetObjectItem(s, "id")));
        fputs("</td><td>", f);
        eval_html_escape(f, cJSON_GetStringValue(cJSON_GetObjectItem(s, "reason")));
        fputs("</td><td><pre>", f);
        eval_html_escape(f, cJSON_GetStringValue(cJSON_GetObjectItem(s, "completion")));
        fputs("</pre></td></tr>\n", f);
    }
    fputs("</table>\n", f);
    fprintf(f, "<p>%d failed samples.</p>\n", n);
}

int eval_html_write(const char *path, const char *title, const cJSON *metrics,
                    const cJSON *samples) {
    FILE *f = fopen(path, "w");
    if (!f) return flab_fail_errno("%s", path);
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", f);
    eval_html_escape(f, title);
    fputs("</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
          "pre{margin:0;white-space:pre-wrap}</style></head><body>\n<h1>", f);
    eval_html_escape(f, title);
    fputs("</h1>\n<h2>Metrics</h2>\n", f);
    write_kv_table(f, metrics);
    fputs("<h2>Efficiency</h2>\n", f);
    write_kv_table(f, cJSON_GetObjectItem(metrics, "efficiency"));
    write_failures(f, samples);
    fputs("</body></html>\n", f);
    if (fclose(f)) return flab_fail_errno("%s", path);
    return 0;
}
