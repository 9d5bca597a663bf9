#!/usr/bin/env bash
# tests/test_engine_e2e.sh: the engine's contract on a real flabfile of
# `command` targets, through the real binary: no-op rebuilds, one-parameter
# changes, revert from cache, -D, explain, status, dry run, failures, -k,
# -j, multi-line and ';' commands, show/path/log/graph.
. "$(dirname "$0")/engine_lib.sh"

write_pipeline() {   # a.txt -> upper -> count -> report ; side (independent)
  cat > flabfile.ini <<'INI'
[flab]
cache = .flab   ; the default, spelled out

[upper]
rule = command
inputs = a.txt
run = echo upper >> ../ran.log; tr a-z A-Z < "$FLAB_IN_1" > "$FLAB_OUT/up.txt"

[count]
rule = command
inputs = @upper
run = echo count >> ../ran.log; wc -c < "$FLAB_IN_1/up.txt" | tr -d ' ' > "$FLAB_OUT/n"

[report]
rule = command
inputs = @count @upper
run = echo report >> ../ran.log; cat "$FLAB_IN_1/n" "$FLAB_IN_2/up.txt" > "$FLAB_OUT/report.txt"

[side]
rule = command
run = echo side >> ../ran.log; echo side > "$FLAB_OUT/side.txt"
INI
}

new_project pipe
mkdir w && cd w && echo hello > a.txt && write_pipeline
# the commands run in the flabfile's directory; ran.log lives one level up
RL=../ran.log
out=$("$FLAB" build 2>&1); rc=$?
check first_build_ok test "$rc" = 0
check first_build_ran_all test "$(cd .. && ran)" = "count report side upper"
check progress_lines contains "$out" "[4/4] "
check progress_names_rule contains "$out" "upper (command)"
check artifact_content test "$(cat "$("$FLAB" path report)/report.txt" | tr '\n' ' ')" = "6 HELLO "

: > $RL
out=$("$FLAB" build 2>&1)
check noop_runs_nothing test -z "$(cat $RL)"
check noop_says_so contains "$out" "no work to do"

orig=$("$FLAB" path report)
sed -i 's/tr a-z A-Z/tr a-z A-Z | rev/' flabfile.ini
out=$("$FLAB" explain upper)
check explain_names_param contains "$out" "parameter 'run' changed"
out=$("$FLAB" explain report)
check explain_names_dependency contains "$out" "input @upper (parameter 'inputs') changed"
out=$("$FLAB" status)
check status_stale contains "$out" "stale  upper"
check status_fresh contains "$out" "fresh  side"
out=$("$FLAB" build -n)
check dry_run_lists contains "$out" "would run [1/3] upper (command): parameter 'run' changed"
check dry_run_runs_nothing test -z "$(cat $RL)"
"$FLAB" build >/dev/null 2>&1
check param_change_reruns_dependents test "$(cd .. && ran)" = "count report upper"
check param_change_output test "$(head -c 5 "$("$FLAB" path upper)/up.txt")" = "olleh"

: > $RL
sed -i 's/tr a-z A-Z | rev/tr a-z A-Z/' flabfile.ini
out=$("$FLAB" build 2>&1)
check revert_restores_from_cache test -z "$(cat $RL)"
check revert_same_artifact test "$("$FLAB" path report)" = "$orig"
out=$("$FLAB" explain upper)
check explain_after_revert contains "$out" "fresh"

: > $RL
echo bonjour > a.txt
out=$("$FLAB" explain upper)
check explain_names_input contains "$out" "input 'a.txt' (parameter 'inputs') changed content"
"$FLAB" build >/dev/null 2>&1
check input_change_reruns test "$(cd .. && ran)" = "count report upper"
echo hello > a.txt

: > $RL
out=$("$FLAB" build -D 'side.run=echo side >> ../ran.log; echo other > "$FLAB_OUT/side.txt"' side 2>&1)
check define_override_runs test "$(cat $RL)" = "side"
check define_override_output test "$(cat "$("$FLAB" path -D 'side.run=echo side >> ../ran.log; echo other > "$FLAB_OUT/side.txt"' side)/side.txt")" = "other"
: > $RL
"$FLAB" build >/dev/null 2>&1
check define_is_not_sticky test -z "$(cat $RL)"
check define_reverted_output test "$(cat "$("$FLAB" path side)/side.txt")" = "side"
out=$("$FLAB" build -D nosuch.x=1 2>&1); rc=$?
check define_unknown_target test "$rc" = 2
check define_unknown_target_msg contains "$out" "no target [nosuch]"

