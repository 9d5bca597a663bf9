"""tests/test_quant_run.py: flab runs quantized checkpoints (AutoAWQ GEMM
INT4 asymmetric and symmetric, flab's INT8 layout (flab_int8), vLLM FP8 per
channel ([out, 1] scales) and per tensor ([] scale)) built here
from the tiny fixture's weights with numpy (tests/quant_ckpt.py), and its
results equal those of the dequantise-then-float32 reference: numpy writes
the dequantised weights as a plain F32 checkpoint and flab runs that too.

  - logits (`flab logits`) of a 40-token text (prefill: the kernels'
    dequantised-tile + sgemm path) and of a 3-token text (decode GEMV path):
    max |quantized - reference| <= 1e-4 * max |reference logit|.  Why 1e-4:
    both sides compute the same real-valued function in float32 and differ
    only in summation order (group-wise zero-point folding, tile vs dense
    GEMV); measured errors are ~1e-6 relative, a wrong nibble order or
    scale index gives errors of order 1.
  - greedy generation (`flab generate --json`, 12 tokens: prefill + GEMV
    decode steps) gives the same ids as the reference;
  - the parameter count of eval's efficiency stats equals the dense
    model's, and weight_bytes is the quantized tensors' bytes;
  - a qweight with the wrong shape, a missing scales tensor and an unknown
    quant_method are clear errors naming the tensor / key.
Runs everything with --threads 2 (on a CPU with AVX-512 VNNI the AWQ
weights take kernels/cpu/cpu_awq_vnni.c), and the INT4 and INT8 logits
again with FLAB_CPU_NO_AVX2=1 (the portable kernels) and
FLAB_CPU_NO_AVX512=1 (the AVX2 float kernels)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import quant_ckpt as qc  # noqa: E402

FLAB = os.environ.get("FLAB", "./flab")
BUILD = os.environ.get("FLAB_BUILD", "build")
FIX = "tests/fixtures/tiny-qwen2"
LONG = "def quantize(weights, bits=4):\n    # round to nearest, group-wise\n    return [round(w * 15) for w in weights]\n"
SHORT = "def f("
TOL = 1e-4
failures = 0


def check(name, fn):
    global failures
    try:
        fn()
        print(f"PASS {name}")
    except Exception as e:  # noqa: BLE001 - the harness reports everything
        failures += 1
        print(f"FAIL {name}: {e}")


def write_model(path, tensors, qcfg):
    os.makedirs(path, exist_ok=True)
    for f in os.listdir(FIX):
        if f.startswith("tokenizer") or f == "generation_config.json":
            shutil.copy(os.path.join(FIX, f), path)
    cfg = json.load(open(os.path.join(FIX, "config.json")))
    cfg["torch_dtype"] = "float32"
    if qcfg:
        cfg["quantization_config"] = qcfg
    json.dump(cfg, open(os.path.join(path, "config.json"), "w"), indent=2)
    qc.write_safetensors(os.path.join(path, "model.safetensors"), tensors)


def run(*args, env=None):
    p = subprocess.run([FLAB, *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"flab {' '.join(args[:2])} failed: {p.stderr.strip()}")
    return p.stdout


def logits(model, text, env=None):
    out = json.loads(run("logits", model, "--device", "cpu", "--threads", "2", "--json", text, env=env))
    return np.array(out["logits"], dtype=np.float64)


def gen_ids(model):
    out = run("generate", model, "--device", "cpu", "--threads", "2", "--max-new-tokens", "12",
              "--json", LONG)
    return json.loads(out)["ids"]


def expect_close(qdir, ddir, text, env=None):
    a, b = logits(qdir, text, env), logits(ddir, text)
    scale = np.abs(b).max()
    err = np.abs(a - b).max()
    if not err <= TOL * scale:
        raise AssertionError(f"max |diff| {err:.3g} > {TOL} * {scale:.3g} ({text[:10]!r})")


def expect_error(model, *needles):
    p = subprocess.run([FLAB, "logits", model, "--device", "cpu", "--json", SHORT],
                       capture_output=True, text=True)
    if p.returncode == 0:
        raise AssertionError("flab accepted a malformed checkpoint")
    for n in needles:
        if n not in p.stderr:
            raise AssertionError(f"error does not name {n!r}: {p.stderr.strip()}")


def stats(model):
    p = subprocess.run([os.path.join(BUILD, "tests", "tools", "quant_stats"), model],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr)
    return {k: int(v) for k, v in (line.split() for line in p.stdout.splitlines())}


def quant_bytes(qt):
    """Bytes read per token: quantized Linear tensors + lm_head (+ norms are 1-D)."""
    total = 0
    for name, (dt, arr) in qt.items():
        if name.endswith((".qweight", ".qzeros", ".scales", ".weight_scale")) or \
           (dt == "F8_E4M3") or name == "lm_head.weight":
            total += arr.nbytes if dt != "F32" else arr.astype(np.float32).nbytes
    return total


def main():
    base = qc.read_safetensors(os.path.join(FIX, "model.safetensors"))
    tmp = tempfile.mkdtemp(prefix="flab-quant-")
    variants = {"int4_awq": ("awq4", True), "int4_sym": ("awq4_sym", True), "int8": ("int8", True),
                "fp8_channel": ("fp8", True), "fp8_tensor": ("fp8", False)}
    try:
        for name, (method, per_ch) in variants.items():
            qt, dq, cfg = qc.quantize_model(base, method, group=64, per_channel=per_ch)
            qdir, ddir = os.path.join(tmp, name), os.path.join(tmp, name + "_deq")
            write_model(qdir, qt, cfg)
            write_model(ddir, dq, None)
            check(f"quant_{name}_logits_prefill", lambda: expect_close(qdir, ddir, LONG))
            check(f"quant_{name}_logits_decode", lambda: expect_close(qdir, ddir, SHORT))
            check(f"quant_{name}_generate", lambda: (lambda a, b: None if a == b else (_ for _ in ()).throw(
                AssertionError(f"{a} != {b}")))(gen_ids(qdir), gen_ids(ddir)))

            def stats_ok(qdir=qdir, ddir=ddir, qt=qt):
                sq, sd = stats(qdir), stats(ddir)
                if sq["params"] != sd["params"]:
                    raise AssertionError(f"params {sq['params']} != dense {sd['params']}")
                if sq["weight_bytes"] != quant_bytes(qt):
                    raise AssertionError(f"weight_bytes {sq['weight_bytes']} != {quant_bytes(qt)}")
            check(f"quant_{name}_efficiency_stats", stats_ok)
            if name in ("int4_awq", "int8"):
                for kind, var in (("scalar", "FLAB_CPU_NO_AVX2"), ("avx2", "FLAB_CPU_NO_AVX512")):
                    env = dict(os.environ, **{var: "1"})
                    check(f"quant_{name}_logits_{kind}", lambda: expect_close(qdir, ddir, LONG, env))
                    check(f"quant_{name}_decode_{kind}", lambda: expect_close(qdir, ddir, SHORT, env))
            if name == "int4_awq":
                bad_checks(tmp, qt, cfg)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


def bad_checks(tmp, qt, cfg):
    bad = dict(qt)
    name = "model.layers.0.self_attn.q_proj.qweight"
    dt, arr = bad[name]
    bad[name] = (dt, arr[:, :-1].copy())
    write_model(os.path.join(tmp, "bad_shape"), bad, cfg)
    check("quant_bad_qweight_shape", lambda: expect_error(os.path.join(tmp, "bad_shape"), name))
    bad = dict(qt)
    del bad["model.layers.3.mlp.down_proj.scales"]
    write_model(os.path.join(tmp, "no_scales"), bad, cfg)
    check("quant_missing_scales", lambda: expect_error(os.path.join(tmp, "no_scales"),
                                                       "model.layers.3.mlp.down_proj.scales"))
    write_model(os.path.join(tmp, "bad_method"), qt, dict(cfg, quant_method="gptq"))
    check("quant_unknown_method", lambda: expect_error(os.path.join(tmp, "bad_method"),
                                                       "quant_method", "gptq"))
    write_model(os.path.join(tmp, "no_config"), qt, None)
    check("quant_tensors_without_config", lambda: expect_error(os.path.join(tmp, "no_config"),
                                                               "quantization_config"))


if __name__ == "__main__":
    sys.exit(main())
