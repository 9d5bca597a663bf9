#!/usr/bin/env bash
# tests/test_report.sh: the `report` rule on hand-made artifacts (no model
# runs): `command` targets copy made-up metrics.json / plan.json /
# mask.json / loss.jsonl files (written below) into artifacts named like
# the real pipeline's (eval/MODEL/BENCHMARK, robustness/MODEL, ...), so the
# report's tables are checked against numbers we chose:
#  - report.txt / report.json: headline, % retained, labels from target names;
#  - the paper's tables appear when their inputs exist (Tables 2/3, 4, 7, 9)
#    and not when they do not;
#  - provenance: every artifact's row (target, rule, version, key, duration,
#    inputs), and every value links to an existing row;
#  - the page is self-contained (no script, no external URL);
#  - headless Chromium renders it (screenshot) and its DOM text has the
#    headers, numbers and chart titles (SKIP line when chromium is absent).
. "$(dirname "$0")/engine_lib.sh"
export FLAB_CACHE_FSYNC=0
trap 'chmod -R u+w "$ROOT" 2>/dev/null; rm -rf "$ROOT"' EXIT
flab() { "$FLAB" -f "$ROOT/flabfile.ini" "$@"; }
has() { grep -qF -- "$2" "$1"; }

# ---- made-up artifacts ---------------------------------------------------------
mkdir -p "$ROOT/fx"
eff() {  # parameters rss tok/s flops energy co2
  printf '"efficiency": {"parameters": %s, "peak_rss_bytes": %s, "decode_tokens_per_s": %s, "prefill_tokens_per_s": 1000, "flops_per_generated_token": %s, "energy_joules": %s, "energy_source": "estimated (65 W)", "co2_grams": %s}' "$@"
}
for m in dense pruned recovered; do
  case $m in
    dense)     he=0.8  bl=0.25 em=0.5  ex=0.6  E=$(eff 7000000000 16106127360 30 14000000000 100 0.0132) ;;
    pruned)    he=0.6  bl=0.2  em=0.3  ex=0.4  E=$(eff 5460000000 12884901888 40 10920000000 80 0.01056) ;;
    recovered) he=0.72 bl=0.24 em=0.45 ex=0.55 E=$(eff 5460000000 12884901888 40 10920000000 81 0.0107) ;;
  esac
  echo "{\"task\": \"codegen\", \"pass@1\": $he, \"n\": 164, \"passed\": 1, $E}" > "$ROOT/fx/$m-HumanEval.json"
  echo "{\"task\": \"cot\", \"bleu4\": $bl, \"bleu1\": 0.5, \"n\": 10}" > "$ROOT/fx/$m-CoT.json"
  echo "{\"task\": \"output\", \"em\": $em, \"exec_match\": $ex, \"n\": 800}" > "$ROOT/fx/$m-CRUX-O.json"
done
cat > "$ROOT/fx/dense-MultiPL-E.json" <<'EOF'
{"task": "codegen", "pass@1": 0.5, "n": 8, "languages": {"ruby": {"pass@1": 0.625, "n": 8}, "kotlin": {"pass@1": 0.375, "n": 8}, "swift": {"skipped": "no swift toolchain (swiftc not found)"}}}
EOF
cat > "$ROOT/fx/pruned-MultiPL-E.json" <<'EOF'
{"task": "codegen", "pass@1": 0.25, "n": 8, "languages": {"ruby": {"pass@1": 0.375, "n": 8}, "kotlin": {"pass@1": 0.125, "n": 8}, "swift": {"skipped": "no swift toolchain (swiftc not found)"}}}
EOF
for m in dense pruned recovered; do
  case $m in dense) a=0.55 ;; pruned) a=0.35 ;; recovered) a=0.5 ;; esac
  cat > "$ROOT/fx/$m-rob.json" <<EOF
{"nominal": {"pass@1": 0.8}, "categories": {
 "format": {"pass@1": 0.7, "robust_pass": $a, "robust_drop": 0.3125, "robust_relative": 0.4},
 "func_name": {"pass@1": 0.75, "robust_pass": 0.65, "robust_drop": 0.1875, "robust_relative": 0.2},
 "natgen": {"pass@1": 0.6, "robust_pass": 0.45, "robust_drop": 0.4375, "robust_relative": 0.5},
 "nlaugmenter": {"pass@1": 0.72, "robust_pass": 0.6, "robust_drop": 0.25, "robust_relative": 0.3}}}
EOF
done
cat > "$ROOT/fx/plan.json" <<'EOF'
{"objective": "kl", "removed": [2, 5], "rounds": [
 {"removed": 2, "kl": 0.0022, "candidates": {"0": 7.53, "1": 0.0068, "2": 0.0022, "3": 0.0153, "4": 0.034, "5": 0.342}},
 {"removed": 5, "kl": 0.0391, "candidates": {"0": 8.1, "1": 0.052, "3": 0.0457, "4": 0.0444, "5": 0.0391}}]}
