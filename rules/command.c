/* rules/command.c: the generic `command` rule: run a shell command.
 *
 *   [out/hello]
 *   rule   = command
 *   inputs = data/a.txt @other      ; files, directories and @targets
 *   run    = cat "$FLAB_IN_1" > "$FLAB_OUT/a.txt"
 *
 * The command runs under `/bin/sh -e -c RUN` (or /bin/bash with `shell =
 * bash`; -e: it stops at the first failing command; indented continuation
 * lines of `run` are separate lines of the script) in the flabfile's
 * directory, with
 *   FLAB_OUT      the empty staging directory to write outputs into,
 *   FLAB_IN_1..n  the absolute paths of the inputs, in order (a dependency's
 *                 read-only artifact directory for an @target),
 *   FLAB_NIN      the number of inputs, FLAB_TARGET the target's name.
 * Its stdout and stderr go to the artifact's log.  The key covers `run`,
 * `shell` and the inputs' keys (rule_command.version covers this file's
 * semantics). */
#include "rules/rule.h"
#include "util/error.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const RuleParam command_params[] = {
    {"run", RULE_STRING, NULL, 0, -1, NULL,
     "shell command (sh -e); writes its outputs into $FLAB_OUT"},
    {"inputs", RULE_PATHS, "", 0, -1, NULL,
     "files, directories and @targets, space separated: $FLAB_IN_1..n"},
    {"shell", RULE_STRING, "sh", 0, -1, "sh|bash",
     "the shell that runs `run`, with -e: /bin/sh or /bin/bash"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

/* In the child: the environment of the command, then exec. Never returns. */
static void exec_command(RuleCtx *ctx, const char *run) {
    size_t n = 0;
    const char *const *in = rule_inputs(ctx, "inputs", &n);
    char name[32], count[32];
    setenv("FLAB_OUT", ctx->out_dir, 1);
    setenv("FLAB_TARGET", ctx->target, 1);
    snprintf(count, sizeof count, "%zu", n);
    setenv("FLAB_NIN", count, 1);
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "FLAB_IN_%zu", i + 1);
        setenv(name, in[i], 1);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const char *shell = strcmp(rule_str(ctx, "shell"), "bash") ? "/bin/sh" : "/bin/bash";
    execl(shell, shell + 5, "-e", "-c", run, (char *)NULL);
    fprintf(stderr, "flab: cannot run %s: %s\n", shell, strerror(errno));
    _exit(127);
}

static int command_run(RuleCtx *ctx) {
    const char *run = rule_str(ctx, "run");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return flab_fail_errno("fork");
    if (pid == 0) exec_command(ctx, run);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return flab_fail_errno("waitpid");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (WIFSIGNALED(status))
        return flab_fail("command killed by signal %d", WTERMSIG(status));
    return flab_fail("command exited with status %d", WEXITSTATUS(status));
}

static int command_check(const RuleCtx *ctx) {
    const char *run = rule_str(ctx, "run");
    if (!run || !*run) return flab_fail("parameter 'run' is empty");
    return 0;
}

const Rule rule_command = {
    .name = "command",
    .version = 1,
    .summary = "run a shell command that writes its outputs into $FLAB_OUT",
    .params = command_params,
    .flags = 0,
    .run = command_run,
    .check = command_check,
};