: > $RL
"$FLAB" build upper >/dev/null 2>&1
check build_one_target_fresh test -z "$(cat $RL)"

: > $RL
"$FLAB" build -B side upper >/dev/null 2>&1
check force_rebuilds_named test "$(cd .. && ran)" = "side upper"
: > $RL
"$FLAB" build >/dev/null 2>&1
check force_then_noop test -z "$(cat $RL)"

# ---- show, path, log, graph --------------------------------------------------
out=$("$FLAB" show report)
check show_key contains "$out" "key:       "
check show_files contains "$out" "report.txt"
check show_provenance contains "$out" "provenance: commit"
out=$("$FLAB" log report)
check log_lists_builds test "$(echo "$out" | grep -c ' report ')" -ge 1
out=$("$FLAB" log -v -n 1 upper)
check log_manifest contains "$out" '"params"'
out=$("$FLAB" graph)
check graph_text contains "$out" "report (command) <- @count, @upper"
out=$("$FLAB" graph --dot)
check graph_dot contains "$out" '"upper" -> "count";'
p=$("$FLAB" path upper)
check path_is_readonly test "$(stat -c %a "$p/up.txt")" = 444
out=$("$FLAB" path uper 2>&1); rc=$?
check path_unknown_target test "$rc" = 2
check path_unknown_suggests contains "$out" "did you mean 'upper'"

out=$("$FLAB" rules command)
check rules_lists_params contains "$out" "inputs         paths"
out=$("$FLAB" rules nosuch 2>&1); rc=$?
check rules_unknown test "$rc" = 2

# ---- -f from elsewhere, FLAB_CACHE ---------------------------------------------
cd "$ROOT"
out=$("$FLAB" build -f pipe/w/flabfile.ini 2>&1)
check dash_f_from_elsewhere contains "$out" "no work to do"
out=$("$FLAB" -f pipe/w/flabfile.ini status 2>&1)
check global_dash_f contains "$out" "4 fresh, 0 stale"
out=$(FLAB_CACHE=$ROOT/other-cache "$FLAB" build -f pipe/w/flabfile.ini side 2>&1)
check flab_cache_env test -d "$ROOT/other-cache/objects"
cd "$ROOT/pipe/w"

# ---- failures, -k ----------------------------------------------------------------
new_project fail
cat > flabfile.ini <<'INI'
[bad]
rule = command
run = echo about to fail; echo on stderr >&2; exit 3

[after_bad]
rule = command
inputs = @bad
run = echo after_bad >> ran.log; touch "$FLAB_OUT/x"

[good]
rule = command
run = echo good >> ran.log; touch "$FLAB_OUT/g"
INI
out=$("$FLAB" build -k 2>&1); rc=$?
check fail_exit_1 test "$rc" = 1
check fail_shows_log contains "$out" "on stderr"
check fail_shows_status contains "$out" "command exited with status 3"
check fail_dependents_not_built test "$(ran)" = "good"
check fail_keep_going contains "$out" "1 failed, 1 not built"
out=$("$FLAB" path bad 2>&1); rc=$?
check fail_nothing_recorded test "$rc" = 1
check fail_staging_clean test -z "$(ls .flab/staging 2>/dev/null)"
check fail_log_has_no_row test "$("$FLAB" log bad | wc -l)" = 0
reset_ran
rm -rf .flab
out=$("$FLAB" build -j1 bad good 2>&1); rc=$?
check fail_stops_without_k test "$rc" = 1
check fail_stops_without_k_skips test -z "$(ran)"

# ---- ' ;' and multi-line commands -----------------------------------------------
new_project syntax
cat > flabfile.ini <<'INI'
[semi]
rule = command
; ';' right after a word is kept, ' ;' starts a comment
run = echo one > "$FLAB_OUT/a"; echo two > "$FLAB_OUT/b" ; echo dropped > "$FLAB_OUT/c"

[multi]
rule = command
run = echo first > "$FLAB_OUT/1"
  echo second > "$FLAB_OUT/2"

  # a comment line inside is skipped
  for i in 3 4; do echo $i > "$FLAB_OUT/$i"; done

[bash]
rule = command
shell = bash
run = [[ -n "$BASH_VERSION" ]] && echo yes > "$FLAB_OUT/bash"

[fails_mid]
rule = command
run = false
  touch "$FLAB_OUT/never"

