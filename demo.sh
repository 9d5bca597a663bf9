#!/usr/bin/env bash
# demo.sh: `make demo`.  Builds the Flab-Pruner pipeline of flabfile.ini on
# the embedded tiny Qwen2 model (CPU), prints the headline table from the
# artifacts' metrics (`flab show`), then shows an FFN-size change
# (`-D ffn/mask.neurons=96`) rebuilding only the FFN mask and its
# dependents.  The cache is .flab in the repository, so a second
# `make demo` runs nothing.  examples/engine-demo.ini is the engine's own
# small demo of `command` targets.
#   FLAB=path/to/flab  FLAB_FILE=flabfile.ini  DEMO_NEURONS=96
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FLAB=${FLAB:-$here/flab}
FILE=${FLAB_FILE:-$here/flabfile.ini}
NEURONS=${DEMO_NEURONS:-96}
cd "$(dirname "$FILE")"
flab() { "$FLAB" -f "$FILE" "$@"; }

# every target (the table reads every eval); the report is printed when there is one
goal=""
has_target() { grep -q "^\[$1\]" "$FILE"; }

# shown TARGET [-D ...]: the metrics json of `flab show`, one call per
# target (metric runs in $(...) subshells: the memo is a file)
memo=$(mktemp -d /tmp/flab-demo.XXXXXX); trap 'rm -rf "$memo"' EXIT
shown() {
    local f="$memo/$(printf '%s' "$*" | tr -c 'A-Za-z0-9._=-' '_')"
    if [[ ! -e $f ]]; then
        local out dir
        out=$(flab show "${@:2}" "$1" 2>/dev/null || true)
        dir=$(sed -n 's/^artifact: *//p' <<<"$out")
        # eval artifacts: metrics.json has the efficiency block too
        if [[ -n $dir && -s $dir/metrics.json ]]; then cat "$dir/metrics.json" > "$f"
        else sed -n 's/^metrics: *//p' <<<"$out" > "$f"; fi
    fi
    cat "$f"
}
# metric TARGET JQ_EXPR [-D ...]: a value from a built target's metrics, or "-"
metric() {
    local t=$1 expr=$2; shift 2
    has_target "$t" || { echo -; return; }
    shown "$t" "$@" | jq -r "($expr) // \"-\" | if type == \"number\" then (. * 1000 | round / 1000) else . end" 2>/dev/null || echo -
}
pct() { [[ $1 == - || $2 == - || $2 == 0 ]] && echo - || awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", 100 * a / b }'; }

table() {
    local p0 p1 q0 q e fmt='%-10s %9s %7s %6s %8s %8s %10s %8s %8s %8s\n'
    p0=$(metric tokenizer .params_before "$@"); p1=$(metric pruned .params_after "$@")
    q0=$(metric eval/original/synth-test '.["pass@1"]' "$@")
    printf "$fmt" model params pass@1 EM tok/s "RSS MB" FLOPs/tok "energy J" "%params" "%pass@1"
    for m in original pruned recovered; do
        local p=$p1; [[ $m == original ]] && p=$p0
        e=eval/$m/synth-test
        q=$(metric "$e" '.["pass@1"]' "$@")
        printf "$fmt" "$m" "$p" "$q" \
            "$(metric "eval/$m/synth-crux-test" '.em' "$@")" \
            "$(metric "$e" '.efficiency.decode_tokens_per_s | round' "$@")" \
            "$(metric "$e" '.efficiency.peak_rss_bytes / 1048576 | round' "$@")" \
            "$(metric "$e" '.efficiency.flops_per_generated_token | round' "$@")" \
            "$(metric "$e" '.efficiency.energy_joules' "$@")" \
            "$(pct "$p" "$p0")" "$(pct "$q" "$q0")"
    done
    echo "pass@1 and efficiency: synth-test (150 tasks); EM: synth-crux-test; HumanEval pass@1 original $(metric eval/original/HumanEval '.["pass@1"]' "$@"), pruned $(metric eval/pruned/HumanEval '.["pass@1"]' "$@"), recovered $(metric eval/recovered/HumanEval '.["pass@1"]' "$@")"
}

step() { printf '\n\033[1m== %s\033[0m\n$ flab %s\n' "$1" "${*:2}"; flab "${@:2}"; }

step "the pipeline" graph
step "build (a no-op when everything is cached)" build -j2 $goal
if has_target report; then echo; echo "report: $(flab path report)/report.html"; cat "$(flab path report)/report.txt" 2>/dev/null || true; fi
printf '\n\033[1m== headline (flab show metrics)\033[0m\n'
table
echo "layers removed: $(metric layers/plan '.removed | map(tostring) | join(",")'); FFN: $(metric ffn/mask .strategy), intermediate size $(metric ffn/mask .intermediate_size); vocabulary $(metric tokenizer .vocab_before) -> $(metric tokenizer .vocab_after); LoRA loss $(metric lora .loss_first) -> $(metric lora .loss_last)"

step "what a different FFN size rebuilds (dry run)" build -n -D ffn/mask.neurons="$NEURONS" $goal
step "build it: only the FFN mask and its dependents run" build -j2 -D ffn/mask.neurons="$NEURONS" $goal
printf '\n\033[1m== headline with neurons = %s\033[0m\n' "$NEURONS"
table -D ffn/mask.neurons="$NEURONS"
echo
echo "cache: $PWD/.flab; \`flab show TARGET\` for any artifact, \`flab log\` for provenance"
