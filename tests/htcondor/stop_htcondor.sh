#!/usr/bin/env bash
# Stop the pool started by start_htcondor.sh and undo its mounts, by exact path. Idempotent.
# The chroot itself stays (it is the cache that spares the next run its ~3 min build).
#
#   bash tests/htcondor/stop_htcondor.sh [CHROOT]     (same CHROOT and environment as start)
#
# Never remove the chroot while anything is mounted inside it: the binds are the host's own
# /tmp, Python and checkout, and rm -rf would go through them. This script ends by checking
# that nothing is left mounted under the chroot, and fails (naming the mounts) otherwise.
set -uo pipefail
DIR=${1:-${TIMECAL_HTCONDOR_CHROOT:-/var/cache/timecal/htcondor-chroot}}
BASE=${TIMECAL_HTCONDOR_BASE:-/tmp/timecal-htcondor}
WAIT=${TIMECAL_HTCONDOR_WAIT:-60}
U=${TIMECAL_HTCONDOR_USER:-tester}
DIR=$(realpath -m "$DIR")
[ -d "$DIR" ] || { echo "[htcondor] no chroot at $DIR: nothing to stop"; exit 0; }
CH() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 /usr/sbin/chroot "$DIR" "$@"; }
ours() { for p in /proc/[0-9]*; do   # every PID whose root is the chroot (the pool and its jobs)
           [ "$(readlink "$p/root" 2>/dev/null)" = "$DIR" ] && echo "${p#/proc/}"; done; true; }

if [ -n "$(ours)" ]; then
  # remove the test jobs first: the queue persists in the chroot, and would run them again
  CH chroot --userspec="$U:$U" / condor_rm -all >/dev/null 2>&1
  CH condor_off -master -fast >/dev/null 2>&1   # master stops startd/schedd/jobs, then itself
  t=$SECONDS
  while [ -n "$(ours)" ] && (( SECONDS-t < WAIT )); do sleep 1; done
  left=$(ours)
  if [ -n "$left" ]; then echo "[htcondor] SIGKILL leftover PIDs: $left"; kill -9 $left; sleep 1; fi
  echo "[htcondor] pool stopped"
fi
# Unmount the binds recorded by start_htcondor.sh (newest first), then /dev (--rbind: -R) and
# /proc, then anything else still under the chroot, deepest first, each by its exact path.
if [ -f "$BASE/binds" ]; then
  tac "$BASE/binds" | while read -r m; do
    case "$m" in "$DIR"/*) mountpoint -q "$m" && umount "$m";; esac
  done
  rm -f "$BASE/binds"
fi
mountpoint -q "$DIR/dev" && umount -R "$DIR/dev"
mountpoint -q "$DIR/proc" && umount "$DIR/proc"
findmnt -rn -o TARGET | awk -v d="$DIR/" 'index($0, d) == 1' | sort -r | while read -r m; do umount "$m"; done
left=$(findmnt -rn -o TARGET | awk -v d="$DIR/" 'index($0, d) == 1')
if [ -n "$left" ]; then echo "[htcondor] still mounted under $DIR:" >&2; echo "$left" >&2; exit 1; fi
echo "[htcondor] nothing mounted under $DIR"
