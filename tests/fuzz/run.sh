#!/usr/bin/env bash
# tests/fuzz/run.sh: builds and runs a libFuzzer harness (clang + libFuzzer,
# ASan + UBSan) over flab's model I/O parsers.  Not part of `make test`
# (the seeded loop in tests/test_safetensors_fuzz.c is); run it by hand:
#   tests/fuzz/run.sh safetensors [seconds]   # default 60
#   tests/fuzz/run.sh config [seconds]
# Crashes are written to build-fuzz/<target>-crash-*; the corpus is kept in
# build-fuzz/corpus-<target> between runs.
set -eu
target=${1:-safetensors}
secs=${2:-60}
out=build-fuzz
mkdir -p "$out/corpus-$target"
srcs="util/error.c util/file.c model/safetensors.c model/safetensors_write.c model/config.c model/dtype.c"
# clang < 15 has no _Float16 on x86; its storage type __fp16 is the same IEEE
# half format (conversions from compiler-rt's builtins), so use it there.
half=""
echo '_Float16 x;' | clang -x c -c -o /dev/null - 2>/dev/null || half="-D_Float16=__fp16 -rtlib=compiler-rt"
clang -std=c11 -g -O1 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined $half \
  -fno-sanitize-recover=undefined -o "$out/fuzz_$target" "tests/fuzz/fuzz_$target.c" $srcs \
  -lcjson -lutf8proc
# Seeds: the fixture's files (headers only for safetensors: the first 16 KB).
case "$target" in
  safetensors) head -c 16384 tests/fixtures/tiny-qwen2/lora_adapter_model.safetensors \
                 > "$out/corpus-$target/seed-lora" ;;
  config) cp tests/fixtures/tiny-qwen2/config.json "$out/corpus-$target/seed-config" ;;
esac
"$out/fuzz_$target" -max_total_time="$secs" -max_len=65536 -artifact_prefix="$out/$target-crash-" \
  "$out/corpus-$target"
