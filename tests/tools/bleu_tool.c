/* tests/tools/bleu_tool.c: corpus BLEU of a JSON fixture, for
 * tests/test_bleu.py.  Input file: {"hyps": [str...], "refs": [[str...]...]};
 * output: {"bleu": [b1, b2, b3, b4], "testlen": T, "reflen": R} with full
 * double precision. */
#include "eval/bleu.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: bleu_tool FIXTURE.json\n"); return 2; }
    char *text;
    if (flab_read_file(argv[1], &text, NULL) != 0) { fprintf(stderr, "%s\n", flab_errmsg()); return 2; }
    cJSON *doc = cJSON_Parse(text);
    free(text);
    const cJSON *hyps = cJSON_GetObjectItem(doc, "hyps"), *refs = cJSON_GetObjectItem(doc, "refs");
    int n = cJSON_GetArraySize(hyps);
    if (!doc || !cJSON_IsArray(hyps) || !cJSON_IsArray(refs) || cJSON_GetArraySize(refs) != n) {
        fprintf(stderr, "%s: want {\"hyps\": [...], \"refs\": [[...], ...]} of equal length\n", argv[1]);
        cJSON_Delete(doc);
        return 2;
    }
    const char **h = calloc((size_t)n + 1, sizeof *h);
    const char ***r = calloc((size_t)n + 1, sizeof *r);
    size_t *nr = calloc((size_t)n + 1, sizeof *nr);
    for (int i = 0; i < n; i++) {
        h[i] = cJSON_GetArrayItem(hyps, i)->valuestring;
        const cJSON *list = cJSON_GetArrayItem(refs, i);
        nr[i] = (size_t)cJSON_GetArraySize(list);
        r[i] = calloc(nr[i] + 1, sizeof *r[i]);
        for (size_t k = 0; k < nr[i]; k++) r[i][k] = cJSON_GetArrayItem(list, (int)k)->valuestring;
    }
    EvalBleu b;
    eval_bleu_corpus(h, (const char *const *const *)r, nr, (size_t)n, &b);
    printf("{\"bleu\": [%.17g, %.17g, %.17g, %.17g], \"testlen\": %.17g, \"reflen\": %.17g}\n",
           b.bleu[0], b.bleu[1], b.bleu[2], b.bleu[3], b.testlen, b.reflen);
    for (int i = 0; i < n; i++) free(r[i]);
    free(r); free(h); free(nr);
    cJSON_Delete(doc);
    return 0;
}
