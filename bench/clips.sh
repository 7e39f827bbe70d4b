#!/usr/bin/env bash
# The sports pipeline of issue 13: a match goes in, each rally comes out as its
# own frame-accurate clip, plus a digest of all of them. framehive does it in
# one job (`motion,clips`: one decode, clips encoded on the node from the
# ring) against the two-pass design the seed used, in the same run: analyse
# first (a framehive `motion` job), then cut each rally with the ffmpeg CLI
# (input seek, frame-accurate re-encode with the same x264 settings) and join
# the cuts into a digest (concat demuxer, no re-encode). The two-pass cuts
# are the very ranges framehive's clips reported, so both produce the same
# frames.
#
#   bench/clips.sh [--quick] [--bin DIR] [--media DIR] [--out DIR]
#
# The match: 1280x720 at 50 fps, 10 minutes (--quick: 1 minute); a green pitch
# with field lines, players and a ball that move during rallies (8 s in every
# 25 s) and stand still in between, with sensor grain on every frame, at 8
# Mbit/s. Prints
# key=value lines last (clips_speedup_vs_two_pass, realtime_factor, ...);
# writes OUT/clips.md. Starts a coordinator and a node on loopback ports and
# stops them on exit, also when it fails.
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
    *) echo "clips.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
bin=$(realpath "$bin")
mkdir -p "$media" "$out"
media=$(realpath "$media")
out=$(realpath "$out")
if [[ $quick == 1 ]]; then seconds=60; else seconds=600; fi
fps=50
crf=18
preset=veryfast  # what framehive's clip writer uses (media/clip_writer.hpp)

say() { echo "clips: $*" >&2; }
now() { date +%s.%N; }

# -- the match -----------------------------------------------------------------------
match="$media/rallies8m_720p50_${seconds}s.mp4"
if [[ ! -f $match ]]; then
  say "generating $match"
  # Game time advances only during rallies: tau = 8 s per finished 25 s period
  # plus the rally time so far in this one (rallies start 5 s into a period).
  tau="(floor(t/25)*8+clip(mod(t\,25)-5\,0\,8))"
  lines=""
  for x in 0 640 1280 1920; do lines+=",drawbox=x=$x:y=0:w=6:h=720:c=white:t=fill"; done
  graph="color=c=0x2f7d32:s=1280x720:r=$fps:d=$seconds$lines,drawbox=x=0:y=40:w=1280:h=6:c=white:t=fill[field];"
  # Eight players (60x150, as close to the camera as in a volleyball
  # broadcast) and a ball, each on its own path of game time.
  colours=(red blue yellow orange red blue yellow orange)
  prev=field
  for i in 0 1 2 3 4 5 6 7; do
    graph+="color=c=${colours[$i]}:s=60x150:r=$fps:d=$seconds[p$i];"
    graph+="[$prev][p$i]overlay=x='600+480*sin($tau*0.$((5 + i))+$i)':y='300+200*sin($tau*0.$((9 - i))+$((2 * i)))'[s$i];"
    prev=s$i
  done
  graph+="color=c=white:s=24x24:r=$fps:d=$seconds[ball];"
  graph+="[$prev][ball]overlay=x='620+560*sin($tau*1.7)':y='350+300*sin($tau*2.3)',noise=alls=8:allf=t+u[out]"
  # At a broadcast's bitrate (8 Mbit/s, CABAC, B-frames, a keyframe every
  # 2 s), so that decoding costs what it costs on real footage: flat colours
  # at a low bitrate decode at over 1000 frames/s and would hide what a
  # second decode costs.
  ffmpeg -v error -y -nostdin -filter_complex "$graph" -map '[out]' -c:v libx264 -preset veryfast -b:v 8M \
    -maxrate 10M -bufsize 16M -g 100 -pix_fmt yuv420p "$match.tmp.mp4"
  mv "$match.tmp.mp4" "$match"
fi

# -- a local cluster -----------------------------------------------------------------
work=$(mktemp -d /tmp/fh-clips-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
"$bin/framehive-coordinator" --port="$port" --data-dir="$work/data" --metrics.port=0 --web.port=0 \
  >"$work/coordinator.log" 2>&1 &
pids+=($!)
"$bin/framehive-node" --coordinator="127.0.0.1:$port" --name=bench --output-dir="$work/out" \
  --shm-prefix="fhclipsbench$$" --metrics.port=0 --analyzers.clips-padding-s=0.5 \
  --analyzers.clips-merge-gap-s=0.5 --analyzers.clips-min-length-s=0.3 --analyzers.clips-crf=$crf \
  >"$work/node.log" 2>&1 &
pids+=($!)
cli() { "$bin/framehive" --coordinator "127.0.0.1:$port" "$@"; }
for _ in $(seq 1 100); do
  if cli nodes --json 2>/dev/null | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["nodes"] else 1)'; then
    break
  fi
  sleep 0.2
