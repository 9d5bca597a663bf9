/* engine/cli_common.c: shared CLI plumbing (see cli_common.h). */
#include "engine/cli_common.h"
#include "engine/keys.h"
#include "cache/cache.h"
#include "util/error.h"
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("flab: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void project_args_define(ProjectArgs *pa, const char *spec) {
    pa->defines = flab_xrealloc(pa->defines, (pa->ndefines + 1) * sizeof *pa->defines);
    pa->defines[pa->ndefines++] = (char *)spec;
}

void project_args_free(ProjectArgs *pa) {
    free(pa->defines);
    pa->defines = NULL;
    pa->ndefines = 0;
}

int project_open(const ProjectArgs *pa, Project *p) {
    memset(p, 0, sizeof *p);
    const char *path = pa->flabfile;
    if (!path) path = getenv("FLAB_FILE");
    if (!path || !*path) path = "flabfile.ini";
    Flabfile *ff;
    if (flabfile_load(path, &ff) < 0) { cli_error("%s", flab_errmsg()); return -1; }
    for (size_t i = 0; i < pa->ndefines; i++)
        if (flabfile_override(ff, pa->defines[i]) < 0) {
            cli_error("%s", flab_errmsg());
            flabfile_free(ff);
            return -1;
        }
    if (graph_build(ff, &p->g) < 0) { cli_error("%s", flab_errmsg()); return -1; }
    if (pa->no_cache) return 0;
    if (cache_open(p->g->cache_dir, &p->c) < 0) {
        cli_error("cache %s: %s", p->g->cache_dir, flab_errmsg());
        graph_free(p->g);
        p->g = NULL;
        return -1;
    }
    p->store = store_over_cache(p->c);
    return 0;
}

void project_close(Project *p) {
    cache_close(p->c);
    graph_free(p->g);
    memset(p, 0, sizeof *p);
}

void project_read_begin(Project *p) {
#ifdef CACHE_HAVE_READ_BATCH
    if (p->c) cache_read_begin(p->c);
#else
    (void)p;
#endif
}

void project_read_end(Project *p) {
#ifdef CACHE_HAVE_READ_BATCH
    if (p->c) cache_read_end(p->c);
#else
    (void)p;
#endif
}

int project_all_keys(Project *p) {
    if (keys_compute(p->g, NULL, &p->store) == 0) return 0;
    cli_error("%s", flab_errmsg());
    return -1;
}

int project_target(const Project *p, const char *name) {
    char *const names[1] = {(char *)name};
    int *idx;
    size_t n;
    if (graph_select(p->g, names, 1, &idx, &n) < 0) { cli_error("%s", flab_errmsg()); return -1; }
    int t = idx[0];
    free(idx);
    return t;
}

void cli_time(double seconds, char *buf, size_t size) {
    time_t t = (time_t)seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* Parses -f/-D (and --dot when dot != NULL); positional args stay at optind. */
int project_open_noargs(int argc, char **argv, const char *usage, int *dot, int no_cache,
                        ProjectArgs *pa, Project *p) {
    if (cli_parse_args(argc, argv, pa, dot) < 0 || optind != argc) {
        fprintf(stderr, "usage: %s\n", usage);
        project_args_free(pa);
        return -1;
    }
    pa->no_cache = no_cache;
    if (project_open(pa, p) < 0) { project_args_free(pa); return -1; }
    return 0;
}

int cli_parse_args(int argc, char **argv, ProjectArgs *pa, int *dot) {
    static const struct option longs[] = {{"dot", no_argument, NULL, 'd'}, {0, 0, 0, 0}};
    memset(pa, 0, sizeof *pa);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "f:D:", dot ? longs : NULL, NULL)) != -1) {
        if (c == 'f') pa->flabfile = optarg;
        else if (c == 'D') project_args_define(pa, optarg);
        else if (c == 'd' && dot) *dot = 1;
        else return -1;
    }
    return 0;
}

