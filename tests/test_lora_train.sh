#!/usr/bin/env bash
# tests/test_lora_train.sh: the lora_train and merge rules end to end with
# the real ./flab on the tiny-qwen2 fixture.
#  - recovery reduces the loss: layers 2 and 5 removed (tests/tools/ckpt_prune),
#    25 steps on synth-train given as a recovered-data artifact (@target dir
#    with train.jsonl): mean loss of the last 5 steps < 0.7 x the first 5;
#    merge of the result builds and `flab logits` runs on it;
#  - checkpointing = true gives the same adapter bytes and losses;
#  - resume: a build killed (SIGKILL of its process group) after a resumable
#    checkpoint resumes from it (metrics resumed_at_step > 0) and ends with
#    exactly the adapter and losses of an uninterrupted run; the resume
#    state is removed afterwards and never was an artifact;
#  - flab gc removes abandoned resume folders (a key no longer in the
#    flabfile, a committed key), keeps the one of a current unbuilt target
#    and anything that is not a key; --dry-run removes nothing.
. "$(dirname "$0")/engine_lib.sh"
unset FLAB_RESUME_DIR
TOOLS=${FLAB_BUILD:-$PWD/build}/tests/tools
PY=${PYTHON:-python3}; case "$PY" in /*|python3) ;; *) PY=$PWD/$PY ;; esac

cd "$ROOT" || exit 1
cp -r "$REPO/tests/fixtures/tiny-qwen2" base
if ! "$TOOLS/ckpt_prune" base pruned --drop 2,5 >prune.log 2>&1; then
  fail prune_fixture "$(cat prune.log)"; exit 1
fi
head -96 "$REPO/data/synth-train.jsonl" > train.jsonl
# recover and recover_ck: the same training, without and with checkpointing
RECOVER='rule = lora_train
model = pruned
data = @recdata
r = 8
alpha = 16
dropout = 0
lr = 2e-3
batch_size = 4
max_len = 96
max_steps = 25
warmup = 2
threads = 1'
cat > flabfile.ini <<INI
[recdata]
rule = command
inputs = train.jsonl
run = cp "\$FLAB_IN_1" "\$FLAB_OUT/train.jsonl"

[recover]
$RECOVER

[merged]
rule = merge
model = pruned
adapter = @recover

[recover_ck]
$RECOVER
checkpointing = true
INI
if "$FLAB" build >build.log 2>&1; then pass lora_build; else fail lora_build "$(tail -5 build.log)"; fi
A=$("$FLAB" path recover)
"$PY" - "$A/loss.jsonl" <<'PYEOF' && pass loss_decreases || fail loss_decreases "see above"
import json, sys
l = [json.loads(x)["loss"] for x in open(sys.argv[1])]
first, last = sum(l[:5]) / 5, sum(l[-5:]) / 5
print("# pruned model recovery: mean loss first 5 steps %.4f, last 5 %.4f (%d steps)" % (first, last, len(l)))
sys.exit(0 if len(l) == 25 and last < 0.7 * first else 1)
PYEOF
AC=$("$FLAB" path recover_ck)
cmp -s "$A/adapter_model.safetensors" "$AC/adapter_model.safetensors" && [ "$(cut -d, -f1-4 "$A/loss.jsonl")" = "$(cut -d, -f1-4 "$AC/loss.jsonl")" ] \
  && pass checkpointing_same_adapter || fail checkpointing_same_adapter "adapter or losses differ with checkpointing = true"
M=$("$FLAB" path merged)
if [ -f "$M/model.safetensors" ] && "$FLAB" logits "$M" --json "def f(x):" >/dev/null 2>&1; then
  pass merge_runs; else fail merge_runs "no usable merged checkpoint"; fi
[ -z "$(ls .flab/resume 2>/dev/null)" ] && pass resume_dir_cleaned || fail resume_dir_cleaned "$(ls .flab/resume)"

# ---- resume after kill -----------------------------------------------------
mkdir -p r && cd r && cp -r ../pruned ../train.jsonl . || exit 1
cat > flabfile.ini <<'INI'
[long]
rule = lora_train
model = pruned
data = train.jsonl
r = 8
alpha = 16
dropout = 0.1
lr = 2e-3
batch_size = 8
max_len = 128
max_steps = 60
save_every = 5
threads = 1
INI
FLAB_CACHE=.cacheA "$FLAB" build >a.log 2>&1 || fail resume_reference "$(tail -3 a.log)"
setsid env FLAB_CACHE=.cacheB "$FLAB" build >b1.log 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  ls .cacheB/resume/*/state.bin >/dev/null 2>&1 && break
  sleep 0.02
