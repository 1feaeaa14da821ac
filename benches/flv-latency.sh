#!/usr/bin/env bash
# Glass-to-glass latency of RTMP play and HTTP-FLV, side by side, with ffmpeg as the reader.
#
#   benches/flv-latency.sh [SECONDS]          # default 30 s per protocol, after 5 s of warm-up
#
# One release Rill (or RILL_BIN). ffmpeg publishes over RTMP a 30 fps picture with the wall clock
# (ms, 32 bits) painted into it as a 32×8 grid of black and white cells (x264 `zerolatency`,
# PRESET=ultrafast by default, GOP 1 s, AAC); for each protocol an ffmpeg reader (`-fflags
# nobuffer -flags low_delay`, the way a low-latency player reads) decodes the stream to raw gray
# frames on a pipe, and a small reader (Python, stdlib only) takes each frame as it arrives,
# reads the painted time and prints now − painted. Both readers run on this machine, so the
# figures include the encoder's and the reader's own delay, the same for both protocols.
# Prints one JSON line per protocol: frames, median, p95 and max (ms).
set -euo pipefail
SECONDS_=${1:-30}
WARMUP=5
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
if [[ -z ${RILL_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --locked --bin rill -q)
fi
RILL=${RILL_BIN:-$CARGO_TARGET_DIR/release/rill}
OUT=$(mktemp -d /tmp/rill-flv-latency.XXXX)
HTTP=$((20000 + RANDOM % 10000)); RTMP=$((HTTP + 1))
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

RILL_AUTH_MODE=open RILL_HTTP_LISTEN=127.0.0.1:$HTTP RILL_RTMP_LISTEN=127.0.0.1:$RTMP \
    RILL_SRT_LISTEN=127.0.0.1:$((HTTP + 2)) RILL_WEBRTC_UDP_LISTEN=127.0.0.1:$((HTTP + 3)) \
    RILL_SERVER_DATA_DIR=$OUT/data RILL_RECORD_ENABLED=false "$RILL" serve >"$OUT/rill.log" 2>&1 &
PIDS+=($!)
sleep 1

# 32 bits of the wall-clock milliseconds drawn per frame: bit X in column X, rows 0-3 the bit,
# rows 4-7 its inverse; scaled ×10 so that encoding keeps every cell readable.
bits="255*mod(floor(mod(time(0)*1000\,4294967296)/pow(2\,X))\,2)"
TOTAL=$((2 * (SECONDS_ + WARMUP) + 20))
ffmpeg -hide_banner -nostdin -loglevel error -re -f lavfi -i "color=c=gray:s=32x8:r=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -vf "format=gray,geq=lum='if(lt(Y\,4)\,$bits\,255-$bits)',scale=320:240:flags=neighbor,format=yuv420p" \
    -c:v libx264 -preset "${PRESET:-ultrafast}" -tune zerolatency -g 30 -b:v 1M -c:a aac -t "$TOTAL" \
    -f flv "rtmp://127.0.0.1:$RTMP/live/clock" >"$OUT/publisher.log" 2>&1 &
PIDS+=($!)
sleep 3

read_clock() {
    /usr/bin/python3 -c '
import json, statistics, sys, time
w, h, warmup, seconds, name = 320, 240, float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
frame = w * h
src = sys.stdin.buffer
lags, start = [], time.time()
while time.time() - start < warmup + seconds:
    buf = src.read(frame)
    if len(buf) < frame:
        break
    now = int(time.time() * 1000) % (1 << 32)
    value, ok = 0, True
    for bit in range(32):
        x = bit * 10 + 5
        top, bottom = buf[45 * w + x], buf[165 * w + x]
        if (top > 128) == (bottom > 128):
            ok = False
            break
        value |= (top > 128) << bit
    if ok and time.time() - start >= warmup:
        lags.append((now - value) % (1 << 32))
lags = [l for l in lags if l < 60000]
lags.sort()
p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] if lags else None
print(json.dumps({"protocol": name, "frames": len(lags), "median_ms": p(0.5), "p95_ms": p(0.95), "max_ms": lags[-1] if lags else None}))
' "$WARMUP" "$SECONDS_" "$1"
}

for proto in rtmp http-flv; do
    case $proto in
        rtmp) url="rtmp://127.0.0.1:$RTMP/live/clock" ;;
        http-flv) url="http://127.0.0.1:$HTTP/live/clock.flv" ;;
    esac
    ffmpeg -hide_banner -nostdin -loglevel error -fflags nobuffer -flags low_delay -probesize 32768 \
        -analyzeduration 0 -i "$url" -map 0:v -f rawvideo -pix_fmt gray - 2>"$OUT/reader-$proto.log" \
        | read_clock "$proto" || true  # the reader closes the pipe when done: ffmpeg ends on SIGPIPE
done
