"""tests/test_bleu.py: flab's corpus BLEU (eval/bleu.c, via the tool
build/tests/tools/bleu_tool) against PyPI pycocoevalcap's Bleu(4), driven
the way nlg-eval's NLGEval.compute_metrics drives it (strip every string,
refs[i] = [ref.strip() for each reference list], hyps[i] = [hyp.strip()]).

Tolerance 1e-6 absolute on Bleu_1..4 (the issue's); the implementation
follows the Python's floating-point order, so the differences seen are ~1e-16.
Fixtures: the real CoT files (references = their `cot`, hypotheses = the
`cot` of other rows, word-shuffled cots and truncated cots), multi-reference
corpora (the "closest" reference length, ties), empty and one-word
hypotheses, Unicode whitespace, repeated n-grams (clipping)."""
import csv, json, os, random, subprocess, sys, tempfile

try:
    from pycocoevalcap.bleu.bleu import Bleu
except ImportError:
    print("SKIP test_bleu: pycocoevalcap not installed (pip install pycocoevalcap)")
    sys.exit(0)

TOOL = os.path.join(os.environ.get("FLAB_BUILD", "build"), "tests", "tools", "bleu_tool")
TOL = 1e-6
failures = 0


def nlgeval_bleu(ref_lists, hyps):
    """nlg-eval compute_metrics(ref_list, hyp_list)['Bleu_1'..'Bleu_4']."""
    refs = {i: [r.strip() for r in rs] for i, rs in enumerate(ref_lists)}
    res = {i: [h.strip()] for i, h in enumerate(hyps)}
    score, _ = Bleu(4).compute_score(refs, res, verbose=0)
    return score


def flab_bleu(ref_lists, hyps):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"hyps": hyps, "refs": ref_lists}, f)
    try:
        out = subprocess.run([TOOL, f.name], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    return json.loads(out)["bleu"]


def check(name, ref_lists, hyps):
    global failures
    want, got = nlgeval_bleu(ref_lists, hyps), flab_bleu(ref_lists, hyps)
    diff = max(abs(a - b) for a, b in zip(want, got))
    if diff <= TOL:
        print(f"PASS {name} (Bleu_4 {got[3]:.6f}, max diff {diff:.1e})")
    else:
        failures += 1
        print(f"FAIL {name}: flab {got} vs pycocoevalcap {want}")


def load_cots(path):
    with open(path, newline="") as f:
        return [row["cot"] for row in csv.DictReader(f)]


def main():
    rng = random.Random(7)
    for name in ["humaneval_cot", "openeval_cot", "CodeHarmony_cot_test"]:
        cots = load_cots(f"data/{name}.csv")
        refs = [[c] for c in cots]
        check(f"{name}_identical", refs, cots)
        check(f"{name}_other_rows", refs, cots[1:] + cots[:1])
        shuffled = []
        for c in cots:
            w = c.split()
            rng.shuffle(w)
            shuffled.append(" ".join(w))
        check(f"{name}_shuffled_words", refs, shuffled)
        check(f"{name}_truncated", refs, [" ".join(c.split()[: len(c.split()) // 3]) for c in cots])
    words = "the a step return list if for each value sum".split()
    multi_refs, multi_hyps = [], []
    for _ in range(60):
        multi_refs.append([" ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))
                           for _ in range(rng.randint(1, 4))])
        multi_hyps.append(" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))))
    check("random_multi_reference", multi_refs, multi_hyps)
    check("closest_length_tie_takes_shorter", [["a b c d", "a b c d e f"], ["x y"]],
          ["a b c d e", "x y"])
    check("empty_and_one_word_hypotheses", [["a b c"], ["d e f g"], ["h"]], ["", "d", "h"])
    check("clipping_repeated_ngrams", [["the cat is on the mat"]], ["the the the the the the the"])
    check("unicode_whitespace", [["a\u00a0b\u3000c\u2003d e\x1cf"]], ["  a b\u2028c d\u0085e f  "])
    check("longer_than_reference", [["a b"], ["c d e"]], ["a b x y z", "c d e f g h"])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
