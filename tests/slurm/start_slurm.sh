#!/usr/bin/env bash
# Start the single-node SLURM cluster the tests submit to (slurmctld + slurmd on localhost,
# partition "debug"), without systemd. Installs Debian's slurm + munge when missing.
# Idempotent: already-running daemons are left alone. Run as root.
#
#   bash tests/slurm/start_slurm.sh [BASE]     BASE: slurm.conf, state, logs and pid files
#                                               (default $TIMECAL_SLURM_BASE or /tmp/timecal-slurm)
#
# The configuration is BASE/slurm.conf, not /etc/slurm: a machine's own SLURM set-up is never
# touched. Client commands find it through SLURM_CONF=BASE/slurm.conf (the tests set it).
set -euo pipefail
BASE=${1:-${TIMECAL_SLURM_BASE:-/tmp/timecal-slurm}}
RUN=$BASE/run LOG=$BASE/log STATE=$BASE/state
CONF=$BASE/slurm.conf
export SLURM_CONF=$CONF
NODE=localhost PART=debug
HERE=$(cd "$(dirname "$0")" && pwd)

running_zombie() { [ "$(awk '{print $3}' /proc/$1/stat 2>/dev/null)" = Z ]; }
alive() { # alive PIDFILE NAME -> true if the pid in PIDFILE runs a process called NAME
  local p; p=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$p" ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = "$2" ] && ! running_zombie "$p"
}
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local t=$1 d=$2; shift 2
  for _ in $(seq "$t"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "timeout waiting for $d" >&2; tail -n 20 "$LOG"/*.log >&2 || true; exit 1
}

if [ "$(id -u)" != 0 ]; then
  echo "start_slurm.sh: must run as root (installs packages, starts slurmctld/slurmd/munged)" >&2; exit 1
fi

# 1. packages (Debian 12: slurm 22.05, munge 0.5.15; ~3.5 MB download)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge
fi
mkdir -p "$RUN" "$LOG" "$STATE/ctld" "$STATE/d"

# 2. munge (Debian's postinst creates /etc/munge/munge.key; create it if missing)
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then   # not running (or someone else's: reuse it)
  install -d -o munge -g munge -m 0755 /run/munge
  # munged keeps the descriptors it inherits: closed first, or it would hold the machine's
  # cluster lock (flock hands its descriptor on) until someone stops it.
  ( for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    exec runuser -u munge -- /usr/sbin/munged )
  cp /run/munge/munged.pid "$RUN/munged.pid"                  # marks "started by us" for stop_slurm.sh
  wait_for 10 munged sh -c 'munge -n | unmunge'
fi

# 3. slurm.conf (node line from slurmd -C so CPUs/RealMemory always match the machine)
NODELINE=$(slurmd -C | head -n1 | sed "s/^NodeName=[^ ]*/NodeName=$NODE NodeAddr=127.0.0.1/")
NEWCONF=$(cat <<EOF
ClusterName=timecaltest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=100
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
MailProg=/bin/true
$NODELINE State=UNKNOWN
PartitionName=$PART Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)
if [ "$(cat "$CONF" 2>/dev/null)" != "$NEWCONF" ]; then
  printf '%s\n' "$NEWCONF" > "$CONF"
  # config changed under running daemons -> restart them
  if alive "$RUN/slurmctld.pid" slurmctld || alive "$RUN/slurmd.pid" slurmd; then
    SLURM_KEEP_MUNGE=1 bash "$HERE/stop_slurm.sh" "$BASE"
  fi
fi

# 4. daemons (they fork into the background and write their own pid files)
if ! alive "$RUN/slurmctld.pid" slurmctld; then
  slurmctld -c            # -c: start from clean state (no stale jobs / drained node)
fi
wait_for 30 slurmctld sh -c 'scontrol ping | grep -q UP'
if ! alive "$RUN/slurmd.pid" slurmd; then
  slurmd -N "$NODE"
fi
wait_for 60 "node $NODE idle" sh -c "sinfo -h -n $NODE -o %t | grep -Eq '^(idle|mix|alloc)'"
sinfo
echo "SLURM_CONF=$CONF (export it to use sinfo/squeue/sbatch on this cluster)"
