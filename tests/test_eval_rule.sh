#!/usr/bin/env bash
# tests/test_eval_rule.sh: the eval and filter_correct rules end to end with
# the real ./flab on the tiny-qwen2 fixture.
#  - eval codegen on the first 20 problems of data/synth-test.jsonl (128 new
#    tokens, the fixture README's setting): metrics.json has pass@1 in [0,1],
#    n = 20, passed = pass@1 * 20; samples.jsonl has 20 lines;
#  - independent checks: `flab generate` (unbatched, its own stop handling
#    left out: the continuation is cut here in Python at the paper's stop
#    strings) on two prompts gives the completions in samples.jsonl; plain
#    python3 (no sandbox) runs prompt + completion + test + check() of every
#    sample and counts the same number passed;
#  - eval task=output on data/synth-crux-test.jsonl limit 10: em and
#    exec_match in [0,1], n = 10;
#  - eval task=cot on the first 4 rows of data/humaneval_cot.csv: bleu4 in
#    [0,1], n = 4;
#  - filter_correct limit 20 keeps exactly the passing problems of that eval,
#    with every original field and the same completions;
#  - layer_search (samples = @d_correct, remove 1) builds from it;
#  - a second build is a no-op.
. "$(dirname "$0")/engine_lib.sh"
PY=python3

cd "$ROOT" || exit 1
cp -r "$REPO/tests/fixtures/tiny-qwen2" model
cp "$REPO/data/synth-test.jsonl" "$REPO/data/synth-crux-test.jsonl" "$REPO/data/humaneval_cot.csv" .
cat > flabfile.ini <<'INI'
[eval/synth]
rule = eval
model = model
benchmark = synth-test.jsonl
limit = 20
max_new_tokens = 128
threads = 1

[eval/crux]
rule = eval
model = model
benchmark = synth-crux-test.jsonl
task = output
limit = 10
max_new_tokens = 32
threads = 1

[eval/cot]
rule = eval
model = model
benchmark = humaneval_cot.csv
task = cot
limit = 4
max_new_tokens = 32
threads = 1

[d_correct]
rule = filter_correct
model = model
problems = synth-test.jsonl
limit = 20
max_new_tokens = 128
threads = 1

[plan]
rule = layer_search
model = model
samples = @d_correct
remove = 1
threads = 1
INI
if "$FLAB" build >build.log 2>&1; then pass eval_build; else fail eval_build "$(tail -5 build.log)"; exit 1; fi
E=$("$FLAB" path eval/synth); C=$("$FLAB" path eval/crux); D=$("$FLAB" path d_correct)

"$PY" - "$E" <<'PYEOF' && pass eval_codegen_artifact || fail eval_codegen_artifact "see above"
import json, sys, os
d = sys.argv[1]
m = json.load(open(os.path.join(d, "metrics.json")))
s = [json.loads(l) for l in open(os.path.join(d, "samples.jsonl"))]
ok = 0 <= m["pass@1"] <= 1 and m["n"] == 20 and len(s) == 20
ok = ok and m["passed"] == sum(x["passed"] for x in s) and abs(m["pass@1"] - m["passed"] / 20) < 1e-12
e = m["efficiency"]
ok = ok and all(k in e for k in ("parameters", "checkpoint_bytes", "peak_rss_bytes",
                                 "flops_per_generated_token", "energy_joules", "co2_grams"))
ok = ok and os.path.getsize(os.path.join(d, "report.html")) > 0 and "isolation" in m
ok = ok and e["prefill_tokens_per_s"] > 0 and e["decode_tokens_per_s"] > 0
print("missing efficiency keys:", [k for k in ("parameters", "checkpoint_bytes", "peak_rss_bytes",
      "flops_per_generated_token", "energy_joules", "co2_grams") if k not in e], "isolation" in m)
print("pass@1", m["pass@1"], "passed", m["passed"], "n", m["n"], len(s), e.get("prefill_tokens_per_s"), e.get("decode_tokens_per_s"), sum(x["passed"] for x in s))
sys.exit(0 if ok else 1)
PYEOF

