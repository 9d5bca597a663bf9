"""bench/humaneval_reference.py: the openai/human-eval harness's execution,
re-created (human_eval/execution.py: check_correctness + reliability_guard,
evaluate_functional_correctness's ThreadPoolExecutor), to time it against
flab's sandbox on the same problems in the same run.

For each problem: a multiprocessing.Manager list, a forked Process that
makes a temp dir, applies reliability_guard() (disables os.kill, os.system,
subprocess.Popen, shutil.rmtree, ... in the child), and exec()s
prompt + completion + "\n" + test + "\n" + check(entry_point) under a
SIGALRM time limit with stdout/stderr swallowed; the parent joins with
timeout + 1 s and kills a survivor.  Its isolation is in-process only: no
namespaces, no rlimits but the optional memory one, same uid.

usage: python3 humaneval_reference.py FILE.jsonl [workers] [timeout_s]
prints: reference: N problems, P passed, T s, R problems/s"""
import contextlib, faulthandler, io, json, multiprocessing, os, platform, signal
import sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor, as_completed


class TimeoutException(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds):
    def handler(signum, frame):
        raise TimeoutException("Timed out!")
    signal.setitimer(signal.ITIMER_REAL, seconds)
    signal.signal(signal.SIGALRM, handler)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


class WriteOnlyStringIO(io.StringIO):
    def read(self, *a, **k): raise IOError
    def readline(self, *a, **k): raise IOError
    def readlines(self, *a, **k): raise IOError
    def readable(self, *a, **k): return False


@contextlib.contextmanager
def swallow_io():
    stream = WriteOnlyStringIO()
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        old_stdin = sys.stdin
        sys.stdin = stream
        try:
            yield
        finally:
            sys.stdin = old_stdin


def reliability_guard(maximum_memory_bytes=None):
    if maximum_memory_bytes is not None:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (maximum_memory_bytes, maximum_memory_bytes))
        resource.setrlimit(resource.RLIMIT_DATA, (maximum_memory_bytes, maximum_memory_bytes))
        if not platform.uname().system == "Darwin":
            resource.setrlimit(resource.RLIMIT_STACK, (maximum_memory_bytes, maximum_memory_bytes))
    faulthandler.disable()
    import builtins
    builtins.exit = None
    builtins.quit = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ["kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid",
                 "fork", "forkpty", "killpg", "rename", "renames", "truncate", "replace",
                 "unlink", "fchmod", "fchown", "chmod", "chown", "chroot", "lchflags",
                 "lchmod", "lchown", "getcwd", "chdir"]:
        setattr(os, name, None)
    import shutil
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    import subprocess
    subprocess.Popen = None
    __builtins__.__dict__["help"] = None if hasattr(__builtins__, "__dict__") else None
    for mod in ["ipdb", "joblib", "resource", "psutil", "tkinter"]:
        sys.modules[mod] = None


def unsafe_execute(problem, completion, timeout, result):
    with tempfile.TemporaryDirectory() as dirname:
        os.chdir(dirname)
        import shutil
        rmtree, rmdir, chdir = shutil.rmtree, os.rmdir, os.chdir
        reliability_guard()
        program = (problem["prompt"] + completion + "\n" + problem["test"] + "\n"
                   + f"check({problem['entry_point']})")
        try:
            exec_globals = {}
            with swallow_io():
                with time_limit(timeout):
                    exec(program, exec_globals)
            result.append("passed")
        except TimeoutException:
            result.append("timed out")
        except BaseException as e:
            result.append(f"failed: {e}")
        shutil.rmtree, os.rmdir, os.chdir = rmtree, rmdir, chdir


def check_correctness(problem, completion, timeout):
    manager = multiprocessing.Manager()
    result = manager.list()
    p = multiprocessing.Process(target=unsafe_execute, args=(problem, completion, timeout, result))
    p.start()
    p.join(timeout=timeout + 1)
    if p.is_alive():
        p.kill()
    if not result:
        result.append("timed out")
    outcome = result[0]
    manager.shutdown()
    return outcome == "passed"


def main():
    path = sys.argv[1]
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    problems = [json.loads(l) for l in open(path) if l.strip()]
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        futures = [ex.submit(check_correctness, p, p["canonical_solution"], timeout) for p in problems]
        passed = sum(f.result() for f in as_completed(futures))
    secs = time.time() - t0
    print(f"reference: {len(problems)} problems, {passed} passed, {secs:.2f} s, "
          f"{len(problems) / secs:.1f} problems/s")


if __name__ == "__main__":
    main()
