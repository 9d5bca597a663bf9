#!/usr/bin/env python3
"""tests/test_tokenizer_hf.py: flab's tokenizer vs Hugging Face `tokenizers` (differential).

Every text is encoded by both (flab through tests/tools/tokenize_batch, HF with
encode_batch) and the ids must be identical: 0 mismatches, no tolerance.  Decoding
HF's ids must give HF's text too.

Tokenizers:
  qwen2        tests/fixtures/tiny-qwen2/tokenizer.json as shipped (NFC, Split(regex) +
               ByteLevel, merges as "a b" strings)
  gpt2style    the same vocab with ByteLevel(add_prefix_space, use_regex) alone
  qwen2-added  the fixture plus added tokens with lstrip/rstrip/single_word/normalized
  qwen2-ignore the fixture with ignore_merges (Llama-3 style)
  sp-llama     SentencePiece-style BPE trained here (tokenizers API, deterministic): normalizer
               Prepend("▁") + Replace(" ", "▁"), byte_fallback, <s> template, Llama-2 decoders;
               flab reads a copy whose merges are ["a", "b"] pairs (tokenizers 0.19 reads
               only strings, so HF gets the string form of the same tokenizer)
  sp-metaspace the same model with pre_tokenizer Metaspace(prepend_scheme first) + decoder
               Metaspace, merges as strings
  sp-unk       no byte_fallback: unknown chars become <unk>, fused (fuse_unk)
  sp-metaspace-always / -never   Metaspace prepend_scheme always (split) / never (no split)
  split-*      the fixture with Split(String ".") then Split(Regex whitespace or parens) with
               behaviors Removed, MergedWithPrevious, MergedWithNext, Contiguous
Inputs: every .py file of /usr/lib/python3.11, every string field of every benchmark in
data/ (jsonl, csv, and the jsonl files inside recode-humaneval.tar.xz), edge cases.
Modes: encode(text) (special tokens parsed, post-processor on) and, with
encode_special_tokens=True, encode(text, add_special_tokens=False) (`--no-special`).
"""
import csv
import glob
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile

from tokenizers import (Tokenizer, decoders, models, normalizers, pre_tokenizers,
                        processors, trainers)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("FLAB_BUILD", os.path.join(ROOT, "build"))
TOOL = os.path.join(BUILD, "tests", "tools", "tokenize_batch")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "tiny-qwen2", "tokenizer.json")
failures = 0


def report(name, ok, why=""):
    global failures
    if ok:
        print(f"PASS {name}")
    else:
        failures += 1
        print(f"FAIL {name}: {why}")
    sys.stdout.flush()


# ---- inputs -------------------------------------------------------------------

EDGE = [
    "", " ", "  ", "\n", "\r\n", "a\r\nb\r\n", "\t", "\tx\t\ty", "x    y", "   leading",
    "trailing   ", "\n\n\n", " \n \n", "    \n", "a  \n  b", "\u00a0nbsp\u3000ideographic",
    "e\u0301 cafe\u0301 A\u030a \u1100\u1161", "Å ﬁ ½ ①", "中文字符 日本語 한국어", "emoji 😀👍🏽 🇩🇪 👨‍👩‍👧",
    "mixed中a1b2", "it's I'M we'll they'RE you'Ve", "'s's's", "12345 3.14159 1e-9 0x1F",
    "<|endoftext|>", "a<|endoftext|>b", "<|im_start|>user\nhi<|im_end|>\n", "<|endoftext|><|endoftext|>",
    "<|endoftext", "<s> </s> <unk>", "<s>hello</s>", " <s> x", "<0x41> <0x0A>", "▁ ▁▁ a▁b",
    "def f(x):\n    return x  # comment\n", "if a:\n\tpass\r\n", "\x00\x01\x1f\x7f", "\u2028\u2029\u0085",
    "ǅ ß ẞ ſ K Ω", "\ufeffbom", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈", "a" * 3000, " " * 500 + "x", "ab" * 1000 + "\n" * 300,
    "<tag> x <tag>y  <tag>  z", "@@x a@@x @@xb @@x", "café cafe\u0301", "tab\t<tag>\tend",
]


def stdlib_texts():
    out = []
    for path in sorted(glob.glob("/usr/lib/python3.11/**/*.py", recursive=True)):
        with open(path, "rb") as f:
            raw = f.read()
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            pass   # a few test files are deliberately not UTF-8: see the invalid-UTF-8 test
    return out


def strings_of(obj, out):
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            strings_of(v, out)
    elif isinstance(obj, list):
        for v in obj:
            strings_of(v, out)


def jsonl_strings(text, out):
    for line in text.splitlines():
        if line.strip():
            strings_of(json.loads(line), out)


