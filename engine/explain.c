/* engine/explain.c: diff of explain records (see explain.h). */
#include "engine/explain.h"
#include "engine/keys.h"
#include "util/error.h"
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_reason(Explanation *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_reason(Explanation *e, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    e->reasons = flab_xrealloc(e->reasons, (e->nreasons + 1) * sizeof *e->reasons);
    e->reasons[e->nreasons++] = flab_xstrdup(buf);
}

static const char *jstr(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Values can be long multi-line scripts: show the part that differs, with
 * 24 characters of context, on one line ("\n" for newlines). */
#define CONTEXT 24
static void snippet(const char *v, size_t from, size_t to, char *buf, size_t size) {
    size_t n = 0, len = strlen(v);
    if (from > 0 && n + 3 < size) { memcpy(buf, "...", 3); n = 3; }
    for (size_t i = from; i < to && n + 6 < size; i++) {
        if (v[i] == '\n') { buf[n++] = '\\'; buf[n++] = 'n'; }
        else buf[n++] = v[i];
    }
    if (to < len && n + 4 < size) { memcpy(buf + n, "...", 3); n += 3; }
    buf[n] = 0;
}

static void show_change(const char *a, const char *b, char *ba, char *bb, size_t size) {
    size_t la = strlen(a), lb = strlen(b), pre = 0, suf = 0;
    while (pre < la && pre < lb && a[pre] == b[pre]) pre++;
    while (suf < la - pre && suf < lb - pre && a[la - 1 - suf] == b[lb - 1 - suf]) suf++;
    size_t from = pre > CONTEXT ? pre - CONTEXT : 0;
    size_t ta = la - suf + CONTEXT < la ? la - suf + CONTEXT : la;
    size_t tb = lb - suf + CONTEXT < lb ? lb - suf + CONTEXT : lb;
    snippet(a, from, ta, ba, size);
    snippet(b, from, tb, bb, size);
}

static void diff_params(Explanation *e, const cJSON *oldp, const cJSON *newp) {
    char a[400], b[400];
    const cJSON *it;
    cJSON_ArrayForEach(it, newp) {
        const char *ov = jstr(oldp, it->string);
        if (!ov) add_reason(e, "parameter '%s' is new", it->string);
        else if (strcmp(ov, it->valuestring)) {
            show_change(ov, it->valuestring, a, b, sizeof a);
            add_reason(e, "parameter '%s' changed: '%s' -> '%s'", it->string, a, b);
        }
    }
    cJSON_ArrayForEach(it, oldp)
        if (!cJSON_GetObjectItemCaseSensitive(newp, it->string))
            add_reason(e, "parameter '%s' was removed", it->string);
}

/* Inputs are matched by (param, ref); a changed list is already reported as
 * a parameter change, so here only contents and dependency keys count. */
static void diff_inputs(Explanation *e, const cJSON *oldi, const cJSON *newi) {
    const cJSON *n, *o;
    cJSON_ArrayForEach(n, newi) {
        const char *param = jstr(n, "param"), *ref = jstr(n, "ref"), *key = jstr(n, "key");
        if (!param || !ref || !key) continue;
        cJSON_ArrayForEach(o, oldi) {
            const char *op = jstr(o, "param"), *orf = jstr(o, "ref"), *ok = jstr(o, "key");
            if (!op || !orf || !ok || strcmp(op, param) || strcmp(orf, ref)) continue;
            if (strcmp(ok, key)) {
                if (ref[0] == '@')
                    add_reason(e, "input %s (parameter '%s') changed: key %.12s -> %.12s "
                               "(see flab explain %s)", ref, param, ok, key, ref + 1);
                else
                    add_reason(e, "input '%s' (parameter '%s') changed content: %.12s -> %.12s",
                               ref, param, ok, key);
            }
            break;
        }
    }
}

static void diff_records(Explanation *e, const cJSON *old, const cJSON *now) {
    const char *or = jstr(old, "rule"), *nr = jstr(now, "rule");
    if (!or || !nr) { add_reason(e, "the last build's record is unreadable"); return; }
    if (strcmp(or, nr)) { add_reason(e, "rule changed: %s -> %s", or, nr); return; }
    const cJSON *ov = cJSON_GetObjectItemCaseSensitive(old, "version");
    const cJSON *nv = cJSON_GetObjectItemCaseSensitive(now, "version");
    if (cJSON_IsNumber(ov) && cJSON_IsNumber(nv) && ov->valueint != nv->valueint)
        add_reason(e, "rule %s version changed: %d -> %d", nr, ov->valueint, nv->valueint);
    diff_params(e, cJSON_GetObjectItemCaseSensitive(old, "params"),
                cJSON_GetObjectItemCaseSensitive(now, "params"));
    diff_inputs(e, cJSON_GetObjectItemCaseSensitive(old, "inputs"),
                cJSON_GetObjectItemCaseSensitive(now, "inputs"));
}

int explain_target(const Graph *g, const Target *t, const EngineStore *s, Explanation *out) {
    memset(out, 0, sizeof *out);
    int has = s->has_key(s->ud, t->key);
    if (has < 0) return -1;
    char *json = NULL;
    int r = s->last_build(s->ud, t->name, out->last_key, &json);
    if (r < 0) return -1;
    if (!r) out->last_key[0] = 0;
    if (has) { out->state = EXPLAIN_FRESH; free(json); return 0; }
    if (!r) { out->state = EXPLAIN_NEVER; return 0; }
    if (!strcmp(out->last_key, t->key)) { out->state = EXPLAIN_MISSING; free(json); return 0; }
    out->state = EXPLAIN_CHANGED;
    char *now_text = keys_describe(g, t);
    cJSON *old = cJSON_Parse(json ? json : ""), *now = cJSON_Parse(now_text);
    if (old && now) diff_records(out, old, now);
    if (!out->nreasons)
        add_reason(out, "key changed (%.12s -> %.12s) with no recorded difference",
                   out->last_key, t->key);
    cJSON_Delete(old);
    cJSON_Delete(now);
    free(now_text);
    free(json);
    return 0;
}

void explanation_free(Explanation *e) {
    for (size_t i = 0; i < e->nreasons; i++) free(e->reasons[i]);
    free(e->reasons);
    memset(e, 0, sizeof *e);
}

const char *explanation_summary(const Explanation *e) {
    switch (e->state) {
    case EXPLAIN_FRESH: return "fresh";
    case EXPLAIN_NEVER: return "never built";
    case EXPLAIN_MISSING: return "its artifact is no longer in the cache (gc or verify removed it)";
    case EXPLAIN_CHANGED: return e->nreasons ? e->reasons[0] : "key changed";
    }
    return "?";
}
