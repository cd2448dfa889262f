#!/usr/bin/env bash
# Stop the daemons started by start_slurm.sh, by their pid files only. Idempotent.
#
#   bash tests/slurm/stop_slurm.sh [BASE]      (same BASE as start_slurm.sh)
set -uo pipefail
BASE=${1:-${TIMECAL_SLURM_BASE:-/tmp/timecal-slurm}}
RUN=$BASE/run
export SLURM_CONF=$BASE/slurm.conf

running_zombie() { [ "$(awk '{print $3}' /proc/$1/stat 2>/dev/null)" = Z ]; }
alive() { local p; p=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$p" ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = "$2" ] && ! running_zombie "$p"; }
stop() { # stop PIDFILE NAME: SIGTERM, wait up to 20 s, then SIGKILL
  local f=$1 n=$2 p
  if alive "$f" "$n"; then
    p=$(cat "$f"); kill -TERM "$p"
    for _ in $(seq 20); do alive "$f" "$n" || break; sleep 1; done
    alive "$f" "$n" && { echo "$n ($p) did not exit, SIGKILL"; kill -KILL "$p"; }
    echo "stopped $n ($p)"
  fi
  rm -f "$f"
}

# cancel remaining jobs first so that slurmstepd/job processes do not outlive slurmd
if alive "$RUN/slurmctld.pid" slurmctld; then
  ids=$(squeue -h -o %i 2>/dev/null)
  if [ -n "$ids" ]; then
    scancel $ids
    for _ in $(seq 30); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 1; done
  fi
fi
stop "$RUN/slurmd.pid" slurmd
stop "$RUN/slurmctld.pid" slurmctld
# munged only if start_slurm.sh started it (pid file copied to $RUN)
[ -n "${SLURM_KEEP_MUNGE:-}" ] || stop "$RUN/munged.pid" munged
exit 0