def data_texts():
    out = []
    data = os.path.join(ROOT, "data")
    for path in sorted(glob.glob(os.path.join(data, "*"))):
        if path.endswith(".jsonl"):
            with open(path, encoding="utf-8") as f:
                jsonl_strings(f.read(), out)
        elif path.endswith(".csv"):
            with open(path, encoding="utf-8", newline="") as f:
                for row in csv.reader(f):
                    out.extend(row)
        elif path.endswith(".tar.xz"):
            with tarfile.open(path) as tar:
                for m in tar.getmembers():
                    if m.isfile() and m.name.endswith(".jsonl"):
                        jsonl_strings(tar.extractfile(m).read().decode("utf-8"), out)
    seen, uniq = set(), []
    for s in out:
        if s not in seen:
            seen.add(s)
            uniq.append(s)
    return uniq


# ---- running both ----------------------------------------------------------------

def run_tool(tok_path, records, flags):
    with tempfile.TemporaryDirectory() as d:
        inp, outp = os.path.join(d, "in"), os.path.join(d, "out")
        with open(inp, "wb") as f:
            f.write(b"".join(records))
        r = subprocess.run([TOOL] + flags + [tok_path, inp, outp], capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"tokenize_batch failed: {r.stderr.decode()[:500]}")
        with open(outp, "rb") as f:
            return f.read(), r.stderr.decode()


def text_records(texts):
    """Each text as the tool reads it: a u32 byte count, then its UTF-8 bytes."""
    return [struct.pack("<I", len(b)) + b for b in (t.encode("utf-8") for t in texts)]


def split_records(data, item_size):
    """The tool's output records: a u32 count then count items of item_size
    bytes each (a count of 0xFFFFFFFF: that input failed, None)."""
    out, off = [], 0
    while off < len(data):
        (n,) = struct.unpack_from("<I", data, off)
        off += 4
        if n == 0xFFFFFFFF:
            out.append(None)
            continue
        if off + item_size * n > len(data):
            raise RuntimeError(f"tokenize_batch output cut short at byte {off}")
        out.append(data[off:off + item_size * n])
        off += item_size * n
    return out


def flab_encode(tok_path, texts, parse_special, add_special):
    flags = ([] if parse_special else ["--no-parse-special"]) + ([] if add_special else ["--no-add-special"])
    recs = text_records(texts)
    data, err = run_tool(tok_path, recs, flags)
    return [None if r is None else list(struct.unpack(f"<{len(r) // 4}i", r))
            for r in split_records(data, 4)], err


def flab_decode(tok_path, id_lists, skip_special):
    recs = [struct.pack(f"<I{len(ids)}i", len(ids), *ids) for ids in id_lists]
    data, err = run_tool(tok_path, recs, ["--decode"] + (["--skip-special"] if skip_special else []))
    return [None if r is None else r.decode("utf-8") for r in split_records(data, 1)]


def hf_encode(tok, texts, parse_special, add_special):
    tok.encode_special_tokens = not parse_special
    try:
        return [e.ids for e in tok.encode_batch(texts, add_special_tokens=add_special)]
    finally:
        tok.encode_special_tokens = False


def describe(tok, text, want, got):
    if got is None:
        return f"flab failed on {text[:60]!r}"
    k = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
    return (f"text {text[:60]!r}... first difference at token {k}: HF {want[k:k + 4]} "
            f"{[tok.id_to_token(i) for i in want[k:k + 4]]} vs flab {got[k:k + 4]} "
            f"{[tok.id_to_token(i) for i in got[k:k + 4] if i is not None]} (lengths {len(want)}/{len(got)})")


def compare_encode(name, flab_path, hf_tok, texts, parse_special=True, add_special=True):
    want = hf_encode(hf_tok, texts, parse_special, add_special)
    got, err = flab_encode(flab_path, texts, parse_special, add_special)
    bad = [i for i in range(len(texts)) if got[i] != want[i]]
    n_tok = sum(len(w) for w in want)
    why = f"{len(bad)}/{len(texts)} mismatches; first: {describe(hf_tok, texts[bad[0]], want[bad[0]], got[bad[0]])}" if bad else ""
    report(f"{name} ({len(texts)} texts, {n_tok} tokens)", not bad, why)
    return want


def compare_decode(name, flab_path, hf_tok, id_lists, skip_special=False):
    want = hf_tok.decode_batch(id_lists, skip_special_tokens=skip_special)
    got = flab_decode(flab_path, id_lists, skip_special)
    bad = [i for i in range(len(id_lists)) if got[i] != want[i]]
    why = f"{len(bad)} mismatches; first ids {id_lists[bad[0]][:8]}: HF {want[bad[0]][:60]!r} flab {str(got[bad[0]])[:60]!r}" if bad else ""
    report(f"{name} ({len(id_lists)} id lists)", not bad, why)


# ---- tokenizers under test -----------------------------------------------------------

