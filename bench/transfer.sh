#!/usr/bin/env bash
# Upload and fetch throughput against a plain byte copy over the same link, in
# the same run (issue 12). Two network namespaces joined by a veth pair: the
# coordinator in one, the CLI (upload) and a node (fetch) in the other. Each
# transfer is compared with `cat FILE > /dev/tcp/...` into a python3 socket
# sink that writes a file on the receiving side: same bytes, same direction,
# same file system (tmpfs, /dev/shm, for the source, the sink, the
# coordinator's blob store and the node's cache alike).
#
#   bench/transfer.sh [--quick] [--bin DIR] [--media DIR] [--out DIR]
#
# Two links: the veth unshaped, and shaped to 1 Gbit/s with tc tbf (a typical
# machine link; the headline ratios). Upload is the whole `framehive submit`
# of a rawvideo file: process start, the local probe, the local SHA-256 and
# the upload (the coordinator hashes and checks it). Fetch is a fresh node's
# fetch of that blob into its cache, as the node logs it ("fetched blob ...
# in S s"), from its first request to the verified file in place. Each figure
# is the best (shortest) of RUNS runs, the plain copy's and ours alike: other
# work on a shared machine only ever slows a run down. Prints key=value lines last; writes
# OUT/transfer.md. Needs root (namespaces); everything it creates is removed
# on exit, also when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
bin=build/bin
media=build/bench-media
out=bench
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --bin) bin="$2"; shift ;;
    --media) media="$2"; shift ;;
    --out) out="$2"; shift ;;
    *) echo "transfer.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
bin=$(realpath "$bin")
mkdir -p "$media" "$out"
media=$(realpath "$media")

if [[ $quick == 1 ]]; then frames=190; runs=1; else frames=760; runs=3; fi
# 1280x720 yuv420p rawvideo: 1.38 MB a frame (760 frames: 1.05 GB; 190: 263 MB).
video="$media/transfer-${frames}.nut"

say() { echo "transfer: $*" >&2; }

for tool in ip tc ffmpeg python3; do
  command -v "$tool" >/dev/null || { echo "transfer.sh: needs $tool" >&2; exit 1; }
done
for b in framehive framehive-coordinator framehive-node framehive-worker; do
  [[ -x "$bin/$b" ]] || { echo "transfer.sh: no $bin/$b (build first)" >&2; exit 1; }
done

if [[ ! -s "$video" ]]; then
  say "generating $video ($frames frames of 1280x720 rawvideo)"
  ffmpeg -loglevel error -y -f lavfi -i testsrc2=s=1280x720:r=25 -frames:v "$frames" -c:v rawvideo \
    -pix_fmt yuv420p "$video.tmp.nut"
  mv "$video.tmp.nut" "$video"
fi

# -- the namespaces, and their removal whatever happens -----------------------------------

id=$$
ns_c="fhx-coord-$id"
ns_l="fhx-client-$id"
veth_c="fhx${id}c"
veth_l="fhx${id}l"
addr_c=10.231.77.1
addr_l=10.231.77.2
port=4790
sink_port=5790
work=$(mktemp -d /dev/shm/fhx-transfer-XXXXXX)
pids=()

cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  # Anything still running inside our namespaces (a node's workers).
  for ns in "$ns_c" "$ns_l"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do
      kill -9 "$p" 2>/dev/null || true
    done
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "$veth_c" 2>/dev/null || true
  rm -rf "$work"
  rm -f /dev/shm/fhxb"$id"-* 2>/dev/null || true
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The source on tmpfs too, like the sink, the store and the cache.
cp "$video" "$work/"
video="$work/$(basename "$video")"
size=$(stat -c %s "$video")

ip netns add "$ns_c"
ip netns add "$ns_l"
ip link add "$veth_c" type veth peer name "$veth_l"
ip link set "$veth_c" netns "$ns_c"
ip link set "$veth_l" netns "$ns_l"
ip -n "$ns_c" addr add "$addr_c/24" dev "$veth_c"
ip -n "$ns_l" addr add "$addr_l/24" dev "$veth_l"
for ns in "$ns_c" "$ns_l"; do
  ip -n "$ns" link set lo up
done
ip -n "$ns_c" link set "$veth_c" up
ip -n "$ns_l" link set "$veth_l" up

in_l() { ip netns exec "$ns_l" "$@"; }
now() { date +%s.%N; }
mbps() { python3 -c "import sys; print(f'{$1/1e6/$2:.1f}')"; }
best() { python3 -c "import sys; print(min(float(x) for x in sys.argv[1:]))" "$@"; }

# Waits until FILE exists or a line matching PATTERN is in it, up to 120 s.
wait_for() {
  local file=$1 pattern=${2:-}
  for _ in $(seq 1 1200); do
    if [[ -z "$pattern" && -e "$file" ]] || { [[ -n "$pattern" ]] && grep -q "$pattern" "$file" 2>/dev/null; }; then
      return 0
    fi
    sleep 0.1
  done
  echo "transfer.sh: timed out waiting for ${pattern:-$file} in $file" >&2
  return 1
}

