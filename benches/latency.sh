#!/usr/bin/env bash
# Live latency of the player page in headless Chromium: LL-HLS (hls.js) and LL-DASH (dash.js).
# Usage: benches/latency.sh [SECONDS]   (default 70 per mode; the first 10 s are warm-up)
#
# One release rill; ffmpeg publishes 1280x720 30 fps H.264 (x264 zerolatency, 2 s GOP) + AAC
# over RTMP; tests/browser/play.mjs opens /play/<name>?mode=hls|dash and samples the page's
# latency once a second: hls.js = now − EXT-X-PROGRAM-DATE-TIME of the frame on screen,
# dash.js = getCurrentLiveLatency() (now − availabilityStartTime − presentation time, with the
# clock from UTCTiming). Both count from the moment the frame reached the server (the PDT /
# prft anchor); the encoder's delay before that (x264 zerolatency: ~1 frame) is not included.
# Prints median, p95 and max per mode as JSON lines.
set -euo pipefail
SECONDS_PER_MODE=${1:-70}
WARMUP=10
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/deps.sh" test >/dev/null
"$ROOT/scripts/web-player.sh" >/dev/null
"$ROOT/scripts/browser.sh" >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
cargo build --release --locked --bin rill -q
OUT=$(mktemp -d /tmp/rill-latency.XXXX)
HTTP=$((20000 + RANDOM % 10000)); RTMP=$((HTTP + 1))
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
RILL_AUTH_MODE=open RILL_HTTP_LISTEN=127.0.0.1:$HTTP RILL_RTMP_LISTEN=127.0.0.1:$RTMP \
  RILL_SERVER_DATA_DIR=$OUT/data "$CARGO_TARGET_DIR/release/rill" serve >"$OUT/rill.log" 2>&1 &
PIDS+=($!)
sleep 1
TOTAL=$((2 * SECONDS_PER_MODE + 30))
ffmpeg -hide_banner -nostdin -loglevel error -re -f lavfi -i "testsrc2=size=1280x720:rate=30" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -c:v libx264 -preset veryfast -tune zerolatency \
  -g 60 -b:v 2500k -c:a aac -b:a 128k -t "$TOTAL" -f flv "rtmp://127.0.0.1:$RTMP/live/latency" &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTP/live/latency/index.m3u8" >/dev/null && break; sleep 0.2; done
for mode in hls dash; do
  PLAY_ENOUGH=0 node "$ROOT/tests/browser/play.mjs" "http://127.0.0.1:$HTTP/play/latency?mode=$mode" "$SECONDS_PER_MODE" >"$OUT/$mode.json"
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").pop());
    const warm = Number(process.argv[3]);
    const xs = r.samples.filter(s => s.t >= warm && typeof s.latency === "number").map(s => s.latency).sort((a, b) => a - b);
    const q = p => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];
    console.log(JSON.stringify({ mode: process.argv[2], samples: xs.length, median_s: q(0.5), p95_s: q(0.95), max_s: xs[xs.length - 1],
      frames_decoded: r.final.framesDecoded, frames_dropped: r.final.framesDropped, fatal: r.final.fatalError, console_errors: r.consoleErrors.length }));
  ' "$OUT/$mode.json" "$mode" "$WARMUP"
done
echo "logs and raw samples: $OUT" >&2
