"""tests/test_eval_rules.py: the eval, filter_correct and recover_data rules
through `flab build`, against an independent pipeline: `flab generate`
(single-prompt greedy, no batching) per problem, the paper's stop cut done
here in Python, and the HumanEval program run with a plain python3
subprocess (not flab's sandbox).  The fixture is deterministic (greedy,
float32 CPU), so the passed sets must be identical.  First N_CODEGEN
problems only, to keep the suite fast (the full 150 is in
bench/bench_eval_rules.sh: 118/150 expected).  Prints PASS/FAIL lines."""
import json, os, subprocess, sys, tempfile

from pyref import FLAB, build_flabfile, exit_code, humaneval_passes, path_of, read_jsonl, report

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MODEL = os.path.join(ROOT, "tests/fixtures/tiny-qwen2")
DATA = os.path.join(ROOT, "data")
STOPS = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
N_CODEGEN, N_TRAIN = 12, 10


def cut(text):
    ends = [text.find(s) for s in STOPS if s in text]
    return text[:min(ends)] if ends else text


def independent_completion(prompt):
    args = [FLAB, "generate", MODEL, "--device", "cpu", "--max-new-tokens", "128", "--json"]
    for s in STOPS:
        args += ["--stop", s]
    out = subprocess.run(args + [prompt], capture_output=True, text=True, check=True).stdout
    return cut(json.loads(out)["text"].replace("<|endoftext|>", ""))


def build(workdir, text):
    r = build_flabfile(workdir, text)
    if r.returncode:
        raise RuntimeError(r.stdout + r.stderr)


def synth_stanza(name, rule, key, limit, *extra):
    """A target of rule on the first limit synth-test problems (key names
    the file: benchmark, problems or data), then the extra lines."""
    return "\n".join(["[%s]" % name, "rule = " + rule, "model = " + MODEL,
                      "%s = %s/synth-test.jsonl" % (key, DATA), "limit = %d" % limit,
                      "max_new_tokens = 128", *extra]) + "\n"


FLABFILE = "\n" + "\n".join([
    synth_stanza("ev", "eval", "benchmark", N_CODEGEN, "batch_size = 5"),
    synth_stanza("dc", "filter_correct", "problems", N_CODEGEN),
    synth_stanza("rd_keep", "recover_data", "data", N_TRAIN),
    synth_stanza("rd_drop", "recover_data", "data", N_TRAIN, "on_fail = drop")])


def test_codegen_family(w):
    build(w, FLABFILE)
    probs = read_jsonl(os.path.join(DATA, "synth-test.jsonl"), N_CODEGEN)
    exp_comp = [independent_completion(p["prompt"]) for p in probs]
    exp_pass = [humaneval_passes(p, c) for p, c in zip(probs, exp_comp)]
    ev = path_of(w, "ev")
    m = json.load(open(os.path.join(ev, "metrics.json")))
    samples = read_jsonl(os.path.join(ev, "samples.jsonl"))
    report("eval_codegen_n", m["n"] == N_CODEGEN and len(samples) == N_CODEGEN, str(m["n"]))
    report("eval_codegen_completions_match_generate",
          [s["completion"] for s in samples] == exp_comp,
          "first diff at %s" % next((i for i, (s, c) in enumerate(zip(samples, exp_comp))
                                     if s["completion"] != c), None))
    report("eval_codegen_passed_match_independent",
          [s["passed"] for s in samples] == exp_pass, "%s vs %s" % ([s["passed"] for s in samples], exp_pass))
    report("eval_pass_at_1", abs(m["pass@1"] - sum(exp_pass) / N_CODEGEN) < 1e-12
          and m["passed"] == sum(exp_pass), "%s vs %d" % (m["pass@1"], sum(exp_pass)))
    eff = m.get("efficiency", {})
    report("eval_efficiency_block", all(k in eff for k in (
        "parameters", "checkpoint_bytes", "peak_rss_bytes", "prefill_tokens_per_s",
        "decode_tokens_per_s", "flops_per_generated_token", "energy_joules", "co2_grams")), str(eff))
    html = open(os.path.join(ev, "report.html")).read()
    report("eval_report_html", "pass@1" in html and "<script" not in html and "http" not in html)

    dc = path_of(w, "dc")
    kept = read_jsonl(os.path.join(dc, "correct.jsonl"))
    want = [p["task_id"] for p, ok in zip(probs, exp_pass) if ok]
    report("filter_correct_keeps_passing", [k["task_id"] for k in kept] == want,
          "%s vs %s" % ([k["task_id"] for k in kept], want))
    byid = {p["task_id"]: (p, c) for p, c in zip(probs, exp_comp)}
    report("filter_correct_fields", all(k["completion"] == byid[k["task_id"]][1] and
          all(k[f] == byid[k["task_id"]][0][f] for f in byid[k["task_id"]][0]) for k in kept))
    dm = json.load(open(os.path.join(dc, "metrics.json")))
    report("filter_correct_metrics", dm["n"] == N_CODEGEN and dm["passed"] == len(want))

    # recover_data runs on the same problems (HumanEval format), so that
    # both sources occur: reuse the independent completions
    train, tcomp, tpass = probs[:N_TRAIN], exp_comp[:N_TRAIN], exp_pass[:N_TRAIN]
    keep = read_jsonl(os.path.join(path_of(w, "rd_keep"), "train.jsonl"))
    want_keep = [{"prompt": p["prompt"], "target": c if ok else p["canonical_solution"],
                  "source": "model" if ok else "reference"} for p, c, ok in zip(train, tcomp, tpass)]
    report("recover_data_keep", [{k: r[k] for k in ("prompt", "target", "source")} for r in keep] == want_keep)
    drop = read_jsonl(os.path.join(path_of(w, "rd_drop"), "train.jsonl"))
    report("recover_data_both_sources", 0 < sum(tpass) < N_TRAIN, str(tpass))
    report("recover_data_drop", len(drop) == sum(tpass) and all(r["source"] == "model" for r in drop))
    km = json.load(open(os.path.join(path_of(w, "rd_keep"), "metrics.json")))
    report("recover_data_rate", abs(km["replacement_rate"] - sum(tpass) / N_TRAIN) < 1e-12
          and km["replaced"] == sum(tpass) and km["reference"] == N_TRAIN - sum(tpass), str(km))
    print("# synth-test first %d: %d passed; first %d: %d replaced" %
          (N_CODEGEN, sum(exp_pass), N_TRAIN, sum(tpass)))


