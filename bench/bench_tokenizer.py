#!/usr/bin/env python3
"""bench/bench_tokenizer.py: flab's tokenizer vs Hugging Face `tokenizers` (Rust), same run.

  $PYTHON bench/bench_tokenizer.py [--mb 50] [--out FILE]

Corpus: the Python standard library's .py files (/usr/lib/python3.11, UTF-8 ones),
concatenated document by document and repeated until --mb megabytes.  Both sides
encode document by document, single-threaded, without post-processor tokens
(flab: build/bench/bench_tokenizer; HF: Tokenizer.encode in a loop, which runs on
one thread).  Each side starts every timed pass with a fresh word cache; the token
counts must agree (the differential tests check the ids themselves).

Tokenizers:
  tiny-qwen2  tests/fixtures/tiny-qwen2 (2k vocab, Qwen2 pre-tokenizer)
  qwen150k    a byte-level BPE with Qwen2's normalizer and pre-tokenizer and a
              150k vocabulary: trained with the `tokenizers` API on the standard
              library and data/synth-train.jsonl (~95k tokens), then extended to
              150,000 with merges of two existing tokens (so that file size and load
              time are those of a Qwen2-size tokenizer.json; the real one cannot be
              downloaded here).  Cached in $BUILD/bench/tokenizer/.
Load time: median of 5 loads of tokenizer.json (+ tokenizer_config.json), wall clock and
process CPU time (the dev/CI machines are shared and often overloaded).
"""
import argparse
import glob
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("FLAB_BUILD", os.path.join(ROOT, "build"))
TOOL = os.path.join(BUILD, "bench", "bench_tokenizer")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "tiny-qwen2")
WORK = os.path.join(BUILD, "bench", "tokenizer")


def stdlib_docs():
    docs = []
    for p in sorted(glob.glob("/usr/lib/python3.11/**/*.py", recursive=True)):
        try:
            with open(p, encoding="utf-8") as f:
                docs.append(f.read())
        except (UnicodeDecodeError, OSError):
            pass
    return docs


def make_corpus(mb):
    base, docs, size = stdlib_docs(), [], 0
    while size < mb * 1e6:
        for d in base:
            docs.append(d)
            size += len(d.encode("utf-8"))
            if size >= mb * 1e6:
                break
    path = os.path.join(WORK, f"corpus-{mb}mb.bin")
    with open(path, "wb") as f:
        for d in docs:
            b = d.encode("utf-8")
            f.write(struct.pack("<I", len(b)) + b)
    return docs, path, size


def make_150k():
    out_dir = os.path.join(WORK, "qwen150k")
    path = os.path.join(out_dir, "tokenizer.json")
    if os.path.exists(path):
        return out_dir
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(FIXTURE, "tokenizer.json"), encoding="utf-8") as f:
        fx = json.load(f)
    texts = stdlib_docs()
    with open(os.path.join(ROOT, "data", "synth-train.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            texts.append(r.get("prompt", "") + r.get("canonical_solution", ""))
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(fx["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=150000, show_progress=False, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    j = json.loads(tok.to_str())
    vocab, merges = j["model"]["vocab"], j["model"]["merges"]
    for s in specials:   # specials go last, as in Qwen2
        del vocab[s]
    ids = sorted(vocab, key=vocab.get)
    vocab = {s: i for i, s in enumerate(ids)}
    rng = random.Random(1234)
    short = [s for s in ids if len(s) <= 6]
    while len(vocab) < 150000 - len(specials):
        a, b = rng.choice(short), rng.choice(ids)
        if a + b not in vocab and " " not in a + b:
            vocab[a + b] = len(vocab)
            merges.append(f"{a} {b}")
            ids.append(a + b)
    j["model"]["vocab"], j["model"]["merges"] = vocab, merges
    j["added_tokens"] = [dict(id=len(vocab) + k, content=s, single_word=False, lstrip=False, rstrip=False,
                              normalized=False, special=True) for k, s in enumerate(specials)]
    j["pre_tokenizer"] = fx["pre_tokenizer"]
    j["post_processor"] = fx["post_processor"]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    with open(os.path.join(FIXTURE, "tokenizer_config.json")) as src, \
            open(os.path.join(out_dir, "tokenizer_config.json"), "w") as dst:
        dst.write(src.read())
    return out_dir


def hf_bench(model_dir, docs):
    path = os.path.join(model_dir, "tokenizer.json")
    loads, cpu = [], []
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        tok = Tokenizer.from_file(path)
        loads.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    tok = Tokenizer.from_file(path)     # fresh cache
    t0 = time.perf_counter()
    n = 0
    for d in docs:
        n += len(tok.encode(d, add_special_tokens=False).ids)
    s = time.perf_counter() - t0
    return {"load_ms": statistics.median(loads), "load_cpu_ms": statistics.median(cpu), "tokens": n, "encode_s": s, "tokens_per_s": n / s}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=50)
    ap.add_argument("--out", default=os.path.join(WORK, "results.json"))
    args = ap.parse_args()
    if not os.path.exists(TOOL):
        sys.exit(f"{TOOL} not built (make tests-bin)")
    os.makedirs(WORK, exist_ok=True)
    docs, corpus, size = make_corpus(args.mb)
    results = {"corpus_bytes": size, "documents": len(docs)}
    for name, d in [("tiny-qwen2", FIXTURE), ("qwen150k", make_150k())]:
        r = subprocess.run([TOOL, d, corpus, "3"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"bench_tokenizer failed: {r.stderr}")
        flab = json.loads(r.stdout)
        hf = hf_bench(d, docs)
        results[name] = {"flab": flab, "hf": hf, "speedup": flab["tokens_per_s"] / hf["tokens_per_s"]}
        same = "same tokens" if flab["tokens"] == hf["tokens"] else f"TOKEN COUNTS DIFFER {flab['tokens']} vs {hf['tokens']}"
        print(f"{name:11s} vocab {flab['vocab']:6d}: {size / 1e6:.1f} MB, {hf['tokens']} tokens ({same})\n"
              f"  encode tokens/s: flab {flab['tokens_per_s'] / 1e6:.2f} M (no word cache {flab['tokens_per_s_nocache'] / 1e6:.2f} M), "
              f"HF tokenizers {hf['tokens_per_s'] / 1e6:.2f} M -> {results[name]['speedup']:.2f}x\n"
              f"  load tokenizer.json (median of 5, wall / CPU): flab {flab['load_ms']:.1f} / {flab['load_cpu_ms']:.1f} ms, "
              f"HF {hf['load_ms']:.1f} / {hf['load_cpu_ms']:.1f} ms")
        sys.stdout.flush()
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
