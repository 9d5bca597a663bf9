/* rules/eval_html.h: the self-contained report.html of an eval artifact
 * (headline numbers, efficiency, per-sample failures; no scripts, no
 * network).  Text is HTML-escaped. */
#ifndef FLAB_RULES_EVAL_HTML_H
#define FLAB_RULES_EVAL_HTML_H
#include <cjson/cJSON.h>
#include <stdio.h>

void eval_html_escape(FILE *f, const char *s);
/* metrics: the metrics.json object; samples: array of sample objects
 * (id, prompt, completion, passed, reason). */
int eval_html_write(const char *path, const char *title, const cJSON *metrics,
                    const cJSON *samples);
#endif
