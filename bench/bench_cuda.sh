#!/usr/bin/env bash
# bench/bench_cuda.sh: the GPU benchmarks of the CUDA backend in one command.
#   bench/bench_cuda.sh [bench_cuda options]     (see bench/bench_cuda.c)
# Builds what it needs, runs the CUDA op/model test first (a benchmark of
# wrong kernels is worthless), then build/bench/bench_cuda on a random-weight
# model with CodeQwen1.5-7B's shape.  The 14.5 GB checkpoint is written once
# to /tmp/flab-bench-codeqwen7b-shape (override with --dir).  The output log
# goes to $BUILD/bench-cuda.log as well as stdout.
# Without a GPU both print SKIP lines and the script exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -j"$(nproc 2>/dev/null || echo 2)" BUILD="$BUILD" tests-bin >/dev/null
log=$BUILD/bench-cuda.log
{
  echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
  echo "== CUDA op and model test"
  "$BUILD"/tests/test_cuda_ops
  echo "== bench_cuda $*"
  "$BUILD"/bench/bench_cuda "$@"
} 2>&1 | tee "$log"
