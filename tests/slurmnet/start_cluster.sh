#!/usr/bin/env bash
# Start the multi-node SLURM test cluster: a controller and three compute nodes, each in a
# network namespace of its own (own address, own hostname through a UTS namespace), joined
# by veth pairs to a private bridge that also carries this host's address on the cluster
# network, the "login node" side. No namespace has a default route: traffic goes only to the
# addresses created here (cluster.env). Installs Debian's slurm-wlm + munge when missing.
#
#   bash tests/slurmnet/start_cluster.sh [BASE]   BASE: slurm.conf, cgroup.conf, munge key and
#                                                  socket, state, logs, pid files (default
#                                                  $TIMECAL_SLURMNET_BASE or /tmp/timecal-slurmnet)
#
# Always starts from nothing: whatever an earlier run left (daemons, namespaces, bridge,
# cgroups) is removed first by stop_cluster.sh. Run as root, under the machine's cluster lock.
#
# Per node:
# - slurmd runs in the node's network namespace (nsenter --net), a UTS namespace whose hostname
#   is the node's name (so slurmd needs no -N and jobs see their node's name), a mount namespace
#   of its own and a cgroup namespace rooted at a memory cgroup of the node's own, nested under
#   the memory cgroup of whoever started the cluster. Inside, /sys/fs/cgroup/memory is that
#   subtree: SLURM's task/cgroup (cgroup/v1: this kernel binds the memory controller to v1)
#   creates its job cgroups there and the kernel enforces the jobs' --mem.
# - its spool directory, log and pid file are its own (%n in slurm.conf);
# - munge: one munged of this cluster with its own key and socket (AuthInfo=socket=...), a Unix
#   socket path, which no network namespace hides.
set -euo pipefail
BASE=${1:-${TIMECAL_SLURMNET_BASE:-/tmp/timecal-slurmnet}}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster.env
. "$HERE/cluster.env"
RUN=$BASE/run LOG=$BASE/log STATE=$BASE/state MUNGE=$BASE/munge
CONF=$BASE/slurm.conf
export SLURM_CONF=$CONF

