#!/usr/bin/env bash
# bench/bench_eval_rules.sh: the eval rule on the whole synth-test (150
# problems, 128 new tokens) with the tiny fixture; the fixture README's
# independent measurement is 118/150 = 0.787.  Prints pass@1, timings and
# throughput; exits 1 when pass@1 differs.  Run: bench/bench_eval_rules.sh
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FLAB=${FLAB:-$ROOT/flab}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cat > "$W/flabfile.ini" <<INI
[synth]
rule = eval
model = $ROOT/tests/fixtures/tiny-qwen2
benchmark = $ROOT/data/synth-test.jsonl
max_new_tokens = 128
batch_size = ${BATCH:-16}
INI
cd "$W" || exit 1
start=$(date +%s.%N)
"$FLAB" build >/dev/null || exit 1
end=$(date +%s.%N)
M=$("$FLAB" path synth)/metrics.json
python3 - "$M" "$start" "$end" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); e = m["efficiency"]
print("eval synth-test: pass@1 %.3f (%d/%d), build %.1f s, prefill %.0f tok/s, decode %.0f tok/s, peak RSS %.0f MB"
      % (m["pass@1"], m["passed"], m["n"], float(sys.argv[3]) - float(sys.argv[2]),
         e["prefill_tokens_per_s"], e["decode_tokens_per_s"], e["peak_rss_bytes"] / 2**20))
sys.exit(0 if (m["passed"], m["n"]) == (118, 150) else 1)
PY