EOF
echo '{"strategy": "activation", "neurons": 64, "kl": {"top": 0.0098, "activation": 0.00292, "magnitude": 0.00925}}' > "$ROOT/fx/mask.json"
awk 'BEGIN { for (s = 1; s <= 50; s++) printf "{\"step\": %d, \"loss\": %.6f, \"lr\": 0.001}\n", s, 2.5 / s + 0.1 }' > "$ROOT/fx/loss.jsonl"

# ---- the flabfile -------------------------------------------------------------------
{
  cp_target() {  # name file dest [deps]
    printf '[%s]\nrule = command\ninputs = fx/%s %s\nrun = cp "$FLAB_IN_1" "$FLAB_OUT/%s"\n\n' "$1" "$2" "${4:-}" "$3"
  }
  cp_target layers/plan plan.json plan.json
  cp_target ffn/mask mask.json mask.json @layers/plan
  cp_target lora loss.jsonl loss.jsonl @ffn/mask
  for m in dense pruned recovered; do
    dep=""; [ $m = pruned ] && dep=@ffn/mask; [ $m = recovered ] && dep=@lora
    for b in HumanEval CoT CRUX-O; do cp_target eval/$m/$b $m-$b.json metrics.json $dep; done
    cp_target robustness/$m $m-rob.json metrics.json $dep
  done
  cp_target eval/dense/MultiPL-E dense-MultiPL-E.json metrics.json
  cp_target eval/pruned/MultiPL-E pruned-MultiPL-E.json metrics.json @ffn/mask
  cat <<'EOF'
[report]
rule = report
evals = @eval/dense/HumanEval @eval/pruned/HumanEval @eval/recovered/HumanEval
        @eval/dense/CoT @eval/pruned/CoT @eval/recovered/CoT
        @eval/dense/CRUX-O @eval/pruned/CRUX-O @eval/recovered/CRUX-O
        @eval/dense/MultiPL-E @eval/pruned/MultiPL-E
plan = @layers/plan
mask = @ffn/mask
lora = @lora
robustness = @robustness/dense @robustness/pruned @robustness/recovered

[report-min]
rule = report
evals = @eval/dense/HumanEval @eval/pruned/HumanEval
labels = base small

[report-clash]
rule = report
evals = @eval/dense/HumanEval @eval/pruned/HumanEval
labels = same same
EOF
} > "$ROOT/flabfile.ini"

out=$(flab build report report-min 2>&1); rc=$?
check build_ok test "$rc" = 0
[ "$rc" = 0 ] || { echo "$out" | sed 's/^/# /'; exit 1; }
R=$(flab path report) M=$(flab path report-min)

# ---- report.txt and report.json -------------------------------------------------------
T=$R/report.txt
check txt_headline_header grep -q '^model  *params  *ckpt MB  *pass@1  *EM  *tok/s' "$T"
check txt_dense_row grep -q '^dense  *7000000000  *[-0-9.][0-9.]*  *0\.800  *0\.500  *30  *15360 .* 100\.0%  *100\.0%$' "$T"
check txt_pruned_retained grep -q '^pruned  *5460000000  *[-0-9.][0-9.]*  *0\.600  *0\.300  *40 .* 78\.0%  *75\.0%$' "$T"
check txt_recovered_retained grep -q '^recovered .* 78\.0%  *90\.0%$' "$T"
check txt_other_benchmarks grep -q '^CoT: dense 0\.250, pruned 0\.200, recovered 0\.240 (bleu4)$' "$T"
check txt_pipeline grep -q '^layers removed (original indices, in removal order): 2 5; FFN strategy: activation; LoRA loss 2\.6 -> 0\.15 over 50 steps$' "$T"
J=$R/report.json
check json_models test "$(jq -c .models "$J")" = '["dense","pruned","recovered"]'
check json_benchmarks test "$(jq -c .benchmarks "$J")" = '["HumanEval","CoT","CRUX-O","MultiPL-E"]'
check json_retained test "$(jq '.metrics.CoT.bleu4[1].retained_pct' "$J")" = 80
check json_cell_key test "$(jq -r '.metrics.HumanEval["pass@1"][1].key' "$J")" = "$(basename "$(flab path eval/pruned/HumanEval)")"
check json_efficiency test "$(jq '.efficiency.energy_joules[2].retained_pct' "$J")" = 81
check labels_param grep -q '^small ' "$M/report.txt"

out=$(flab build report-clash 2>&1)
check clash_is_an_error test $? != 0
check clash_message grep -q "two evals of model 'same' on benchmark ''" <<<"$out"

