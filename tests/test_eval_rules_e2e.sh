#!/usr/bin/env bash
# tests/test_eval_rules_e2e.sh: a small evaluation pipeline through `flab
# build`: two eval targets (first 6 and first 12 synth-test problems of the
# tiny fixture), filter_correct feeding nothing but checked, and a `report`
# comparing the evals; then a no-op second build that runs nothing.
. "$(dirname "$0")/engine_lib.sh"

# synth_stanza NAME RULE KEY LIMIT: a target of RULE on the first LIMIT
# synth-test problems (KEY = benchmark or problems)
synth_stanza() {
  printf '[%s]\nrule = %s\nmodel = %s\n%s = %s\nlimit = %s\nmax_new_tokens = 128\n\n' \
    "$1" "$2" "$REPO/tests/fixtures/tiny-qwen2" "$3" "$REPO/data/synth-test.jsonl" "$4"
}
new_project evalrules
{
  synth_stanza eval/a eval benchmark 6
  synth_stanza eval/b eval benchmark 12
  synth_stanza dcorrect filter_correct problems 6
  cat <<'INI'
[cmp]
rule = report
evals = @eval/a @eval/b
labels = original pruned
INI
} > flabfile.ini
out=$("$FLAB" build 2>&1); rc=$?
check build_ok test "$rc" = 0
[ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'
A=$("$FLAB" path eval/a) B=$("$FLAB" path eval/b) C=$("$FLAB" path cmp) D=$("$FLAB" path dcorrect)
num() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
pa=$(num "$A/metrics.json" pass@1) pb=$(num "$B/metrics.json" pass@1)
check eval_artifacts test -s "$A/samples.jsonl" -a -s "$A/report.html" -a -s "$B/metrics.json"
check dcorrect_count test "$(wc -l < "$D/correct.jsonl")" = "$(num "$A/metrics.json" passed)"
check report_files test -s "$C/report.html" -a -s "$C/report.json" -a -s "$C/report.txt"
check report_html_numbers grep -q ">$(printf '%.6g' "$pb")<" "$C/report.html"
check report_html_labels grep -q "pruned" "$C/report.html"
check report_svg grep -q "<svg" "$C/report.html"
want=$(python3 -c "print('%.1f%%' % (100*$pb/$pa))")
check report_retained grep -q -- "$want" "$C/report.txt"
out2=$("$FLAB" build 2>&1); rc2=$?
check noop_rebuild_ok test "$rc2" = 0
check noop_rebuild_runs_nothing test -z "$(echo "$out2" | grep -E '^\[[0-9]+/[0-9]+\]')"
check noop_same_artifact test "$("$FLAB" path eval/a)" = "$A"
finish
