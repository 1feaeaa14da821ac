#!/usr/bin/env bash
# Builds the viewer page assets into web-player/dist/, which the binary embeds (src/player.rs):
# the prebuilt players pinned by web-player/package-lock.json (hls.js, dash.js, tus-js-client) and our own
# web-player/src/*. Idempotent and fast when already built: `npm ci` runs only when the lock
# changed since the last install, and files are copied only when their content differs (so
# cargo does not rebuild the binary for nothing). Installs Debian's nodejs/npm if npm is missing.
set -euo pipefail
cd "$(dirname "$0")/../web-player"

if ! command -v npm >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing: nodejs npm"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

stamp=node_modules/.rill-lock.sha256
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "web-player: npm ci"
  # --ignore-scripts: we only copy prebuilt files, no package needs to run anything.
  npm ci --no-audit --no-fund --prefer-offline --ignore-scripts --loglevel=error
  echo "$want" >"$stamp"
fi

# dist file <- source
files=(
  "hls.min.js:node_modules/hls.js/dist/hls.min.js"
  "dash.all.min.js:node_modules/dashjs/dist/modern/umd/dash.all.min.js"
  "play.html:src/play.html"
  "common.js:src/common.js"
  "play.js:src/play.js"
  "play.css:src/play.css"
  "watch.html:src/watch.html"
  "watch.js:src/watch.js"
  "webrtc.js:src/webrtc.js"
  "publish.html:src/publish.html"
  "publish.js:src/publish.js"
  "tus.min.js:node_modules/tus-js-client/dist/tus.min.js"
  "upload.html:src/upload.html"
  "upload.js:src/upload.js"
)
mkdir -p dist
keep=()
for entry in "${files[@]}"; do
  name=${entry%%:*} src=${entry#*:}
  [ -f "$src" ] || { echo "web-player: $src is missing (delete web-player/node_modules and retry)" >&2; exit 1; }
  if ! cmp -s "$src" "dist/$name"; then
    cp "$src" "dist/$name.tmp"
    mv -f "dist/$name.tmp" "dist/$name"
  fi
  keep+=("$name")
done
# Anything else in dist/ is stale.
for f in dist/*; do
  [ -e "$f" ] || continue
  base=${f#dist/}
  [[ " ${keep[*]} " == *" $base "* ]] || rm -rf "$f"
done
