#!/usr/bin/env bash
# tests/test_prune_e2e.sh: the pruning rules through the real binary on a
# real flabfile: layer_search (remove = 1, golden calibration ids) ->
# ffn_search (plan applied, auto over top/bottom/middle) -> apply, then a
# second build is a no-op, a prompt/completion sample file from
# data/synth-test.jsonl works, bad parameters fail with clear messages, and
# a search streamed under max_memory_mb gives the resident one's plan.
. "$(dirname "$0")/engine_lib.sh"
PY=${PYTHON:-python3}
FIX=$REPO/tests/fixtures/tiny-qwen2
# search NAME RULE SAMPLES [LINE...]: a layer_search or ffn_search stanza on
# the fixture with the given "key = value" lines, on the CPU with 2 threads
search() {
  printf '[%s]\nrule = %s\nmodel = %s\nsamples = %s\n' "$1" "$2" "$FIX" "$3"; shift 3
  printf '%s\n' "$@" 'device = cpu' 'threads = 2' ''
}

new_project prune
# 3 of the golden calibration sequences, as {"ids": [...]} lines
$PY - "$FIX/golden.json" > calib.jsonl <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))["calibration"]
for ids in g["ids"][:3]:
    print(json.dumps({"ids": ids}))
PY
head -n 4 "$REPO/data/synth-test.jsonl" > synth.jsonl
{
  search plan layer_search calib.jsonl 'remove = 1'
  search mask ffn_search calib.jsonl 'plan = @plan' 'neurons = 128' 'candidates = top bottom middle'
  printf '[pruned]\nrule = apply\nmodel = %s\nplan = @plan\nmask = @mask\n\n' "$FIX"
  search plan_synth layer_search synth.jsonl 'objective = cosine' 'remove = 2'
} > flabfile.ini

out=$("$FLAB" build pruned 2>&1); rc=$?
check build_succeeds [ $rc = 0 ]
[ $rc = 0 ] || echo "$out" | tail -20
P=$("$FLAB" path plan)/plan.json
M=$("$FLAB" path mask)/mask.json
D=$("$FLAB" path pruned)
check plan_json $PY -c "
import json; p = json.load(open('$P'))
assert p['objective'] == 'kl' and len(p['removed']) == 1 and len(p['rounds']) == 1
assert len(p['rounds'][0]['candidates']) == 8 and p['kl'] == p['rounds'][0]['kl'] > 0
assert p['removed'][0] == p['rounds'][0]['removed']"
check mask_json $PY -c "
import json; m = json.load(open('$M')); p = json.load(open('$P'))
assert m['neurons'] == 128 and set(m['kl']) == {'top', 'bottom', 'middle'}
assert m['strategy'] == min(m['kl'], key=m['kl'].get)
assert sorted(m['kept']) == sorted(str(l) for l in range(8) if l not in p['removed'])
assert all(len(v) == 384 and v == sorted(v) for v in m['kept'].values())"
check pruned_config $PY -c "
import json; c = json.load(open('$D/config.json'))
assert c['num_hidden_layers'] == 7 and c['intermediate_size'] == 384 and c['vocab_size'] == 2048"
check pruned_tokenizer [ -f "$D/tokenizer.json" ] && cmp -s "$D/tokenizer.json" "$FIX/tokenizer.json"
check apply_metrics sh -c "'$FLAB' show pruned | grep -q reduction_percent"
out=$("$FLAB" build pruned 2>&1)
check second_build_noop sh -c "! grep -q '(layer_search)\|(ffn_search)\|(apply)'" <<< "$out"
check status_fresh [ "$("$FLAB" status plan mask pruned | grep -c '^fresh')" = 3 ]
check logits_of_pruned "$FLAB" logits "$D" --device cpu --json "def f(x):" >/dev/null

out=$("$FLAB" build plan_synth 2>&1); rc=$?
check prompt_completion_samples [ $rc = 0 ]
check cosine_plan $PY -c "
import json; p = json.load(open('$("$FLAB" path plan_synth 2>/dev/null)/plan.json'))
assert p['objective'] == 'cosine' and p['mode'] == 'oneshot' and len(p['removed']) == 2"

# a D_correct-shaped artifact: a directory holding correct.jsonl
cat >> flabfile.ini <<INI
[dcorrect]
rule = command
inputs = synth.jsonl
run = $PY -c "import json,sys; [print(json.dumps(dict(json.loads(l), completion=json.loads(l)['canonical_solution']))) for l in open(sys.argv[1])]" "\$FLAB_IN_1" > "\$FLAB_OUT/correct.jsonl"

INI
search plan_dcorrect layer_search @dcorrect 'objective = perplexity' 'remove = 1' 'positions = completion' >> flabfile.ini
out=$("$FLAB" build plan_dcorrect 2>&1); rc=$?
check d_correct_dir_samples [ $rc = 0 ]
[ $rc = 0 ] || echo "$out" | tail -20
check perplexity_plan $PY -c "
import json; p = json.load(open('$("$FLAB" path plan_dcorrect 2>/dev/null)/plan.json'))
assert p['objective'] == 'perplexity' and p['score'] == 'nll' and len(p['rounds'][0]['candidates']) == 8"

# apply: a mask made for another plan, and a broken plan file
echo '{"removed": [0, 0]}' > bad_plan.json
cat >> flabfile.ini <<INI
[other_plan]
rule = command
run = echo '{"removed": [$(( ($($PY -c "import json;print(json.load(open('$P'))['removed'][0])") + 1) % 8 ))]}' > "\$FLAB_OUT/plan.json"

