#!/usr/bin/env bash
# Recording overhead: two release Rill servers side by side on this machine, one recording
# ([record] enabled) and one not, each receiving the same N streams of a pre-encoded 720p30
# H.264 + AAC file at ~2.5 Mbit/s (ffmpeg -re -c copy, so publishers cost almost nothing).
# Reports each server's CPU over the same window, the difference per recorded stream and the
# recorder's write bandwidth per stream.
# Usage: benches/record.sh [N_STREAMS] [DURATION_SECONDS]      e.g. benches/record.sh 4 60
# Knobs: KBPS=2400 (video bitrate; audio adds 128), OUT_DIR=/tmp/rill-record-bench
# Needs: cargo, ffmpeg (libx264, aac), curl, jq.
set -euo pipefail
N=${1:-4}
DURATION=${2:-60}
KBPS=${KBPS:-2400}
WARMUP=${WARMUP:-8}
OUT_DIR=${OUT_DIR:-/tmp/rill-record-bench}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
log() { echo "[record.sh] $*" >&2; }
for cmd in cargo ffmpeg curl jq; do
    command -v "$cmd" >/dev/null || { log "missing $cmd (scripts/deps.sh bench installs them)"; exit 1; }
done

log "building rill (release)"
(cd "$ROOT" && cargo build --release --locked -q -p rill)
RILL=$CARGO_TARGET_DIR/release/rill
rm -rf "$OUT_DIR" && mkdir -p "$OUT_DIR"

SOURCE=$OUT_DIR/source.flv
log "encoding a ${KBPS} kbit/s 720p30 source"
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440 \
    -t 30 -c:v libx264 -preset veryfast -b:v "${KBPS}k" -maxrate "${KBPS}k" -bufsize "$((KBPS * 2))k" -g 60 \
    -c:a aac -b:a 128k -f flv "$SOURCE"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# start_server NAME HTTP_PORT RTMP_PORT RECORD
start_server() {
    local dir=$OUT_DIR/$1
    mkdir -p "$dir"
    (cd "$dir" && RILL_AUTH_MODE=open RILL_SERVER_LOG=warn RILL_HTTP_LISTEN=127.0.0.1:$2 RILL_RTMP_LISTEN=127.0.0.1:$3 \
        RILL_SERVER_DATA_DIR="$dir/data" RILL_RECORD_ENABLED=$4 exec "$RILL" >"$dir/server.log" 2>&1) &
    PIDS+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && return; sleep 0.1; done
    log "$1 did not start"; cat "$dir/server.log"; exit 1
}
start_server plain 18181 19351 false
PLAIN=${PIDS[-1]}
start_server recording 18182 19352 true
RECORDING=${PIDS[-1]}

for i in $(seq "$N"); do
    for port in 19351 19352; do
        ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$SOURCE" -c copy -f flv \
            "rtmp://127.0.0.1:$port/live/s$i" </dev/null &
        PIDS+=($!)
    done
done
log "$N streams into each server; warming up ${WARMUP}s"
sleep "$WARMUP"

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
written() { curl -s "http://127.0.0.1:18182/metrics" | awk '$1 == "rill_recording_bytes_written_total" {print $2}'; }
TICKS=$(getconf CLK_TCK)
a0=$(cpu "$PLAIN"); b0=$(cpu "$RECORDING"); w0=$(written); t0=$(date +%s.%N)
sleep "$DURATION"
a1=$(cpu "$PLAIN"); b1=$(cpu "$RECORDING"); w1=$(written); t1=$(date +%s.%N)
ingest=$(curl -s http://127.0.0.1:18182/api/v1/streams -H "Authorization: Bearer $(cat "$OUT_DIR/recording/data/admin_token")" |
    jq '[.streams[].ingest_kbps] | add / length')
videos=$(curl -s 'http://127.0.0.1:18182/api/v1/videos?status=recording' | jq .total)

awk -v a0="$a0" -v a1="$a1" -v b0="$b0" -v b1="$b1" -v w0="$w0" -v w1="$w1" -v t0="$t0" -v t1="$t1" \
    -v hz="$TICKS" -v n="$N" -v ingest="$ingest" -v videos="$videos" 'BEGIN {
    secs = t1 - t0
    plain = (a1 - a0) / hz / secs; rec = (b1 - b0) / hz / secs
    per_stream = (rec - plain) / n
    mbps = (w1 - w0) * 8 / secs / n / 1e6
    printf "streams per server        %d (ingest %.0f kbit/s each), %d recordings open\n", n, ingest, videos
    printf "window                    %.1f s\n", secs
    printf "CPU, not recording        %.4f cores (%.4f per stream)\n", plain, plain / n
    printf "CPU, recording            %.4f cores (%.4f per stream)\n", rec, rec / n
    printf "recording overhead        %.4f cores per stream (%.2fx the CPU of ingest + packaging)\n", per_stream, rec / plain
    printf "write bandwidth           %.3f Mbit/s per stream (%.1f KiB/s)\n", mbps, mbps * 1e6 / 8 / 1024
}' | tee "$OUT_DIR/result.txt"
