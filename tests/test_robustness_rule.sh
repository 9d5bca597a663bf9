#!/usr/bin/env bash
# tests/test_robustness_rule.sh: the robustness rule (ReCode) end to end with
# the real ./flab on the tiny-qwen2 fixture and the shipped release archive.
#  - [robust/all]: every category, 1 seed, the first 2 problems, 32 new
#    tokens: metrics.json has nominal.pass@1, nominal_partial, 28
#    perturbation types and the 4 categories with pass@1, robust_pass,
#    robust_drop (a number, or null where the nominal pass@1 is 0),
#    robust_relative; samples.jsonl has 2 rows for each of the 30 files;
#  - independent checks: plain python3 (no sandbox) reruns prompt +
#    completion + test + check(entry_point) of every sample and agrees on
#    passed; ReCode's calculate_metric (run_robust.py), re-implemented here
#    in Python, gives every per-perturbation and per-category number from
#    samples.jsonl; func_name samples use the file's renamed entry point;
#  - [robust/seeds]: perturbations = new_lines FuncRenameCamelCase, seeds =
#    2: new_lines has 2 seeds, FuncRenameCamelCase (deterministic) 1;
#  - a second build is a no-op; an unknown perturbation name fails at load
#    with file:line and the list of valid names.
. "$(dirname "$0")/engine_lib.sh"

cd "$ROOT" || exit 1
cp -r "$REPO/tests/fixtures/tiny-qwen2" model
mkdir data && cp "$REPO/data/recode-humaneval.tar.xz" data/
cat > flabfile.ini <<'INI'
[robust/all]
rule = robustness
model = model
seeds = 1
limit = 2
max_new_tokens = 32
threads = 1

[robust/seeds]
rule = robustness
model = model
perturbations = new_lines FuncRenameCamelCase
seeds = 2
limit = 2
max_new_tokens = 32
threads = 1
INI
if "$FLAB" build >build.log 2>&1; then pass robustness_build; else fail robustness_build "$(tail -5 build.log)"; exit 1; fi
A=$("$FLAB" path robust/all); S=$("$FLAB" path robust/seeds)

python3 - "$A" "$S" <<'PY' || FAILS=$((FAILS + 1))
import json, subprocess, sys
A, S = sys.argv[1], sys.argv[2]
failed = []
def ok(name, cond, why=""):
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + why))
    if not cond: failed.append(name)

m = json.load(open(A + "/metrics.json"))
rows = [json.loads(l) for l in open(A + "/samples.jsonl")]
cats = ["format", "func_name", "natgen", "nlaugmenter"]
keys_ok = (isinstance(m["nominal"]["pass@1"], (int, float)) and "nominal_partial" in m
           and sorted(m["categories"]) == cats and len(m["perturbations"]) == 28
           and all(isinstance(m["categories"][c][k], (int, float))
                   for c in cats for k in ("pass@1", "robust_pass", "robust_relative"))
           and all(m["categories"][c]["robust_drop"] is None if m["categories"][c]["nominal_pass@1"] == 0
                   else isinstance(m["categories"][c]["robust_drop"], (int, float)) for c in cats))
ok("metrics_keys", keys_ok, json.dumps(m)[:400])
files = sorted({r["file"] for r in rows})
ok("samples_rows", len(rows) == 60 and len(files) == 30 and m["files"] == 30 and m["n"] == 2,
   "%d rows, %d files" % (len(rows), len(files)))

# plain python3 agrees with the sandbox on every sample
data = {}
def problem(file, tid):
    if file not in data:
        out = subprocess.run(["tar", "-xOf", "data/recode-humaneval.tar.xz", file],
                             capture_output=True, text=True, check=True).stdout
        data[file] = {json.loads(l)["task_id"]: json.loads(l) for l in out.splitlines() if l.strip()}
    return data[file][tid]
