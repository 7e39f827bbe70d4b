#!/usr/bin/env bash
# The whole cluster on this machine: installs what is missing, builds, makes a
# throwaway PKI (cluster CA, coordinator, node and client certificates), starts
# a coordinator and two nodes on loopback with mutual TLS, submits real work
# (the CLI uploads the videos; the nodes fetch them), shows the live actor
# tree while it runs, prints the results, fetches the thumbnails, clips and digest back from the
# coordinator, and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh

bin=$PWD/build/bin
work=$PWD/build/demo
rm -rf "$work"
mkdir -p "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export FRAMEHIVE_COORDINATOR=127.0.0.1:$port
fh() { "$bin/framehive" "$@"; }

pki=$work/pki
echo "== making a throwaway PKI in $pki (framehive certs init / issue)"
fh certs init "$pki" >/dev/null
fh certs issue "$pki" coordinator --role coordinator >/dev/null
for n in node-a node-b; do fh certs issue "$pki" "$n" --role node >/dev/null; done
fh certs issue "$pki" demo-user --role client >/dev/null
tls() { tls_args=("--tls.ca=$pki/ca.crt" "--tls.cert=$pki/$1.crt" "--tls.key=$pki/$1.key"); }
# The CLI takes its certificate from the environment.
export FRAMEHIVE_TLS_CA=$pki/ca.crt FRAMEHIVE_TLS_CERT=$pki/demo-user.crt FRAMEHIVE_TLS_KEY=$pki/demo-user.key

pids=()
# Nodes first, then the coordinator; anything still running after 15 s is killed.
stop_all() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap stop_all EXIT

echo "== starting a coordinator on $FRAMEHIVE_COORDINATOR and nodes node-a, node-b, mutual TLS (logs in $work)"
tls coordinator
"$bin/framehive-coordinator" --config-file=configs/coordinator.ini --port="$port" --data-dir="$work/data" \
  "${tls_args[@]}" >"$work/coordinator.log" 2>&1 &
pids+=($!)
metrics_port=9465  # one /metrics port per node on this machine: 9465, 9466
for n in node-a node-b; do
  tls "$n"
  "$bin/framehive-node" --config-file=configs/node.ini --coordinator="$FRAMEHIVE_COORDINATOR" --name="$n" \
    --output-dir="$work/output-$n" --shm-prefix=framehive-demo --metrics.port="$metrics_port" "${tls_args[@]}" \
    >"$work/$n.log" 2>&1 &
  pids+=($!)
  metrics_port=$((metrics_port + 1))
done
for _ in $(seq 1 100); do
  if [ "$(fh nodes --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["nodes"]))' 2>/dev/null)" = 2 ]; then
    break
  fi
  sleep 0.2
done
fh nodes
echo "== a client without a certificate is refused (exit code 6):"
env -u FRAMEHIVE_TLS_CA -u FRAMEHIVE_TLS_CERT -u FRAMEHIVE_TLS_KEY "$bin/framehive" nodes || echo "   (exit $?)"

video=/usr/share/doc/opencv-doc/examples/data/vtest.avi
clip=$work/moving.mp4
echo "== generating a 20 s 720p clip with moving content"
ffmpeg -v error -nostdin -f lavfi -i "testsrc2=size=1280x720:rate=30" -t 20 -c:v libx264 -preset veryfast \
  -pix_fmt yuv420p "$clip"

# A "match": a square that moves only during two rallies (3-7 s and 12-15 s)
# of 20 s; the clips analyzer cuts each rally into its own clip and a digest.
match=$work/match.mp4
echo "== generating a 20 s match with two rallies"
ffmpeg -v error -nostdin -f lavfi -i "color=c=0x2f7d32:s=640x360:r=25:d=20" -f lavfi -i "color=c=white:s=90x90:r=25:d=20" \
  -filter_complex "[0][1]overlay=x='mod(12*(clip(n-75\,0\,100)+clip(n-300\,0\,75))\,540)':y=130" \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p "$match"

job1=$(fh submit "$video" --analyzers people,motion,stats,thumbnails)
job2=$(fh submit "$clip" --analyzers motion,stats,thumbnails)
job3=$(fh submit "$match" --analyzers motion,clips)
echo "== submitted job $job1 (vtest.avi: people, motion, stats, thumbnails), job $job2 (generated clip)" \
  "and job $job3 (the match: motion, clips)"
echo "   (the live view is in a browser on this machine: http://127.0.0.1:9470/)"

state() { fh status "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
while true; do
  s1=$(state "$job1"); s2=$(state "$job2"); s3=$(state "$job3")
  echo
  echo "== actor tree ($(date +%T)): job $job1 $s1, job $job2 $s2, job $job3 $s3"
  fh tree
  case "$s1$s2$s3" in *queued*|*running*) sleep 3 ;; *) break ;; esac
done

echo
echo "== results"
fh results "$job1"
echo
fh results "$job2"
echo
fh results "$job3"
echo
# Thumbnails went from the nodes to the coordinator's artifact store; fetch
# them as a user on another machine would.
for j in "$job1" "$job2" "$job3"; do fh fetch "$j" --out "$work/fetched-$j" >/dev/null; done
echo "== thumbnails fetched from the coordinator: $(find "$work"/fetched-* -name 'thumb_*.jpg' | wc -l)" \
  "(framehive fetch JOB --out DIR; left on the nodes: $(find "$work"/output-* -name 'thumb_*.jpg' 2>/dev/null | wc -l))"
echo "== the match's clips and digest, fetched (frames and start time as ffprobe reads them):"
for f in $(find "$work/fetched-$job3" -name '*.mp4' | sort); do
  echo "   $(basename "$f"): $(ffprobe -v error -count_frames -select_streams v:0 \
    -show_entries stream=nb_read_frames,start_time -of default=nw=1:nk=0 "$f" | tr '\n' ' ')"
done
echo "== stopping the cluster"
