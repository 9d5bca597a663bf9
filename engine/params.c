/* engine/params.c: parameter validation, normalisation and suggestions. */
#include "engine/params.h"
#include "util/error.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int has_range(const RuleParam *p) { return p->min <= p->max; }

static int normalise_int(const RuleParam *p, const char *s, char **out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno)
        return flab_fail("parameter '%s' must be an integer, got '%s'", p->name, s);
    if (has_range(p) && (v < p->min || v > p->max))
        return flab_fail("parameter '%s' = %lld is out of range [%.17g, %.17g]",
                         p->name, v, p->min, p->max);
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    *out = flab_xstrdup(buf);
    return 0;
}

static int normalise_float(const RuleParam *p, const char *s, char **out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v))
        return flab_fail("parameter '%s' must be a number, got '%s'", p->name, s);
    if (has_range(p) && (v < p->min || v > p->max))
        return flab_fail("parameter '%s' = %s is out of range [%.17g, %.17g]",
                         p->name, s, p->min, p->max);
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    *out = flab_xstrdup(buf);
    return 0;
}

static int normalise_bool(const RuleParam *p, const char *s, char **out) {
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) { *out = flab_xstrdup("true"); return 0; }
        if (!strcasecmp(s, no[i])) { *out = flab_xstrdup("false"); return 0; }
    }
    return flab_fail("parameter '%s' must be true or false, got '%s'", p->name, s);
}

static int in_choices(const char *choices, const char *s) {
    size_t n = strlen(s);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && !strncmp(c, s, n)) return 1;
        c += len + (bar ? 1 : 0);
    }
    return 0;
}

static int normalise_inputs(const RuleParam *p, const char *s, char **out) {
    char **items;
    size_t n = param_split(s, &items), len = 0;
    if (p->type != RULE_PATHS && n > 1) {
        param_free_list(items, n);
        return flab_fail("parameter '%s' takes one %s, got %zu", p->name,
                         p->type == RULE_TARGET ? "@target" : "path", n);
    }
    for (size_t i = 0; i < n; i++) {
        if (p->type == RULE_TARGET && items[i][0] != '@') {
            param_free_list(items, n);
            return flab_fail("parameter '%s' must be an @target, got '%s'", p->name, s);
        }
        len += strlen(items[i]) + 1;
    }
    char *buf = flab_xmalloc(len + 1), *w = buf;
    for (size_t i = 0; i < n; i++) w += sprintf(w, i ? " %s" : "%s", items[i]);
    *w = 0;
    param_free_list(items, n);
    *out = buf;
    return 0;
}

int param_normalise(const RuleParam *p, const char *text, char **out) {
    while (isspace((unsigned char)*text)) text++;
    size_t n = strlen(text);
    while (n && isspace((unsigned char)text[n - 1])) n--;
    char *s = strndup(text, n);
    int r;
    switch (p->type) {
    case RULE_INT: r = normalise_int(p, s, out); break;
    case RULE_FLOAT: r = normalise_float(p, s, out); break;
    case RULE_BOOL: r = normalise_bool(p, s, out); break;
    case RULE_STRING:
        if (p->choices && !in_choices(p->choices, s))
            r = flab_fail("parameter '%s' must be one of %s, got '%s'", p->name, p->choices, s);
        else { *out = s; s = NULL; r = 0; }
        break;
    default: r = normalise_inputs(p, s, out); break;
    }
    free(s);
    return r;
}

size_t param_split(const char *text, char ***items) {
    size_t n = 0, cap = 4;
    char **v = flab_xmalloc(cap * sizeof *v);
    for (const char *s = text; *s;) {
        while (isspace((unsigned char)*s)) s++;
        if (!*s) break;
        const char *e = s;
        while (*e && !isspace((unsigned char)*e)) e++;
        if (n == cap) v = flab_xrealloc(v, (cap *= 2) * sizeof *v);
        v[n++] = strndup(s, (size_t)(e - s));
        s = e;
    }
    *items = v;
    return n;
}

void param_free_list(char **items, size_t n) {
    for (size_t i = 0; i < n; i++) free(items[i]);
    free(items);
}

/* ---- suggestions ----------------------------------------------------------- */

static size_t levenshtein(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = flab_xmalloc((lb + 1) * sizeof *row);
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}

const char *suggest_closest(const char *name, const char *const *cands, size_t n) {
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = levenshtein(name, cands[i]);
        if (d < best_d) { best_d = d; best = cands[i]; }
    }
    size_t limit = strlen(name) / 3 + 1;   /* a typo, not a different word */
    if (limit < 2) limit = 2;
    return best && best_d <= limit ? best : NULL;
}