# Independent: flab generate per prompt, cut here; plain python3 execution.
"$PY" - "$E" "$FLAB" synth-test.jsonl <<'PYEOF' && pass eval_independent || fail eval_independent "see above"
import json, sys, os, subprocess, tempfile
d, flab, bench = sys.argv[1:4]
s = [json.loads(l) for l in open(os.path.join(d, "samples.jsonl"))]
probs = [json.loads(l) for l in open(bench) if l.strip()][:20]
stops = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
def cut(t):
    t = t.replace("<|endoftext|>", "")
    return t[:min([t.find(x) for x in stops if x in t] + [len(t)])]
bad = 0
pick = [next(i for i, x in enumerate(s) if x["passed"]), next(i for i, x in enumerate(s) if not x["passed"])]
for i in pick:
    out = subprocess.run([flab, "generate", "model", "--threads", "1", "--max-new-tokens", "128",
                          "--json", probs[i]["prompt"]], capture_output=True, text=True, check=True).stdout
    c = cut(json.loads(out)["text"])
    if c != s[i]["completion"]:
        print("sample", i, "generate", repr(c), "eval", repr(s[i]["completion"])); bad += 1
passed = 0
for p, x in zip(probs, s):
    prog = p["prompt"] + x["completion"] + "\n" + p["test"] + "\n" + "check(%s)\n" % p["entry_point"]
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(prog)
    try:
        r = subprocess.run(["python3", f.name], capture_output=True, timeout=10)
        passed += r.returncode == 0
    except subprocess.TimeoutExpired:
        pass
    os.unlink(f.name)
m = json.load(open(os.path.join(d, "metrics.json")))
if passed != m["passed"]:
    print("independent passed", passed, "eval", m["passed"]); bad += 1
sys.exit(1 if bad else 0)
PYEOF

"$PY" - "$C" <<'PYEOF' && pass eval_output_task || fail eval_output_task "see above"
import json, sys, os
m = json.load(open(os.path.join(sys.argv[1], "metrics.json")))
s = open(os.path.join(sys.argv[1], "samples.jsonl")).read().splitlines()
ok = 0 <= m["em"] <= 1 and 0 <= m["exec_match"] <= 1 and m["n"] == 10 and len(s) == 10
print("em", m["em"], "exec_match", m["exec_match"])
sys.exit(0 if ok else 1)
PYEOF

"$PY" - "$E" "$D" synth-test.jsonl <<'PYEOF' && pass filter_correct_keeps_passing || fail filter_correct_keeps_passing "see above"
import json, sys, os
e, d, bench = sys.argv[1:4]
s = [json.loads(l) for l in open(os.path.join(e, "samples.jsonl"))]
k = [json.loads(l) for l in open(os.path.join(d, "correct.jsonl"))]
probs = {p["task_id"]: p for p in (json.loads(l) for l in open(bench) if l.strip())}
want = [(x["id"], x["completion"]) for x in s if x["passed"]]
got = [(x["task_id"], x["completion"]) for x in k]
ok = want == got and len(k) > 0
ok = ok and all({**probs[x["task_id"]], "completion": x["completion"]} == x for x in k)
print("kept", len(k))
sys.exit(0 if ok else 1)
PYEOF

"$PY" - "$("$FLAB" path eval/cot)" <<'PYEOF' && pass eval_cot_task || fail eval_cot_task "see above"
import json, sys, os
m = json.load(open(os.path.join(sys.argv[1], "metrics.json")))
print("bleu4", m["bleu4"])
sys.exit(0 if 0 <= m["bleu4"] <= 1 and m["n"] == 4 else 1)
PYEOF

if [ -f "$("$FLAB" path plan)/plan.json" ]; then pass layer_search_from_d_correct
else fail layer_search_from_d_correct "no plan.json"; fi

"$FLAB" build >build2.log 2>&1
if grep -q "no work to do" build2.log; then pass second_build_noop
else fail second_build_noop "$(tail -3 build2.log)"; fi
exit $((FAILS > 0))
