# tests/slurm_lib.sh: a real single-node Slurm cluster on localhost for the
# slurm tests and bench (sourced).  slurm_start DIR starts munged, slurmctld
# and slurmd in the foreground (as background children of this shell) with
# a generated slurm.conf: private ports, one node 127.0.0.1 with CPUs=2 (two
# job slots), state/spool/logs under DIR.  slurm_stop stops all three (call
# it from an EXIT trap).  Needs root and Debian's slurm-wlm + munge;
# slurm_available says whether they are there.
SLURM_PIDS=()

slurm_available() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && \
        command -v munged >/dev/null && command -v sbatch >/dev/null && [ "$(id -u)" = 0 ]
}

_slurm_free_port() {   # a port nobody listens on, from a pid-based range
    local p=$(( 20000 + ($$ * 7 + $1) % 20000 ))
    while (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$((p + 1)); done
    echo $p
}

slurm_start() {
    local d=$1
    mkdir -p "$d/state" "$d/spool" "$d/log"
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null
        chown munge:munge /etc/munge/munge.key 2>/dev/null || true
        chmod 400 /etc/munge/munge.key
    fi
    mkdir -p "$d/munge"; chmod 700 "$d/munge"
    munged -F -f --socket="$d/munge/sock" --pid-file="$d/munge/pid" \
        --log-file="$d/log/munged.log" --seed-file="$d/munge/seed" >"$d/log/munged.out" 2>&1 &
    SLURM_PIDS+=($!)
    local ctl_port; ctl_port=$(_slurm_free_port 0)
    local d_port; d_port=$(_slurm_free_port 1)
    [ "$d_port" = "$ctl_port" ] && d_port=$((ctl_port + 1))
    local host; host=$(hostname -s)
    cat >"$d/slurm.conf" <<CONF
ClusterName=flabtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/sock
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
SchedulerParameters=sched_interval=1
MessageTimeout=10
InactiveLimit=0
KillWait=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 RealMemory=1024 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$d/slurm.conf"
    local i
    for i in $(seq 50); do [ -S "$d/munge/sock" ] && break; sleep 0.1; done
    slurmctld -D -i -f "$SLURM_CONF" >"$d/log/slurmctld.out" 2>&1 &
    SLURM_PIDS+=($!)
    slurmd -D -f "$SLURM_CONF" -N "$host" >"$d/log/slurmd.out" 2>&1 &
    SLURM_PIDS+=($!)
    for i in $(seq 150); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then return 0; fi
        sleep 0.2
    done
    echo "slurm did not come up; logs:" >&2
    tail -n 20 "$d"/log/* >&2
    return 1
}

slurm_stop() {
    local p
    if [ ${#SLURM_PIDS[@]} -gt 0 ]; then   # no job may outlive the cluster
        scancel --quiet --full $(squeue -h -o %i 2>/dev/null) 2>/dev/null
        for _ in $(seq 50); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.1; done
    fi
    for p in "${SLURM_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${SLURM_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    SLURM_PIDS=()
}
