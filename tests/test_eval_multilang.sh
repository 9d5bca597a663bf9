#!/usr/bin/env bash
# tests/test_eval_multilang.sh: MultiPL-E and BigCodeBench end to end with
# the real ./flab.
#  - fixed completions (no model) through `flab check-benchmark
#    --completions`: for ruby and kotlin each, every sample's outcome is the
#    one its row of tests/fixtures/multipl/completions-*.jsonl expects
#    (correct completions pass, wrong ones fail, a syntax error is a
#    compile_error, an endless loop a timeout) and the "languages" counts
#    add up; kotlin is skipped (SKIP line) without kotlinc;
#  - a missing toolchain (swift) and an unknown language are "skipped" with
#    their reason and never counted: pass@1 is over ruby alone;
#  - BigCodeBench canonical solutions pass, except the task importing a
#    library that is not installed, whose reason names it; complete and
#    instruct completions give the outcomes their rows expect;
#  - `flab build` with the tiny model: task = multipl-e on a 2-problem ruby
#    set (+ a language table), the format auto-detected on a mixed set, and
#    BigCodeBench complete and instruct splits; completions are cut at the
#    problem's own stop tokens, and each sample's outcome agrees with plain
#    `ruby` run on prompt + completion + "\n" + tests outside the sandbox.
. "$(dirname "$0")/engine_lib.sh"
FX=$REPO/tests/fixtures/multipl
BX=$REPO/tests/fixtures/bigcodebench

