/* engine/cli.c: PLACEHOLDER of the skeleton, replaced by its owner. */
#include "engine/commands.h"
#include <stdio.h>
int cmd_build(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flab: 'build' is not built yet\n"); return 2; }
int cmd_status(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flab: 'status' is not built yet\n"); return 2; }
int cmd_explain(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flab: 'explain' is not built yet\n"); return 2; }
int cmd_graph(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flab: 'graph' is not built yet\n"); return 2; }
int cmd_show(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flab: 'show' is not built yet\n"); return 2; }
int cmd_path(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flab: 'path' is not built yet\n"); return 2; }
int cmd_log(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flab: 'log' is not built yet\n"); return 2; }
int cmd_gc(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flab: 'gc' is not built yet\n"); return 2; }
int cmd_verify(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flab: 'verify' is not built yet\n"); return 2; }