# -- the plain byte copy --------------------------------------------------------------------

cat >"$work/sink.py" <<'EOF'
import socket, sys
port, out, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(1)
open(ready, "w").close()
c, _ = s.accept()
buf = bytearray(1 << 20)
view = memoryview(buf)
n = 0
with open(out, "wb", buffering=0) as f:
    while True:
        k = c.recv_into(buf)
        if not k:
            break
        f.write(view[:k])
        n += k
print(n)
EOF

# Functions that start processes return their figure in `secs` (a command
# substitution would run them in a subshell, out of reach of the cleanup).
secs=

# Stops a process we started: TERM, then KILL after 10 s.
stop_pid() {
  local p=$1
  kill "$p" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}

# plain_copy FROM_NS TO_NS TO_ADDR FILE: seconds for FILE to land in a file on the other side.
plain_copy() {
  local from=$1 to=$2 to_addr=$3 file=$4
  rm -f "$work/sink.ready" "$work/sink.out"
  ip netns exec "$to" python3 "$work/sink.py" "$sink_port" "$work/sink.out" "$work/sink.ready" >"$work/sink.n" &
  local sink=$!
  pids+=("$sink")
  wait_for "$work/sink.ready"
  local t0 t1
  t0=$(now)
  ip netns exec "$from" bash -c "cat '$file' > /dev/tcp/$to_addr/$sink_port"
  wait "$sink"
  t1=$(now)
  local got
  got=$(cat "$work/sink.n")
  [[ "$got" == "$size" ]] || { echo "transfer.sh: the sink got $got bytes, not $size" >&2; return 1; }
  rm -f "$work/sink.out"
  secs=$(python3 -c "print($t1 - $t0)")
}

# -- framehive --------------------------------------------------------------------------------

coord_pid=
start_coordinator() {  # a fresh store each time: every upload sends every byte
  stop_coordinator
  rm -rf "$work/data"
  mkdir -p "$work/data"
  # `ip netns exec` execs the program, so $! is its pid (a shell function in
  # the background would be a subshell, and killing it would leave the program).
  ip netns exec "$ns_c" "$bin/framehive-coordinator" --config-file=configs/coordinator.ini --port="$port" --bind="$addr_c" \
    --insecure --data-dir="$work/data" >"$work/coordinator.log" 2>&1 &
  coord_pid=$!
  pids+=("$coord_pid")
  for _ in $(seq 1 100); do
    in_l bash -c "exec 3<>/dev/tcp/$addr_c/$port" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "transfer.sh: the coordinator did not start; its log:" >&2
  cat "$work/coordinator.log" >&2
  return 1
}
stop_coordinator() {
  [[ -n "$coord_pid" ]] && stop_pid "$coord_pid"
  coord_pid=
}

cli() { in_l "$bin/framehive" --coordinator "$addr_c:$port" "$@"; }

# Seconds for `framehive submit` of the video (upload included), into a fresh store.
upload_once() {
  start_coordinator
  local t0 t1
  t0=$(now)
  cli submit "$video" --analyzers stats >"$work/submit.out" 2>"$work/submit.err" ||
    { cat "$work/submit.err" >&2; return 1; }
  t1=$(now)
  grep -q "uploaded $size bytes" "$work/submit.err" ||
    { echo "transfer.sh: the submit did not upload:" >&2; cat "$work/submit.err" >&2; return 1; }
  secs=$(python3 -c "print($t1 - $t0)")
}