# ---- the HTML as written ------------------------------------------------------------------
H=$R/report.html
check self_contained_no_script test -z "$(grep -io '<script\|src=\|href="https\?:\|<link\|@import\|url(' "$H")"
python3 - "$H" > "$ROOT/links.txt" <<'EOF'
import re, sys
html = open(sys.argv[1]).read()
ids = set(re.findall(r'id="([^"]+)"', html))
hrefs = re.findall(r'href="#([^"]+)"', html)
bad = [h for h in hrefs if h not in ids]
print(len(hrefs), len(bad), " ".join(sorted(set(bad))[:5]))
EOF
read -r nlinks nbad badlist < "$ROOT/links.txt"
check links_many test "${nlinks:-0}" -ge 100
check links_resolve test "${nbad:-1}" = 0
# every artifact of the closure has a provenance row with its key
missing=""
for t in layers/plan ffn/mask lora eval/dense/HumanEval eval/pruned/MultiPL-E robustness/recovered; do
  k=$(basename "$(flab path $t)")
  grep -q "<tr id=\"p-$k\"><td>$t</td><td>command</td><td>1</td><td><code>$k</code></td><td>[0-9.]* s</td>" "$H" || missing="$missing $t"
done
check provenance_rows test -z "$missing"
kp=$(basename "$(flab path ffn/mask)")
check provenance_input_link grep -q "inputs = <a href=\"#p-$kp\">@ffn/mask</a>" "$H"

M_H=$M/report.html
check min_has_effectiveness has "$M_H" "Effectiveness (paper Tables 2/3)"
absent=""
for s in "Table 7" "Table 9" "Layer search" "FFN search" "LoRA recovery"; do has "$M_H" "$s" && absent="$absent [$s]"; done
check min_omits_absent_tables test -z "$absent"

# ---- headless Chromium ----------------------------------------------------------------------
CHROME=""
for c in chromium chromium-browser google-chrome; do command -v $c >/dev/null && { CHROME=$c; break; }; done
if [ -z "$CHROME" ]; then
  echo "SKIP chromium_render: no chromium (Debian package chromium)"
else
  export HOME=$ROOT/home; mkdir -p "$HOME"
  chrome() { timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu --user-data-dir="$ROOT/chrome" "$@" 2>>"$ROOT/chrome.log"; }
  chrome --window-size=1280,6000 --screenshot="$ROOT/shot.png" "file://$H" >/dev/null
  size=$(python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(24); print(*struct.unpack('>II', d[16:24]))" "$ROOT/shot.png" 2>/dev/null)
  check chromium_screenshot test "$size" = "1280 6000"
  chrome --dump-dom "file://$H" > "$ROOT/dom.html"
  # the rendered DOM's text (tags dropped, entities decoded, spaces folded)
  python3 -c "
import html, re, sys
t = open(sys.argv[1]).read()
t = re.sub(r'<style.*?</style>', ' ', t, flags=re.S)
print(re.sub(r'\s+', ' ', html.unescape(re.sub(r'<[^>]+>', ' ', t))))" "$ROOT/dom.html" > "$ROOT/dom.txt"
  text_has() { grep -qF -- "$1" "$ROOT/dom.txt"; }
  missing=""
  for s in "Effectiveness (paper Tables 2/3)" "model HumanEval pass@1 CoT bleu4 CRUX-O em MultiPL-E pass@1" \
           "pruned 0.6 (75.0%) 0.2 (80.0%) 0.3 (60.0%) 0.25 (50.0%)" "recovered 0.72 (90.0%) 0.24 (96.0%) 0.45 (90.0%) -" \
           "Efficiency (paper Table 4)" "parameters weights (checkpoint, MB) memory (peak RSS, MB) tokens/s (decode) tokens/s (prefill) FLOPs/token energy (J) CO2 (g)" \
           "pruned 5460000000 (78.0%) - 12288 (80.0%) 40 (133.3%)" \
           "Robustness per perturbation category (paper Table 7)" "pass@1 Robust Pass Robust Drop Robust Relative" \
           "format 0.7 0.55 0.3125 0.4 0.7 0.35 0.3125 0.4 0.7 0.5 0.3125 0.4" "nominal 0.8" \
           "Other languages (paper Table 9)" "MultiPL-E ruby 0.625 (n=8) 0.375 (n=8) -" \
           "MultiPL-E swift skipped: no swift toolchain (swiftc not found) skipped: no swift toolchain (swiftc not found) -" \
           "Per-benchmark deltas" "CRUX-O exec_match" "pruned 0.4 -0.2 66.7%" \
           "Layer search: KL per candidate layer per round" "kl of removing each layer, per round" "2 0.0022 removed -" "5 0.342 0.0391 removed" \
           "FFN search: KL per strategy" "activation chosen 0.00292" \
           "LoRA recovery: training loss" "LoRA training loss per step" "loss: first 2.6, last 0.15, min 0.15 (step 50)" \
           "Provenance of every artifact" "target rule version key duration built inputs artifact"; do
    text_has "$s" || missing="$missing [$s]"
  done
  check chromium_text "$([ -z "$missing" ] && echo true || echo false)"
  [ -z "$missing" ] || echo "# missing in the rendered text:$missing"
  check chromium_svg_rendered test "$(grep -c '<svg' "$ROOT/dom.html")" -ge 8
fi
exit $((FAILS > 0))
