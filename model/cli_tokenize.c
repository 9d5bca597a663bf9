/* model/cli_tokenize.c: PLACEHOLDER of the skeleton, replaced by its owner. */
#include "engine/commands.h"
#include <stdio.h>
int cmd_tokenize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flab: 'tokenize' is not built yet\n"); return 2; }
int cmd_detokenize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flab: 'detokenize' is not built yet\n"); return 2; }
