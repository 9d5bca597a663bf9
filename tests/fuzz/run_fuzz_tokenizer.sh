#!/usr/bin/env bash
# Builds tests/fuzz/fuzz_tokenizer.c with clang -fsanitize=fuzzer,address,undefined
# and runs it for SECONDS (default 60) on a corpus seeded with the fixture's
# tokenizer.json and a SentencePiece-style one.  Not part of `make test`.
set -eu
SECS=${1:-60}
OUT=build-fuzz
mkdir -p $OUT/corpus
CFLAGS="-std=c11 -g -O1 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined"
SRCS="model/tokenizer_*.c util/error.c util/file.c"
clang $CFLAGS -o $OUT/fuzz_tokenizer tests/fuzz/fuzz_tokenizer.c $SRCS -lpcre2-8 -lutf8proc -lcjson -lxxhash
cp tests/fixtures/tiny-qwen2/tokenizer.json $OUT/corpus/qwen2.json
exec $OUT/fuzz_tokenizer -max_total_time=$SECS -max_len=300000 $OUT/corpus
