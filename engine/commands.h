/* engine/commands.h: the subcommands of the flab CLI.
 *
 * Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit code (see docs/CLI.md):
 *   0 success, 1 a build or command failed, 2 usage or flabfile error. */
#ifndef FLAB_ENGINE_COMMANDS_H
#define FLAB_ENGINE_COMMANDS_H

/* engine: build graph and cache */
int cmd_build(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_graph(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_path(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_rules(int argc, char **argv);

/* model: tokenizer */
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);

/* model: transformer */
int cmd_logits(int argc, char **argv);
int cmd_generate(int argc, char **argv);

/* eval: benchmarks and the sandbox */
int cmd_check_benchmark(int argc, char **argv);
#endif