fail() { echo "start_cluster.sh: $*" >&2; exit 1; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local t=$1 d=$2; shift 2
  for _ in $(seq "$((t * 2))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "start_cluster.sh: timeout waiting for $d" >&2
  tail -n 15 "$LOG"/*.log >&2 || true
  exit 1
}

detached() { # detached COMMAND...: start a daemon without the caller's descriptors (flock hands
  # its lock on to children: a daemon keeping it would hold the machine's cluster lock for good)
  ( for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    exec "$@" </dev/null >>"$LOG/cluster.log" 2>&1 )
}

[ "$(id -u)" = 0 ] || fail "must run as root (namespaces, bridge, cgroups, slurmctld/slurmd/munged)"

# 1. packages (Debian 12: slurm 22.05, munge 0.5.15), iproute2 and util-linux's nsenter/unshare
missing=()
for c in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge ip:iproute2 nsenter:util-linux; do
  command -v "${c%%:*}" >/dev/null || missing+=("${c#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Memory limits need the kernel's cgroup v1 memory controller (SLURM's cgroup/v1 plugin); where
# there is none, the cluster runs without them (task/none) and says why in BASE/no-memory-limits.
own=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
# (TIMECAL_SLURMNET_NO_CGROUP=1 tries the set-up of such machines here.)
if [ -n "$own" ] && [ -d /sys/fs/cgroup/memory ] && [ -w /sys/fs/cgroup/memory ] \
   && [ -z "${TIMECAL_SLURMNET_NO_CGROUP:-}" ]; then
  TASK=task/cgroup NO_LIMITS=""
else
  TASK=task/none
  NO_LIMITS="${TIMECAL_SLURMNET_NO_CGROUP:+TIMECAL_SLURMNET_NO_CGROUP is set, as if }this machine has no writable cgroup v1 memory controller (/sys/fs/cgroup/memory; /proc/self/cgroup names no memory hierarchy): tests/slurmnet enforces --mem through SLURM's cgroup/v1 plugin only (SLURM 22.05's cgroup/v2 needs systemd, or IgnoreSystemd, which these tests do not set up)"
fi

# 2. a clean slate; BASE must be ours (a directory someone else prepared in /tmp is not trusted)
bash "$HERE/stop_cluster.sh" "$BASE" >/dev/null
if [ -e "$BASE" ] && { [ ! -d "$BASE" ] || [ -L "$BASE" ] || [ "$(stat -c %u "$BASE")" != 0 ]; }; then
  fail "$BASE exists and is not a directory of root's: remove it or choose another BASE"
fi
mkdir -p "$BASE" && chmod 0755 "$BASE"
rm -rf "$RUN" "$STATE" "$MUNGE" "$BASE/no-memory-limits"
mkdir -p "$RUN" "$LOG" "$STATE/ctld"
[ -z "$NO_LIMITS" ] || echo "$NO_LIMITS" > "$BASE/no-memory-limits"
: > "$LOG/cluster.log"
for f in "$LOG"/*.log; do : > "$f"; done

# 3. the network: a bridge with the login node's address, a veth pair per namespace
ip link add "$BRIDGE" type bridge
ip addr add "$HOST_ADDR/$PREFIX_LEN" dev "$BRIDGE"
ip link set "$BRIDGE" up
add_host() { # add_host NAME ADDRESS: a namespace called NAME, its interface NODE_IF at ADDRESS
  ip netns add "$1"
  ip link add "tcv-$1" type veth peer name "$NODE_IF" netns "$1"
  ip link set "tcv-$1" master "$BRIDGE" up
  ip -n "$1" link set lo up
  ip -n "$1" addr add "$2/$PREFIX_LEN" dev "$NODE_IF"
  ip -n "$1" link set "$NODE_IF" up
}
add_host "$CTL_HOST" "$CTL_ADDR"
read -r -a nodes <<< "$NODES"
read -r -a addrs <<< "$NODE_ADDRS"
for i in "${!nodes[@]}"; do add_host "${nodes[$i]}" "${addrs[$i]}"; done

# 4. munge: this cluster's own daemon, key and socket
install -d -o munge -g munge -m 0755 "$MUNGE"   # munged wants its socket directory searchable by all
install -o munge -g munge -m 0640 /dev/null "$LOG/munged.log"
dd if=/dev/urandom of="$MUNGE/munge.key" bs=1024 count=1 status=none
chown munge:munge "$MUNGE/munge.key"; chmod 0400 "$MUNGE/munge.key"
detached runuser -u munge -- munged --socket="$MUNGE/munge.socket" --key-file="$MUNGE/munge.key" \
  --pid-file="$MUNGE/munged.pid" --log-file="$LOG/munged.log" --seed-file="$MUNGE/munged.seed"
cp "$MUNGE/munged.pid" "$RUN/munged.pid"
wait_for 10 munged sh -c "munge -S '$MUNGE/munge.socket' -n | unmunge -S '$MUNGE/munge.socket'"

# 5. configuration
nodelines=""
for i in "${!nodes[@]}"; do
  nodelines+="NodeName=${nodes[$i]} NodeAddr=${addrs[$i]} CPUs=$NODE_CPUS RealMemory=$NODE_MEMORY State=UNKNOWN"$'\n'
done
cat > "$CONF" <<EOF
# Written by tests/slurmnet/start_cluster.sh: the multi-node test cluster.
ClusterName=timecalnet
SlurmctldHost=$CTL_HOST($CTL_ADDR)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE/munge.socket
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd-%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=$TASK
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=100
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# A node that stops answering is DOWN after SlurmdTimeout (sites: 300 s; the node-death test
# lowers it with scontrol reconfigure); it returns by itself when its slurmd registers again.
SlurmdTimeout=300
ReturnToService=2
# Ended jobs stay in squeue for 10 minutes: without accounting, that is where their fate is read.
MinJobAge=600
KillWait=5
MailProg=/bin/true
# LLN: jobs go to the least loaded node, so that three one-core jobs run on three nodes.
${nodelines}PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP LLN=YES
EOF
rm -f "$BASE/cgroup.conf"
[ "$TASK" = task/none ] || cat > "$BASE/cgroup.conf" <<EOF
# The jobs' memory, enforced by the kernel (cgroup v1 memory controller, this kernel's).
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
CgroupAutomount=no
ConstrainRAMSpace=yes
ConstrainSwapSpace=no
ConstrainCores=no
ConstrainDevices=no
EOF

# 6. the controller, in its namespace, as host $CTL_HOST
detached nsenter --net="/run/netns/$CTL_HOST" unshare --uts sh -c "hostname $CTL_HOST && exec slurmctld -c"
wait_for 30 slurmctld sh -c 'scontrol ping | grep -q UP'

# 7. the compute nodes: a memory cgroup of each node's own, under the starter's memory cgroup
for node in "${nodes[@]}"; do
  mkdir -p "$STATE/$node"
  if [ "$TASK" = task/none ]; then
    detached nsenter --net="/run/netns/$node" unshare --uts sh -c "hostname $node && exec slurmd"
    continue
  fi
  cgroot=/sys/fs/cgroup/memory${own%/}/$CGROUP_NAME
  mkdir -p "$cgroot/$node"
  echo "$cgroot" > "$RUN/cgroup"
  # The outer sh moves itself into the node's cgroup, then becomes the node: namespaces first,
  # then (inside them) its hostname and its view of the memory hierarchy, then slurmd.
  detached sh -c 'echo $$ > "$1/cgroup.procs" && exec nsenter --net="/run/netns/$2" \
           unshare --uts --mount --cgroup --propagation private sh -c "
             hostname $2 &&
             mount -t tmpfs -o mode=0755 tcnet-cgroup /sys/fs/cgroup &&
             mkdir /sys/fs/cgroup/memory &&
             mount -t cgroup -o memory tcnet-memory /sys/fs/cgroup/memory &&
             exec slurmd"' sh "$cgroot/$node" "$node"
done
wait_for 60 "nodes ${nodes[*]} idle" sh -c \
  "[ \"\$(sinfo -h -N -p $PARTITION -o %t | grep -c '^idle')\" = ${#nodes[@]} ]"
sinfo -N -p "$PARTITION" -o "%N %t %c %m"
echo "SLURM_CONF=$CONF (export it to use sinfo/squeue/sbatch on this cluster)"
