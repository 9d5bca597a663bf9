#!/usr/bin/env bash
# bench/bench_engine.sh: no-op `flab build` of a generated 1,000-target flabfile.
#
# Generates N command targets (default 1000) in a temporary directory: each
# reads one of 50 small input files and up to two earlier targets, so the
# graph has ~2,000 edges.  Builds once (-j2), then times R no-op builds
# (default 10) and prints the median and minimum wall time.  Goal: < 50 ms.
# FLAB_TIMING=1 on one extra run shows load / plan / records phases.
# Usage: FLAB=./flab bench/bench_engine.sh [N] [R]
set -euo pipefail
FLAB=${FLAB:-$PWD/flab}
N=${1:-1000}
R=${2:-10}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/in"
for i in $(seq 0 49); do echo "input $i" > "$dir/in/f$i.txt"; done
{
  for i in $(seq 0 $((N - 1))); do
    deps=""
    [ "$i" -ge 1 ] && deps="@t$(( (i * 7) % i ))"
    [ "$i" -ge 2 ] && deps="$deps @t$((i - 1))"
    printf '[t%d]\nrule = command\ninputs = in/f%d.txt %s\nrun = cat "$FLAB_IN_1" > "$FLAB_OUT/o"\n\n' \
      "$i" $((i % 50)) "$deps"
  done
} > "$dir/flabfile.ini"
cd "$dir"
t0=$(date +%s.%N)
FLAB_CACHE_FSYNC=0 "$FLAB" build -j2 >/dev/null   # setup only: no fsync
t1=$(date +%s.%N)
echo "first build of $N targets: $(awk "BEGIN {printf \"%.1f\", $t1 - $t0}") s (setup, fsync off)"
times=()
for r in $(seq 1 "$R"); do
  s=$(date +%s%N)
  out=$("$FLAB" build)
  e=$(date +%s%N)
  case "$out" in *"no work to do"*) ;; *) echo "FAIL: no-op build did work: $out"; exit 1 ;; esac
  times+=($(( (e - s) / 1000 )))
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | sed -n "$(( (R + 1) / 2 ))p")
min=$(echo "$sorted" | head -1)
printf 'no-op flab build, %d targets: median %.1f ms, min %.1f ms over %d runs (goal < 50 ms)\n' \
  "$N" "$(awk "BEGIN {print $median / 1000}")" "$(awk "BEGIN {print $min / 1000}")" "$R"
FLAB_TIMING=1 "$FLAB" build 2>&1 >/dev/null | sed "s/^/  /"
