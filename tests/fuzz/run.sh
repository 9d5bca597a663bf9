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
# Seeds: small valid files (a header must parse for the fuzzer to get past it).
seed_st() {  # seed_st NAME HEADER DATA_BYTES
  local h=$2 n=${#2} i
  while [ $((n % 8)) != 0 ]; do h="$h "; n=$((n + 1)); done
  { for i in 0 8 16 24 32 40 48 56; do printf "\\x$(printf %02x $(((n >> i) & 255)))"; done
    printf '%s' "$h"; head -c "$3" /dev/zero; } > "$out/corpus-$target/$1"
}
case "$target" in
  safetensors)
    seed_st two '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}}' 12
    seed_st three '{"w":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"s":{"dtype":"F32","shape":[],"data_offsets":[8,12]},"e":{"dtype":"BF16","shape":[0],"data_offsets":[12,12]}}' 12 ;;
  config) cp tests/fixtures/tiny-qwen2/config.json "$out/corpus-$target/seed-config" ;;
esac
"$out/fuzz_$target" -max_total_time="$secs" -max_len=65536 -artifact_prefix="$out/$target-crash-" \
  "$out/corpus-$target"
