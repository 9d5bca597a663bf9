"""tests/test_lora_recover.py: recover_data with the paper's mixture (code
generation + output prediction + CoT) through `flab build`, against an
independent pipeline: `flab generate` per prompt (single-prompt greedy, no
batching), the stop cut, the HumanEval program run with a plain python3
subprocess, the output-prediction answer (first line, trimmed) and its
exact match ('"' -> "'") done here in Python, the CoT CSV read with
Python's csv module.  The fixture is deterministic (greedy, float32 CPU),
so rows must be identical.

The tiny model never gets a CRUX answer right, so the test writes a CRUX
file whose gold output is, for every other row, the answer the model gives
(found independently): those rows must come out with source "model".
Small limits keep it fast.  Prints PASS/FAIL lines."""
import csv, json, os, subprocess, sys, tempfile

from pyref import FLAB, build_flabfile, exit_code, humaneval_passes, path_of, read_jsonl, report

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MODEL = os.path.join(ROOT, "tests/fixtures/tiny-qwen2")
DATA = os.path.join(ROOT, "data")
STOPS = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
N_CODE = N_CRUX = N_COT = 6   # one `limit` applies to every source
MAXNEW = 96


def generate(prompt, stops):
    args = [FLAB, "generate", MODEL, "--device", "cpu", "--max-new-tokens", str(MAXNEW), "--json"]
    for s in stops:
        args += ["--stop", s]
    out = subprocess.run(args + [prompt], capture_output=True, text=True, check=True).stdout
    text = json.loads(out)["text"].replace("<|endoftext|>", "")
    ends = [text.find(s) for s in stops if s in text]
    return text[:min(ends)] if ends else text


def crux_prompt(t):
    return t["code"] + "\nassert %s(%s) == " % (t.get("entry_point", "f"), t["input"])


def em(a, b):
    return a.strip().replace('"', "'") == b.strip().replace('"', "'")


# [mix] and [mix_drop]: the same mixture, the second dropping failed rows
MIX = """rule = recover_data
model = {m}
data = {d}/synth-test.jsonl
crux = {crux}
cot = {d}/humaneval_cot.csv
limit = {lim}
max_new_tokens = {mx}
"""
FLABFILE = "\n[mix]\n" + MIX + "\n[mix_drop]\n" + MIX + """on_fail = drop

[cot_only]
rule = recover_data
model = {m}
cot = {d}/humaneval_cot.csv
limit = 2
"""


def expected(crux_rows):
    code = read_jsonl(os.path.join(DATA, "synth-test.jsonl"), N_CODE)
    want = []
    for p in code:
        c = generate(p["prompt"], STOPS)
        ok = humaneval_passes(p, c)
        want.append({"task_id": p["task_id"], "kind": "code", "prompt": p["prompt"],
                     "target": c if ok else p["canonical_solution"],
                     "source": "model" if ok else "reference"})
    for t in crux_rows:
        a = generate(crux_prompt(t), ["\n"]).split("\n")[0].strip()
        ok = em(a, t["output"])
        want.append({"task_id": t["id"], "kind": "output", "prompt": crux_prompt(t),
                     "target": a if ok else t["output"], "source": "model" if ok else "reference"})
    with open(os.path.join(DATA, "humaneval_cot.csv"), newline="") as f:
        cot = list(csv.DictReader(f))[:N_COT]
    for i, r in enumerate(cot):
        want.append({"task_id": "cot/%d" % i, "kind": "cot", "prompt": r["prompt"],
                     "target": r["cot"], "source": "reference"})
    return want


def crux_file(w):
    """CRUX rows; every other row's gold is the model's own answer."""
    rows = read_jsonl(os.path.join(DATA, "synth-crux-test.jsonl"), N_CRUX)
    for i, t in enumerate(rows):
        if i % 2 == 0:
            t["output"] = generate(crux_prompt(t), ["\n"]).split("\n")[0].strip()
    path = os.path.join(w, "crux.jsonl")
    with open(path, "w") as f:
        for t in rows:
            f.write(json.dumps(t) + "\n")
    return path, rows


def main():
    with tempfile.TemporaryDirectory() as w:
        crux, crux_rows = crux_file(w)
        r = build_flabfile(w, FLABFILE.format(m=MODEL, d=DATA, crux=crux, lim=N_CODE, mx=MAXNEW))
        if r.returncode:
            report("recover_mixture_build", False, r.stdout + r.stderr)
            return
        want = expected(crux_rows)
        got = read_jsonl(os.path.join(path_of(w, "mix"), "train.jsonl"))
        keys = ("task_id", "kind", "prompt", "target", "source")
        got_k = [{k: g[k] for k in keys} for g in got]
        diff = next((i for i, (a, b) in enumerate(zip(got_k, want)) if a != b), None)
        report("recover_mixture_rows", got_k == want,
              "%d vs %d rows, first diff %s: %s vs %s" % (len(got_k), len(want), diff,
              got_k[diff] if diff is not None else "", want[diff] if diff is not None else ""))
        m = json.load(open(os.path.join(path_of(w, "mix"), "metrics.json")))
        ok_rates = True
        for kind in ("code", "output", "cot"):
            rows = [x for x in want if x["kind"] == kind]
            rep = sum(x["source"] == "model" for x in rows)
            s = m["sources"].get(kind, {})
            ok_rates &= s.get("n") == len(rows) and s.get("replaced") == rep and \
                abs(s.get("replacement_rate", -1) - rep / len(rows)) < 1e-12
        tot_rep = sum(x["source"] == "model" for x in want)
        report("recover_mixture_rates", ok_rates and m["n"] == len(want) and m["replaced"] == tot_rep
              and abs(m["replacement_rate"] - tot_rep / len(want)) < 1e-12, json.dumps(m)[:600])
        out_rep = m["sources"]["output"]["replaced"]
        report("recover_output_model_rows", out_rep >= (N_CRUX + 1) // 2,
              "%d of %d planted answers replaced" % (out_rep, N_CRUX))
        drop = read_jsonl(os.path.join(path_of(w, "mix_drop"), "train.jsonl"))
        want_drop = [x for x in want if x["source"] == "model" or x["kind"] == "cot"]
        report("recover_mixture_drop", [{k: g[k] for k in keys} for g in drop] == want_drop,
              "%d vs %d rows" % (len(drop), len(want_drop)))
        md = json.load(open(os.path.join(path_of(w, "mix_drop"), "metrics.json")))
        report("recover_mixture_drop_counts",
              md["dropped"] == sum(x["source"] == "reference" and x["kind"] != "cot" for x in want)
              and md["written"] == len(want_drop), json.dumps(md)[:300])
        co = json.load(open(os.path.join(path_of(w, "cot_only"), "metrics.json")))
        report("recover_cot_only_no_model", co["n"] == 2 and co["replaced"] == 0
              and "efficiency" not in co, json.dumps(co)[:300])
        r = build_flabfile(w, "[none]\nrule = recover_data\nmodel = %s\n" % MODEL)
        report("recover_no_source_error", r.returncode != 0 and "no training set" in r.stdout + r.stderr,
              (r.stdout + r.stderr)[-300:])
        print("# mixture: %d rows, %d from the model (code %d/%d, output %d/%d, cot 0/%d)" % (
            len(want), tot_rep, m["sources"]["code"]["replaced"], N_CODE, out_rep, N_CRUX, N_COT))


main()
sys.exit(exit_code())
