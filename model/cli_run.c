/* model/cli_run.c: PLACEHOLDER of the skeleton, replaced by its owner. */
#include "engine/commands.h"
#include <stdio.h>
int cmd_logits(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flab: 'logits' is not built yet\n"); return 2; }
int cmd_generate(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flab: 'generate' is not built yet\n"); return 2; }
