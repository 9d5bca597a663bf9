/* engine/cli_common.h: what every engine subcommand shares: option parsing
 * of -f/-D, opening the flabfile's graph and its cache, and printing errors.
 *
 * The flabfile is -f FILE, else $FLAB_FILE (set by `flab -f FILE CMD`),
 * else ./flabfile.ini.  Exit codes (docs/CLI.md): 0 ok, 1 build/verify
 * failure or not built, 2 usage, flabfile or cache error. */
#ifndef FLAB_ENGINE_CLI_COMMON_H
#define FLAB_ENGINE_CLI_COMMON_H
#include "engine/graph.h"
#include "engine/store.h"
#include <stddef.h>

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

struct FlabCache;

typedef struct {
    Graph *g;
    struct FlabCache *c;
    EngineStore store;
} Project;

typedef struct {
    const char *flabfile;
    char **defines;
    size_t ndefines;
    int no_cache;        /* graph only: do not open (or create) the cache */
} ProjectArgs;

/* Parses -f FILE and -D T.P=V (and --dot when dot != NULL); positional
 * arguments start at optind afterwards.  -1 on an unknown option. */
int cli_parse_args(int argc, char **argv, ProjectArgs *pa, int *dot);

/* Adds -D spec to pa (the array is malloc'd; free with project_args_free). */
void project_args_define(ProjectArgs *pa, const char *spec);
void project_args_free(ProjectArgs *pa);

/* Loads the flabfile (+ overrides), builds the graph, opens the cache.
 * On error prints "flab: message" and returns -1. */
int project_open(const ProjectArgs *pa, Project *p);
void project_close(Project *p);

/* For the commands without positional arguments: cli_parse_args (--dot when
 * dot != NULL), "usage: USAGE" on a bad command line, then project_open
 * (without the cache when no_cache).  -1 on error, pa then freed. */
int project_open_noargs(int argc, char **argv, const char *usage, int *dot, int no_cache,
                        ProjectArgs *pa, Project *p);

/* Bracket many cache reads in one read transaction when the cache offers it
 * (CACHE_HAVE_READ_BATCH); otherwise no-ops.  Only a speed-up. */
void project_read_begin(Project *p);
void project_read_end(Project *p);

/* Computes every target's key; prints the error and returns -1 on failure. */
int project_all_keys(Project *p);

/* Resolves a single TARGET argument (with or without '@'); prints errors. */
int project_target(const Project *p, const char *name);

void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Formats unix nanoseconds/seconds as "2026-11-24 12:34:56 UTC". */
void cli_time(double seconds, char *buf, size_t size);
#endif
