#!/usr/bin/env bash
# Start the single-node HTCondor pool the tests submit to: Debian 13's htcondor (23.9) in a
# chroot on this Debian 12 host (Debian 12 has no htcondor package), daemons on 127.0.0.1.
# Idempotent: builds the chroot once (cached: ~3 min, ~400 MB), mounts what is missing,
# rewrites the pool configuration, starts condor_master unless it already runs. Root only.
#
#   bash tests/htcondor/start_htcondor.sh [CHROOT]
#     CHROOT  the chroot (default $TIMECAL_HTCONDOR_CHROOT or /var/cache/timecal/htcondor-chroot;
#             NOT under /tmp: the host's /tmp is bound into it)
#   environment:
#     TIMECAL_HTCONDOR_PORT   collector/shared port on 127.0.0.1 (default 9618)
#     TIMECAL_HTCONDOR_BINDS  host paths the jobs need, bound at the same path (default: /tmp,
#                             the Python the venv was made from, this checkout)
#     TIMECAL_HTCONDOR_BASE   host side: bin/ (condor_submit, condor_q, condor_rm, condor_hold,
#                             condor_release, condor_status wrappers), condor_config.host for the
#                             Python bindings (default /tmp/timecal-htcondor)
#     TIMECAL_HTCONDOR_USER   submit user inside the chroot (default tester; root may not submit)
#
# Use: PATH=$BASE/bin:$PATH CONDOR_CONFIG=$BASE/condor_config.host condor_q
set -euo pipefail
DIR=${1:-${TIMECAL_HTCONDOR_CHROOT:-/var/cache/timecal/htcondor-chroot}}
PORT=${TIMECAL_HTCONDOR_PORT:-9618}
BASE=${TIMECAL_HTCONDOR_BASE:-/tmp/timecal-htcondor}
U=${TIMECAL_HTCONDOR_USER:-tester}
WAIT=${TIMECAL_HTCONDOR_WAIT:-120}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DIR=$(realpath -m "$DIR")

if [ "$(id -u)" != 0 ]; then
  echo "start_htcondor.sh: must run as root (debootstrap, chroot, mounts, condor_master)" >&2; exit 1
