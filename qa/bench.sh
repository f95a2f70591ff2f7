#!/usr/bin/env bash
# `make bench`: boot-to-ready time of the appliance in QEMU (firmware start
# to "kwyre: ready" on the serial console): Kwyre's kernel against Debian's
# (same image otherwise, tiny model), then a tiny model and a
# llama3.2-1b-shaped q4_0 model. Needs the programs built (make build) and
# the kernel (make kernel).
#
#   qa/bench.sh [go test flags...]     e.g. qa/bench.sh -benchtime 3x
set -euo pipefail
cd "$(dirname "$0")/.."
for p in kwyre-init kwyre-inference kwyre-watchdog kwyre-console kwyre-image; do
  [[ -x bin/$p ]] || { echo "bench: bin/$p missing: run make build first" >&2; exit 1; }
done
eval "$(make -s env)"
build=${KWYRE_QA_IMAGE:-$PWD/build}
[[ -f $build/kwyre.img ]] || bin/kwyre-image -out "$build"
KWYRE_QA_IMAGE=$build exec go test -count=1 -run '^$' -bench BootToReady -benchtime 1x -timeout 60m "$@" ./qa/
