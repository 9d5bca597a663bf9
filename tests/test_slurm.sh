#!/usr/bin/env bash
# tests/test_slurm.sh: executor = slurm against a real single-node Slurm
# (tests/slurm_lib.sh: munged, slurmctld, slurmd in the foreground on
# localhost, two CPUs = two job slots).  A diamond (a -> b, c -> d) and an
# independent branch (x -> y) of `command` targets: jobs run under Slurm
# (job ids in provenance), artifacts equal a local build's, a second build
# submits nothing, a failing job fails the build cleanly with its log, flab
# cancel and Ctrl-C scancel the running jobs, the daemons are stopped.
# SKIPs only where Slurm is not installed (or not root).
. "$(dirname "$0")/engine_lib.sh"
. "$(dirname "$0")/slurm_lib.sh"
if ! slurm_available; then
  if [ "$(id -u)" = 0 ]; then echo "SKIP test_slurm: slurm not installed"
  else echo "SKIP test_slurm: slurm needs root here (munged, slurmd as root)"; fi
  exit 0
fi
cleanup() { slurm_stop; rm -rf "$ROOT"; }
trap cleanup EXIT
if ! slurm_start "$ROOT/cluster"; then fail slurm_start "daemons did not come up"; exit 1; fi
pass slurm_start

