#!/usr/bin/env bash
# bench/lora_recovery.sh: the issue's end-to-end recovery measurement on the
# tiny-qwen2 fixture (a few minutes on 2 cores):
#   prune layers 2 and 5 (tests/tools/ckpt_prune); recovery data = the
#   ORIGINAL model's greedy solutions of the first NTRAIN synth-train prompts
#   where they pass their tests, else the reference (bench/lora_eval.py);
#   two `flab build`s of lora_train + merge on the pruned model, identical
#   hyperparameters: plain synth-train references vs the recovery data;
#   synth-test pass@1 (greedy, 128 new tokens, stop at \nclass \ndef \n#
#   \nif \nprint) of original / pruned / both recovered models.
# usage: BUILD=build bench/lora_recovery.sh [NTRAIN=2000 STEPS=120 BATCH=16 R=8 LR=1e-3]
set -eu
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
NTRAIN=${NTRAIN:-2000}; STEPS=${STEPS:-120}; BATCH=${BATCH:-16}; R=${R:-8}; LR=${LR:-1e-3}
REPO=$PWD; FLAB=$REPO/$BUILD/flab; T=$REPO/$BUILD/tests/tools
W=$(mktemp -d /tmp/flab-recovery.XXXXXX); trap 'rm -rf "$W"' EXIT
cd "$W"
cp -r "$REPO/tests/fixtures/tiny-qwen2" base
"$T/ckpt_prune" base pruned --drop 2,5 >/dev/null
evalm() {  # name model_dir
  "$T/gen_jsonl" "$2" "$REPO/data/synth-test.jsonl" "gen-$1.jsonl" 150 16 128 2>/dev/null
  echo "$1: $("$PYTHON" "$REPO/bench/lora_eval.py" pass1 "gen-$1.jsonl")"
}
echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg); NTRAIN $NTRAIN STEPS $STEPS BATCH $BATCH R $R LR $LR"
evalm original base
evalm pruned pruned
head -"$NTRAIN" "$REPO/data/synth-train.jsonl" > reference.jsonl
"$T/gen_jsonl" base reference.jsonl gen-train.jsonl "$NTRAIN" 16 128 2>/dev/null
"$PYTHON" "$REPO/bench/lora_eval.py" recover gen-train.jsonl recovered.jsonl
for d in reference recovered; do
  cat > flabfile.ini <<INI
[lora]
rule = lora_train
model = pruned
data = $d.jsonl
r = $R
alpha = $((2 * R))
lr = $LR
batch_size = $BATCH
max_len = 128
max_steps = $STEPS
warmup = 10

[merged]
rule = merge
model = pruned
adapter = @lora
INI
  s=$SECONDS
  "$FLAB" build >"build-$d.log" 2>&1 || { tail "build-$d.log"; exit 1; }
  echo "# lora_train on $d data: $((SECONDS - s)) s, metrics $("$FLAB" show lora | sed -n 's/^metrics: *//p')"
  evalm "recovered-$d" "$("$FLAB" path merged)"
done
