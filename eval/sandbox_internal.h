/* eval/sandbox_internal.h: what eval/sandbox.c shares with the pool mode
 * (eval/sandbox_pool.c); not for other modules. */
#ifndef FLAB_EVAL_SANDBOX_INTERNAL_H
#define FLAB_EVAL_SANDBOX_INTERNAL_H
#include "eval/sandbox.h"
#include "eval/sandbox_child.h"
#include <limits.h>

/* What every sample of a run shares: the tier and the hidden home dirs. */
typedef struct {
    int level;                                  /* tier, sandbox_child_tier */
    char hide[SANDBOX_MAX_HIDE][PATH_MAX];      /* home dirs the guard denies */
    int n_hide;
    int mount_hide[SANDBOX_MAX_HIDE];           /* also covered by a tmpfs */
} SandboxEnv;

double sandbox_now(void);
void sandbox_remove_tree(const char *dir);
/* Appends chunk[0..got) to buf (*len bytes so far) up to cfg->output_bytes;
 * 1 when some of it did not fit (dropped), else 0. */
int sandbox_keep_output(const EvalSandboxConfig *cfg, char *buf, size_t *len, const char *chunk,
                        size_t got);
/* DIR (mkdtemp under tmp_base) with DIR/program.py and DIR/work. */
int sandbox_make_dir(const EvalSandboxConfig *cfg, const char *program, int chown_nobody,
                     char *dir, size_t cap);
/* The same with DIR/file_name instead of DIR/program.py. */
int sandbox_make_dir_named(const EvalSandboxConfig *cfg, const char *file_name,
                           const char *program, int chown_nobody, char *dir, size_t cap);
void sandbox_fill_child(const EvalSandboxConfig *cfg, const SandboxEnv *env, SandboxChild *c,
                        const char *work);
/* The recorded reason (sandbox.h) for how a sample ended. */
char *sandbox_reason(const EvalSandboxConfig *cfg, int overflow_killed, int timed_out, int status,
                     const char *err, size_t err_len, int *passed);

/* Pool mode (tier 2 only): one pre-started interpreter per job forks a
 * child per sample.  Returns 0, or -1 when the pool could not start (the
 * caller then uses exec mode); results are complete only on 0. */
int sandbox_pool_run(const EvalSandboxConfig *cfg, const SandboxEnv *env,
                     const char *const *programs, size_t n, EvalSampleResult *results);
#endif