agree, renamed = 0, 0
for r in rows:
    p = problem(r["file"], r["id"])
    prog = r["prompt"] + r["completion"] + "\n" + p["test"] + "\ncheck(%s)\n" % p["entry_point"]
    try:
        rc = subprocess.run(["python3", "-c", prog], capture_output=True, timeout=20, cwd="/tmp").returncode
    except subprocess.TimeoutExpired:
        rc = 1
    agree += (rc == 0) == r["passed"]
    if r["category"] == "func_name" and r["prompt"] == p["prompt"] and p["entry_point"] in p["prompt"]:
        renamed += 1
ok("passed_agrees_with_python", agree == len(rows), "%d of %d agree" % (agree, len(rows)))
ok("func_name_prompts_from_file", renamed == sum(r["category"] == "func_name" for r in rows))

# ReCode's calculate_metric (run_robust.py) on samples.jsonl
nom = {"HumanEval": {}, "humaneval_partial": {}}
per = {}
for r in rows:
    if r["category"] == "nominal": nom[r["perturbation"]][r["id"]] = r["passed"]
    else: per.setdefault(r["perturbation"], {}).setdefault(r["seed"], {})[r["id"]] = r["passed"]
def close(a, b): return (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 1e-12)
bad = []
for name, seeds in per.items():
    pm = m["perturbations"][name]
    nd = nom[pm["nominal"]]
    n = len(nd)
    worst = {t: all(seeds[s][t] for s in seeds) for t in nd}
    nominal = sum(nd.values()) / n
    rp = sum(worst.values()) / n
    rd = None if nominal == 0 else (nominal - rp) / nominal
    rr = sum(nd[t] != worst[t] for t in nd) / n
    per_seed = [sum(seeds[s].values()) / n for s in sorted(seeds)]
    if not (close(pm["robust_pass"], rp) and close(pm["robust_drop"], rd) and close(pm["robust_relative"], rr)
            and all(close(a, b) for a, b in zip(pm["pass@1_per_seed"], per_seed))):
        bad.append(name)
ok("perturbation_metrics_match_recode", not bad, " ".join(bad))
for c in cats:
    names = [k for k, v in m["perturbations"].items() if v["category"] == c]
    ps = [m["perturbations"][k] for k in names]
    cm = m["categories"][c]
    files_pass = [x for p in ps for x in p["pass@1_per_seed"]]
    drops = [p["robust_drop"] for p in ps]
    want = (sum(files_pass) / len(files_pass), sum(p["robust_pass"] for p in ps) / len(ps),
            None if None in drops else sum(drops) / len(ps), sum(p["robust_relative"] for p in ps) / len(ps))
    got = (cm["pass@1"], cm["robust_pass"], cm["robust_drop"], cm["robust_relative"])
    ok("category_means_" + c, all(close(a, b) for a, b in zip(got, want)), "%s vs %s" % (got, want))

s = json.load(open(S + "/metrics.json"))
ok("seeds_param", s["perturbations"]["new_lines"]["seeds"] == 2
   and s["perturbations"]["FuncRenameCamelCase"]["seeds"] == 1
   and sorted(s["categories"]) == ["format", "func_name"] and s["files"] == 5,
   json.dumps(s["perturbations"])[:300])
sys.exit(1 if failed else 0)
PY

out=$("$FLAB" build 2>&1)
if grep -q "no work to do (2 targets fresh)" <<<"$out"; then pass second_build_noop
else fail second_build_noop "$out"; fi

cat >> flabfile.ini <<'INI'

[robust/bad]
rule = robustness
model = model
perturbations = format NoSuchPerturbation
INI
out=$("$FLAB" build robust/bad 2>&1); rc=$?
if [ $rc != 0 ] && grep -q "flabfile.ini:[0-9]*" <<<"$out" && grep -q "NoSuchPerturbation" <<<"$out" \
   && grep -q "VarRenamerRN" <<<"$out"; then pass unknown_perturbation_error
else fail unknown_perturbation_error "rc=$rc $out"; fi
[ "$FAILS" = 0 ]
