#!/usr/bin/env python3
"""bench/lora_eval.py: runs HumanEval-style tests of completions (the output
of tests/tools/gen_jsonl) in subprocesses (timeout 5 s each, 2 at a time).
  lora_eval.py pass1 GEN.jsonl            -> prints "pass@1 P (k/n)"
  lora_eval.py recover GEN.jsonl OUT.jsonl -> writes train.jsonl rows
     {prompt, target, source}: the model's completion when it passes its
     tests, else the reference canonical_solution (the paper's recovery data)
Measurement helper for bench/lora_recovery.sh, not a sandbox."""
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor


def passes(row):
    prog = row["prompt"] + row["completion"] + "\n\n" + row["test"] + "\ncheck(%s)\n" % row["entry_point"]
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=True) as f:
        f.write(prog)
        f.flush()
        try:
            return subprocess.run([sys.executable, f.name], capture_output=True, timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            return False


def main():
    rows = [json.loads(l) for l in open(sys.argv[2])]
    with ThreadPoolExecutor(2) as ex:
        ok = list(ex.map(passes, rows))
    if sys.argv[1] == "pass1":
        print("pass@1 %.3f (%d/%d)" % (sum(ok) / len(rows), sum(ok), len(rows)))
        return
    with open(sys.argv[3], "w") as f:
        for r, good in zip(rows, ok):
            f.write(json.dumps({"prompt": r["prompt"],
                                "target": r["completion"] if good else r["canonical_solution"],
                                "source": "model" if good else "reference"}) + "\n")
    print("recovery data: %d of %d targets from the model" % (sum(ok), len(rows)))


if __name__ == "__main__":
    main()
