#!/usr/bin/env bash
# Memory given back: does the server's RSS return to idle after viewers leave?
#
#   benches/rss-rounds.sh [VIEWERS] [ROUNDS]     # default 1000 viewers, 3 rounds
#
# One release Rill (or RILL_BIN), ffmpeg publishing a 2.5 Mbit/s 720p stream over RTMP (looped
# file, `-c copy`), then ROUNDS times: `flv-load` opens VIEWERS viewers (half RTMP play, half
# HTTP-FLV, one after the other), they watch 10 s and leave; 10 s later the server's VmRSS is
# read. Prints one JSON line: the idle RSS before the first round (publisher on, no viewer), the
# peak, and the RSS after each round, in KiB, and the last one's ratio to idle.
# Knobs: OUT_DIR (/tmp/rill-rss-rounds), RILL_BIN / LOAD_BIN (skip the build), TRIM_PROBE=1
# (after the rounds, call glibc's malloc_trim(0) in the server through gdb and print the RSS:
# how much of the growth is memory freed but kept by the allocator).
set -euo pipefail
VIEWERS=${1:-1000}
ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
OUT_DIR=${OUT_DIR:-/tmp/rill-rss-rounds}
mkdir -p "$OUT_DIR"
if [[ -z ${RILL_BIN:-} || -z ${LOAD_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --locked --bin rill -q && cargo build --release --locked -p rill-benches --bin flv-load -q)
fi
RILL=${RILL_BIN:-$CARGO_TARGET_DIR/release/rill}
LOAD=${LOAD_BIN:-$CARGO_TARGET_DIR/release/flv-load}
MEDIA=$OUT_DIR/testsrc-720p30-2500k.flv
if [[ ! -s $MEDIA ]]; then
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1280x720:rate=30" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 20 -c:v libx264 -preset veryfast \
        -b:v 2500k -g 60 -c:a aac -b:a 128k "$MEDIA"
fi
RUN=$(mktemp -d "$OUT_DIR/run.XXXX")
HTTP=$((20000 + RANDOM % 10000)); RTMP=$((HTTP + 1))
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

RILL_AUTH_MODE=open RILL_HTTP_LISTEN=127.0.0.1:$HTTP RILL_RTMP_LISTEN=127.0.0.1:$RTMP \
    RILL_SRT_LISTEN=127.0.0.1:$((HTTP + 2)) RILL_WEBRTC_UDP_LISTEN=127.0.0.1:$((HTTP + 3)) \
    RILL_SERVER_DATA_DIR=$RUN/data RILL_RECORD_ENABLED=false RILL_SERVER_LOG=warn "$RILL" serve >"$RUN/rill.log" 2>&1 &
RILL_PID=$!
PIDS+=("$RILL_PID")
sleep 1
ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$MEDIA" -c copy -f flv \
    "rtmp://127.0.0.1:$RTMP/live/bench" >"$RUN/publisher.log" 2>&1 &
PIDS+=($!)
rss() { awk '/^VmRSS/ {print $2}' "/proc/$RILL_PID/status"; }
sleep 8
idle=$(rss)
after=()
peak=$idle
half=$((VIEWERS / 2))
for round in $(seq "$ROUNDS"); do
    "$LOAD" --url "rtmp://127.0.0.1:$RTMP/live/bench" --viewers "$half" --seconds 10 --warmup 2 --ramp-ms 1 \
        --server-pid "$RILL_PID" --label "round$round-rtmp" >"$RUN/round$round-rtmp.json" &
    rtmp_load=$!
    "$LOAD" --url "http://127.0.0.1:$HTTP/live/bench.flv" --viewers "$((VIEWERS - half))" --seconds 10 --warmup 2 \
        --ramp-ms 1 --server-pid "$RILL_PID" --label "round$round-flv" >"$RUN/round$round-flv.json"
    wait "$rtmp_load"
    for f in "$RUN"/round"$round"-*.json; do
        p=$(jq -r '.server_rss_peak_kib // 0' "$f")
        ((p > peak)) && peak=$p
    done
    sleep 10
    after+=("$(rss)")
done
last=${after[-1]}
if [[ -n ${TRIM_PROBE:-} ]]; then
    # Diagnosis: what the allocator could give back (glibc malloc_trim, through gdb).
    gdb -p "$RILL_PID" -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1 || true
    echo "after malloc_trim(0): $(rss) KiB" >&2
fi
printf '{"viewers": %s, "rounds": %s, "idle_kib": %s, "peak_kib": %s, "after_rounds_kib": [%s], "last_over_idle": %.2f}\n' \
    "$VIEWERS" "$ROUNDS" "$idle" "$peak" "$(IFS=,; echo "${after[*]}")" "$(echo "$last / $idle" | bc -l)"