def qwen_variants(d):
    with open(FIXTURE, encoding="utf-8") as f:
        base = json.load(f)
    out = {"qwen2": FIXTURE}

    g = json.loads(json.dumps(base))
    g["normalizer"] = None
    g["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    out["gpt2style"] = g

    a = json.loads(json.dumps(base))
    a["added_tokens"] += [
        {"id": 2048, "content": "<tag>", "single_word": False, "lstrip": True, "rstrip": True,
         "normalized": False, "special": True},
        {"id": 2049, "content": "@@x", "single_word": True, "lstrip": False, "rstrip": False,
         "normalized": False, "special": False},
        {"id": 2050, "content": "caf\u00e9", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": True, "special": False},
    ]
    out["qwen2-added"] = a

    m = json.loads(json.dumps(base))
    m["model"]["ignore_merges"] = True
    out["qwen2-ignore"] = m

    for behavior in ("Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"):
        b = json.loads(json.dumps(base))
        b["pre_tokenizer"]["pretokenizers"][0] = {"type": "Split", "pattern": {"Regex": "\\s+|[()]"},
                                                  "behavior": behavior, "invert": False}
        b["pre_tokenizer"]["pretokenizers"].insert(0, {"type": "Split", "pattern": {"String": "."},
                                                       "behavior": "Isolated", "invert": False})
        out["split-" + behavior] = b
    for k, v in list(out.items()):
        if isinstance(v, dict):
            p = os.path.join(d, k + ".json")
            with open(p, "w", encoding="utf-8") as f:
                json.dump(v, f, ensure_ascii=False)
            out[k] = p
    return out


def train_sp(d, corpus):
    """A Llama-2-style BPE (byte_fallback, <0xNN> tokens 3..258) trained deterministically."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=["<unk>", "<s>", "</s>"],
                                  show_progress=False, limit_alphabet=200)
    tok.train_from_iterator(corpus, trainer=trainer)
    j = json.loads(tok.to_str())
    # renumber: specials 0..2, <0x00>..<0xFF> 3..258, the trained vocab after
    vocab = j["model"]["vocab"]
    order = sorted(vocab, key=lambda s: vocab[s])
    new, nid = {}, 0
    for s in order[:3]:
        new[s] = nid; nid += 1
    for b in range(256):
        new[f"<0x{b:02X}>"] = nid; nid += 1
    for s in order[3:]:
        if s not in new:
            new[s] = nid; nid += 1
    j["model"]["vocab"] = new
    for a in j["added_tokens"]:
        a["id"] = new[a["content"]]
    j["post_processor"] = {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    llama = json.loads(json.dumps(j))
    llama["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    llama["pre_tokenizer"] = None
    llama["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    meta = json.loads(json.dumps(j))
    meta["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}
    always = json.loads(json.dumps(meta))
    always["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    always["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    never = json.loads(json.dumps(meta))
    never["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": False}
    never["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": False}
    unk = json.loads(json.dumps(llama))
    unk["model"]["byte_fallback"] = False
    pairs = json.loads(json.dumps(llama))
    pairs["model"]["merges"] = [m.split(" ") for m in llama["model"]["merges"]]
    paths = {}
    for name, obj in [("sp-llama", llama), ("sp-llama-pairs", pairs), ("sp-metaspace", meta), ("sp-unk", unk),
                      ("sp-metaspace-always", always), ("sp-metaspace-never", never)]:
        paths[name] = os.path.join(d, name + ".json")
        with open(paths[name], "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False)
    return paths


def flab_pieces(tok_path, texts):
    recs = text_records(texts)
    data, err = run_tool(tok_path, recs, ["--pieces"])
    out, off = [], 0
    while off < len(data):
        (n,) = struct.unpack_from("<I", data, off)
        off += 4
        pieces = []
        for _ in range(n):
            added, ln = struct.unpack_from("<iI", data, off)
            pieces.append(data[off + 8:off + 8 + ln].decode("utf-8"))
            off += 8 + ln
        out.append(pieces)
    return out


def test_pieces(name, tok_path, hf_tok, texts, byte_level):
    """flab_tok_pretokenize vs HF normalizer + pre_tokenizer (texts without added tokens)."""
    alphabet = {}
    if byte_level:
        cs = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or b >= 174]
        extra = [b for b in range(256) if b not in cs]
        alphabet = {b: chr(b) for b in cs}
        alphabet.update({b: chr(256 + i) for i, b in enumerate(extra)})
    got = flab_pieces(tok_path, texts)
    bad = 0
    first = ""
    for text, pieces in zip(texts, got):
        norm = hf_tok.normalizer.normalize_str(text) if hf_tok.normalizer else text
        want = [p for p, _ in hf_tok.pre_tokenizer.pre_tokenize_str(norm)] if hf_tok.pre_tokenizer else ([norm] if norm else [])
        if byte_level:
            pieces = ["".join(alphabet[b] for b in p.encode("utf-8")) for p in pieces]
        if pieces != want:
            bad += 1
            first = first or f"{text[:40]!r}: HF {want[:5]} flab {pieces[:5]}"
    report(f"{name} pre-tokens ({len(texts)} texts)", bad == 0, f"{bad} mismatches; first {first}")


def test_invalid_utf8(path):
    bad = [b"abc\xff", b"\xc3", b"\xed\xa0\x80", b"ok \xe2\x82", b"\xc0\xaf"]
    recs = [struct.pack("<I", len(b)) + b for b in bad]
    data, err = run_tool(path, recs, [])
    n_fail = data.count(b"\xff\xff\xff\xff")
    report("invalid UTF-8 is an error", n_fail == len(bad) and "not valid UTF-8" in err,
           f"{n_fail}/{len(bad)} rejected; stderr {err[:200]!r}")


def main():
    if not os.path.exists(TOOL):
        print(f"FAIL tokenizer_hf: {TOOL} not built (make tests-bin)")
        return 1
    stdlib, data = stdlib_texts(), data_texts()
    edge = EDGE + ["".join(chr(c) for c in range(0x20, 0x250))]
    with tempfile.TemporaryDirectory() as d:
        q = qwen_variants(d)
        hf = {k: Tokenizer.from_file(v) for k, v in q.items()}
        small = edge + data[:2000]
        for texts, label in [(edge, "edge"), (data, "data"), (stdlib, "stdlib")]:
            ids = compare_encode(f"qwen2 {label}", q["qwen2"], hf["qwen2"], texts)
            compare_decode(f"qwen2 decode {label}", q["qwen2"], hf["qwen2"], ids)
        compare_encode("qwen2 no-special edge+data", q["qwen2"], hf["qwen2"], small, False, False)
        compare_decode("qwen2 decode skip_special", q["qwen2"], hf["qwen2"],
                       hf_encode(hf["qwen2"], edge, True, True), True)
        for k in ("gpt2style", "qwen2-added", "qwen2-ignore"):
            ids = compare_encode(f"{k} edge+data", q[k], hf[k], small)
            compare_decode(f"{k} decode", q[k], hf[k], ids)
        compare_encode("qwen2-added no-special", q["qwen2-added"], hf["qwen2-added"], edge, False, True)
        compare_encode("gpt2style stdlib", q["gpt2style"], hf["gpt2style"], stdlib[::4])
        for k in [k for k in q if k.startswith("split-")]:
            compare_encode(f"{k} edge+data", q[k], hf[k], edge + data[:500])

        sp = train_sp(d, stdlib[::25])
        hs = {k: Tokenizer.from_file(sp[k]) for k in sp if k != "sp-llama-pairs"}
        for texts, label in [(edge, "edge"), (data, "data"), (stdlib, "stdlib")]:
            ids = compare_encode(f"sp-llama pairs-merges {label}", sp["sp-llama-pairs"], hs["sp-llama"], texts)
            compare_decode(f"sp-llama decode {label}", sp["sp-llama"], hs["sp-llama"], ids)
        compare_encode("sp-llama strings-merges edge+data", sp["sp-llama"], hs["sp-llama"], small)
        compare_encode("sp-llama no-special", sp["sp-llama"], hs["sp-llama"], small, False, False)
        compare_decode("sp-llama decode skip_special", sp["sp-llama"], hs["sp-llama"],
                       hf_encode(hs["sp-llama"], edge, True, True), True)
        for k in ("sp-metaspace", "sp-unk"):
            ids = compare_encode(f"{k} edge+data", sp[k], hs[k], small)
            compare_encode(f"{k} stdlib", sp[k], hs[k], stdlib[::5])
            compare_decode(f"{k} decode", sp[k], hs[k], ids)
        for k in ("sp-metaspace-always", "sp-metaspace-never"):
            ids = compare_encode(f"{k} edge+data", sp[k], hs[k], edge + data[:500])
            compare_decode(f"{k} decode", sp[k], hs[k], ids)
        plain = [t for t in edge + data[:1000] + stdlib[::20] if "<|" not in t and "<tag>" not in t]
        test_pieces("qwen2", q["qwen2"], hf["qwen2"], plain, True)
        test_pieces("gpt2style", q["gpt2style"], hf["gpt2style"], plain, True)
        test_pieces("sp-metaspace", sp["sp-metaspace"], hs["sp-metaspace"],
                    [t for t in plain if "<s>" not in t and "</s>" not in t and "<unk>" not in t], False)
        test_invalid_utf8(q["qwen2"])
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:   # a crash of the tool is a failure with its message
        print(f"FAIL tokenizer_hf: {type(e).__name__}: {str(e)[:800]}")
        sys.exit(1)
