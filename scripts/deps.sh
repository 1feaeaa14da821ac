#!/usr/bin/env bash
# Installs what Rill needs on Debian/Ubuntu. Usage: scripts/deps.sh [build|run|test|browser|bench]
#   build:   a C toolchain and GStreamer's development files: enough to build and run the fast
#            test tier (Rust must already be installed: https://rustup.rs)
#   run:     + the GStreamer plugins the server runs (ladder, thumbnails, Opus),
#            and Node.js/npm when npm is missing (scripts/web-player.sh builds the player page)
#   test:    + ffmpeg (real publisher and player in the end-to-end tests), GStreamer
#            (rtmpsink: a librtmp publisher, the RTMP stack OBS descends from) and Chromium
#            (the viewer page in a real browser, tests/browser) and PostgreSQL (the catalog's
#            scale-out database, started privately by scripts/postgres.sh), and GStreamer's RTSP server for
#            Debian's /usr/bin/python3 (the test camera of tests/rtsp.rs), and a Python venv at
#            tests/.pyenv with the PyPI packages of tests/requirements.txt (tuspy: the tus client
#            of tests/uploads.rs)
#   browser: Chromium and Node.js/npm only (scripts/browser.sh)
#   bench:   + nginx with the RTMP module (the side-by-side baseline)
set -euo pipefail
what=${1:-run}
# GStreamer: its development files to build the transcode crate, and the plugins it runs (video
# thumbnails decode with gst-libav and encode with jpegenc from plugins-good).
build=(build-essential pkg-config ca-certificates libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev)
packages=("${build[@]}" gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav)
case "$what" in
  build) packages=("${build[@]}") ;;
  run) ;;
  test) packages+=(ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly chromium curl postgresql
    python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp python3-venv) ;;
  browser) packages=(chromium) ;;
  bench) packages+=(ffmpeg nginx-light libnginx-mod-rtmp jq curl) ;;
  *) echo "usage: $0 [build|run|test|browser|bench]" >&2; exit 2 ;;
esac
# Node.js and npm build the player page (and run the browser harness); a Node.js installed some
# other way (nodesource, nvm) is used as it is.
[ "$what" = build ] || command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$what" != browser ] && ! command -v cargo >/dev/null; then
  echo "Rust is not installed. Install it with https://rustup.rs (rustup), then run this again." >&2
  exit 1
fi
if [ "$what" = test ]; then
  # PyPI packages for the tests, pinned in tests/requirements.txt; reinstalled when it changes.
  root=$(cd "$(dirname "$0")/.." && pwd)
  venv=$root/tests/.pyenv
  stamp=$venv/.rill-requirements.sha256
  want=$(sha256sum "$root/tests/requirements.txt" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "tests/.pyenv: pip install -r tests/requirements.txt"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/tests/requirements.txt"
    echo "$want" >"$stamp"
  fi
fi
