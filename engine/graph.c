/* engine/graph.c: flabfile -> validated target graph (see graph.h). */
#include "engine/graph.h"
#include "engine/params.h"
#include "engine/slurm_resources.h"
#include "rules/rule_priv.h"
#include "util/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <glob.h>
#include <string.h>
#include <sys/stat.h>

static const char *const global_keys[] = {"cache", "remote", "push", "executor"};

/* ---- [flab] settings --------------------------------------------------------- */

static int resolve_cache_dir(Graph *g) {
    const FfSection *gl = &g->ff->global;
    char where[600];
    for (size_t i = 0; i < gl->n; i++) {
        const FfEntry *e = &gl->entries[i];
        size_t k = 0;
        while (k < 4 && strcmp(e->key, global_keys[k])) k++;
        if (k == 4 && slurm_is_resource(e->key)) {   /* a default for every target */
            if (slurm_resource_check(e->key, e->value) == 0) continue;
            flab_error_prefix("%s: [flab]: ", ff_where(g->ff, e->line, where, sizeof where));
            return -1;
        }
        if (k == 4) {
            const char *s = suggest_closest(e->key, global_keys, 4);
            return flab_fail("%s: unknown setting '%s' in [flab]%s%s%s",
                             ff_where(g->ff, e->line, where, sizeof where), e->key,
                             s ? " (did you mean '" : " (known: cache, remote, push, executor)",
                             s ? s : "", s ? "'?)" : "");
        }
    }
    /* FLAB_CACHE (relative to the cwd) > [flab] cache (relative to the
     * flabfile) > .flab beside the flabfile. */
    const char *env = getenv("FLAB_CACHE");
    const FfEntry *c = ff_section_get(gl, "cache");
    const char *dir = c && *c->value ? c->value : ".flab";
    char *base = NULL;
    if (env && *env) { dir = env; base = realpath(".", NULL); }
    else base = flab_xstrdup(g->ff->dir);
    if (!base) return flab_fail_errno("cannot resolve the current directory");
    size_t n = strlen(base) + strlen(dir) + 2;
    g->cache_dir = flab_xmalloc(n);
    if (dir[0] == '/') snprintf(g->cache_dir, n, "%s", dir);
    else snprintf(g->cache_dir, n, "%s/%s", base, dir);
    free(base);
    return 0;
}

/* ---- names -------------------------------------------------------------------- */

static const Graph *sort_graph;
static int by_name(const void *a, const void *b) {
    return strcmp(sort_graph->targets[*(const int *)a].name,
                  sort_graph->targets[*(const int *)b].name);
}