done
kill -9 -- -"$pid" 2>/dev/null; wait "$pid" 2>/dev/null
if ls .cacheB/resume/*/state.bin >/dev/null 2>&1 && ! FLAB_CACHE=.cacheB "$FLAB" path long >/dev/null 2>&1; then
  pass killed_mid_training_no_artifact
else
  fail killed_mid_training_no_artifact "no state.bin, or an artifact already exists"
fi
FLAB_CACHE=.cacheB "$FLAB" build >b2.log 2>&1 || fail resume_build "$(tail -3 b2.log)"
PA=$(FLAB_CACHE=.cacheA "$FLAB" path long); PB=$(FLAB_CACHE=.cacheB "$FLAB" path long)
RES=$(FLAB_CACHE=.cacheB "$FLAB" show long | sed -n 's/.*"resumed_at_step":\([0-9]*\).*/\1/p')
if [ -n "$RES" ] && [ "$RES" -gt 0 ]; then pass resumed_from_checkpoint; echo "# resumed at step $RES of 60"
else fail resumed_from_checkpoint "resumed_at_step = '$RES'"; fi
cmp -s "$PA/adapter_model.safetensors" "$PB/adapter_model.safetensors" \
  && pass resumed_adapter_identical || fail resumed_adapter_identical "adapters differ"
"$PY" - "$PA/loss.jsonl" "$PB/loss.jsonl" <<'PYEOF' && pass resumed_losses_identical || fail resumed_losses_identical "loss.jsonl differs"
import json, sys
a, b = ([(d["step"], d["loss"]) for d in map(json.loads, open(p))] for p in sys.argv[1:3])
sys.exit(0 if a == b and len(a) == 60 else 1)
PYEOF
[ -z "$(ls .cacheB/resume 2>/dev/null)" ] && pass resume_state_removed || fail resume_state_removed "$(ls .cacheB/resume)"

# ---- gc of abandoned resume folders ------------------------------------------
cat >> flabfile.ini <<'INI'

[pending]
rule = lora_train
model = pruned
data = train.jsonl
r = 4
max_steps = 2
INI
key_of() { FLAB_CACHE=.cacheB "$FLAB" explain "$1" | sed -n 's/.*: key \([0-9a-f]\{32\}\)$/\1/p' | head -1; }
KL=$(key_of long); KP=$(key_of pending); KX=0123456789abcdef0123456789abcdef
for k in "$KL" "$KP" "$KX" notakey; do mkdir -p ".cacheB/resume/$k"; echo x > ".cacheB/resume/$k/state.bin"; done
FLAB_CACHE=.cacheB "$FLAB" gc --dry-run > gc1.log 2>&1
if [ -n "$KL" ] && [ -n "$KP" ] && [ "$(ls .cacheB/resume | wc -l)" = 4 ] && grep -q "2 abandoned LoRA resume folders" gc1.log; then
  pass gc_resume_dry_run; else fail gc_resume_dry_run "keys '$KL' '$KP'; $(cat gc1.log)"; fi
FLAB_CACHE=.cacheB "$FLAB" gc > gc2.log 2>&1
left=$(ls .cacheB/resume | sort | tr '\n' ' ')
want=$(printf '%s\n' "$KP" notakey | sort | tr '\n' ' ')
if [ "$left" = "$want" ] && grep -q "2 abandoned LoRA resume folders removed" gc2.log && FLAB_CACHE=.cacheB "$FLAB" path long >/dev/null; then
  pass gc_resume_abandoned_removed; else fail gc_resume_abandoned_removed "left '$left' want '$want'; $(cat gc2.log)"; fi
[ "$FAILS" = 0 ]
