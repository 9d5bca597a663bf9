/* rules/lora_data.c: loading and tokenizing lora_train examples (see
 * rules/lora_data.h). */
#include "rules/lora_data.h"
#include "model/tokenizer.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int encode(flab_tokenizer *tok, const char *s, int32_t **ids, size_t *n) {
    flab_tok_encode_opts o = {0, 0};
    return flab_tok_encode(tok, s, strlen(s), o, ids, n);
}

/* One JSON line into an example; 1 = added, 0 = skipped, -1 = error. */
static int add_line(LoraData *d, flab_tokenizer *tok, int32_t eos, const char *line,
                    const char *file, int lineno, int max_len) {
    cJSON *j = cJSON_Parse(line);
    if (!j) return flab_fail("%s:%d: not a JSON object", file, lineno);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "target");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(j, "canonical_solution");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "source");
    if (!cJSON_IsString(p) || !cJSON_IsString(t)) {
        cJSON_Delete(j);
        return flab_fail("%s:%d: needs string fields \"prompt\" and \"target\" (or \"canonical_solution\")",
                         file, lineno);
    }
    int32_t *pi = NULL, *ti = NULL;
    size_t np = 0, nt = 0;
    if (encode(tok, p->valuestring, &pi, &np) || encode(tok, t->valuestring, &ti, &nt)) {
        flab_error_prefix("%s:%d: ", file, lineno);
        free(pi);
        cJSON_Delete(j);
        return -1;
    }
    int from_model = cJSON_IsString(src) && !strcmp(src->valuestring, "model");
    cJSON_Delete(j);
    size_t len = np + nt + 1;
    if (len > (size_t)max_len) len = (size_t)max_len;
    if (np < 1 || len <= np) { free(pi); free(ti); return 0; }   /* no target token left */
    LoraExample e = {flab_xmalloc(len * sizeof(int32_t)), (int)len, (int)np};
    memcpy(e.ids, pi, np * sizeof(int32_t));
    for (size_t i = np; i < len; i++) e.ids[i] = i - np < nt ? ti[i - np] : eos;
    free(pi);
    free(ti);
    d->ex = flab_xrealloc(d->ex, (d->n + 1) * sizeof *d->ex);
    d->ex[d->n++] = e;
    d->n_from_model += from_model;
    return 1;
}

int lora_data_load(const char *path, const char *tok_dir, int max_len, LoraData *d,
                   size_t *skipped) {
    memset(d, 0, sizeof *d);
    *skipped = 0;
    char file[PATH_MAX];
    struct stat sb;
    if (stat(path, &sb)) return flab_fail_errno("%s", path);
    snprintf(file, sizeof file, S_ISDIR(sb.st_mode) ? "%s/train.jsonl" : "%s", path);
    char *txt = NULL;
    if (flab_read_file(file, &txt, NULL)) return -1;
    flab_tokenizer *tok = flab_tok_load_dir(tok_dir);
    if (!tok) { free(txt); return -1; }
    int32_t eos = flab_tok_eos(tok);
    int rc = 0, lineno = 0;
    if (eos < 0) rc = flab_fail("%s: the tokenizer has no eos token", tok_dir);
    for (char *save = NULL, *line = strtok_r(txt, "\n", &save); !rc && line;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (!line[strspn(line, " \t\r")]) continue;
        int r = add_line(d, tok, eos, line, file, lineno, max_len);
        if (r < 0) rc = -1;
        else if (!r) (*skipped)++;
    }
    if (!rc && !d->n) rc = flab_fail("%s: no usable examples", file);
    flab_tok_free(tok);
    free(txt);
    if (rc) lora_data_free(d);
    return rc;
}

void lora_data_free(LoraData *d) {
    for (size_t i = 0; i < d->n; i++) free(d->ex[i].ids);
    free(d->ex);
    memset(d, 0, sizeof *d);
}
