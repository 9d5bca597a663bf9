/* eval/sandbox_guard.h: the Python audit-hook preamble of the sandbox.
 *
 * The text is passed as `python3 -I -B -c GUARD PROGRAM WORKDIR [HIDDEN...]`.
 * It installs sys.addaudithook() before the program runs, then executes
 * PROGRAM as __main__.  The hook raises PermissionError for:
 *   - opening for write/append/create, or removing, renaming, mkdir, chmod,
 *     chown, link, symlink, truncate, utime, outside WORKDIR;
 *   - opening anything under a HIDDEN directory (the user's home, /root),
 *     except the interpreter's own prefix;
 *   - sockets, subprocesses, exec, fork, posix_spawn, and kill or
 *     killpg of any process but itself.
 * ctypes is allowed (numpy imports it; importing it already calls dlopen),
 * and ctypes can bypass the hook: one more reason it is only a second layer.
 * It is defence in depth: an in-process hook can be bypassed by a determined
 * program, so the kernel layers (namespaces, uid, rlimits) are the ones the
 * tests rely on; the suite runs each hostile sample with and without it. */
#ifndef FLAB_EVAL_SANDBOX_GUARD_H
#define FLAB_EVAL_SANDBOX_GUARD_H
extern const char eval_sandbox_guard_py[];

/* The pool-mode interpreter (a zygote forking one child per sample), with
 * the same hook installed in each child; protocol in sandbox_guard.c. */
extern const char eval_sandbox_zygote_py[];
#endif
