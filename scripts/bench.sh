#!/usr/bin/env bash
# Installs what is missing, builds, generates the clips (ffmpeg CLI, cached in
# build/bench-media) and runs every benchmark: one run of build/bin/framehive-bench
# (framehive against naive per-analysis decoding, frames as CAF messages and the
# bare decode; latency; memory against video length; coordinator scale and the
# submit answer; a sports-style pipeline; result ingest from simulated nodes),
# then bench/clips.sh (a match cut into rally clips and a digest in one job,
# against analysing first and cutting with the ffmpeg CLI), then bench/transfer.sh (upload and fetch against a plain byte copy over a
# veth link between two network namespaces, unshaped and at 1 Gbit/s; needs
# root). Writes bench/RESULTS.md (the transfer figures
# appended), bench/fanout.png, bench/results.json and bench/transfer.md, and
# prints the key figures as key=value lines last.
#
#   scripts/bench.sh              the full run (about 35 minutes on 2 cores)
#   scripts/bench.sh --quick      shorter clips and files (under 10 minutes); writes to build/bench-quick
#   scripts/bench.sh --transfer [--quick]   only the transfer benchmark
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
out=bench
quick=()
transfer_only=0
args=()
for a in "$@"; do
  case "$a" in
    --quick) quick=(--quick); out=build/bench-quick; args+=("$a") ;;
    --transfer) transfer_only=1 ;;
    *) args+=("$a") ;;
  esac
done
mkdir -p "$out"
if [[ $transfer_only == 0 ]]; then
  build/bin/framehive-bench "${args[@]}" --out "$out" --media build/bench-media
  # The sports pipeline with clips and a digest against two passes (analyse,
  # then cut with the ffmpeg CLI): bench/clips.sh, figures appended.
  bench/clips.sh "${quick[@]}" --bin build/bin --media build/bench-media --out "$out"
  { echo; cat "$out/clips.md"; } >>"$out/RESULTS.md"
fi
if [[ $EUID -ne 0 ]]; then
  echo "transfer: skipped: network namespaces need root" >&2
  exit 0
fi
bench/transfer.sh "${quick[@]}" --bin build/bin --media build/bench-media --out "$out"
if [[ $transfer_only == 0 ]]; then
  { echo; cat "$out/transfer.md"; } >>"$out/RESULTS.md"
fi
