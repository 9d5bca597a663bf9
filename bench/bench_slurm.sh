#!/usr/bin/env bash
# bench/bench_slurm.sh: overhead of executor = slurm on a local single-node
# cluster (tests/slurm_lib.sh; needs root, slurm-wlm, munge).
# Measures, in one run:
#   - wall time of a 20-target flabfile of independent trivial commands,
#     local -j 2 vs executor = slurm (two job slots);
#   - submission latency: mean time of one `sbatch` call (held jobs, then
#     scancelled), and the latency of one trivial target end to end.
# Usage: bash bench/bench_slurm.sh [FLAB]   (default ./build/flab)
set -u
FLAB=${1:-$PWD/build/flab}
case "$FLAB" in /*) ;; *) FLAB=$PWD/$FLAB ;; esac
. "$(dirname "$0")/../tests/slurm_lib.sh"
slurm_available || { echo "bench_slurm: slurm not installed (or not root)"; exit 0; }
D=$(mktemp -d /tmp/flab-bench-slurm.XXXXXX)
trap 'slurm_stop; rm -rf "$D"' EXIT
slurm_start "$D/cluster" || exit 1
export FLAB_PROGRESS=plain
now() { date +%s.%N; }
mkdir -p "$D/p" && cd "$D/p"
for i in $(seq 20); do printf '[t%02d]\nrule = command\nrun = echo %d > $FLAB_OUT/o\n\n' $i $i; done > flabfile.ini
t0=$(now); FLAB_CACHE=$D/local "$FLAB" build -j 2 >/dev/null || exit 1; t1=$(now)
FLAB_CACHE=$D/slurm "$FLAB" build --executor slurm >"$D/slurm.out" || { cat "$D/slurm.out"; exit 1; }
t2=$(now)
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "20 independent targets: local -j 2 %.2fs, slurm %.2fs, overhead %.3fs/target\n",
         b - a, c - b, ((c - b) - (b - a)) / 20 }'
t0=$(now)
ids=""
for i in $(seq 10); do ids="$ids $(sbatch --parsable --hold -o /dev/null --wrap true)"; done
t1=$(now)
scancel $ids
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "sbatch submission latency: %.1f ms/job (mean of 10)\n", (b - a) * 100 }'
printf '[one]\nrule = command\nrun = echo 1 > $FLAB_OUT/o\n' > one.ini
t0=$(now); FLAB_CACHE=$D/one "$FLAB" -f one.ini build --executor slurm >/dev/null; t1=$(now)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "one trivial target through slurm, end to end: %.2fs\n", b - a }'
