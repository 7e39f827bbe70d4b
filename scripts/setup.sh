#!/usr/bin/env bash
# Installs every build, test and demo dependency from Debian 12's archive.
# Idempotent: packages already present are skipped, so a second run is quick.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git
  libcaf-dev
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev ffmpeg
  libopencv-dev opencv-data opencv-doc
  libboost-dev
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  libsqlite3-dev sqlite3
  libssl-dev openssl
  libcli11-dev nlohmann-json3-dev
  prometheus-cpp-dev
  python3 procps iproute2 util-linux
  curl  # HTTP(S) client of the metrics and web view tests (WebTls.* presents client certificates)
  chromium  # headless, for the web view's real-browser test (WebView.*)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
