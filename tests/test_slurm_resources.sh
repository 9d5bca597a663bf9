#!/usr/bin/env bash
# tests/test_slurm_resources.sh: the resource parameters every rule accepts
# (gpus cpus mem time partition account constraint), without a cluster:
# validated with file:line, defaults in [flab], -D overrides (also
# -D flab.X), never in the key, ignored locally except gpus = 0; bad
# executor names rejected; Slurm errors reported when sbatch is missing.
. "$(dirname "$0")/engine_lib.sh"
new_project res

expect() {   # NAME 'MESSAGE' [ARGS...]: flab build exits 2 with MESSAGE
  local out rc
  out=$("$FLAB" build "${@:3}" 2>&1); rc=$?
  if [ "$rc" != 2 ]; then fail "$1" "exit $rc, not 2: $out"
  elif ! contains "$out" "$2"; then fail "$1" "message '$out' lacks '$2'"
  else pass "$1"; fi
}
printf '[a]\nrule = command\nrun = true\ncpus = 0\n' > flabfile.ini
expect bad_cpus "flabfile.ini:4: [a]: resource 'cpus' must be a whole number >= 1, got '0'"
printf '[a]\nrule = command\nrun = true\nmem = lots\n' > flabfile.ini
expect bad_mem "flabfile.ini:4: [a]: resource 'mem' must be a size like 16G or 500M"
printf '[a]\nrule = command\nrun = true\ntime = 1:xx\n' > flabfile.ini
expect bad_time "resource 'time' must be a Slurm time"
printf '[flab]\ngpus = two\n[a]\nrule = command\nrun = true\n' > flabfile.ini
expect bad_global_gpus "flabfile.ini:2: [flab]: resource 'gpus' must be a whole number"
printf '[a]\nrule = command\nrun = true\n' > flabfile.ini
expect bad_override "-D: [a]: resource 'partition' must be one word" -D 'a.partition=a b'
expect bad_executor "executor 'pbs': expected local or slurm" --executor pbs

cat > flabfile.ini <<'INI'
[flab]
cpus = 2
time = 1-00:00:00

[a]
rule = command
run = echo "gpu=[${CUDA_VISIBLE_DEVICES-unset}]" > $FLAB_OUT/env; echo a >> ran.log
gpus = 0
mem = 16G
partition = gpu
account = lab
constraint = a100&nvlink
INI
out=$("$FLAB" build 2>&1); rc=$?
check local_ignores_resources [ "$rc" = 0 ]
check local_gpus0_hides_gpus eval 'grep -q "gpu=\[\]" "$("$FLAB" path a)/env"'
key=$("$FLAB" show a | sed -n 's/^key: *//p')
for spec in a.gpus=4 a.cpus=8 a.mem=1T a.time=30 a.partition=cpu a.account=x a.constraint=h100 flab.cpus=16; do
  out=$("$FLAB" build -n -D "$spec" 2>&1)
  contains "$out" "0 targets would run" || { fail "resources_not_in_key" "$spec: $out"; }
done
k2=$("$FLAB" show -D a.cpus=64 a | sed -n 's/^key: *//p')
check resources_not_in_key eval '[ -n "$key" ] && [ "$key" = "$k2" ]'

# executor = slurm with no Slurm on PATH: a clear failure, not a crash
printf '[flab]\nexecutor = slurm\n[b]\nrule = command\nrun = true\n' > flabfile.ini
out=$(PATH=/nonexistent "$FLAB" build 2>&1); rc=$?
check no_sbatch_fails [ "$rc" = 1 ]
check no_sbatch_message contains "$out" "sbatch did not run"
out=$("$FLAB" cancel 2>&1); rc=$?
check cancel_nothing_running eval '[ "$rc" = 0 ] && contains "$out" "cancelled 0 Slurm jobs"'
finish
