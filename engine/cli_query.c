/* engine/cli_query.c: `flab status`, `flab explain TARGET`, `flab graph [--dot]`.
 * Read-only: they compute keys and read the cache, never build. */
#include "engine/cli_common.h"
#include "engine/commands.h"
#include "engine/explain.h"
#include "util/error.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_status(Project *p, const int *sel, size_t nsel) {
    size_t fresh = 0;
    for (size_t k = 0; k < nsel; k++) {
        const Target *t = &p->g->targets[sel[k]];
        Explanation e;
        if (explain_target(p->g, t, &p->store, &e) < 0) { cli_error("%s", flab_errmsg()); return EXIT_USAGE; }
        if (e.state == EXPLAIN_FRESH) { fresh++; printf("fresh  %-32s %.12s\n", t->name, t->key); }
        else printf("stale  %-32s %s\n", t->name, explanation_summary(&e));
        explanation_free(&e);
    }
    printf("%zu fresh, %zu stale\n", fresh, nsel - fresh);
    return EXIT_OK;
}

int cmd_status(int argc, char **argv) {
    ProjectArgs pa;
    if (cli_parse_args(argc, argv, &pa, NULL) < 0) {
        fprintf(stderr, "usage: flab status [-f FLABFILE] [-D T.P=V]... [TARGET...]\n");
        return EXIT_USAGE;
    }
    Project p;
    if (project_open(&pa, &p) < 0) { project_args_free(&pa); return EXIT_USAGE; }
    int rc = EXIT_USAGE;
    int *sel = NULL;
    size_t nsel;
    if (graph_select(p.g, argv + optind, (size_t)(argc - optind), &sel, &nsel) < 0)
        cli_error("%s", flab_errmsg());
    else {
        project_read_begin(&p);
        if (project_all_keys(&p) == 0) rc = print_status(&p, sel, nsel);
        project_read_end(&p);
    }
    free(sel);
    project_close(&p);
    project_args_free(&pa);
    return rc;
}

int cmd_explain(int argc, char **argv) {
    ProjectArgs pa;
    if (cli_parse_args(argc, argv, &pa, NULL) < 0 || argc - optind != 1) {
        fprintf(stderr, "usage: flab explain [-f FLABFILE] [-D T.P=V]... TARGET\n");
        project_args_free(&pa);
        return EXIT_USAGE;
    }
    Project p;
    if (project_open(&pa, &p) < 0) { project_args_free(&pa); return EXIT_USAGE; }
    int rc = EXIT_USAGE, ti = project_target(&p, argv[optind]);
    Explanation e;
    if (ti >= 0 && project_all_keys(&p) == 0) {
        const Target *t = &p.g->targets[ti];
        if (explain_target(p.g, t, &p.store, &e) < 0) cli_error("%s", flab_errmsg());
        else {
            rc = EXIT_OK;
            printf("%s (%s): key %s\n", t->name, t->rule->name, t->key);
            if (e.last_key[0]) printf("last build: key %s\n", e.last_key);
            if (e.state == EXPLAIN_CHANGED) {
                printf("stale: changed since its last build:\n");
                for (size_t i = 0; i < e.nreasons; i++) printf("  %s\n", e.reasons[i]);
            } else printf("%s: %s\n", e.state == EXPLAIN_FRESH ? "fresh" : "stale",
                          e.state == EXPLAIN_FRESH ? "its key is in the cache: nothing to do"
                                                  : explanation_summary(&e));
            explanation_free(&e);
        }
    }
    project_close(&p);
    project_args_free(&pa);
    return rc;
}

static void graph_text(const Graph *g) {
    for (size_t k = 0; k < g->n; k++) {
        const Target *t = &g->targets[g->order[k]];
        printf("%s (%s)", t->name, t->rule->name);
        const char *sep = " <- ";
        for (size_t i = 0; i < t->ninputs; i++) {
            printf("%s%s", sep, t->inputs[i].ref);
            sep = ", ";
        }
        putchar('\n');
    }
}

static void dot_quote(const char *s) {
    putchar('"');
    for (; *s; s++) { if (*s == '"' || *s == '\\') putchar('\\'); putchar(*s); }
    putchar('"');
}

static void graph_dot(const Graph *g) {
    printf("digraph flab {\n  rankdir=LR;\n  node [shape=box];\n");
    for (size_t k = 0; k < g->n; k++) {
        const Target *t = &g->targets[g->order[k]];
        printf("  ");
        dot_quote(t->name);
        printf(" [label=\"%s\\n(%s)\"];\n", t->name, t->rule->name);
        for (size_t i = 0; i < t->ninputs; i++) {
            const Input *in = &t->inputs[i];
            printf("  ");
            if (in->dep >= 0) dot_quote(g->targets[in->dep].name);
            else { dot_quote(in->ref); printf(" [shape=note];\n  "); dot_quote(in->ref); }
            printf(" -> ");
            dot_quote(t->name);
            printf(";\n");
        }
    }
    printf("}\n");
}

int cmd_graph(int argc, char **argv) {
    ProjectArgs pa;
    Project p;
    int dot = 0;
    if (project_open_noargs(argc, argv, "flab graph [--dot] [-f FLABFILE]", &dot, 1, &pa, &p) < 0)
        return EXIT_USAGE;
    if (dot) graph_dot(p.g); else graph_text(p.g);
    project_close(&p);
    project_args_free(&pa);
    return EXIT_OK;
}
