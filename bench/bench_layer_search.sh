#!/usr/bin/env bash
# bench/bench_layer_search.sh: the KL layer search with prefix reuse vs the
# naive search, in the same run, on the tiny-qwen2 fixture and on a seeded
# random-weight model with Qwen2-0.5B's shape (bench/make_random_model.py,
# cached in $BUILD/bench-models; the 0.5B run is kept short: few, short
# samples).  Needs `make tests-bin` (builds $BUILD/bench/bench_layer_search).
# usage: BUILD=build bench/bench_layer_search.sh   (THREADS=2 by default;
#        SMALL="samples len remove" / BIG="samples len remove" to change the runs)
set -eu
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
THREADS=${THREADS:-2}
SMALL=${SMALL:-"8 128 3"}
BIG=${BIG:-"2 64 1"}
MODEL=$BUILD/bench-models/qwen2-0.5b-random-seed0
if [ ! -f "$MODEL/model.safetensors" ]; then
  echo "# writing $MODEL (seeded random weights, Qwen2-0.5B shape)"
  "$PYTHON" bench/make_random_model.py "$MODEL" --seed 0
fi
echo "# $(date -u +%FT%TZ) host $(hostname) cpus $(nproc) load $(cut -d' ' -f1-3 /proc/loadavg)"
bench() {  # MODEL "samples len remove"
  set -- "$1" $2
  echo "== $1"
  "$BUILD/bench/bench_layer_search" "$1" --samples "$2" --len "$3" --remove "$4" \
      --threads "$THREADS"
}
bench tests/fixtures/tiny-qwen2 "$SMALL"
bench "$MODEL" "$BIG"
