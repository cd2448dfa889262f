#!/usr/bin/env bash
# Remove everything start_cluster.sh made, whatever state it is in (half-started, a node
# killed by a test, a failed test's leftovers): every process in the cluster's namespaces and
# memory cgroups (slurmctld, slurmd, slurmstepd, the jobs and their children), its munged
# (by pid file), the namespaces, the veth pairs, the bridge and the cgroups. Idempotent; the
# logs stay in BASE/log for whoever looks after a failure. Run as root.
#
#   bash tests/slurmnet/stop_cluster.sh [BASE]      (same BASE as start_cluster.sh)
set -uo pipefail
BASE=${1:-${TIMECAL_SLURMNET_BASE:-/tmp/timecal-slurmnet}}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster.env
. "$HERE/cluster.env"
RUN=$BASE/run
read -r -a nodes <<< "$NODES"
hosts=("$CTL_HOST" "${nodes[@]}")

[ "$(id -u)" = 0 ] || { echo "stop_cluster.sh: must run as root" >&2; exit 1; }

cgroots() { # the cluster's memory cgroups: the recorded one and any an earlier run left
  { cat "$RUN/cgroup" 2>/dev/null
    find /sys/fs/cgroup/memory -maxdepth 5 -type d -name "$CGROUP_NAME" 2>/dev/null
  } | sort -u | while read -r d; do [ -d "$d" ] && echo "$d"; done
}
cluster_pids() { # every process in the cluster's namespaces or cgroups
  for h in "${hosts[@]}"; do
    [ -e "/run/netns/$h" ] && ip netns pids "$h" 2>/dev/null
  done
  for root in $(cgroots); do
    find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
}
pidfile_alive() { # pidfile_alive FILE NAME
  local p; p=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ]
}

# 1. the daemons and the jobs: SIGTERM once (slurmd/slurmctld save state and exit), then
#    SIGKILL whatever is left, until nothing is.
for p in $(cluster_pids | sort -un); do kill -TERM "$p" 2>/dev/null; done
for pf in "$RUN"/slurmctld.pid "$RUN"/slurmd-*.pid; do
  p=$(cat "$pf" 2>/dev/null) && pidfile_alive "$pf" "$(basename "$pf" .pid | sed 's/-.*//')" && kill -TERM "$p" 2>/dev/null
done
for _ in $(seq 20); do [ -z "$(cluster_pids)" ] && break; sleep 0.25; done
for _ in $(seq 40); do
  left=$(cluster_pids | sort -un)
  [ -z "$left" ] && break
  kill -KILL $left 2>/dev/null
  sleep 0.25
done
[ -n "$(cluster_pids)" ] && echo "stop_cluster.sh: processes left: $(cluster_pids | tr '\n' ' ')" >&2
rm -f "$RUN"/slurmctld.pid "$RUN"/slurmd-*.pid

# 2. munged, only ours (its pid file)
if pidfile_alive "$RUN/munged.pid" munged; then
  p=$(cat "$RUN/munged.pid"); kill -TERM "$p"
  for _ in $(seq 20); do pidfile_alive "$RUN/munged.pid" munged || break; sleep 0.25; done
  pidfile_alive "$RUN/munged.pid" munged && kill -KILL "$p"
fi
rm -f "$RUN/munged.pid"

# 3. the network: deleting a namespace deletes its end of the veth pair, and with it ours
for h in "${hosts[@]}"; do
  [ -e "/run/netns/$h" ] && ip netns del "$h"
  ip link del "tcv-$h" 2>/dev/null
done
ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"

# 4. the cgroups, deepest first (SLURM's job cgroups inside the nodes' ones)
for root in $(cgroots); do
  find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null
  [ -d "$root" ] && echo "stop_cluster.sh: could not remove cgroup $root" >&2
done
rm -f "$RUN/cgroup"
exit 0
