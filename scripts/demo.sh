#!/usr/bin/env bash
# Installs what is missing, builds, and shows a video decoded once into a
# shared-memory ring that three consumer processes read at the same time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh

video=/usr/share/doc/opencv-doc/examples/data/vtest.avi
if [ ! -f "$video" ]; then
  video=build/demo-media/testsrc.mp4
  mkdir -p build/demo-media
  [ -f "$video" ] || ffmpeg -v error -nostdin -f lavfi -i testsrc2=size=1280x720:rate=30 -t 20 \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p "$video"
fi

echo "== one decoder, three consumer processes (consumer k reads every k-th frame)"
build/bin/framehive-ring-demo "$video" --consumers 3
