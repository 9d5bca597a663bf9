#!/usr/bin/env bash
# tests/test_remote_http.sh: the team remote over HTTP against a real nginx
# (WebDAV PUT + basic auth) started on a free loopback port by this test:
# push from A, pull into B, no-op build in B with byte-identical artifacts,
# wrong credentials, server down, corrupt and truncated objects, concurrent
# pushes, resumed downloads, push = true, --no-remote.  See docs/REMOTE.md.
cd "$(dirname "$0")/.." || exit 1
. tests/engine_lib.sh
. tests/remote_lib.sh
if ! have_nginx; then echo "SKIP test_remote_http: nginx not installed"; exit 0; fi
trap 'stop_nginx; rm -rf "$ROOT"' EXIT
export FLAB_CACHE_FSYNC=0
unset FLAB_REMOTE FLAB_REMOTE_TOKEN FLAB_REMOTE_USER FLAB_REMOTE_PASSWORD
PW='s3cret-pw-4711'
start_nginx "$ROOT/nginx" flab "$PW" || { fail nginx_start "nginx did not start"; finish; }
export FLAB_REMOTE=$NGINX_URL/flab-cache
auth() { FLAB_REMOTE_USER=flab FLAB_REMOTE_PASSWORD=$PW "$@"; }

# the example flabfile of `command` targets, in its own directory and cache
example_project() {
  new_project "$1"
  cp "$REPO/examples/engine-demo.ini" flabfile.ini
  mkdir -p data && cp "$REPO/data/HumanEval.jsonl" "$REPO/data/MBPP_test.jsonl" data/
}
big_project() {   # one ~21 MB deterministic artifact
  new_project "$1"
  printf '[big]\nrule = command\nrun = seq 1 3000000 > "$FLAB_OUT/big.txt"\n' > flabfile.ini
}
targets="tokens mbpp/tokens vocab coverage report"
same_artifacts() {   # same_artifacts DIR1 DIR2: every target byte-identical
  local t
  for t in $targets; do
    diff -r "$(cd "$1" && $FLAB path "$t")" "$(cd "$2" && $FLAB path "$t")" >/dev/null || return 1
  done
}

# ---- A builds and pushes; B pulls and builds nothing --------------------------
example_project A
$FLAB build >/dev/null 2>&1
auth $FLAB push > push.out 2>&1
check push_ok [ $? = 0 ]
check push_uploads_entries [ "$(ls "$NGINX_WWW/flab-cache/ac" | wc -l)" = 5 ]
check push_objects_verified cas_consistent "$NGINX_WWW/flab-cache"
auth $FLAB push > push2.out 2>&1
check push_idempotent grep -q "0 artifacts pushed" push2.out
example_project B
auth $FLAB pull > pull.out 2>&1
check pull_ok [ $? = 0 ]
check pull_reports grep -q "5 targets in the local cache" pull.out
$FLAB build > build.out 2>&1
check build_after_pull_is_noop grep -q "no work to do" build.out
check build_after_pull_ran_nothing sh -c "! grep -q '^\[' build.out"
check artifacts_byte_identical same_artifacts "$ROOT/A" "$ROOT/B"
check pulled_cache_verifies $FLAB verify
check pulled_provenance_kept sh -c "$FLAB show report | grep -q 'provenance: commit'"
check password_not_in_cache sh -c "! grep -rqa -- '$PW' '$ROOT/B/.flab' '$NGINX_WWW'"
check password_not_in_output sh -c "! grep -qa -- '$PW' '$ROOT/A/push.out' pull.out"

# ---- wrong credentials -----------------------------------------------------------
example_project C
FLAB_REMOTE_USER=flab FLAB_REMOTE_PASSWORD=wrong $FLAB pull > bad.out 2>&1
check wrong_password_fails [ $? != 0 ]
check wrong_password_clear_error grep -q "authentication failed (HTTP 401)" bad.out
$FLAB pull > noauth.out 2>&1
check no_credentials_clear_error grep -q "authentication failed (HTTP 401)" noauth.out
FLAB_REMOTE_TOKEN=bogus $FLAB pull report > tok.out 2>&1
check bad_token_fails grep -q "authentication failed" tok.out
check url_credentials_refused sh -c "FLAB_REMOTE=http://u:p@127.0.0.1:1/x $FLAB pull 2>&1 | grep -q 'credentials in the URL are not accepted'"

# ---- server down: clear error, local build still works ---------------------------
DOWN=http://127.0.0.1:$(free_port)/flab-cache
FLAB_REMOTE=$DOWN auth $FLAB pull > down.out 2>&1
check down_pull_fails [ $? != 0 ]
check down_clear_error grep -q "cannot reach the server" down.out
FLAB_REMOTE=$DOWN auth $FLAB build > downbuild.out 2>&1
check down_build_still_works [ $? = 0 ]
check down_build_warns grep -q "warning: .*cannot reach the server.*building locally" downbuild.out
check down_build_result same_artifacts "$ROOT/A" "$ROOT/C"
FLAB_REMOTE=$DOWN $FLAB build --no-remote -B > noremote.out 2>&1
check no_remote_flag sh -c "! grep -q remote noremote.out"

