#!/usr/bin/env bash
# The test runner: runs every test program and counts its PASS/FAIL lines.
#   build/tests/test_*   C unit tests (tests/test_*.c)
#   tests/test_*.sh      end-to-end tests of the real ./flab binary
#   tests/test_*.py      differential tests against Python references (.venv)
# Each program prints "PASS name" / "FAIL name: why" lines; a program that
# exits non-zero without printing a FAIL line counts as one failure.
# TESTS=pattern runs only the programs whose name contains the pattern.
# Ends with the line "N passed, N failed".
set -u
BUILD=${BUILD:-build}
export FLAB=${FLAB:-$PWD/$BUILD/flab}
export FLAB_BUILD=$PWD/$BUILD
export PYTHON=${PYTHON:-$PWD/.venv/bin/python}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
LOGDIR=$BUILD/test-logs; mkdir -p "$LOGDIR"
passed=0; failed=0
run_one() {
  local name=$1; shift
  local log=$LOGDIR/$name.log
  local start=$SECONDS
  "$@" >"$log" 2>&1 </dev/null
  local rc=$?
  local p f
  p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log")
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    echo "FAIL $name: exited $rc without a FAIL line (log: $log)" | tee -a "$log"; f=1
  fi
  grep -E '^(FAIL|SKIP) ' "$log" | sed "s/^/  [$name] /"
  passed=$((passed + p)); failed=$((failed + f))
  printf '%-28s %3d passed, %d failed  (%ds)\n' "$name" "$p" "$f" $((SECONDS - start))
}
for t in "$BUILD"/tests/test_* tests/test_*.sh tests/test_*.py; do
  [ -e "$t" ] || continue
  name=$(basename "$t")
  [ -n "${TESTS:-}" ] && [[ "$name" != *"$TESTS"* ]] && continue
  case "$t" in
    *.sh) run_one "$name" bash "$t" ;;
    *.py) run_one "$name" "$PYTHON" "$t" ;;
    *)    run_one "$name" "$t" ;;
  esac
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
