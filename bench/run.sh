#!/usr/bin/env bash
# `make bench`: runs every bench/bench_*.sh (and bench_*.py) in turn; each
# prints its own measurements with the baseline it measured in the same run.
# The combined output goes to $BUILD/bench.log; results worth keeping are
# copied by hand into docs/PERFORMANCE.md with the machine and the date.
# BENCH=substring runs only the matching benchmarks.
set -u
BUILD=${BUILD:-build}
export FLAB=${FLAB:-$PWD/$BUILD/flab}
export FLAB_BUILD=$PWD/$BUILD
export PYTHON=${PYTHON:-$PWD/.venv/bin/python}
LOG=$BUILD/bench.log
{
  echo "# flab bench $(date -u +%FT%TZ) on $(uname -n): $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  for b in bench/bench_*.sh bench/bench_*.py; do
    [ -e "$b" ] || continue
    [ -n "${BENCH:-}" ] && [[ "$b" != *"$BENCH"* ]] && continue
    echo; echo "## $b"
    case "$b" in
      *.sh) bash "$b" ;;
      *.py) "$PYTHON" "$b" ;;
    esac || echo "!! $b failed (exit $?)"
  done
} 2>&1 | tee "$LOG"
