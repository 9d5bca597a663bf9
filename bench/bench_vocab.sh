#!/usr/bin/env bash
# bench/bench_vocab.sh: wall time of collect_tokens + prune_vocab (with its
# built-in verification) on the tiny-qwen2 fixture, corpus = every shipped
# benchmark (data/*.jsonl, ~23k texts, ~0.87M tokens).  Run from the repo
# root after `make`:  bash bench/bench_vocab.sh
set -eu
FLAB=${FLAB:-$PWD/build/flab}
SRC=$PWD
DIR=$(mktemp -d /tmp/flab-bench-vocab.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
cd "$DIR"
ln -s "$SRC/data" data
cat > flabfile.ini <<INI
[tokens]
rule = collect_tokens
model = $SRC/tests/fixtures/tiny-qwen2
corpus = data/*.jsonl
fields = prompt canonical_solution code

[tokenizer]
rule = prune_vocab
model = $SRC/tests/fixtures/tiny-qwen2
tokens = @tokens
INI
export FLAB_PROGRESS=plain
t0=$(date +%s.%N)
"$FLAB" build tokens >/dev/null
t1=$(date +%s.%N)
"$FLAB" build tokenizer >/dev/null
t2=$(date +%s.%N)
"$FLAB" build >/dev/null
t3=$(date +%s.%N)
echo "collect_tokens: $(awk "BEGIN{printf \"%.2f\", $t1-$t0}") s   $("$FLAB" show tokens | sed -n 's/^metrics: *//p')"
echo "prune_vocab:    $(awk "BEGIN{printf \"%.2f\", $t2-$t1}") s   $("$FLAB" show tokenizer | sed -n 's/^metrics: *//p')"
echo "no-op rebuild:  $(awk "BEGIN{printf \"%.2f\", $t3-$t2}") s"
