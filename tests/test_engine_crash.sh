#!/usr/bin/env bash
# tests/test_engine_crash.sh: the crash and concurrency promises, through
# the real binary:
#   - kill -9 of `flab build` at random moments (22 kills, each during a
#     different variant of the pipeline), then full builds of every variant
#     produce exactly the right outputs and `flab verify` finds no damage;
#   - two concurrent `flab build` on one cache build each target once;
#   - an object corrupted on disk is found by `flab verify` and rebuilt.
. "$(dirname "$0")/engine_lib.sh"

# root -> mid1, mid2 -> top ; every output is derived from its inputs, so
# the expected content of each variant is known without flab.
write_chain() {
  cat > flabfile.ini <<'INI'
[root]
rule = command
run = echo v0 > "$FLAB_OUT/v"

[mid1]
rule = command
inputs = @root
run = sleep 0.05; sed 's/^/m1-/' "$FLAB_IN_1/v" > "$FLAB_OUT/v"

[mid2]
rule = command
inputs = @root
run = sleep 0.05; sed 's/^/m2-/' "$FLAB_IN_1/v" > "$FLAB_OUT/v"
  head -c 200000 /dev/zero > "$FLAB_OUT/big"

[top]
rule = command
inputs = @mid1 @mid2
run = cat "$FLAB_IN_1/v" "$FLAB_IN_2/v" > "$FLAB_OUT/v"
INI
}

new_project kill
write_chain
kills=0
# A kill only counts when it lands while flab runs; a fast machine finishes
# some builds before the random delay, so go on until 20 kills have landed.
for i in $(seq 1 200); do
  [ "$kills" -ge 20 ] && break
  "$FLAB" build -j2 -D "root.run=echo v$i > \"\$FLAB_OUT/v\"" >/dev/null 2>&1 &
  pid=$!
  sleep "0.$(printf '%03d' $((RANDOM % 150)))"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null
done
check kill_loop_killed_enough test "$kills" -ge 20
bad=""
for i in $(seq 1 22); do
  D="root.run=echo v$i > \"\$FLAB_OUT/v\""
  if ! "$FLAB" build -j2 -D "$D" >/dev/null 2>&1; then bad="$bad build$i"; continue; fi
  got=$(cat "$("$FLAB" path -D "$D" top)/v" | tr '\n' ' ')
  [ "$got" = "m1-v$i m2-v$i " ] || bad="$bad v$i:'$got'"
  [ "$(stat -c %s "$("$FLAB" path -D "$D" mid2)/big")" = 200000 ] || bad="$bad big$i"
done
check kill_then_build_correct test -z "$bad"
out=$("$FLAB" verify 2>&1); rc=$?
check kill_then_verify_clean test "$rc" = 0
"$FLAB" build >/dev/null 2>&1
out=$("$FLAB" gc 2>&1); rc=$?
check kill_gc_ok test "$rc" = 0
check kill_gc_reports contains "$out" "bytes freed"
check kill_gc_no_stale_staging test "$(find .flab/staging -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" = 0
check kill_gc_keeps_current eval "\"$FLAB\" path top >/dev/null"
check kill_verify_after_gc eval "\"$FLAB\" verify >/dev/null"

# ---- two concurrent builds on one cache ------------------------------------------
new_project concurrent
cat > flabfile.ini <<'INI'
[slow_a]
rule = command
run = echo slow_a >> ran.log; sleep 0.5; echo a > "$FLAB_OUT/a"

[slow_b]
rule = command
run = echo slow_b >> ran.log; sleep 0.5; echo b > "$FLAB_OUT/b"

[top]
rule = command
inputs = @slow_a @slow_b
run = echo top >> ran.log; cat "$FLAB_IN_1/a" "$FLAB_IN_2/b" > "$FLAB_OUT/t"
INI
"$FLAB" build -j2 > out1.txt 2>&1 &
p1=$!
"$FLAB" build -j2 > out2.txt 2>&1 &
p2=$!
wait $p1; rc1=$?
wait $p2; rc2=$?
check concurrent_both_ok test "$rc1$rc2" = 00
check concurrent_each_once test "$(ran)" = "slow_a slow_b top"
check concurrent_output test "$(cat "$("$FLAB" path top)/t" | tr '\n' ' ')" = "a b "
check concurrent_verify eval "\"$FLAB\" verify >/dev/null"

# ---- corruption found by verify, then rebuilt ---------------------------------
new_project corrupt
printf '[data]\nrule = command\nrun = echo data >> ran.log; seq 1 1000 > "$FLAB_OUT/numbers"\n\n[sum]\nrule = command\ninputs = @data\nrun = echo sum >> ran.log; wc -l < "$FLAB_IN_1/numbers" > "$FLAB_OUT/n"\n' > flabfile.ini
"$FLAB" build >/dev/null 2>&1
hash=$("$FLAB" show data | awk '$3 == "numbers" {print $2}')
obj=$(ls .flab/objects/*/"$hash"* 2>/dev/null | head -1)
check corrupt_found_object test -n "$obj"
chmod u+w "$obj" && printf 'X' | dd of="$obj" bs=1 seek=10 conv=notrunc 2>/dev/null
reset_ran
out=$("$FLAB" verify 2>&1); rc=$?
check corrupt_verify_exit_1 test "$rc" = 1
check corrupt_verify_reports contains "$out" "corrupt"
out=$("$FLAB" status)
check corrupt_status_stale contains "$out" "stale  data"
"$FLAB" build >/dev/null 2>&1
check corrupt_rebuilt test "$(ran)" = "data"
check corrupt_content_ok test "$(tail -1 "$("$FLAB" path data)/numbers")" = 1000
check corrupt_verify_clean_after eval "\"$FLAB\" verify >/dev/null"
finish
