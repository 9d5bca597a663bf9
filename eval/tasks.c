/* eval/tasks.c: from a model completion to what is scored (see tasks.h):
 * stop-string cutting, codegen program assembly, output-prediction prompts,
 * answers, exact match and the execution-match program. */
#include "eval/tasks.h"
#include "eval/strbuf.h"
#include "util/error.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const eval_default_stops[] = {"\nclass", "\ndef", "\n#", "\nif", "\nprint"};
const size_t eval_default_n_stops = sizeof eval_default_stops / sizeof eval_default_stops[0];

size_t eval_cut_at_stops(const char *completion, const char *const *stops, size_t n_stops) {
    size_t cut = strlen(completion);
    for (size_t i = 0; i < n_stops; i++) {
        if (!stops[i] || !*stops[i]) continue;
        const char *hit = strstr(completion, stops[i]);
        if (hit && (size_t)(hit - completion) < cut) cut = (size_t)(hit - completion);
    }
    return cut;
}

char *eval_cut_completion(const char *completion, const char *const *stops, size_t n_stops) {
    size_t n = eval_cut_at_stops(completion, stops, n_stops);
    StrBuf b = {0};
    sb_appendn(&b, completion, n);
    return sb_take(&b);
}

char *eval_codegen_program(const EvalCodegenTask *t, const char *completion) {
    StrBuf b = {0};
    sb_append(&b, t->prompt);
    sb_append(&b, completion);
    sb_append(&b, "\n");
    sb_append(&b, t->test);
    sb_printf(&b, "\ncheck(%s)\n", t->entry_point);
    return sb_take(&b);
}

char *eval_output_prompt(const EvalOutputTask *t) {
    StrBuf b = {0};
    sb_append(&b, t->code);
    sb_printf(&b, "\nassert %s(%s) == ", t->entry_point, t->input);
    return sb_take(&b);
}

/* [*start, *end) of s without leading and trailing ASCII whitespace. */
static void trim(const char *s, size_t len, size_t *start, size_t *end) {
    size_t a = 0, z = len;
    while (a < z && isspace((unsigned char)s[a])) a++;
    while (z > a && isspace((unsigned char)s[z - 1])) z--;
    *start = a;
    *end = z;
}

char *eval_output_answer(const char *completion) {
    size_t len = strcspn(completion, "\n"), a, z;
    trim(completion, len, &a, &z);
    StrBuf b = {0};
    sb_appendn(&b, completion + a, z - a);
    return sb_take(&b);
}

int eval_output_exact_match(const char *prediction, const char *gold) {
    size_t pa, pz, ga, gz;
    trim(prediction, strlen(prediction), &pa, &pz);
    trim(gold, strlen(gold), &ga, &gz);
    if (pz - pa != gz - ga) return 0;
    for (size_t i = 0; i < pz - pa; i++) {
        char p = prediction[pa + i] == '"' ? '\'' : prediction[pa + i];
        char g = gold[ga + i] == '"' ? '\'' : gold[ga + i];
        if (p != g) return 0;
    }
    return 1;
}

char *eval_python_literal(const char *s) {
    StrBuf b = {0};
    sb_putc(&b, '\'');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '\\': sb_append(&b, "\\\\"); break;
        case '\'': sb_append(&b, "\\'"); break;
        case '\n': sb_append(&b, "\\n"); break;
        case '\r': sb_append(&b, "\\r"); break;
        case '\t': sb_append(&b, "\\t"); break;
        default:
            if (*p < 0x20 || *p == 0x7f) sb_printf(&b, "\\x%02x", *p);
            else sb_putc(&b, (char)*p);
        }
    }
    sb_putc(&b, '\'');
    return sb_take(&b);
}

char *eval_output_exec_program(const EvalOutputTask *t, const char *prediction) {
    char *p = eval_python_literal(prediction), *g = eval_python_literal(t->output);
    char *code = eval_python_literal(t->code);
    StrBuf b = {0};
    sb_printf(&b, "_flab_g = {'__name__': '__flab_code__'}\n"
                  "try:\n    exec(%s, _flab_g)\nexcept BaseException:\n    pass\n"
                  "assert eval(%s, _flab_g) == eval(%s, _flab_g)\n", code, p, g);
    free(p);
    free(g);
    free(code);
    return sb_take(&b);
}

char *eval_output_gold_program(const EvalOutputTask *t) {
    StrBuf b = {0};
    sb_append(&b, t->code);
    sb_printf(&b, "\nassert %s(%s) == %s\n", t->entry_point, t->input, t->output);
    return sb_take(&b);
}
