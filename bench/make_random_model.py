#!/usr/bin/env python3
"""bench/make_random_model.py: write a seeded random-weight Qwen2 checkpoint.

Default shape = Qwen2-0.5B (hidden 896, 24 layers, 14 heads, 2 KV heads,
intermediate 4864, vocab 151936, tied embeddings), bf16, one
model.safetensors + config.json + generation_config.json, loadable by
transformers' Qwen2ForCausalLM and by flab.  Weights ~ N(0, 0.02), norms 1,
biases N(0, 0.02).  Only numpy is needed (bf16 is written as rounded
uint16 bit patterns).

usage: make_random_model.py OUT_DIR [--seed 0] [--hidden 896 --layers 24
       --heads 14 --kv-heads 2 --intermediate 4864 --vocab 151936
       --untied]
"""
import argparse
import json
import os
import struct

import numpy as np


def to_bf16(a):
    """float32 -> bf16 bit patterns, round to nearest even (as torch)."""
    u = a.astype(np.float32).view(np.uint32)
    u = u + 0x7FFF + ((u >> 16) & 1)
    return (u >> 16).astype(np.uint16)


def tensors(args):
    H, I, V = args.hidden, args.intermediate, args.vocab
    hd = H // args.heads
    q, kv = args.heads * hd, args.kv_heads * hd
    yield "model.embed_tokens.weight", (V, H), "w"
    for i in range(args.layers):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", (H,), "one"
        yield p + "post_attention_layernorm.weight", (H,), "one"
        yield p + "self_attn.q_proj.weight", (q, H), "w"
        yield p + "self_attn.q_proj.bias", (q,), "w"
        yield p + "self_attn.k_proj.weight", (kv, H), "w"
        yield p + "self_attn.k_proj.bias", (kv,), "w"
        yield p + "self_attn.v_proj.weight", (kv, H), "w"
        yield p + "self_attn.v_proj.bias", (kv,), "w"
        yield p + "self_attn.o_proj.weight", (H, q), "w"
        yield p + "mlp.gate_proj.weight", (I, H), "w"
        yield p + "mlp.up_proj.weight", (I, H), "w"
        yield p + "mlp.down_proj.weight", (H, I), "w"
    yield "model.norm.weight", (H,), "one"
    if args.untied:
        yield "lm_head.weight", (V, H), "w"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=896)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--heads", type=int, default=14)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=4864)
    ap.add_argument("--vocab", type=int, default=151936)
    ap.add_argument("--untied", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    specs = sorted(tensors(args))          # safetensors: sorted by name
    header, offset = {}, 0
    for name, shape, _ in specs:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape),
                        "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = os.path.join(args.out, "model.safetensors.tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for name, shape, kind in specs:
            if kind == "one":
                a = np.ones(shape, np.float32)
            else:
                a = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
            f.write(to_bf16(a).tobytes())
    os.replace(tmp, os.path.join(args.out, "model.safetensors"))
    cfg = {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "vocab_size": args.vocab, "hidden_size": args.hidden,
        "intermediate_size": args.intermediate,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads, "hidden_act": "silu",
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0, "tie_word_embeddings": not args.untied,
        "torch_dtype": "bfloat16", "use_cache": True,
        "use_sliding_window": False, "sliding_window": None,
        "max_window_layers": args.layers, "attention_dropout": 0.0,
        "bos_token_id": None, "eos_token_id": 151643,
        "flab_random_seed": args.seed,
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": 151643, "do_sample": False}, f, indent=2)


if __name__ == "__main__":
    main()
