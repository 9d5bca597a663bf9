#!/usr/bin/env bash
# tests/test_prune_e2e.sh: the pruning rules through the real binary on a
# real flabfile: layer_search (remove = 1, golden calibration ids) ->
# ffn_search (plan applied, auto over top/bottom/middle) -> apply, then a
# second build is a no-op, a prompt/completion sample file from
# data/synth-test.jsonl works, and bad parameters fail with clear messages.
. "$(dirname "$0")/engine_lib.sh"
REPO=$PWD
PY=${PYTHON:-python3}
FIX=$REPO/tests/fixtures/tiny-qwen2

new_project prune
# 3 of the golden calibration sequences, as {"ids": [...]} lines
$PY - "$FIX/golden.json" > calib.jsonl <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))["calibration"]
for ids in g["ids"][:3]:
    print(json.dumps({"ids": ids}))
PY
head -n 4 "$REPO/data/synth-test.jsonl" > synth.jsonl
cat > flabfile.ini <<INI
[plan]
rule = layer_search
model = $FIX
samples = calib.jsonl
remove = 1
device = cpu
threads = 2

[mask]
rule = ffn_search
model = $FIX
samples = calib.jsonl
plan = @plan
neurons = 128
candidates = top bottom middle
device = cpu
threads = 2

[pruned]
rule = apply
model = $FIX
plan = @plan
mask = @mask

[plan_synth]
rule = layer_search
model = $FIX
samples = synth.jsonl
objective = cosine
remove = 2
device = cpu
threads = 2
INI

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

[plan_dcorrect]
rule = layer_search
model = $FIX
samples = @dcorrect
objective = perplexity
remove = 1
positions = completion
device = cpu
threads = 2
INI
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
cat >> flabfile.ini <<INI

[taylor]
rule = layer_search
model = $FIX
samples = calib.jsonl
objective = taylor

[fisher]
rule = ffn_search
model = $FIX
samples = calib.jsonl
neurons = 8
strategy = fisher
INI
out=$("$FLAB" build taylor 2>&1)
check taylor_rejected grep -q 'backward pass' <<< "$out"
out=$("$FLAB" build fisher 2>&1)
check fisher_rejected grep -q 'backward pass' <<< "$out"
finish
