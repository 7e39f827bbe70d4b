#!/usr/bin/env bash
# Installs what is missing, builds, generates the clips (ffmpeg CLI, cached in
# build/bench-media) and runs every benchmark in one run of build/bin/framehive-bench:
# framehive against naive per-analysis decoding, frames as CAF messages and the
# bare decode; latency; memory against video length; coordinator scale; a
# sports-style pipeline. Writes bench/RESULTS.md, bench/fanout.png and
# bench/results.json, and prints the key figures as key=value lines last.
#
#   scripts/bench.sh            the full run (about 30 minutes on 2 cores)
#   scripts/bench.sh --quick    shorter clips (under 10 minutes); writes to build/bench-quick
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
out=bench
if [[ "${1:-}" == "--quick" ]]; then
  out=build/bench-quick
fi
exec build/bin/framehive-bench "$@" --out "$out" --media build/bench-media
