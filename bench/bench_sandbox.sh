#!/usr/bin/env bash
# bench/bench_sandbox.sh: sandbox throughput.  HumanEval's 164 canonical
# solutions checked per second with -j 2 by flab's sandbox (namespaces,
# rlimits, audit hook: `flab check-benchmark`) and by the human-eval
# reference harness re-created in bench/humaneval_reference.py (2 worker
# threads, each problem in a forked process under reliability_guard), in
# the same run and the same interpreter, alternating, best of ROUNDS
# (default 2) each.  Goal: ratio flab / reference >= 1.0.
# Run: make tests-bin && bench/bench_sandbox.sh
set -eu
FLAB=${FLAB:-./flab}
PY=${SANDBOX_PYTHON:-/usr/bin/python3}
DATA=${1:-data/HumanEval.jsonl}
ROUNDS=${ROUNDS:-2}
best_flab=0; best_ref=0
better() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b) ? a : b }'; }
for r in $(seq "$ROUNDS"); do
  line=$("$FLAB" check-benchmark "$DATA" -j 2 --python "$PY" | tail -1)
  rate=$(sed -E 's/.* ([0-9.]+) samples\/s.*/\1/' <<<"$line")
  echo "flab round $r: $line"
  best_flab=$(better "$best_flab" "$rate")
  line=$("$PY" bench/humaneval_reference.py "$DATA" 2 10)
  rate=$(sed -E 's/.* ([0-9.]+) problems\/s.*/\1/' <<<"$line")
  echo "reference round $r: $line"
  best_ref=$(better "$best_ref" "$rate")
done
"$FLAB" check-benchmark "$DATA" -j 2 --python "$PY" --limit 1 | grep '^sandbox:'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v f="$best_flab" -v r="$best_ref" 'BEGIN {
  printf "sandbox throughput: flab %.1f/s, human-eval reference %.1f/s, ratio %.2fx (goal >= 1.0x)\n", f, r, f / r }'
