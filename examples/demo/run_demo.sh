#!/usr/bin/env bash
# make demo: a small scan end to end on the local backend with the CBC emulator, then plots.
# Everything lands under ./demo-output (its own timerc, so nothing of yours is touched).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT_DIR=$PWD
BIN=$ROOT_DIR/.venv/bin
export TIMECAL_CONFIG=$ROOT_DIR/demo-output/timerc MPLBACKEND=Agg
mkdir -p demo-output
[ -f "$TIMECAL_CONFIG" ] || "$BIN/BXRun" --init "$ROOT_DIR/demo-output/data"
"$BIN/BXRun" --script cbcsim --yaml examples/demo/scan.yml --dask local -o demo --interval 5 < /dev/null
"$BIN/plotScan" -i demo -o demo
echo
echo "demo: production  $ROOT_DIR/demo-output/data/production/demo/results"
echo "demo: plots       $ROOT_DIR/demo-output/data/scans/demo/index.html"
echo "demo: status      TIMECAL_CONFIG=$TIMECAL_CONFIG $BIN/BXRun --status -o demo"