fi
case "$DIR" in /|/tmp|/tmp/*) echo "start_htcondor.sh: chroot $DIR must not be / or under /tmp" >&2; exit 1;; esac

# Default binds: /tmp (dask-jobqueue's submit files, the tests' productions), the Python the
# venv was made from (a system Python in /usr is bound by its stdlib and binary only: binding
# /usr would hide the chroot's own), and this checkout (editable installs, .venv).
default_binds() {
  local py; py=$(python3 -c 'import sys; print(sys.base_prefix)')
  echo /tmp
  if [ "$py" = /usr ] || [ "$py" = / ]; then
    python3 -c 'import sys, sysconfig, os; print(sysconfig.get_paths()["stdlib"]); print(os.path.realpath(sys.executable))'
  else
    echo "$py"
  fi
  case "$REPO" in /tmp/*) ;; *) echo "$REPO";; esac
}
BINDS=${TIMECAL_HTCONDOR_BINDS:-$(default_binds | tr '\n' ' ')}

CH() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 /usr/sbin/chroot "$DIR" "$@"; }
mnt() { mountpoint -q "${@: -1}" || mount "$@"; }   # mount unless the target is mounted already
ours() { for p in $(pgrep -x condor_master || true); do  # condor_master PIDs whose root is $DIR
           [ "$(readlink /proc/$p/root)" = "$DIR" ] && echo "$p"; done; true; }

# 1. Build once. Not debootstrap --include=htcondor: its resolver fails on virtual packages.
t=$SECONDS
if [ ! -x "$DIR/usr/sbin/condor_master" ]; then
  command -v debootstrap >/dev/null || { apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap; }
  if [ ! -x "$DIR/usr/bin/apt-get" ]; then
    mkdir -p "$DIR"
    debootstrap --variant=minbase trixie "$DIR" http://deb.debian.org/debian
  fi
fi
mnt -t proc proc "$DIR/proc"
mnt --rbind /dev "$DIR/dev"        # recursive: apt wants /dev/pts, Dask's Nanny a writable /dev/shm
if [ ! -x "$DIR/usr/sbin/condor_master" ]; then
  cp /etc/resolv.conf "$DIR/etc/resolv.conf"
  CH apt-get update -q             # no recommends: skips systemd, openssh-server, X11
  CH env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends htcondor
  CH apt-get clean
  echo "[htcondor] chroot built in $((SECONDS-t)) s, size $(du -sxh "$DIR" | cut -f1)"
fi

# 2. Host paths for the jobs, bound at the same path; the submit user must traverse to each.
mkdir -p "$BASE/bin"
: > "$BASE/binds.new"
for b in $BINDS; do
  b=$(realpath "$b")
  d=$(dirname "$b"); while [ "$d" != / ]; do mkdir -p "$DIR$d"; chmod a+rx "$DIR$d"; d=$(dirname "$d"); done
  if [ -d "$b" ]; then mkdir -p "$DIR$b"; else [ -e "$DIR$b" ] || touch "$DIR$b"; fi
  mnt --bind "$b" "$DIR$b"
  echo "$DIR$b" >> "$BASE/binds.new"
done
{ cat "$BASE/binds.new"; cat "$BASE/binds" 2>/dev/null || true; } | awk '!seen[$0]++' > "$BASE/binds.all"
mv "$BASE/binds.all" "$BASE/binds"; rm -f "$BASE/binds.new"   # what stop_htcondor.sh unmounts
echo "$DIR" > "$BASE/chroot"

# 3. Pool configuration, and a client configuration for the host's Python bindings. The host's
# /etc/hosts, so that the schedd's name (this host's name) resolves inside the chroot too.
cp /etc/hosts "$DIR/etc/hosts"
cat > "$DIR/etc/condor/config.d/50-timecal-test.conf" <<CONF
use ROLE : Personal
CONDOR_HOST = 127.0.0.1
COLLECTOR_HOST = 127.0.0.1:$PORT
SHARED_PORT_PORT = $PORT
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
# else it also listens on the host's global IPv6 address, with ALLOW_* = * below
ENABLE_IPV6 = False
NUM_CPUS = 2
# a domain, so that the schedd has a full name that condor_submit -name / condor_rm -name accept
DEFAULT_DOMAIN_NAME = timecal.test
MEMORY = 4096
START = TRUE
SUSPEND = FALSE
PREEMPT = FALSE
KILL = FALSE
ALLOW_WRITE = *
ALLOW_READ = *
ALLOW_ADMINISTRATOR = *
# empty: jobs see the real (host-bound) /tmp, not a private one
MOUNT_UNDER_SCRATCH =
# host htcondor2 25.x fails FS auth against 23.9, so accept CLAIMTOBE last (loopback test pool only)
SEC_DEFAULT_AUTHENTICATION_METHODS = FS, IDTOKENS, CLAIMTOBE
# quick turn-around for tests: match and update every few seconds, not every minute
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_CYCLE_DELAY = 1
SCHEDD_INTERVAL = 2
SCHEDD_MIN_INTERVAL = 1
UPDATE_INTERVAL = 2
STARTER_UPDATE_INTERVAL = 2
SHADOW_QUEUE_UPDATE_INTERVAL = 2
PERIODIC_EXPR_INTERVAL = 2
CONF
printf 'COLLECTOR_HOST = 127.0.0.1:%s\nDEFAULT_DOMAIN_NAME = timecal.test\nSEC_CLIENT_AUTHENTICATION_METHODS = FS, CLAIMTOBE\n' "$PORT" \
  > "$BASE/condor_config.host"
CH id -u "$U" >/dev/null 2>&1 || CH useradd -m "$U"

# Host-side tools: each runs the chroot's tool of the same name as the submit user, with a
# clean environment (a host CONDOR_CONFIG must not leak in) and no shell re-parsing of "$@".
{
  echo '#!/bin/bash'
  echo "# generated by tests/htcondor/start_htcondor.sh: run the chroot's \$(basename \$0) as $U"
  printf 'exec env -i PATH=/usr/bin:/bin HOME=/home/%q LANG=C.UTF-8 /usr/sbin/chroot --userspec=%q %q \\\n' "$U" "$U:$U" "$DIR"
  echo "  /bin/sh -c 'cd \"\$1\" 2>/dev/null || cd /; shift; exec \"\$@\"' sh \"\$PWD\" \"\$(basename \"\$0\")\" \"\$@\""
} > "$BASE/bin/condor_wrap"
chmod 755 "$BASE/bin/condor_wrap"
for tool in condor_submit condor_q condor_rm condor_hold condor_release condor_status condor_history; do
  ln -sfn condor_wrap "$BASE/bin/$tool"
done

# 4. Start unless ours runs; refuse if another pool holds the port (a chroot shares the network).
if [ -z "$(ours)" ]; then
  [ -z "$(ss -Hltn "sport = :$PORT")" ] || { echo "[htcondor] port $PORT busy" >&2; exit 1; }
  t=$SECONDS; CH condor_master
  until [[ "$(CH condor_status -af State 2>&1)" == *Unclaimed* ]] && CH condor_q >/dev/null 2>&1; do
    (( SECONDS-t < WAIT )) || { echo "[htcondor] no Unclaimed slot in $WAIT s" >&2
                                tail -20 "$DIR/var/log/condor/MasterLog" >&2; exit 1; }
    sleep 1
  done
  echo "[htcondor] pool ready in $((SECONDS-t)) s"
  # a fresh pool for a fresh session: jobs left in the persistent queue by a killed run go
  CH chroot --userspec="$U:$U" / condor_rm -all >/dev/null 2>&1 || true
else
  CH condor_reconfig >/dev/null 2>&1 || true
fi
CH condor_version | head -1
CH condor_status -af Name State Cpus Memory
echo "PATH=$BASE/bin:\$PATH CONDOR_CONFIG=$BASE/condor_config.host (to use this pool from the host)"
