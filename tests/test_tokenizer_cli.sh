#!/usr/bin/env bash
# tests/test_tokenizer_cli.sh: `flab tokenize` / `flab detokenize` end to end
# (output formats, stdin, round trips, exit codes, error messages).
set -u
FLAB=${FLAB:-./flab}
D=tests/fixtures/tiny-qwen2
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got [$2] want [$3]"; fi; }

check "tokenize ids" "$("$FLAB" tokenize $D 'def f(x):<|endoftext|>')" "477 287 1635 41 58 2045"
check "tokenize --json" "$("$FLAB" tokenize $D --json 'a<|im_end|>')" '{"ids":[97,2047],"tokens":["a","<|im_end|>"]}'
check "tokenize --no-special" "$("$FLAB" tokenize $D --no-special '<|im_end|>' | wc -w)" "7"
check "tokenize stdin" "$(printf 'def f(x):<|endoftext|>' | "$FLAB" tokenize $D -)" "477 287 1635 41 58 2045"
check "tokenize empty" "$("$FLAB" tokenize $D '')" ""

# only tokenizer.json in the directory is enough
mkdir "$TMP/only"; cp $D/tokenizer.json "$TMP/only/"
check "tokenizer.json alone" "$("$FLAB" tokenize "$TMP/only" 'x = 1')" "$("$FLAB" tokenize $D 'x = 1')"

# exact byte round trip through detokenize (trailing newline, CRLF, CJK, specials)
printf 'def g():\r\n\treturn "中文 😀"  <|im_start|>\n\n' > "$TMP/in.txt"
ids=$("$FLAB" tokenize $D - < "$TMP/in.txt")
"$FLAB" detokenize $D $ids > "$TMP/out.txt"
if cmp -s "$TMP/in.txt" "$TMP/out.txt"; then pass "detokenize round trip"; else fail "detokenize round trip" "bytes differ"; fi
check "detokenize stdin, commas" "$(echo "[97, 2047]" | "$FLAB" detokenize $D -)" "a<|im_end|>"
check "detokenize --skip-special" "$("$FLAB" detokenize $D --skip-special 97 2047 97)" "aa"

printf 'ok\xff' > "$TMP/bad.txt"
err=$("$FLAB" tokenize $D - < "$TMP/bad.txt" 2>&1 >/dev/null); rc=$?
if [ $rc = 1 ] && [[ "$err" == *"not valid UTF-8 (byte 2"* ]]; then pass "invalid UTF-8 error"; else fail "invalid UTF-8 error" "rc $rc: $err"; fi
err=$("$FLAB" detokenize $D 5 99999 2>&1 >/dev/null); rc=$?
if [ $rc = 1 ] && [[ "$err" == *"id 99999 is not in the vocabulary"* ]]; then pass "unknown id error"; else fail "unknown id error" "rc $rc: $err"; fi
err=$("$FLAB" tokenize "$TMP/nonexistent" x 2>&1 >/dev/null); rc=$?
if [ $rc = 1 ] && [[ "$err" == *"nonexistent/tokenizer.json"* ]]; then pass "missing tokenizer error"; else fail "missing tokenizer error" "rc $rc: $err"; fi
"$FLAB" tokenize >/dev/null 2>&1; rc=$?
check "usage exit code" "$rc" "2"

mkdir "$TMP/digits"
sed 's/"type": *"NFC"/"type": "Lowercase"/' $D/tokenizer.json > "$TMP/digits/tokenizer.json"
err=$("$FLAB" tokenize "$TMP/digits" x 2>&1 >/dev/null); rc=$?
if [ $rc = 1 ] && [[ "$err" == *'unsupported normalizer "Lowercase"'* ]]; then pass "unsupported component error"; else fail "unsupported component error" "rc $rc: $err"; fi
