#!/usr/bin/env bash
# tests/test_lora_cuda_rule.sh: the lora_train rule's device parameter with
# the real ./flab on the tiny-qwen2 fixture (4 steps, r 4, dropout 0.1).
#  - without a GPU: device = cuda fails with a clear "no CUDA
#    device" / "built without CUDA" error and leaves no artifact;
#    device = auto then trains on the CPU: exactly the adapter and losses of
#    device = cpu.
#  - with a GPU (or the emulated flab of kernels/cuda/emu/run_emu.sh): device
#    = cuda trains; per-step losses within 1e-4 relative (+2e-6: loss.jsonl
#    has 6 decimals) of the CPU's and every adapter tensor within 1e-3
#    relative L2 after 4 AdamW steps (fp32 on both, summation order differs;
#    early AdamW steps are ~lr x sign(g), so a near-zero gradient can flip
#    an entry's step: hence looser than the gradients' 1e-4) -- else SKIP.
. "$(dirname "$0")/engine_lib.sh"
unset FLAB_RESUME_DIR
cd "$ROOT" || exit 1
cp -r "$REPO/tests/fixtures/tiny-qwen2" base
head -16 "$REPO/data/synth-train.jsonl" > train.jsonl
stanza() {   # name device dropout
  printf '[%s]\nrule = lora_train\nmodel = base\ndata = train.jsonl\nr = 4\nalpha = 8\n' "$1"
  printf 'dropout = %s\ndevice = %s\nbatch_size = 4\nmax_len = 64\nmax_steps = 4\nthreads = 1\n\n' "$3" "$2"
}
{ stanza cpu cpu 0.1; stanza auto auto 0.1; stanza gpu cuda 0.1; } > flabfile.ini
"$FLAB" build cpu >cpu.log 2>&1 || fail cpu_build "$(tail -3 cpu.log)"
C=$("$FLAB" path cpu)
if ! "$FLAB" build gpu >gpu.log 2>&1; then
  if grep -Eq "no CUDA device|built without CUDA|cannot load" gpu.log && ! "$FLAB" path gpu >/dev/null 2>&1; then
    pass cuda_without_gpu_clear_error
  else fail cuda_without_gpu_clear_error "$(tail -3 gpu.log)"; fi
  "$FLAB" build auto >auto.log 2>&1 || fail auto_build "$(tail -3 auto.log)"
  A=$("$FLAB" path auto)
  cmp -s "$C/adapter_model.safetensors" "$A/adapter_model.safetensors" &&
    [ "$(cut -d, -f1-4 "$C/loss.jsonl")" = "$(cut -d, -f1-4 "$A/loss.jsonl")" ] &&
    pass auto_without_gpu_is_cpu || fail auto_without_gpu_is_cpu "adapter or losses differ"
  echo "SKIP cuda_matches_cpu: no CUDA device"
else
  G=$("$FLAB" path gpu)
  python3 - "$C" "$G" <<'PY' && pass cuda_matches_cpu || fail cuda_matches_cpu "see above"
import array, json, math, struct, sys
def tensors(d):
    raw = open(d + "/adapter_model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr, out = json.loads(raw[8:8 + n]), {}
    for k, v in hdr.items():
        if k == "__metadata__": continue
        b, e = v["data_offsets"]
        out[k] = array.array("f", raw[8 + n + b:8 + n + e])
    return out
a, b = [[json.loads(x)["loss"] for x in open(d + "/loss.jsonl")] for d in sys.argv[1:]]
print("# cpu losses %s\n# cuda losses %s" % (a, b))
ok = len(a) == len(b) == 4 and all(abs(x - y) <= 1e-4 * abs(x) + 2e-6 for x, y in zip(a, b))
ta, tb = tensors(sys.argv[1]), tensors(sys.argv[2])
worst = 0.0
for k in ta:
    x, y = ta[k], tb.get(k)
    if y is None or len(x) != len(y): ok = False; continue
    num = math.sqrt(sum((p - q) ** 2 for p, q in zip(x, y)))
    worst = max(worst, num / (math.sqrt(sum(p * p for p in x)) + 1e-30))
print("# adapters: %d tensors, worst rel L2 %.3g" % (len(ta), worst))
sys.exit(0 if ok and len(ta) == len(tb) and worst <= 1e-3 else 1)
PY
fi
exit $((FAILS > 0))