# Seconds a fresh node reports for fetching the blob (the store holds it; a new job names it).
fetch_once() {
  local n=$1
  cli submit "$video" --analyzers stats >/dev/null 2>&1
  local log="$work/node-$n.log"
  rm -rf "$work/cache" "$work/output"
  ip netns exec "$ns_l" "$bin/framehive-node" --config-file=configs/node.ini --coordinator="$addr_c:$port" --name="bench$n" \
    --workers=1 --output-dir="$work/output" --cache.dir="$work/cache" --shm-prefix="fhxb$id" \
    >"$log" 2>&1 &
  local node=$!
  pids+=("$node")
  wait_for "$log" "fetched blob" || { tail -20 "$log" >&2; return 1; }
  stop_pid "$node"
  local line bytes
  line=$(sed -n 's/.*fetched blob [0-9a-f]* (\([0-9]*\) bytes) in \([0-9.]*\) s.*/\1 \2/p' "$log" | head -1)
  bytes=${line% *}
  [[ "$bytes" == "$size" ]] || { echo "transfer.sh: the node fetched '$bytes' bytes, not $size" >&2; return 1; }
  secs=${line#* }
}

# measure LABEL: runs everything on the link as it is now; sets the figures.
declare -A result
measure() {
  local label=$1 up=() plain_up=() down=() plain_down=()
  for i in $(seq 1 "$runs"); do
    plain_copy "$ns_l" "$ns_c" "$addr_c" "$video"
    plain_up+=("$secs")
    upload_once
    up+=("$secs")
    say "$label run $i: plain copy up ${plain_up[-1]} s, upload ${up[-1]} s"
  done
  # What an upload costs before its first byte leaves (process start, probe,
  # local SHA-256, connect): a submit of bytes the store already holds.
  local t0 t1
  t0=$(now)
  cli submit "$video" --analyzers stats >/dev/null 2>"$work/submit.err"
  t1=$(now)
  grep -q "already stored" "$work/submit.err" ||
    { echo "transfer.sh: a second submit uploaded again:" >&2; cat "$work/submit.err" >&2; return 1; }
  result[${label}_prepare]=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
  # The last coordinator holds the blob: the fetches read it, the plain copy sends the same file.
  local blob
  blob=$(ls "$work"/data/blobs/ | grep -E '^[0-9a-f]{64}$' | head -1)
  for i in $(seq 1 "$runs"); do
    plain_copy "$ns_c" "$ns_l" "$addr_l" "$work/data/blobs/$blob"
    plain_down+=("$secs")
    fetch_once "$label$i"
    down+=("$secs")
    say "$label run $i: plain copy down ${plain_down[-1]} s, node fetch ${down[-1]} s"
  done
  stop_coordinator
  local pu u pd d
  pu=$(best "${plain_up[@]}"); u=$(best "${up[@]}")
  pd=$(best "${plain_down[@]}"); d=$(best "${down[@]}")
  result[${label}_plain_up]=$(mbps "$size" "$pu")
  result[${label}_upload]=$(mbps "$size" "$u")
  result[${label}_plain_down]=$(mbps "$size" "$pd")
  result[${label}_fetch]=$(mbps "$size" "$d")
  result[${label}_upload_ratio]=$(python3 -c "print(f'{$pu/$u:.2f}')")
  result[${label}_fetch_ratio]=$(python3 -c "print(f'{$pd/$d:.2f}')")
}

say "file $video: $size bytes; $runs run(s) per figure; tmpfs on both sides"
measure unshaped
# 1 Gbit/s each way: tbf on each end's egress.
for pair in "$ns_c:$veth_c" "$ns_l:$veth_l"; do
  ip netns exec "${pair%%:*}" tc qdisc add dev "${pair#*:}" root tbf rate 1gbit burst 256kb latency 20ms
done
measure 1gbit

{
  echo "## Transfer: upload and fetch against a plain byte copy (issue 12)"
  echo
  echo "Two network namespaces joined by a veth pair; coordinator in one, CLI and node in the"
  echo "other. File: $((size / 1000000)) MB rawvideo; tmpfs on both sides; best of $runs run(s)."
  echo "Upload: the whole \`framehive submit\` (probe, local SHA-256, upload; the coordinator hashes"
  echo "and checks). Fetch: a fresh node's fetch into its cache, verified (its log line). Plain copy:"
  echo "\`cat FILE > /dev/tcp/...\` into a python3 sink writing a file, same direction."
  echo "Of each upload, ${result[unshaped_prepare]} s go before its first byte is sent (process start, local"
  echo "probe, local SHA-256, connect: a submit of bytes already stored)."
  echo
  echo "| link | plain copy up MB/s | upload MB/s | upload_ratio | plain copy down MB/s | fetch MB/s | fetch_ratio |"
  echo "|---|---|---|---|---|---|---|"
  for l in 1gbit unshaped; do
    echo "| $l | ${result[${l}_plain_up]} | ${result[${l}_upload]} | ${result[${l}_upload_ratio]} |" \
      "${result[${l}_plain_down]} | ${result[${l}_fetch]} | ${result[${l}_fetch_ratio]} |"
  done
} >"$out/transfer.md"
say "wrote $out/transfer.md"

echo "transfer_bytes=$size"
echo "transfer_fs=tmpfs"
echo "plain_up_mbps=${result[1gbit_plain_up]}"
echo "upload_mbps=${result[1gbit_upload]}"
echo "plain_down_mbps=${result[1gbit_plain_down]}"
echo "fetch_mbps=${result[1gbit_fetch]}"
echo "plain_up_mbps_unshaped=${result[unshaped_plain_up]}"
echo "upload_mbps_unshaped=${result[unshaped_upload]}"
echo "plain_down_mbps_unshaped=${result[unshaped_plain_down]}"
echo "fetch_mbps_unshaped=${result[unshaped_fetch]}"
echo "upload_prepare_s=${result[unshaped_prepare]}"
echo "upload_ratio=${result[1gbit_upload_ratio]}"
echo "fetch_ratio=${result[1gbit_fetch_ratio]}"
echo "upload_ratio_unshaped=${result[unshaped_upload_ratio]}"
echo "fetch_ratio_unshaped=${result[unshaped_fetch_ratio]}"
