#!/usr/bin/env bash
# tests/test_engine_errors.sh: every flabfile error, through the real
# binary: the message names file:line (or -D), exit code 2, nothing runs.
. "$(dirname "$0")/engine_lib.sh"
new_project errors
echo data > present.txt

# expect NAME 'MESSAGE' : flab build on ./flabfile.ini must exit 2 with MESSAGE
expect() {
  local out rc
  out=$("$FLAB" build "${@:3}" 2>&1); rc=$?
  if [ "$rc" != 2 ]; then fail "$1" "exit $rc, not 2: $out"
  elif ! contains "$out" "$2"; then fail "$1" "message '$out' lacks '$2'"
  elif [ -e ran.log ]; then fail "$1" "something ran"
  else pass "$1"; fi
}

printf '[a]\nrule = command\nrun = touch ran.log\n\n[b]\nrule = comand\nrun = x\n' > flabfile.ini
expect unknown_rule "flabfile.ini:6: unknown rule 'comand' for target [b] (did you mean 'command'?)"

printf '[a]\nrule = command\nrun = touch ran.log\nimputs = present.txt\n' > flabfile.ini
expect unknown_param "flabfile.ini:4: unknown parameter 'imputs' for rule command in [a] (did you mean 'inputs'?)"

printf '\n\n[a]\nrule = command\n' > flabfile.ini
expect missing_param "flabfile.ini:3: target [a] misses required parameter 'run'"

printf '[a]\nrun = x\n' > flabfile.ini
expect missing_rule "flabfile.ini:1: target [a] has no 'rule = ...'"

printf '[a]\nrule = command\nrun = touch ran.log\nshell = zsh\n' > flabfile.ini
expect bad_value "flabfile.ini:4: [a]: parameter 'shell' must be one of sh|bash, got 'zsh'"

printf '[a]\nrule = command\nrun = touch ran.log\ninputs = present.txt missing.txt\n' > flabfile.ini
expect missing_input "flabfile.ini:4: [a]: input 'missing.txt' of parameter 'inputs' does not exist"

printf '[tokens]\nrule = command\nrun = x\n[b]\nrule = command\nrun = touch ran.log\ninputs = @tokenz\n' > flabfile.ini
expect unknown_target_ref "flabfile.ini:7: [b]: parameter 'inputs' names unknown target @tokenz (did you mean '@tokens'?)"

printf '[a]\nrule = command\nrun = x\ninputs = @b\n\n[b]\nrule = command\nrun = x\ninputs = @c\n\n[c]\nrule = command\nrun = x\ninputs = @a\n' > flabfile.ini
expect cycle "dependency cycle: a -> b -> c -> a"
expect cycle_has_line "flabfile.ini:1: dependency cycle"

printf '[a]\nrule = command\nrun = x\n\n[a]\nrule = command\nrun = y\n' > flabfile.ini
expect duplicate_target "flabfile.ini:5: duplicate target [a] (first defined at line 1)"

printf '[a]\nrule = command\nrun = x\nrun = y\n' > flabfile.ini
expect duplicate_param "flabfile.ini:4: 'run' set twice in [a] (first at line 3)"

printf '[a]\nrule = command\nthis line has no equals sign\n' > flabfile.ini
expect syntax_error "flabfile.ini:3: syntax error"

printf '[flab]\ncahce = x\n[a]\nrule = command\nrun = x\n' > flabfile.ini
expect unknown_setting "flabfile.ini:2: unknown setting 'cahce' in [flab] (did you mean 'cache'?)"

printf '[a]\nrule = command\nrun = touch ran.log\n' > flabfile.ini
expect define_bad_input "-D: [a]: input 'nothere' of parameter 'inputs' does not exist" -D a.inputs=nothere
expect define_unknown_param "-D: unknown parameter 'rn' for rule command in [a] (did you mean 'run'?)" -D a.rn=1
expect define_malformed "-D a=1: expected TARGET.PARAM=VALUE" -D a=1
expect unknown_build_target "unknown target 'b' in flabfile.ini" b

out=$("$FLAB" build -f nothere.ini 2>&1); rc=$?
check missing_flabfile test "$rc" = 2
check missing_flabfile_msg contains "$out" "nothere.ini"
out=$("$FLAB" build -j 0 2>&1); rc=$?
check bad_jobs test "$rc" = 2
out=$("$FLAB" explain 2>&1); rc=$?
check explain_usage test "$rc" = 2
out=$("$FLAB" build --bogus 2>&1); rc=$?
check bad_option test "$rc" = 2

# flab cancel with no build running reads the job records; it must not
# create a cache where none is (it did, through a cleared no_cache flag).
mkdir fresh && (cd fresh && printf '[a]\nrule = command\nrun = true\n' > flabfile.ini &&
  "$FLAB" cancel > ../cancel.out 2>&1); rc=$?
check cancel_no_jobs test "$rc" = 0
check cancel_no_jobs_msg contains "$(cat cancel.out)" "cancelled 0 Slurm jobs"
check cancel_creates_no_cache test ! -e fresh/.flab
finish
