#!/usr/bin/env bash
# bench/bench_quant.sh: decode speed of quantized checkpoints (INT4 AWQ,
# INT8, FP8) against the bf16 original and its float32 widening, and against
# this machine's memory bandwidth bound measured in the same run.
#   CPU:  a seeded random-weight Qwen2-0.5B-shaped model (bf16, made by
#         bench/make_random_model.py) and its INT4 / INT8 / FP8 versions
#         (bench/make_quant_model.py, RTN group 128), all cached in
#         $BUILD/bench-models.  Each runs $BUILD/bench/bench_transformer
#         (prefill + batch-1 decode; read bandwidth measured right after each
#         decode rep, so on a shared machine the fraction compares like with
#         like: decode_fraction_of_bound_paired).
#   GPU:  $BUILD/bench/bench_quant_gpu on a random INT4 model with
#         CodeQwen1.5-7B's shape: batch-1 decode as a fraction of HBM
#         bandwidth, and device memory in GB.  Prints SKIP without a GPU.
# usage: BUILD=build bench/bench_quant.sh   [THREADS=2 PROMPT=32 DECODE=16 REPS=5
#        BASE_MODEL=dir-of-an-existing-bf16-random-model GPU_DIR=/tmp/...]
set -eu
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
THREADS=${THREADS:-2}; PROMPT=${PROMPT:-32}; DECODE=${DECODE:-16}; REPS=${REPS:-5}
BASE=${BASE_MODEL:-$BUILD/bench-models/qwen2-0.5b-random-seed0}
if [ ! -f "$BASE/model.safetensors" ]; then
  echo "# writing $BASE (seeded random weights, Qwen2-0.5B shape)"
  "$PYTHON" bench/make_random_model.py "$BASE" --seed 0
fi
val() { awk -v k="$1" '$1 == k {print $2}' "$2"; }
echo "# $(date -u +%FT%TZ) host $(hostname) cpus $(nproc) load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# threads $THREADS prompt $PROMPT decode $DECODE reps $REPS"
printf '%-6s %10s %9s %9s %9s %8s %8s %8s %8s %8s\n' model weight_MB prefill decode bound frac frac_pr frac_med x_bf16 rss_MB
bf16_dec=
for m in bf16 f32 int4 int8 fp8; do
  dir=$BASE
  if [ "$m" != bf16 ]; then
    dir=$BUILD/bench-models/$(basename "$BASE")-$m
    if [ ! -f "$dir/model.safetensors" ]; then
      method=$m; [ "$m" = int4 ] && method=awq4
      "$PYTHON" bench/make_quant_model.py "$dir" --from "$BASE" --method "$method" >&2
    fi
  fi
  out=$(mktemp)
  "$BUILD/bench/bench_transformer" "$dir" --threads "$THREADS" --prompt "$PROMPT" \
      --decode "$DECODE" --reps "$REPS" > "$out"
  dec=$(val decode_tok_s "$out")
  [ -z "$bf16_dec" ] && bf16_dec=$dec
  awk -v m="$m" -v wb="$(val weight_bytes "$out")" -v pre="$(val prefill_tok_s "$out")" \
      -v dec="$dec" -v bound="$(val decode_bound_tok_s "$out")" \
      -v fr="$(val decode_fraction_of_bound "$out")" -v frp="$(val decode_fraction_of_bound_paired "$out")" \
      -v frm="$(val decode_fraction_of_bound_paired_median "$out")" \
      -v base="$bf16_dec" -v rss="$(val peak_rss_mb "$out")" \
      'BEGIN { printf "%-6s %10.0f %9.1f %9.2f %9.2f %8.3f %8.3f %8.3f %8.2f %8.0f\n", m, wb / 1e6, pre, dec, bound, fr, frp, frm, dec / base, rss }'
  echo "#   $m read_bw_gbs $(val read_bw_gbs "$out") read_bw_1t_gbs $(val read_bw_1t_gbs "$out")"
  rm -f "$out"
done
echo "# prefill / decode in tokens/s; bound = read bandwidth / weight bytes per token;"
echo "# frac = best decode / bound from the best bandwidth; frac_pr = best, frac_med = median over reps"
echo "# of (decode of a rep / bound from the bandwidth measured right after it)"
echo "== GPU: INT4 decode, random CodeQwen1.5-7B shape"
if "$BUILD/bench/bench_quant_gpu" --probe 2>/dev/null | grep -q '^SKIP'; then
  "$BUILD/bench/bench_quant_gpu" --probe
else
  GPU_DIR=${GPU_DIR:-/tmp/flab-bench-codeqwen7b-awq4}
  [ -f "$GPU_DIR/model.safetensors" ] || "$PYTHON" bench/make_quant_model.py "$GPU_DIR" --random-awq4
  "$BUILD/bench/bench_quant_gpu" "$GPU_DIR" --prompt 128 --decode 64
fi
