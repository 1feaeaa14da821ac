#!/usr/bin/env bash
# WHEP load: one release rill on free ports, one 720p30 1 Mbit/s H.264+AAC RTMP publisher
# (ffmpeg test pattern, x264 ultrafast/zerolatency, -g 30), then whep-load twice in the same run:
# 0 viewers (baseline) and N viewers, SECONDS each. Server CPU comes from /proc/<rill pid>/stat
# (utime+stime) over each measurement window; CPU % per viewer = (N-run % - baseline %) / N.
# Usage: benches/whep-load.sh N SECONDS          e.g. benches/whep-load.sh 200 30
# Knobs (environment): WARMUP=5 RAMP_MS=20 PROBES=10 THREADS=1 (whep-load runtime threads)
#   PIN=1 (rill on CPU 0, ffmpeg + whep-load on CPU 1), OUT_DIR=/tmp/rill-whep-load,
#   RILL_BIN (skip the rill build and use this binary).
# Needs: cargo, ffmpeg (libx264, aac), and the GStreamer AAC→Opus plugins rill's transcode uses.
set -euo pipefail
if [[ $# -ne 2 || ! $1 =~ ^[0-9]+$ || ! $2 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 N SECONDS" >&2
    exit 2
fi
N=$1
SECS=$2
WARMUP=${WARMUP:-5}
RAMP_MS=${RAMP_MS:-20}
PROBES=${PROBES:-10}
THREADS=${THREADS:-1}
PIN=${PIN:-1}
OUT_DIR=${OUT_DIR:-/tmp/rill-whep-load}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
RUN_DIR=$OUT_DIR/run-$(date +%Y%m%d-%H%M%S)-n$N
mkdir -p "$RUN_DIR/data"
log() { echo "[whep-load.sh] $*" >&2; }

if [[ -z ${RILL_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --bin rill)
    RILL_BIN=$CARGO_TARGET_DIR/release/rill
fi
(cd "$ROOT" && cargo build --release -p rill-benches --bin whep-load)
LOAD=$CARGO_TARGET_DIR/release/whep-load

SERVER_CPU=() CLIENT_CPU=()
if [[ $PIN == 1 && $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then
    SERVER_CPU=(taskset -c 0) CLIENT_CPU=(taskset -c 1)
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

free_tcp() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
free_udp() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP=$(free_tcp) RTMP=$(free_tcp) SRT=$(free_udp) UDP=$(free_udp)

PIDS=()
# Stop what this script started, by pid, publisher before server.
cleanup() {
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill "${PIDS[i]}" 2>/dev/null || true
        wait "${PIDS[i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT

RILL_HTTP_LISTEN=127.0.0.1:$HTTP RILL_RTMP_LISTEN=127.0.0.1:$RTMP RILL_SRT_LISTEN=127.0.0.1:$SRT \
RILL_WEBRTC_UDP_LISTEN=127.0.0.1:$UDP RILL_WEBRTC_MAX_SESSIONS=$((N + PROBES + 50)) \
RILL_AUTH_MODE=open RILL_SERVER_DATA_DIR=$RUN_DIR/data \
    "${SERVER_CPU[@]}" "$RILL_BIN" >"$RUN_DIR/rill.log" 2>&1 &
RILL_PID=$!
PIDS+=("$RILL_PID")
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$HTTP") 2>/dev/null && break
    sleep 0.1
done
log "rill pid $RILL_PID http :$HTTP rtmp :$RTMP webrtc udp :$UDP; logs in $RUN_DIR"

"${CLIENT_CPU[@]}" ffmpeg -hide_banner -nostdin -loglevel error -re \
    -f lavfi -i "testsrc2=size=1280x720:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -c:v libx264 -preset ultrafast -tune zerolatency -g 30 -b:v 1000k -maxrate 1000k -bufsize 500k \
    -pix_fmt yuv420p -c:a aac -b:a 96k -f flv "rtmp://127.0.0.1:$RTMP/live/bench" \
    >"$RUN_DIR/ffmpeg.log" 2>&1 &
PIDS+=("$!")
sleep 4   # live, first keyframes on the Bus

URL=http://127.0.0.1:$HTTP/whep/bench
for n in 0 "$N"; do
    log "whep-load: $n viewers, ${SECS}s window"
    "${CLIENT_CPU[@]}" "$LOAD" --url "$URL" --viewers "$n" --seconds "$SECS" --warmup "$WARMUP" \
        --ramp-ms "$RAMP_MS" --probes "$PROBES" --threads "$THREADS" --server-pid "$RILL_PID" \
        --label "n=$n" | tee "$RUN_DIR/whep-load-n$n.txt"
    sleep 2
done

base=$(tail -1 "$RUN_DIR/whep-load-n0.txt")
load=$(tail -1 "$RUN_DIR/whep-load-n$N.txt")
python3 - "$base" "$load" "$N" <<'EOF'
import json, sys
b, l, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
bp, lp = b["server_cpu_percent"], l["server_cpu_percent"]
per = (lp - bp) / n if n and bp is not None and lp is not None else None
print(json.dumps({"viewers": n, "server_cpu_percent_0_viewers": bp, "server_cpu_percent_n_viewers": lp,
                  "cpu_percent_per_viewer_over_baseline": None if per is None else round(per, 3),
                  "connected_end": l["connected_end"], "lost_in_window": l["lost_in_window"],
                  "first_key_ms": l["first_key_ms"], "new_viewer_first_key_ms": l["new_viewer_first_key_ms"],
                  "new_viewer_first_key_ms_0_viewers": b["new_viewer_first_key_ms"],
                  "client_cpu_percent": l["client_cpu_percent"], "errors": l["errors"]}))
EOF
