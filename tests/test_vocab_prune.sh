#!/usr/bin/env bash
# tests/test_vocab_prune.sh: collect_tokens + prune_vocab through the real
# binary on the tiny-qwen2 fixture with data/synth-test.jsonl as corpus:
# build, artifact files and JSON keys, metrics, no-op second build, a glob
# corpus, min_count/keep_top, a parameter change rebuilding only what
# depends on it, and clear errors (mismatched model, failed verification
# is impossible to provoke from outside, so bad inputs instead).
. "$(dirname "$0")/engine_lib.sh"
SRC=$(cd "$(dirname "$0")/.." && pwd)
FIX=$SRC/tests/fixtures/tiny-qwen2
PY=${PYTHON:-python3}
case "$PY" in /*|python3) ;; *) PY=$PWD/$PY ;; esac

json() {   # json FILE EXPR: prints the Python expression over j = the file's JSON
  "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}

new_project vocab
cp "$SRC/data/synth-test.jsonl" corpus.jsonl
cat > flabfile.ini <<INI
[tokens]
rule = collect_tokens
model = $FIX
corpus = corpus.jsonl

[tokenizer]
rule = prune_vocab
model = $FIX
tokens = @tokens
INI
out=$("$FLAB" build 2>&1); rc=$?
check build_ok test "$rc" = 0
T=$("$FLAB" path tokens); P=$("$FLAB" path tokenizer)
check tokens_files test -f "$T/tokens.json" -a -f "$T/corpus.jsonl"
files=$(cd "$P" && ls | tr '\n' ' ')
check model_dir_files test "$files" = "config.json generation_config.json id_map.json model.safetensors tokenizer.json tokenizer_config.json "
check tokens_json_keys test "$(json "$T/tokens.json" 'sorted(j)')" = \
  "['corpus', 'counts', 'format', 'keep_top', 'kept', 'min_count', 'reasons', 'tokenizer_xxh3', 'vocab_after', 'vocab_before']"
check tokens_vocab_before test "$(json "$T/tokens.json" 'j["vocab_before"]')" = 2048
after=$(json "$T/tokens.json" 'j["vocab_after"]')
check tokens_kept_count test "$(json "$T/tokens.json" 'len(j["kept"])')" = "$after"
check tokens_150_texts test "$(json "$T/tokens.json" 'j["corpus"]["texts"]')" = 150
check id_map_size test "$(json "$P/id_map.json" 'len(j)')" = "$after"
check config_vocab test "$(json "$P/config.json" 'j["vocab_size"]')" = "$after"
show=$("$FLAB" show tokenizer)
check metrics_vocab contains "$show" "\"vocab_after\":$after"
check metrics_params contains "$show" '"params_before":3937984'
check metrics_verified contains "$show" '"verified_texts":150'
show=$("$FLAB" show tokens)
check metrics_tokens contains "$show" '"corpus_tokens":'
echo "vocab 2048 -> $after on synth-test.jsonl"

out=$("$FLAB" build 2>&1)
check noop_second_build contains "$out" "no work to do"

# the CLI tokenizer on the pruned model gives the original's tokens, renumbered
text='def f(x):
    return x + 1'
a=$("$FLAB" tokenize "$FIX" --json "$text"); b=$("$FLAB" tokenize "$P" --json "$text")
mapped=$("$PY" -c "
import json,sys
m=json.load(open(sys.argv[1])); a=json.loads(sys.argv[2]); a=a.get('ids',a) if isinstance(a,dict) else a
print(json.dumps([m[str(i)] for i in a]))" "$P/id_map.json" "$a")
bids=$("$PY" -c "import json,sys; b=json.loads(sys.argv[1]); print(json.dumps(b.get('ids',b) if isinstance(b,dict) else b))" "$b")
check cli_tokenize_pruned test "$mapped" = "$bids"

# min_count 2: fewer tokens; the verification falls back to decoded text
sed -i 's/^corpus = corpus.jsonl$/corpus = corpus.jsonl\nmin_count = 2/' flabfile.ini
out=$("$FLAB" build 2>&1); rc=$?
check min_count_build_ok test "$rc" = 0
after2=$(json "$("$FLAB" path tokens)/tokens.json" 'j["vocab_after"]')
check min_count_fewer test "$after2" -lt "$after"
check min_count_by_text contains "$("$FLAB" show tokenizer)" '"verified_by_text":'
sed -i 's/^min_count = 2$/keep_top = 50/' flabfile.ini
"$FLAB" build >/dev/null 2>&1
check keep_top_corpus_50 test "$(json "$("$FLAB" path tokens)/tokens.json" 'len(j["reasons"]["corpus"])')" = 50
sed -i '/^keep_top = 50$/d' flabfile.ini
out=$("$FLAB" build 2>&1)
check revert_noop contains "$out" "no work to do"

# a glob and a directory corpus; a jsonl without the fields is skipped
mkdir -p src/sub && printf 'x = 1\n' > src/a.py && printf 'print("héllo")\n' > src/sub/b.py
printf '{"code": "y = 2"}\n' > other.jsonl
sed -i 's/^corpus = corpus.jsonl$/corpus = *.jsonl src/' flabfile.ini
out=$("$FLAB" build 2>&1); rc=$?
check glob_build_ok test "$rc" = 0
T=$("$FLAB" path tokens)
check glob_texts test "$(json "$T/tokens.json" 'j["corpus"]["texts"]')" = 152
check glob_skipped test "$(json "$T/tokens.json" 'j["corpus"]["skipped_files"]')" = 1
check glob_sources test "$(grep -c '"source":"src/sub/b.py"' "$T/corpus.jsonl")" = 1
echo 'print(1)' >> src/a.py
out=$("$FLAB" status 2>&1)
check dir_content_keyed contains "$out" "stale  tokens"
"$FLAB" build >/dev/null 2>&1
printf '{"code": "z = 3"}\n' > more.jsonl
out=$("$FLAB" status 2>&1)
check glob_new_file_keyed contains "$out" "stale  tokens"
rm more.jsonl

# errors
sed -i 's/^corpus = \*.jsonl src$/corpus = nothing*.jsonl/' flabfile.ini
out=$("$FLAB" build 2>&1); rc=$?
check glob_no_match_fails test "$rc" != 0
check glob_no_match_message contains "$out" "matches no file"
sed -i 's/^corpus = nothing\*.jsonl$/corpus = corpus.jsonl/' flabfile.ini
printf '{"prompt": "a"}\nnot json\n' > bad.jsonl
sed -i 's/^corpus = corpus.jsonl$/corpus = bad.jsonl/' flabfile.ini
out=$("$FLAB" build 2>&1); rc=$?
check bad_jsonl_fails test "$rc" != 0
check bad_jsonl_names_line contains "$out" "bad.jsonl:2"
sed -i 's/^corpus = bad.jsonl$/corpus = corpus.jsonl/' flabfile.ini
mkdir -p other && cp "$FIX"/*.json "$FIX/model.safetensors" other/
"$PY" -c "
import json; p='other/tokenizer.json'; j=json.load(open(p)); j['added_tokens'][2]['content']='<|x|>'; json.dump(j,open(p,'w'))"
sed -i "0,/^model = .*/! s|^model = $FIX\$|model = other|" flabfile.ini
out=$("$FLAB" build 2>&1); rc=$?
check other_model_fails test "$rc" != 0
check other_model_message contains "$out" "not the tokenizer the tokens target was collected with"
finish
