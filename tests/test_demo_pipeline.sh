#!/usr/bin/env bash
# tests/test_demo_pipeline.sh: the demo pipeline (flabfile.ini + demo.sh)
# end to end with small limits (16 calibration problems, 32 recovery rows,
# 10 LoRA steps of 4 examples, 8 rows per evaluation), in a copy of the
# flabfile:
#  - demo.sh builds every target and prints the headline table (the
#    report's report.txt) and where report.html is;
#  - report.html covers every benchmark, has the layer / FFN / LoRA charts
#    and one provenance row per artifact the report depends on;
#  - every artifact exists with its main file;
#  - a second build runs nothing;
#  - -D ffn/mask.neurons=N rebuilds exactly ffn/mask and the targets that
#    depend on it (the transitive dependents read from `flab graph`).
. "$(dirname "$0")/engine_lib.sh"
flab() { "$FLAB" -f "$ROOT/flabfile.ini" "$@"; }

mkdir -p "$ROOT/tests/fixtures"
ln -s "$REPO/data" "$ROOT/data"
ln -s "$REPO/tests/fixtures/tiny-qwen2" "$ROOT/tests/fixtures/tiny-qwen2"
sed -e '/^\[layers\/plan\]/a max_samples = 16' \
    -e '/^\[ffn\/mask\]/a max_samples = 16' \
    -e 's/^max_steps = .*/max_steps = 10/' \
    -e 's/^batch_size = .*/batch_size = 4/' \
    -e 's/^limit = 2000/limit = 32/' \
    -e '/^rule = eval/a limit = 8' \
    -e '/^rule = filter_correct/a limit = 16' \
    "$REPO/flabfile.ini" > "$ROOT/flabfile.ini"

# 1. demo.sh on the reduced flabfile
if FLAB=$FLAB FLAB_FILE=$ROOT/flabfile.ini DEMO_NEURONS=64 bash "$REPO/demo.sh" > "$ROOT/demo.log" 2>&1 &&
   grep -q '^original  *[0-9]' "$ROOT/demo.log" && grep -q '^pruned  *[0-9][0-9]*  *[0-9]' "$ROOT/demo.log"; then
  pass demo_runs
else
  fail demo_runs "$(tail -20 "$ROOT/demo.log")"
fi

# 1b. the report: every benchmark, the charts, provenance of every dependency
R=$(flab path report 2>/dev/null)
if grep -q "^report: $R/report.html" "$ROOT/demo.log"; then pass demo_prints_report_path; else fail demo_prints_report_path "no 'report: $R/report.html'"; fi
missing=""
for s in "synth-test pass@1" "synth-crux-test em" "HumanEval pass@1" "Effectiveness (paper Tables 2/3)" \
         "Efficiency (paper Table 4)" "Layer search: KL per candidate layer per round" \
         "FFN search: KL per strategy" "LoRA recovery: training loss" "Provenance of every artifact"; do
  grep -qF "$s" "$R/report.html" || missing="$missing [$s]"
done
if [ -z "$missing" ]; then pass report_sections; else fail report_sections "missing$missing"; fi
ndeps=$(($(flab graph | wc -l) - 1))
nrows=$(grep -c '^<tr id="p-' "$R/report.html")
if [ "$nrows" = "$ndeps" ]; then pass report_provenance_rows; else fail report_provenance_rows "$nrows rows, $ndeps dependencies"; fi

# 2. artifacts
check_file() {  # target file
  local d; d=$(flab path "$1" 2>/dev/null)
  if [ -n "$d" ] && [ -s "$d/$2" ]; then pass "artifact_$1"; else fail "artifact_$1" "no $2 in '$d'"; fi
}
check_file layers/plan plan.json
check_file ffn/mask mask.json
check_file pruned config.json
check_file tokenizer tokenizer.json
check_file recovered/data train.jsonl
check_file lora adapter_model.safetensors
check_file recovered config.json
check_file D_correct correct.jsonl
for m in original pruned recovered; do for b in synth-test synth-crux-test HumanEval; do
  check_file eval/$m/$b metrics.json
done; done
for t in pruned recovered; do
  d=$(flab path $t 2>/dev/null)
  if ls "$d"/*.safetensors >/dev/null 2>&1; then pass "weights_$t"; else fail "weights_$t" "no safetensors in $d"; fi
done

# 3. a second build is a no-op
out=$(flab build 2>&1)
if echo "$out" | grep -q 'no work to do'; then pass rebuild_noop; else fail rebuild_noop "$out"; fi

# 4. -D ffn/mask.neurons: exactly ffn/mask and its transitive dependents
expected=$(flab graph | awk '
  { name = $1; for (i = 2; i <= NF; i++) if ($i ~ /^@/) { d = $i; sub(/^@/, "", d); sub(/,$/, "", d); dep[name] = dep[name] " " d } names[++n] = name }
  END { hit["ffn/mask"] = 1; changed = 1
        while (changed) { changed = 0
          for (i = 1; i <= n; i++) { t = names[i]; if (hit[t]) continue
            k = split(dep[t], ds, " "); for (j = 1; j <= k; j++) if (hit[ds[j]]) { hit[t] = 1; changed = 1 } } }
        for (t in hit) if (hit[t]) print t }' | sort)
ran=$(flab build -D ffn/mask.neurons=48 2>&1 | sed -n 's/^\[[0-9]*\/[0-9]*\] \([^ ]*\) .*/\1/p' | sort)
if [ -n "$ran" ] && [ "$ran" = "$expected" ]; then
  pass neurons_rebuilds_dependents
else
  fail neurons_rebuilds_dependents "ran [$(echo $ran)] expected [$(echo $expected)]"
fi
case " $(echo $expected) " in *" lora "*) pass dependents_include_lora ;; *) fail dependents_include_lora "[$(echo $expected)]" ;; esac
out=$(flab build -D ffn/mask.neurons=48 2>&1)
if echo "$out" | grep -q 'no work to do'; then pass override_rebuild_noop; else fail override_rebuild_noop "$out"; fi
exit $((FAILS > 0))