[inputs]
rule = command
inputs = @semi flabfile.ini   @multi
run = echo "$FLAB_NIN $FLAB_TARGET" > "$FLAB_OUT/env"; ls "$FLAB_IN_1" > "$FLAB_OUT/in1"
  test -f "$FLAB_IN_2" && test -d "$FLAB_IN_3"
INI
"$FLAB" build -k >/dev/null 2>&1
s=$("$FLAB" path semi)
check semicolon_kept test -f "$s/a" -a -f "$s/b"
check space_semicolon_comment test ! -e "$s/c"
m=$("$FLAB" path multi)
check multiline_all_lines test "$(cat "$m/1" "$m/2" "$m/3" "$m/4" | tr '\n' ' ')" = "first second 3 4 "
check shell_bash test "$(cat "$("$FLAB" path bash)/bash")" = yes
out=$("$FLAB" path fails_mid 2>&1); rc=$?
check multiline_stops_at_failure test "$rc" = 1
i=$("$FLAB" path inputs)
check env_nin_target test "$(cat "$i/env")" = "3 inputs"
check env_in_dep_dir test "$(cat "$i/in1" | tr '\n' ' ')" = "a b "

# ---- -j: independent targets run in parallel -------------------------------------
new_project jobs
for n in 1 2 3 4; do printf '[s%d]\nrule = command\nrun = sleep 1; touch "$FLAB_OUT/x"\n\n' $n; done > flabfile.ini
start=$(date +%s%N)
"$FLAB" build -j4 >/dev/null 2>&1
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check parallel_j4 test "$ms" -lt 3500
check parallel_all_built test "$("$FLAB" status | tail -1)" = "4 fresh, 0 stale"

# ---- inputs are content-hashed: touch is not a change, a new file in a dir is --
new_project content
mkdir -p d && echo 1 > d/one && echo x > f.txt
cat > flabfile.ini <<'INI'
[dir]
rule = command
inputs = d f.txt
run = echo dir >> ran.log; ls "$FLAB_IN_1" > "$FLAB_OUT/list"
INI
"$FLAB" build >/dev/null 2>&1
reset_ran
touch -d '2001-01-01' f.txt d/one
"$FLAB" build >/dev/null 2>&1
check touch_is_not_a_change test -z "$(ran)"
echo 2 > d/two
out=$("$FLAB" explain dir)
check dir_new_file_explained contains "$out" "input 'd' (parameter 'inputs') changed content"
"$FLAB" build >/dev/null 2>&1
check dir_new_file_rebuilds test "$(ran)" = "dir"
check dir_new_file_output test "$(cat "$("$FLAB" path dir)/list" | tr '\n' ' ')" = "one two "

# ---- two targets with the same key: built once, both fresh ---------------------
new_project samekey
printf '[a]\nrule = command\nrun = echo x >> ran.log; echo same > "$FLAB_OUT/x"\n[b]\nrule = command\nrun = echo x >> ran.log; echo same > "$FLAB_OUT/x"\n' > flabfile.ini
out=$(timeout 60 "$FLAB" build -j2 2>&1); rc=$?
check same_key_once test "$rc:$(ran)" = "0:x"
check same_key_both_fresh test "$("$FLAB" status | tail -1)" = "2 fresh, 0 stale"

# ---- a background process of a command does not hold the build; SIGINT ----------
new_project signals
cat > flabfile.ini <<'INI'
[bg]
rule = command
run = (sleep 3; echo late > /dev/null) & touch "$FLAB_OUT/y"

[slow]
rule = command
run = echo $$ > slow.pid; sleep 30; touch "$FLAB_OUT/x"
INI
start=$(date +%s%N)
"$FLAB" build bg >/dev/null 2>&1
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check background_process_not_waited test "$ms" -lt 2500
"$FLAB" build slow >/dev/null 2>&1 &
pid=$!
for _ in $(seq 50); do [ -s slow.pid ] && break; sleep 0.1; done
kill -INT $pid; wait $pid; rc=$?
check sigint_exit_130 test "$rc" = 130
check sigint_nothing_recorded test "$("$FLAB" status slow | head -1 | cut -c1-5)" = "stale"
sleep 0.3
# gone, or a zombie waiting for init to reap it
check sigint_kills_rule eval 'case "$(ps -o stat= -p "$(cat slow.pid)")" in ""|Z*) true ;; *) false ;; esac'

finish