int graph_find(const Graph *g, const char *name) {
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(g->targets[g->sorted[mid]].name, name);
        if (!c) return g->sorted[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return -1;
}

static const char *suggest_target(const Graph *g, const char *name) {
    const char **names = flab_xmalloc((g->n + 1) * sizeof *names);
    for (size_t i = 0; i < g->n; i++) names[i] = g->targets[i].name;
    const char *s = suggest_closest(name, names, g->n);
    free(names);
    return s;
}

/* ---- one target: rule and parameters ------------------------------------------ */

static int find_rule(Graph *g, Target *t, const FfSection *s) {
    char where[600];
    const FfEntry *e = ff_section_get(s, "rule");
    if (!e) return flab_fail("%s: target [%s] has no 'rule = ...'",
                             ff_where(g->ff, s->line, where, sizeof where), s->name);
    t->rule = rule_find(e->value);
    if (t->rule) return 0;
    const Rule *const *all = rule_all();
    size_t n = 0;
    while (all[n]) n++;
    const char **names = flab_xmalloc((n + 1) * sizeof *names);
    for (size_t i = 0; i < n; i++) names[i] = all[i]->name;
    const char *sug = suggest_closest(e->value, names, n);
    flab_fail("%s: unknown rule '%s' for target [%s]%s%s%s",
              ff_where(g->ff, e->line, where, sizeof where), e->value, s->name,
              sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
    free(names);
    return -1;
}

static int unknown_param(Graph *g, const Target *t, const FfEntry *e) {
    char where[600];
    size_t n = t->nparams;
    const char **names = flab_xmalloc((n + 1) * sizeof *names);
    for (size_t i = 0; i < n; i++) names[i] = t->rule->params[i].name;
    const char *sug = suggest_closest(e->key, names, n);
    flab_fail("%s: unknown parameter '%s' for rule %s in [%s]%s%s%s",
              ff_where(g->ff, e->line, where, sizeof where), e->key, t->rule->name,
              t->name, sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
    free(names);
    return -1;
}

static int set_params(Graph *g, Target *t, const FfSection *s) {
    char where[600];
    t->nparams = rule_nparams(t->rule);
    t->values = flab_xcalloc(t->nparams + 1, sizeof *t->values);
    t->value_lines = flab_xcalloc(t->nparams + 1, sizeof *t->value_lines);
    for (size_t i = 0; i < s->n; i++) {
        const FfEntry *e = &s->entries[i];
        if (!strcmp(e->key, "rule")) continue;
        int p = rule_param_index(t->rule, e->key);
        if (p < 0 && slurm_is_resource(e->key)) {   /* not a rule parameter: not in the key */
            if (slurm_resource_check(e->key, e->value) == 0) continue;
            flab_error_prefix("%s: [%s]: ", ff_where(g->ff, e->line, where, sizeof where), t->name);
            return -1;
        }
        if (p < 0) return unknown_param(g, t, e);
        if (param_normalise(&t->rule->params[p], e->value, &t->values[p]) < 0) {
            flab_error_prefix("%s: [%s]: ", ff_where(g->ff, e->line, where, sizeof where), t->name);
            return -1;
        }
        t->value_lines[p] = e->line;
    }
    for (size_t p = 0; p < t->nparams; p++) {
        const RuleParam *spec = &t->rule->params[p];
        if (t->values[p]) continue;
        if (!spec->def)
            return flab_fail("%s: target [%s] misses required parameter '%s' of rule %s (%s)",
                             ff_where(g->ff, s->line, where, sizeof where), t->name,
                             spec->name, t->rule->name, spec->doc ? spec->doc : spec->name);
        if (param_normalise(spec, spec->def, &t->values[p]) < 0)
            return flab_fail("rule %s: bad default of '%s': %s", t->rule->name, spec->name,
                             flab_errmsg());
    }
    return 0;
}

static int check_rule(Graph *g, Target *t) {
    if (!t->rule->check) return 0;
    struct RuleCtxPriv priv = {.values = (const char *const *)t->values, .progress_fd = -1};
    RuleCtx ctx = {.rule = t->rule, .target = t->name, .base_dir = g->ff->dir, .priv = &priv};
    if (t->rule->check(&ctx) == 0) return 0;
    char where[600];
    flab_error_prefix("%s: [%s]: ", ff_where(g->ff, t->line, where, sizeof where), t->name);
    return -1;
}

/* ---- inputs ----------------------------------------------------------------- */

static void add_input(Target *t, int param, const char *ref, char *abs, int dep) {
    t->inputs = flab_xrealloc(t->inputs, (t->ninputs + 1) * sizeof *t->inputs);
    t->inputs[t->ninputs++] = (Input){param, flab_xstrdup(ref), abs, dep, ""};
    if (dep < 0) return;
    for (size_t i = 0; i < t->ndeps; i++) if (t->deps[i] == dep) return;
    t->deps = flab_xrealloc(t->deps, (t->ndeps + 1) * sizeof *t->deps);
    t->deps[t->ndeps++] = dep;
}

/* A path input with glob characters (* ? [) that names no existing path is
 * expanded (relative to the flabfile, sorted); every match becomes an input
 * of its own, so the matched files' contents and names enter the key.  A
 * pattern that matches nothing is an error. */
static int resolve_glob(Graph *g, Target *t, int p, const char *ref, const char *abs,
                        const char *where) {
    glob_t gl;
    int r = glob(abs, 0, NULL, &gl);
    if (r != 0) {
        if (r != GLOB_NOMATCH) globfree(&gl);
        return flab_fail("%s: [%s]: input '%s' of parameter '%s' matches no file "
                         "(paths are relative to the flabfile's directory)",
                         where, t->name, ref, t->rule->params[p].name);
    }
    size_t skip = ref[0] == '/' ? 0 : strlen(g->ff->dir) + 1;
    for (size_t i = 0; i < gl.gl_pathc; i++)
        add_input(t, p, gl.gl_pathv[i] + skip, flab_xstrdup(gl.gl_pathv[i]), -1);
    globfree(&gl);
    return 0;
}

static int resolve_one(Graph *g, Target *t, int p, const char *ref) {
    char where[600];
    ff_where(g->ff, t->value_lines[p] ? t->value_lines[p] : t->line, where, sizeof where);
    const char *pname = t->rule->params[p].name;
    if (ref[0] == '@') {
        int dep = graph_find(g, ref + 1);
        if (dep >= 0) { add_input(t, p, ref, NULL, dep); return 0; }
        const char *sug = suggest_target(g, ref + 1);
        return flab_fail("%s: [%s]: parameter '%s' names unknown target %s%s%s%s", where,
                         t->name, pname, ref, sug ? " (did you mean '@" : "",
                         sug ? sug : "", sug ? "'?)" : "");
    }
    size_t n = strlen(g->ff->dir) + strlen(ref) + 2;
    char *abs = flab_xmalloc(n);
    if (ref[0] == '/') snprintf(abs, n, "%s", ref);
    else snprintf(abs, n, "%s/%s", g->ff->dir, ref);
    struct stat st;
    if (stat(abs, &st) < 0 && strpbrk(ref, "*?[")) {
        int r = resolve_glob(g, t, p, ref, abs, where);
        free(abs);
        return r;
    }
    if (stat(abs, &st) < 0) {
        free(abs);
        return flab_fail("%s: [%s]: input '%s' of parameter '%s' does not exist "
                         "(paths are relative to the flabfile's directory)",
                         where, t->name, ref, pname);
    }
    add_input(t, p, ref, abs, -1);
    return 0;
}

static int resolve_inputs(Graph *g, Target *t) {
    for (size_t p = 0; p < t->nparams; p++) {
        if (!rule_type_is_input(t->rule->params[p].type)) continue;
        char **items;
        size_t n = param_split(t->values[p], &items);
        int r = 0;
        for (size_t i = 0; i < n && !r; i++) r = resolve_one(g, t, (int)p, items[i]);
        param_free_list(items, n);
        if (r) return -1;
    }
    return 0;
}

/* ---- order and cycles ---------------------------------------------------------- */

/* Iterative-enough DFS: depth is bounded by the number of targets. */
static int visit(Graph *g, int v, unsigned char *color, int *stack, size_t depth, size_t *norder) {
    color[v] = 1;
    stack[depth] = v;
    const Target *t = &g->targets[v];
    for (size_t i = 0; i < t->ndeps; i++) {
        int d = t->deps[i];
        if (color[d] == 2) continue;
        if (color[d] == 1) {
            size_t start = 0;
            while (stack[start] != d) start++;
            size_t len = 64;
            for (size_t k = start; k <= depth; k++) len += strlen(g->targets[stack[k]].name) + 4;
            char *cyc = flab_xmalloc(len + strlen(g->targets[d].name)), *w = cyc;
            for (size_t k = start; k <= depth; k++) w += sprintf(w, "%s -> ", g->targets[stack[k]].name);
            sprintf(w, "%s", g->targets[d].name);
            char where[600];
            flab_fail("%s: dependency cycle: %s", ff_where(g->ff, g->targets[d].line, where,
                      sizeof where), cyc);
            free(cyc);
            return -1;
        }
        if (visit(g, d, color, stack, depth + 1, norder) < 0) return -1;
    }
    color[v] = 2;
    g->order[(*norder)++] = v;
    return 0;
}

static int topo_sort(Graph *g) {
    unsigned char *color = flab_xcalloc(g->n + 1, 1);
    int *stack = flab_xmalloc((g->n + 1) * sizeof *stack);
    size_t norder = 0;
    int r = 0;
    for (size_t v = 0; v < g->n && !r; v++)
        if (!color[v]) r = visit(g, (int)v, color, stack, 0, &norder);
    free(color);
    free(stack);
    return r;
}

/* ---- entry points ----------------------------------------------------------- */

int graph_build(Flabfile *ff, Graph **out) {
    Graph *g = flab_xcalloc(1, sizeof *g);
    g->ff = ff;
    g->n = ff->ntargets;
    g->targets = flab_xcalloc(g->n + 1, sizeof *g->targets);
    g->order = flab_xmalloc((g->n + 1) * sizeof *g->order);
    g->sorted = flab_xmalloc((g->n + 1) * sizeof *g->sorted);
    int r = resolve_cache_dir(g);
    for (size_t i = 0; i < g->n; i++) {
        g->targets[i].name = flab_xstrdup(ff->targets[i].name);
        g->targets[i].line = ff->targets[i].line;
        g->sorted[i] = (int)i;
    }
    sort_graph = g;
    qsort(g->sorted, g->n, sizeof *g->sorted, by_name);
    for (size_t i = 0; i < g->n && !r; i++) {
        Target *t = &g->targets[i];
        r = find_rule(g, t, &ff->targets[i]);
        if (!r) r = set_params(g, t, &ff->targets[i]);
        if (!r) r = check_rule(g, t);
    }
    for (size_t i = 0; i < g->n && !r; i++) r = resolve_inputs(g, &g->targets[i]);
    if (!r) r = topo_sort(g);
    if (r) { graph_free(g); return -1; }
    *out = g;
    return 0;
}

void graph_free(Graph *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n; i++) {
        Target *t = &g->targets[i];
        for (size_t p = 0; p < t->nparams; p++) free(t->values[p]);
        for (size_t k = 0; k < t->ninputs; k++) { free(t->inputs[k].ref); free(t->inputs[k].abs); }
        free(t->values);
        free(t->value_lines);
        free(t->inputs);
        free(t->deps);
        free(t->name);
    }
    free(g->targets);
    free(g->order);
    free(g->sorted);
    free(g->cache_dir);
    flabfile_free(g->ff);
    free(g);
}

void graph_closure(const Graph *g, const int *roots, size_t nroots, unsigned char *need) {
    int *stack = flab_xmalloc((g->n + 1) * sizeof *stack);
    size_t sp = 0;
    for (size_t i = 0; i < nroots; i++)
        if (!need[roots[i]]) { need[roots[i]] = 1; stack[sp++] = roots[i]; }
    while (sp) {
        const Target *t = &g->targets[stack[--sp]];
        for (size_t i = 0; i < t->ndeps; i++)
            if (!need[t->deps[i]]) { need[t->deps[i]] = 1; stack[sp++] = t->deps[i]; }
    }
    free(stack);
}

int graph_select(const Graph *g, char *const *names, size_t n, int **out, size_t *nout) {
    if (!n) {
        *out = flab_xmalloc((g->n + 1) * sizeof **out);
        for (size_t i = 0; i < g->n; i++) (*out)[i] = (int)i;
        *nout = g->n;
        return 0;
    }
    int *v = flab_xmalloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i][0] == '@' ? names[i] + 1 : names[i];
        v[i] = graph_find(g, name);
        if (v[i] >= 0) continue;
        const char *sug = suggest_target(g, name);
        flab_fail("unknown target '%s' in %s%s%s%s", name, g->ff->path,
                  sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
        free(v);
        return -1;
    }
    *out = v;
    *nout = n;
    return 0;
}