# expect_outcomes NAME CHECK_OUTPUT COMPLETIONS: SAMPLE lines vs "expect"
expect_outcomes() {
  python3 - "$2" "$3" <<'PY'
import json, sys
out, comp = open(sys.argv[1]).read().splitlines(), [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
got = [l.split(" ", 5)[4].rstrip(":") for l in out if l.startswith("SAMPLE ")]
want = [c["expect"] for c in comp]
bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
if len(got) != len(want) or bad:
    print("got %s want %s" % (got, want)); sys.exit(1)
langs = json.loads(next(l for l in out if l.startswith("languages: "))[len("languages: "):])
for name, e in langs.items():
    if "skipped" in e: continue
    if sum(e["outcomes"].values()) != e["n"] or e["passed"] != e["outcomes"]["pass"] \
       or abs(e["pass@1"] - e["passed"] / e["n"]) > 1e-12:
        print("inconsistent counts %s" % e); sys.exit(1)
PY
}

# ---- fixed completions: ruby ------------------------------------------------
if command -v ruby >/dev/null; then
  "$FLAB" check-benchmark "$FX/humaneval-rb.jsonl" --completions "$FX/completions-rb.jsonl" \
    --languages "$FX/languages-test.ini" -j 2 > "$ROOT/rb.out" 2>&1; rc=$?
  why=$(expect_outcomes ruby "$ROOT/rb.out" "$FX/completions-rb.jsonl")
  if [ $rc = 1 ] && [ -z "$why" ] && grep -q '"ruby":{"pass@1":0.5,"n":8,"passed":4,"outcomes":{"pass":4,"fail":2,"compile_error":1,"timeout":1}}' "$ROOT/rb.out" \
     && grep -q 'compile_error: failed: program.rb:15: syntax error' "$ROOT/rb.out" \
     && grep -q 'HumanEval_53_add 4 ruby fail: failed: Failure: test_add(TestHumanEval)' "$ROOT/rb.out"
  then pass ruby_fixed_completions; else fail ruby_fixed_completions "rc=$rc $why $(cat "$ROOT/rb.out")"; fi
else
  echo "SKIP ruby_fixed_completions: ruby not installed"
fi

# ---- fixed completions: kotlin (JVM compiles take seconds each) --------------
if command -v kotlinc >/dev/null && command -v java >/dev/null; then
  "$FLAB" check-benchmark "$FX/humaneval-kt.jsonl" --completions "$FX/completions-kt.jsonl" \
    --languages "$FX/languages-test.ini" -j 2 > "$ROOT/kt.out" 2>&1; rc=$?
  why=$(expect_outcomes kotlin "$ROOT/kt.out" "$FX/completions-kt.jsonl")
  if [ $rc = 1 ] && [ -z "$why" ] && grep -q 'compile_error: compile error: program.kt:' "$ROOT/kt.out" \
     && grep -q 'fail: failed: Exception in thread "main" java.lang.Exception: Test failed!' "$ROOT/kt.out"
  then pass kotlin_fixed_completions; else fail kotlin_fixed_completions "rc=$rc $why $(cat "$ROOT/kt.out")"; fi
else
  echo "SKIP kotlin_fixed_completions: kotlinc or java not installed"
fi

# ---- skipped languages are never scored ---------------------------------------
"$FLAB" check-benchmark "$FX/humaneval-mixed.jsonl" --completions "$FX/completions-mixed.jsonl" > "$ROOT/mx.out" 2>&1; rc=$?
swift_ok=1
if ! command -v swiftc >/dev/null; then
  grep -q '"swift":{"skipped":"swiftc not found","n":1}' "$ROOT/mx.out" || swift_ok=0
fi
if [ $rc = 0 ] && [ $swift_ok = 1 ] && grep -q "\"cob\":{\"skipped\":\"no command for language 'cob'" "$ROOT/mx.out" \
   && grep -q 'pass@1 = 1.0000 (1/1 scored, 2 skipped)' "$ROOT/mx.out"
then pass missing_toolchain_skipped; else fail missing_toolchain_skipped "rc=$rc $(cat "$ROOT/mx.out")"; fi

# ---- BigCodeBench -------------------------------------------------------------
"$FLAB" check-benchmark "$BX/bigcodebench.jsonl" -j 2 > "$ROOT/bcb.out" 2>&1; rc=$?
if /usr/bin/python3 -c 'import pandas' 2>/dev/null; then
  echo "SKIP bigcodebench_missing_library: pandas is installed here"
  grep -q 'pass@1 = 1.0000 (4/4)' "$ROOT/bcb.out" && pass bigcodebench_canonical || fail bigcodebench_canonical "$(cat "$ROOT/bcb.out")"
elif [ $rc = 1 ] && grep -q "SAMPLE BigCodeBench/3 3 python fail: failed: ModuleNotFoundError: No module named 'pandas'" "$ROOT/bcb.out" \
   && grep -q 'pass@1 = 0.7500 (3/4)' "$ROOT/bcb.out"
then pass bigcodebench_canonical_and_missing_library; else fail bigcodebench_canonical_and_missing_library "rc=$rc $(cat "$ROOT/bcb.out")"; fi
for split in complete instruct; do
  "$FLAB" check-benchmark "$BX/bigcodebench.jsonl" --split $split --completions "$BX/completions-$split.jsonl" > "$ROOT/bcb-$split.out" 2>&1
  got=$(grep '^SAMPLE' "$ROOT/bcb-$split.out" | cut -d' ' -f5 | tr -d ':' | tr '\n' ' ')
  want=$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["expect"] for l in open(sys.argv[1])), end=" ")' "$BX/completions-$split.jsonl")
  if [ "$got" = "$want" ] && grep -q 'tests failed: test_' "$ROOT/bcb-$split.out"
  then pass "bigcodebench_${split}_completions"; else fail "bigcodebench_${split}_completions" "got '$got' want '$want' $(cat "$ROOT/bcb-$split.out")"; fi
done

# ---- usage errors ---------------------------------------------------------------
"$FLAB" check-benchmark "$FX/humaneval-rb.jsonl" > "$ROOT/e1.out" 2>&1; rc1=$?
printf '[ruby]\ntimeout = soon\n' > "$ROOT/bad.ini"
"$FLAB" check-benchmark "$FX/humaneval-rb.jsonl" --completions "$FX/completions-rb.jsonl" --languages "$ROOT/bad.ini" > "$ROOT/e2.out" 2>&1; rc2=$?
if [ $rc1 = 2 ] && grep -q 'give --completions' "$ROOT/e1.out" && [ $rc2 = 2 ] && grep -q 'bad.ini:2: \[ruby\] timeout = soon' "$ROOT/e2.out"
then pass usage_errors; else fail usage_errors "$rc1 $rc2 $(cat "$ROOT/e1.out" "$ROOT/e2.out")"; fi