# ---- a corrupt or truncated object on the server is refused -----------------------
example_project D
vocab_obj=$(cd "$ROOT/A" && $FLAB show vocab | awk '$3 == "vocab.txt" {print $2}')
obj=$(ls "$NGINX_WWW/flab-cache/cas/$vocab_obj"* | head -1)
cp "$obj" "$ROOT/saved.obj"
printf 'X' | dd of="$obj" bs=1 seek=10 conv=notrunc 2>/dev/null   # same size, one byte changed
auth $FLAB pull vocab > corrupt.out 2>&1
check corrupt_pull_fails [ $? != 0 ]
check corrupt_detected grep -q "is corrupt.*refused" corrupt.out
check corrupt_not_in_cache sh -c "! $FLAB path vocab >/dev/null 2>&1"
check corrupt_no_bad_object sh -c "! ls .flab/objects/*/$(basename "$obj")* 2>/dev/null | grep -q ."
check corrupt_part_removed sh -c "[ -z \"\$(ls .flab/remote-parts 2>/dev/null)\" ]"
head -c 100 "$ROOT/saved.obj" > "$obj"                                # truncated
auth $FLAB pull vocab > trunc.out 2>&1
check truncated_detected grep -q "truncated or damaged" trunc.out
auth $FLAB build > corruptbuild.out 2>&1
check corrupt_build_builds_locally [ $? = 0 ]
check corrupt_build_result same_artifacts "$ROOT/A" "$ROOT/D"
cp "$ROOT/saved.obj" "$obj"

# ---- concurrent pushes of the same artifact from two caches ------------------------
big_project E1; $FLAB build >/dev/null 2>&1
big_project E2; $FLAB build >/dev/null 2>&1
(cd "$ROOT/E1" && auth $FLAB push > push.out 2>&1; echo $? > rc) & p1=$!
(cd "$ROOT/E2" && auth $FLAB push > push.out 2>&1; echo $? > rc) & p2=$!
(cd "$ROOT/E1" && auth $FLAB push > push2.out 2>&1; echo $? > rc2) & p3=$!
wait $p1 $p2 $p3   # not a bare `wait`: nginx runs in the background too
check concurrent_pushes_succeed [ "$(cat "$ROOT/E1/rc" "$ROOT/E2/rc" "$ROOT/E1/rc2")" = "0
0
0" ]
check concurrent_server_consistent cas_consistent "$NGINX_WWW/flab-cache"
big_project E3
auth $FLAB pull > pull.out 2>&1
check concurrent_then_pull [ $? = 0 ]
check concurrent_pulled_identical cmp "$($FLAB path big)/big.txt" "$(cd "$ROOT/E1" && $FLAB path big)/big.txt"

# ---- resumed download: a partial .part is completed with a Range request -----------
big_project F
bigobj=$(cd "$ROOT/E1" && $FLAB show big | awk '$3 == "big.txt" {print $2}')
bigfull=$(ls "$NGINX_WWW/flab-cache/cas/$bigobj"*)
mkdir -p .flab/remote-parts
head -c 5000000 "$bigfull" > ".flab/remote-parts/$(basename "$bigfull").part"
: > "$ROOT/nginx/logs/access.log"
auth $FLAB pull > pull.out 2>&1
check resume_pull_ok [ $? = 0 ]
check resume_used_range grep -q "GET /flab-cache/cas/$(basename "$bigfull") HTTP/1.1\" 206" "$ROOT/nginx/logs/access.log"
check resume_result_identical cmp "$($FLAB path big)/big.txt" "$bigfull"
big_project G   # a stale, wrong .part is thrown away and downloaded again
mkdir -p .flab/remote-parts
head -c 5000000 /dev/zero > ".flab/remote-parts/$(basename "$bigfull").part"
auth $FLAB pull > pull.out 2>&1
check stale_part_redownloaded cmp "$($FLAB path big)/big.txt" "$bigfull"

# ---- push = true in the flabfile; remote set in the flabfile -----------------------
new_project H
printf '[flab]\nremote = %s/h-cache\npush = true\n[h]\nrule = command\nrun = echo h > "$FLAB_OUT/h"\n' \
  "$NGINX_URL" > flabfile.ini
unset FLAB_REMOTE
auth $FLAB build > build.out 2>&1
check push_true_pushes [ "$(ls "$NGINX_WWW/h-cache/ac" 2>/dev/null | wc -l)" = 1 ]
printf '[flab]\npush = maybe\n[h]\nrule = command\nrun = true\n' > flabfile.ini
$FLAB build > bad.out 2>&1
check push_bad_value grep -q "push = maybe: expected true or false" bad.out
finish