OTHER = """
[crux]
rule = eval
task = output
model = {m}
benchmark = {d}/synth-crux-test.jsonl
limit = 4
max_new_tokens = 24

[cot]
rule = eval
task = cot
model = {m}
benchmark = {d}/humaneval_cot.csv
limit = 3
max_new_tokens = 24
"""


def test_output_and_cot(w):
    build(w, OTHER.format(m=MODEL, d=DATA))
    crux = path_of(w, "crux")
    m = json.load(open(os.path.join(crux, "metrics.json")))
    s = read_jsonl(os.path.join(crux, "samples.jsonl"))
    gold = read_jsonl(os.path.join(DATA, "synth-crux-test.jsonl"), 4)
    em = [x["completion"].strip().replace('"', "'") == g["output"].strip().replace('"', "'")
          for x, g in zip(s, gold)]
    report("eval_output_keys", all(k in m for k in ("em", "exec_match", "n", "passed")) and m["n"] == 4)
    report("eval_output_em_recomputed", abs(m["em"] - sum(em) / 4) < 1e-12, "%s vs %s" % (m["em"], em))
    report("eval_output_one_line", all("\n" not in x["completion"] for x in s))
    c = json.load(open(os.path.join(path_of(w, "cot"), "metrics.json")))
    report("eval_cot_bleu", "bleu4" in c and 0 <= c["bleu4"] <= 1 and c["n"] == 3, str(c))
    try:
        from pycocoevalcap.bleu.bleu import Bleu  # nlg-eval's Bleu_4 (test-only)
    except ImportError:
        print("# pycocoevalcap missing: cot BLEU not cross-checked")
        return
    import csv
    rows = list(csv.DictReader(open(os.path.join(DATA, "humaneval_cot.csv"), newline="")))[:3]
    hyps = [x["completion"] for x in read_jsonl(os.path.join(path_of(w, "cot"), "samples.jsonl"))]
    score, _ = Bleu(4).compute_score({i: [r["cot"].strip()] for i, r in enumerate(rows)},
                                     {i: [h.strip()] for i, h in enumerate(hyps)}, verbose=0)
    report("eval_cot_bleu_matches_pycocoevalcap", abs(score[3] - c["bleu4"]) < 1e-6 and
          abs(score[0] - c["bleu1"]) < 1e-6, "%s vs %s" % (score, c))


for fn in (test_codegen_family, test_output_and_cot):
    with tempfile.TemporaryDirectory() as w:
        try:
            fn(w)
        except Exception as e:  # a crash is one failure, named
            report(fn.__name__, False, repr(e)[:2000])
sys.exit(exit_code())
