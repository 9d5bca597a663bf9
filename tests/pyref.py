"""tests/pyref.py: the harness the Python reference tests share.

Each test prints one line per check, as tests/run.sh counts them:
"PASS name", "FAIL name: why" or "SKIP name: why", and exits nonzero when
any check failed.  Import it from a test (tests/ is on sys.path because the
tests run as `python tests/test_x.py`):

    from pyref import check, report, skip_unless_importable, exit_code

The tests that build flabfiles with the real binary ($FLAB) share the
helpers at the end: read_jsonl, build_flabfile, path_of, humaneval_passes.
"""
import importlib
import json
import os
import subprocess
import sys
import tempfile

_failures = 0


def report(name, ok, why=""):
    """Records one check that has already been decided."""
    global _failures
    print(f"PASS {name}" if ok else f"FAIL {name}: {why}")
    _failures += not ok
    sys.stdout.flush()


def check(name, fn):
    """Runs fn(); any exception is that check's failure, named by its type."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the harness reports everything
        report(name, False, f"{type(e).__name__}: {e}")
        return False
    report(name, True)
    return True


def skip_unless_importable(test, *modules):
    """Imports the modules or prints one SKIP line for the whole test and
    exits 0: reference packages are test-only and may be missing."""
    try:
        return [importlib.import_module(m) for m in modules]
    except ImportError as e:
        print(f"SKIP {test}: {e}")
        sys.exit(0)


def failures():
    return _failures


def exit_code():
    return 1 if _failures else 0


FLAB = os.environ.get("FLAB", "./flab")


def read_jsonl(path, n=None):
    """The JSON lines of path (blank lines skipped), the first n if n."""
    rows = [json.loads(l) for l in open(path) if l.strip()]
    return rows[:n] if n else rows


def build_flabfile(workdir, text):
    """Writes workdir/flabfile.ini and runs `flab build` there; returns the
    CompletedProcess (text output), whatever its exit status."""
    with open(os.path.join(workdir, "flabfile.ini"), "w") as f:
        f.write(text)
    return subprocess.run([FLAB, "build"], cwd=workdir, capture_output=True, text=True)


def path_of(workdir, target):
    """`flab path target` in workdir: the artifact's directory."""
    return subprocess.run([FLAB, "path", target], cwd=workdir, capture_output=True,
                          text=True, check=True).stdout.strip()


def humaneval_passes(p, completion):
    """The HumanEval program (prompt + completion + test + check) run by a
    plain python3 subprocess, not flab's sandbox: True when it exits 0."""
    prog = p["prompt"] + completion + "\n" + p["test"] + "\n" + "check(%s)\n" % p["entry_point"]
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([sys.executable, "-c", prog], cwd=d, capture_output=True, timeout=20)
    return r.returncode == 0