new_project slurm
# leaf NAME: a command target writing NAME.txt ("NAME");
# after NAME INPUT [LINE...]: INPUT's text file plus the line "NAME"
leaf() { printf '[%s]\nrule = command\nrun = echo %s > $FLAB_OUT/%s.txt\n\n' "$1" "$1" "$1"; }
after() {
  local n=$1 in=$2; shift 2
  printf '[%s]\nrule = command\ninputs = @%s\n' "$n" "$in"; [ $# = 0 ] || printf '%s\n' "$@"
  printf 'run = cat $FLAB_IN_1/%s.txt > $FLAB_OUT/%s.txt; echo %s >> $FLAB_OUT/%s.txt\n\n' "$in" "$n" "$n" "$n"
}
{
  printf '[flab]\nexecutor = slurm\ncpus = 1\n\n'
  leaf a; after b a 'mem = 100M' 'time = 5'; after c a
  printf '[d]\nrule = command\ninputs = @b @c\nrun = cat $FLAB_IN_1/b.txt $FLAB_IN_2/c.txt > $FLAB_OUT/d.txt\n\n'
  leaf x; after y x
} > flabfile.ini
out=$("$FLAB" build 2>&1); rc=$?
check build_ok [ "$rc" = 0 ]
check six_jobs_submitted [ "$(grep -c 'submitted .* as Slurm job' <<<"$out")" = 6 ]
ok=1
for t in a b c d x y; do
  "$FLAB" show $t | grep -q '"job_id":[0-9]' || { ok=0; echo "  no job id in provenance of $t"; }
done
check job_ids_in_provenance [ $ok = 1 ]
check resources_in_provenance eval '"$FLAB" show b | grep -q "\"requested\":{\"cpus\":\"1\",\"mem\":\"100M\",\"time\":\"5\"}"'
check node_in_provenance eval '"$FLAB" show a | grep -q "\"node\":\"$(hostname -s)\""'
check job_log_kept eval 'ls .flab/slurm/logs/*.log >/dev/null'

# the same flabfile built locally into another cache: identical artifacts
ok=1
for t in a b c d x y; do
  s=$("$FLAB" path $t)
  l=$(FLAB_CACHE=$ROOT/local-cache "$FLAB" build --executor local $t >/dev/null 2>&1 &&
      FLAB_CACHE=$ROOT/local-cache "$FLAB" path $t)
  diff -r "$s" "$l" >/dev/null || { ok=0; echo "  $t differs: $s vs $l"; }
done
check artifacts_equal_local [ $ok = 1 ]

njobs=$(squeue -h -t all | wc -l)
out=$("$FLAB" build 2>&1); rc=$?
check second_build_submits_nothing eval '[ "$rc" = 0 ] && contains "$out" "no work to do" &&
  [ "$(squeue -h -t all | wc -l)" = "$njobs" ]'
out=$("$FLAB" build -n -D b.cpus=2 -D flab.mem=200M 2>&1)
check resources_not_in_key contains "$out" "0 targets would run"

# a failing job fails the build like a local failure: log shown, nothing
# committed, the dependent never submitted, the rest still fresh
cat >> flabfile.ini <<'INI'

[bad]
rule = command
inputs = @a
run = echo boom-from-the-node; exit 3

[after_bad]
rule = command
inputs = @bad
run = touch $FLAB_OUT/never
INI
out=$("$FLAB" build 2>&1); rc=$?
check failing_job_fails_build [ "$rc" = 1 ]
check failing_job_log_shown contains "$out" "boom-from-the-node"
check failing_job_state_named contains "$out" "bad: Slurm job"
check failing_job_dependent_not_submitted eval '! contains "$out" "submitted after_bad"'
check failing_job_nothing_committed eval '! "$FLAB" path bad >/dev/null 2>&1'
check failing_job_no_staging_left eval '[ -z "$(ls .flab/staging 2>/dev/null)" ]'
sed -i '/^\[bad\]/,$d' flabfile.ini

# flab cancel: scancels the running job; the build fails it, nothing committed
printf '\n[slow]\nrule = command\nrun = sleep 60; touch $FLAB_OUT/s\n' >> flabfile.ini
wait_running() {   # until a flab:slow job runs (10 s at most)
  for _ in $(seq 100); do
    squeue -h -o '%50j %T' | grep -q '^ *flab:slow  *RUNNING' && return 0; sleep 0.1
  done; return 1
}
"$FLAB" build >"$ROOT/cancel.out" 2>&1 & bpid=$!
check slow_job_running wait_running
out=$("$FLAB" cancel 2>&1)
check flab_cancel_reports contains "$out" "cancelled 1 Slurm job"
for _ in $(seq 100); do kill -0 $bpid 2>/dev/null || break; sleep 0.1; done
check flab_cancel_stops_build eval '! kill -0 $bpid 2>/dev/null'
wait $bpid; rc=$?
check flab_cancel_build_fails [ "$rc" = 1 ]
check flab_cancel_nothing_committed eval '! "$FLAB" path slow >/dev/null 2>&1'
check flab_cancel_job_gone eval '! squeue -h -o "%50j" | grep -q "^ *flab:slow"'

# Ctrl-C (SIGINT to flab): the submitted job is scancelled
"$FLAB" build >"$ROOT/int.out" 2>&1 & bpid=$!
wait_running
check slow_job_running_again wait_running
kill -INT $bpid
wait $bpid; rc=$?
check sigint_exit_130 [ "$rc" = 130 ]
check sigint_cancels_job eval 'contains "$(cat $ROOT/int.out)" "cancelled 1 Slurm job"'
for _ in $(seq 100); do squeue -h -o '%50j' | grep -q '^ *flab:slow' || break; sleep 0.1; done
check sigint_job_gone eval '! squeue -h -o "%50j" | grep -q "^ *flab:slow"'
check sigint_nothing_committed eval '! "$FLAB" path slow >/dev/null 2>&1'

# a node dying mid-job (flab on the node SIGKILLed): the job fails, the
# cache stays clean (verify passes, no artifact), a re-run resubmits only it
sed -i '/^\[slow\]/,$d' flabfile.ini
printf '\n[fragile]\nrule = command\ninputs = @d\nrun = if [ ! -e first ]; then touch first; sleep 30; fi; cat $FLAB_IN_1/d.txt > $FLAB_OUT/f\n' >> flabfile.ini
"$FLAB" build >"$ROOT/kill.out" 2>&1 & bpid=$!
for _ in $(seq 100); do
  jid=$(squeue -h -o '%i %50j %T' | awk '$2 == "flab:fragile" && $3 == "RUNNING" {print $1}')
  [ -n "$jid" ] && [ -e first ] && break; sleep 0.1
done
killed=0
for e in /proc/[0-9]*/environ; do   # the node dies: SIGKILL to every process of the job
  p=${e#/proc/}; p=${p%/environ}
  { tr '\0' '\n' < "$e" | grep -qx "SLURM_JOB_ID=$jid"; } 2>/dev/null || continue
  kill -9 "$p" 2>/dev/null && killed=$((killed + 1))
done
[ "$killed" -gt 0 ] || { echo "  (job '$jid': no node flab found to kill)"; squeue -h -t all -o '%i %50j %T %N %r' | tail -3; sinfo; cat $ROOT/kill.out; }
wait $bpid; rc=$?
check node_kill_fails_build eval '[ "$rc" = 1 ] && contains "$(cat $ROOT/kill.out)" "fragile: Slurm job"'
check node_kill_nothing_committed eval '! "$FLAB" path fragile >/dev/null 2>&1'
check node_kill_cache_verifies eval '"$FLAB" verify >/dev/null 2>&1'
out=$("$FLAB" build 2>&1); rc=$?
check node_kill_rerun_only_missing eval '[ "$rc" = 0 ] &&
  [ "$(grep -c "submitted .* as Slurm job" <<<"$out")" = 1 ] && contains "$out" "submitted fragile"'

# daemons stopped
pids=("${SLURM_PIDS[@]}")
slurm_stop
ok=1
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && ok=0; done
check daemons_stopped [ $ok = 1 ]
finish