done

# Runs a job to its end; prints its id. Wall time is taken around the call.
run_job() {
  local job
  job=$(cli submit --node-visible "$match" --analyzers "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["job"])')
  cli status "$job" >/dev/null
  for _ in $(seq 1 36000); do
    # A coordinator that is gone ends the benchmark instead of a silent wait.
    state=$(cli status "$job" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])') ||
      { say "cannot read the state of job $job"; return 1; }
    [[ $state == done ]] && { echo "$job"; return 0; }
    [[ $state == failed || $state == cancelled ]] && { say "job $job $state"; return 1; }
    sleep 0.1
  done
  say "job $job did not end"
  return 1
}

# -- framehive: motion + clips + digest in one job ------------------------------------
say "framehive: motion,clips on $seconds s of 720p50"
t0=$(now)
job=$(run_job motion,clips)
t1=$(now)
ours_s=$(python3 -c "print($t1 - $t0)")
cli results "$job" --json >"$work/ours.json"
read -r nclips clip_frames < <(python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))["videos"][0]["analyzers"]["clips"]["summary"]
print(len(a["clips"]), sum(c["end_frame"] - c["start_frame"] + 1 for c in a["clips"]))' "$work/ours.json")
[[ $nclips -gt 0 ]] || { say "framehive made no clip"; exit 1; }
cli fetch "$job" --out "$work/ours" >/dev/null

# -- two passes: analyse, then cut each range with the ffmpeg CLI ---------------------
say "two-pass: motion, then $nclips cuts with the ffmpeg CLI"
t0=$(now)
run_job motion >/dev/null
python3 -c '
import json, sys
for c in json.load(open(sys.argv[1]))["videos"][0]["analyzers"]["clips"]["summary"]["clips"]:
    print(c["start_frame"], c["end_frame"] - c["start_frame"] + 1)' "$work/ours.json" >"$work/ranges"
mkdir -p "$work/cuts"
: >"$work/cuts/list"
k=0
while read -r start n; do
  name=$(printf 'cut_%03d.mp4' "$k")
  ffmpeg -v error -y -nostdin -ss "$(python3 -c "print($start / $fps)")" -i "$match" -frames:v "$n" \
    -c:v libx264 -preset $preset -crf $crf -pix_fmt yuv420p -an "$work/cuts/$name"
  echo "file '$name'" >>"$work/cuts/list"
  k=$((k + 1))
done <"$work/ranges"
ffmpeg -v error -y -nostdin -f concat -safe 0 -i "$work/cuts/list" -c copy "$work/cuts/digest.mp4"
t1=$(now)
two_pass_s=$(python3 -c "print($t1 - $t0)")
cut_frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 \
  "$work/cuts/digest.mp4")
ours_digest=$(find "$work/ours" -name digest.mp4 | head -1)
ours_frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 \
  "$ours_digest")

speedup=$(python3 -c "print(f'{$two_pass_s / $ours_s:.2f}')")
realtime=$(python3 -c "print(f'{$seconds / $ours_s:.2f}')")
cat >"$out/clips.md" <<EOF
## Sports pipeline: clips and a digest in one decode (bench/clips.sh)

\`$(basename "$match")\`: $seconds s of 1280x720 at 50 fps, rallies of 8 s in every 25 s. Both sides
produce the same $nclips clips ($clip_frames frames, x264 $preset CRF $crf) and a digest of them.

| | wall (s) | digest frames |
|---|---|---|
| framehive, one job \`motion,clips\` (one decode) | $(printf %.1f "$ours_s") | $ours_frames |
| two passes: framehive \`motion\`, then the ffmpeg CLI per clip + concat | $(printf %.1f "$two_pass_s") | $cut_frames |

clips_speedup_vs_two_pass = **$speedup**, realtime_factor (video duration / wall) = **$realtime**.
EOF
say "framehive ${ours_s}s, two-pass ${two_pass_s}s"
echo "clips_count=$nclips"
echo "clips_frames=$clip_frames"
echo "clips_digest_frames=$ours_frames"
echo "clips_two_pass_digest_frames=$cut_frames"
echo "clips_wall_s=$(printf %.1f "$ours_s")"
echo "clips_two_pass_wall_s=$(printf %.1f "$two_pass_s")"
echo "clips_speedup_vs_two_pass=$speedup"
echo "realtime_factor=$realtime"
