#!/usr/bin/env bash
# tests/test_remote_file.sh: the file:// remote (a shared directory) with two
# caches on one machine: push, pull, no-op build, byte-identical artifacts,
# concurrent pushes of the same artifacts from two caches (consistent remote,
# no temp files left), a corrupt object refused, bad URLs.  docs/REMOTE.md.
cd "$(dirname "$0")/.." || exit 1
. tests/engine_lib.sh
. tests/remote_lib.sh
export FLAB_CACHE_FSYNC=0
unset FLAB_REMOTE FLAB_REMOTE_TOKEN FLAB_REMOTE_USER FLAB_REMOTE_PASSWORD
RDIR=$ROOT/shared/remote
example_project() {
  new_project "$1"
  sed "s|^cache = .flab.*|cache = .flab\nremote = file://$RDIR|" "$REPO/examples/engine-demo.ini" > flabfile.ini
  mkdir -p data && cp "$REPO/data/HumanEval.jsonl" "$REPO/data/MBPP_test.jsonl" data/
  printf '[big]\nrule = command\nrun = seq 1 2000000 > "$FLAB_OUT/big.txt"\n  seq 5 > "$FLAB_OUT/small"\n' >> flabfile.ini
}
targets="tokens mbpp/tokens vocab coverage report big"
same_artifacts() {
  local t
  for t in $targets; do
    diff -r "$(cd "$1" && $FLAB path "$t")" "$(cd "$2" && $FLAB path "$t")" >/dev/null || return 1
  done
}

example_project A; $FLAB build >/dev/null 2>&1
example_project B; $FLAB build >/dev/null 2>&1
# four pushes at once: two caches, twice each, into an empty remote
pids=
for d in A B A B; do (cd "$ROOT/$d" && $FLAB push > "push.$BASHPID.out" 2>&1 || echo fail >> "$ROOT/push_failed") & pids="$pids $!"; done
wait $pids
check concurrent_pushes_succeed [ ! -e "$ROOT/push_failed" ]
check concurrent_remote_entries [ "$(ls "$RDIR/ac" | wc -l)" = 6 ]
check concurrent_remote_objects cas_consistent "$RDIR"
check concurrent_no_temp_files [ -z "$(find "$RDIR" -name '.tmp*')" ]
check entries_are_json sh -c "for f in '$RDIR'/ac/*; do python3 -c 'import json,sys; json.load(open(sys.argv[1]))' \"\$f\" || exit 1; done"

example_project C
$FLAB pull > pull.out 2>&1
check pull_ok [ $? = 0 ]
$FLAB build > build.out 2>&1
check build_after_pull_is_noop grep -q "no work to do" build.out
check artifacts_byte_identical same_artifacts "$ROOT/A" "$ROOT/C"
check pulled_cache_verifies $FLAB verify
check pulled_records_for_explain sh -c "$FLAB status | grep -q fresh"

example_project D   # flab build pulls by itself: only the final target is needed
$FLAB build report > build.out 2>&1
check build_pulls_instead_of_running grep -q "pulled 1 target from the remote" build.out
check build_pull_needs_no_deps sh -c "! $FLAB path tokens >/dev/null 2>&1"
$FLAB pull --deps report > pulldeps.out 2>&1
check pull_deps grep -q "5 targets in the local cache" pulldeps.out

example_project E   # the same object twice in one artifact, and the local store reused
$FLAB pull big > pull.out 2>&1
check pull_big_ok [ $? = 0 ]
$FLAB pull tokens vocab > pull2.out 2>&1
check pull_partial_ok [ $? = 0 ]

# a corrupt object in the shared directory is refused
example_project F
obj=$(ls "$RDIR"/cas/$(cd "$ROOT/A" && $FLAB show big | awk '$3 == "big.txt" {print $2}')*)
chmod u+w "$obj"; printf 'Z' | dd of="$obj" bs=1 seek=3 conv=notrunc 2>/dev/null
$FLAB pull big > corrupt.out 2>&1
check corrupt_refused grep -q "is corrupt.*refused" corrupt.out
check corrupt_not_committed sh -c "! $FLAB path big >/dev/null 2>&1"
truncate -s 1000 "$obj"   # a damaged copy of another size is sent again by the next push
(cd "$ROOT/A" && rm -f "$RDIR/ac/$($FLAB show big | awk '/^key:/ {print $2}')" && $FLAB push big >/dev/null 2>&1)
check push_repairs_damaged_object cas_consistent "$RDIR"

check relative_url_refused sh -c "FLAB_REMOTE=file://rel/dir $FLAB pull 2>&1 | grep -q 'absolute path'"
check bad_scheme_refused sh -c "FLAB_REMOTE=ftp://x $FLAB pull 2>&1 | grep -q 'unsupported URL'"
new_project G
printf '[g]\nrule = command\nrun = true\n' > flabfile.ini
check no_remote_error sh -c "$FLAB pull 2>&1 | grep -q 'no remote: set \[flab\] remote'"
finish
