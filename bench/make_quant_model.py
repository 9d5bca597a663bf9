#!/usr/bin/env python3
"""bench/make_quant_model.py: quantized checkpoints for bench/bench_quant.sh.

  make_quant_model.py OUT_DIR --from MODEL_DIR --method awq4|int8|fp8|f32
      quantizes every Linear of the blocks of a (bf16/f16/f32) checkpoint with
      tests/quant_ckpt.py (RTN with zero point, group 128, AutoAWQ GEMM
      packing; fp8 per channel); embeddings, norms, biases and lm_head are
      copied unchanged.  Tokenizer and generation config files are copied.
      f32: every tensor widened to float32 (the unquantized baseline).
  make_quant_model.py OUT_DIR --random-awq4 [--hidden 4096 --layers 32
      --heads 32 --kv-heads 4 --intermediate 13440 --vocab 92416]
      a random INT4 AWQ checkpoint of that shape (default: CodeQwen1.5-7B),
      written directly (random nibbles, zero points 8, scales ~0.002, bf16
      embeddings and untied lm_head ~N(0, 0.02)): for the GPU decode bench,
      where only speed and memory matter.
Only numpy is needed."""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import quant_ckpt as qc  # noqa: E402


def read_raw(path):
    """{name: (dtype, array)} with BF16 kept as uint16 bit patterns."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        out[name] = (e["dtype"], data[a:b].view(qc.NP_DTYPE[e["dtype"]]).reshape(e["shape"]))
    return out


def as_f32(dt, arr):
    if dt == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32)


def is_linear(name):
    return name.endswith(".weight") and any(name[:-7].endswith(s) for s in qc.LINEARS)


def from_model(args):
    src = read_raw(os.path.join(args.src, "model.safetensors"))
    out = {}
    for name, (dt, arr) in src.items():
        if args.method == "f32":
            out[name] = ("F32", as_f32(dt, arr))
            continue
        if not is_linear(name):
            out[name] = (dt, arr)
            continue
        w = as_f32(dt, arr)
        if args.method == "fp8":
            t, _ = qc.quant_fp8(w, True)
        else:
            t, _ = qc.quant_awq(w, 4 if args.method == "awq4" else 8, args.group)
        for suffix, v in t.items():
            out[name[:-7] + "." + suffix] = v
    cfg = json.load(open(os.path.join(args.src, "config.json")))
    if args.method == "f32":
        cfg["torch_dtype"] = "float32"
    else:
        cfg["quantization_config"] = (
            {"quant_method": "fp8", "activation_scheme": "dynamic"} if args.method == "fp8" else
            {"quant_method": "awq" if args.method == "awq4" else "flab_int8",
             "bits": 4 if args.method == "awq4" else 8,
             "group_size": args.group, "zero_point": True, "version": "gemm"})
    os.makedirs(args.out, exist_ok=True)
    for f in os.listdir(args.src):
        if f.startswith("tokenizer") or f == "generation_config.json":
            shutil.copy(os.path.join(args.src, f), args.out)
    qc.write_safetensors(os.path.join(args.out, "model.safetensors"), out)
    json.dump(cfg, open(os.path.join(args.out, "config.json"), "w"), indent=2)


def random_awq4(args):
    rng = np.random.default_rng(0)
    h, inter, g = args.hidden, args.intermediate, args.group
    hd = h // args.heads
    kv = args.kv_heads * hd
    t = {}

    def bf16(shape, std):
        return ("BF16", qc.bf16_round(rng.standard_normal(shape, dtype=np.float32) * std)
                .view(np.uint32) >> 16)

    def lin(prefix, out, inp):
        t[prefix + ".qweight"] = ("I32", rng.integers(-2**31, 2**31, (inp, out // 8), dtype=np.int64)
                                  .astype(np.int32))
        t[prefix + ".qzeros"] = ("I32", np.full((inp // g, out // 8), 0x88888888 - 2**32, np.int32))
        t[prefix + ".scales"] = ("F16", np.full((inp // g, out), 0.002, np.float16))

    t["model.embed_tokens.weight"] = bf16((args.vocab, h), 0.02)
    t["lm_head.weight"] = bf16((args.vocab, h), 0.02)
    t["model.norm.weight"] = ("F32", np.ones(h, np.float32))
    for i in range(args.layers):
        p = f"model.layers.{i}."
        for n, o, k in [("self_attn.q_proj", h, h), ("self_attn.k_proj", kv, h),
                        ("self_attn.v_proj", kv, h), ("self_attn.o_proj", h, h),
                        ("mlp.gate_proj", inter, h), ("mlp.up_proj", inter, h),
                        ("mlp.down_proj", h, inter)]:
            lin(p + n, o, k)
        for n, size in [("self_attn.q_proj.bias", h), ("self_attn.k_proj.bias", kv),
                        ("self_attn.v_proj.bias", kv)]:
            t[p + n] = ("F32", np.zeros(size, np.float32))
        t[p + "input_layernorm.weight"] = ("F32", np.ones(h, np.float32))
        t[p + "post_attention_layernorm.weight"] = ("F32", np.ones(h, np.float32))
    cfg = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": args.vocab,
           "hidden_size": h, "intermediate_size": inter, "num_hidden_layers": args.layers,
           "num_attention_heads": args.heads, "num_key_value_heads": args.kv_heads,
           "hidden_act": "silu", "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
           "rope_theta": 1000000.0, "tie_word_embeddings": False, "torch_dtype": "float16",
           "bos_token_id": None, "eos_token_id": 2,
           "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": g,
                                   "zero_point": True, "version": "gemm"}}
    os.makedirs(args.out, exist_ok=True)
    qc.write_safetensors(os.path.join(args.out, "model.safetensors"), t)
    json.dump(cfg, open(os.path.join(args.out, "config.json"), "w"), indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--from", dest="src")
    ap.add_argument("--method", choices=["awq4", "int8", "fp8", "f32"], default="awq4")
    ap.add_argument("--group", type=int, default=128)
    ap.add_argument("--random-awq4", action="store_true")
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=13440)
    ap.add_argument("--vocab", type=int, default=92416)
    args = ap.parse_args()
    if args.random_awq4:
        random_awq4(args)
    elif args.src:
        from_model(args)
    else:
        ap.error("give --from MODEL_DIR or --random-awq4")


if __name__ == "__main__":
    main()