# ---- flab build with the tiny model -----------------------------------------------
cd "$ROOT" || exit 1
cp -r "$REPO/tests/fixtures/tiny-qwen2" model
head -2 "$FX/humaneval-rb.jsonl" > rb2.jsonl
cp "$FX/humaneval-mixed.jsonl" "$FX/languages-test.ini" "$BX/bigcodebench.jsonl" .
cat > flabfile.ini <<'INI'
[rb]
rule = eval
model = model
benchmark = rb2.jsonl languages-test.ini
task = multipl-e
max_new_tokens = 32

[mixed]
rule = eval
model = model
benchmark = humaneval-mixed.jsonl
max_new_tokens = 8

[bcb]
rule = eval
model = model
benchmark = bigcodebench.jsonl
limit = 2
max_new_tokens = 16

[bcb_instruct]
rule = eval
model = model
benchmark = bigcodebench.jsonl
task = bigcodebench-instruct
limit = 2
max_new_tokens = 16
INI
if "$FLAB" build > build.log 2>&1; then
  python3 - "$("$FLAB" path rb)" "$("$FLAB" path mixed)" "$("$FLAB" path bcb)" "$("$FLAB" path bcb_instruct)" rb2.jsonl > check.log 2>&1 <<'PY'
import json, os, subprocess, sys, tempfile
rb, mixed, bcb, bcbi, probs = sys.argv[1:6]
def load(d):
    return json.load(open(os.path.join(d, "metrics.json"))), [json.loads(l) for l in open(os.path.join(d, "samples.jsonl"))]
bad = []
m, s = load(rb)
problems = [json.loads(l) for l in open(probs)]
if not (m["format"] == "multipl-e" and m["languages"]["ruby"]["n"] == 2 and len(s) == 2 and m["n"] == 2):
    bad.append("rb metrics %s" % m)
for p, x in zip(problems, s):
    if any(t in x["completion"] for t in p["stop_tokens"]):
        bad.append("not cut at stop tokens: %r" % x["completion"])
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "p.rb")
        open(f, "w").write(p["prompt"] + x["completion"] + "\n" + p["tests"])
        r = subprocess.run(["ruby", f], capture_output=True, timeout=30)
    if (r.returncode == 0) != x["passed"] or (x["outcome"] == "compile_error") != (b"syntax error" in r.stderr and r.returncode != 0):
        bad.append("outcome %s vs plain ruby rc %d" % (x["outcome"], r.returncode))
m, s = load(mixed)
if not (m["task"] == "multipl-e" and m["skipped"] == 2 and m["n"] == 1 and "skipped" in m["languages"]["cob"]
        and [x["outcome"] for x in s][1:] == ["skipped", "skipped"] and s[1]["completion"] == ""):
    bad.append("mixed %s" % m)
html = open(os.path.join(mixed, "report.html")).read()
if "<h2>Languages</h2>" not in html or "skipped: no command for language" not in html:
    bad.append("report.html has no languages table")
for d, split in ((bcb, "complete"), (bcbi, "instruct")):
    m, s = load(d)
    if not (m["format"] == "bigcodebench" and m["split"] == split and m["n"] == 2 and len(s) == 2):
        bad.append("%s metrics %s" % (split, m))
    if split == "instruct" and not s[0]["prompt"].endswith("```python\n"):
        bad.append("instruct prompt %r" % s[0]["prompt"][-40:])
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
  if [ $? = 0 ]; then pass build_with_tiny_model; else fail build_with_tiny_model "$(cat check.log)"; fi
  "$FLAB" build > build2.log 2>&1
  grep -q 'no work to do (4 targets fresh)' build2.log && pass second_build_noop || fail second_build_noop "$(cat build2.log)"
else
  fail build_with_tiny_model "$(cat build.log)"
fi