[pruned_mismatch]
rule = apply
model = $FIX
plan = @other_plan
mask = @mask

[pruned_badplan]
rule = apply
model = $FIX
plan = bad_plan.json

[mask_badplan]
rule = ffn_search
model = $FIX
samples = calib.jsonl
plan = bad_plan.json
neurons = 8
strategy = top

INI
out=$("$FLAB" build pruned_mismatch 2>&1)
check apply_mask_for_other_plan grep -q 'made for another plan' <<< "$out"

out=$("$FLAB" build pruned_badplan 2>&1)
check apply_bad_plan grep -q 'bad_plan.json: "removed": bad layer' <<< "$out"
out=$("$FLAB" build mask_badplan 2>&1)
check ffn_bad_plan grep -q 'bad_plan.json: "removed": bad layer' <<< "$out"
{
  search taylor layer_search calib.jsonl 'objective = taylor' 'remove = 2'
  search taylor_oneshot layer_search calib.jsonl 'objective = taylor' 'mode = oneshot' 'remove = 2'
  search fisher ffn_search calib.jsonl 'plan = @taylor' 'neurons = 8' 'strategy = fisher'
  search fisher_auto ffn_search calib.jsonl 'neurons = 64' 'strategy = auto' 'candidates = top fisher magnitude'
} >> flabfile.ini
out=$("$FLAB" build taylor taylor_oneshot fisher fisher_auto 2>&1); rc=$?
check gradient_builds_succeed [ $rc = 0 ]
[ $rc = 0 ] || echo "$out" | tail -20
T=$("$FLAB" path taylor)/plan.json
T1=$("$FLAB" path taylor_oneshot)/plan.json
check taylor_plan $PY -c "
import json; p = json.load(open('$T'))
assert p['objective'] == 'taylor' and p['mode'] == 'iterative' and p['score'] == 'taylor_importance'
assert len(p['removed']) == 2 and len(set(p['removed'])) == 2 and p['kl'] > 0
r0, r1 = p['rounds']
assert len(r0['candidates']) == 8 and len(r1['candidates']) == 7
for r in p['rounds']:
    c = {int(k): v for k, v in r['candidates'].items()}
    assert r['removed'] == min(c, key=c.get) and all(v >= 0 for v in c.values())
assert str(r0['removed']) not in r1['candidates']
assert p['kl'] == r1['kl']"
check taylor_oneshot_plan $PY -c "
import json; p = json.load(open('$T1')); q = json.load(open('$T'))
c = {int(k): v for k, v in p['rounds'][0]['candidates'].items()}
assert p['mode'] == 'oneshot' and p['removed'] == sorted(c, key=lambda l: (c[l], l))[:2]
assert p['rounds'][0]['candidates'] == q['rounds'][0]['candidates']"
F=$("$FLAB" path fisher)/mask.json
FA=$("$FLAB" path fisher_auto)/mask.json
check fisher_mask $PY -c "
import json; m = json.load(open('$F')); p = json.load(open('$T'))
assert m['strategy'] == 'fisher' and m['neurons'] == 8 and list(m['kl']) == ['fisher']
assert sorted(m['kept']) == sorted(str(l) for l in range(8) if l not in p['removed'])
assert all(len(v) == 504 and v == sorted(v) and len(set(v)) == 504 for v in m['kept'].values())
assert m['kl']['fisher'] > 0
assert any(v != list(range(504)) for v in m['kept'].values())"
check fisher_auto_mask $PY -c "
import json; m = json.load(open('$FA'))
assert set(m['kl']) == {'top', 'fisher', 'magnitude'}
assert m['strategy'] == min(m['kl'], key=m['kl'].get)
assert len(m['kept']) == 8 and all(len(v) == 448 for v in m['kept'].values())"

# streamed under max_memory_mb: a 128-token chunk's state is 1.9 MB
# (reference logits + 9 residuals), so max_memory_mb = 2 streams the 3
# samples in 3 batches; same chunks resident give the same plan, bit for bit
{
  search plan_chunked layer_search calib.jsonl 'remove = 2' 'chunk_tokens = 128'
  search plan_streamed layer_search calib.jsonl 'remove = 2' 'chunk_tokens = 128' 'max_memory_mb = 2'
  search plan_too_small layer_search calib.jsonl 'chunk_tokens = 128' 'max_memory_mb = 1'
} >> flabfile.ini
out=$("$FLAB" build plan_chunked plan_streamed 2>&1); rc=$?
check streamed_build_succeeds [ $rc = 0 ]
[ $rc = 0 ] || echo "$out" | tail -20
check streamed_plan_identical $PY -c "
import json
a = json.load(open('$("$FLAB" path plan_chunked 2>/dev/null)/plan.json'))
b = json.load(open('$("$FLAB" path plan_streamed 2>/dev/null)/plan.json'))
assert a['removed'] == b['removed'] and a['rounds'] == b['rounds'] and a['kl'] == b['kl']
assert b['flops'] > a['flops'] and a['naive_flops'] == b['naive_flops']"
check streamed_metrics sh -c "'$FLAB' show plan_streamed | grep -E 'batches.*3' >/dev/null && '$FLAB' show plan_streamed | grep -q peak_state_mb"
out=$("$FLAB" build plan_too_small 2>&1)
check budget_below_one_chunk grep -q 'raise max_memory_mb' <<< "$out"
finish
