#!/usr/bin/env bash
# WebRTC numbers against a running Rill (default http://127.0.0.1:8080, open auth mode):
#   benches/webrtc.sh latency [seconds]      glass-to-glass WHIP → WHEP in one Chromium (canvas clock)
#   benches/webrtc.sh latency-rtmp [seconds] glass-to-glass RTMP (ffmpeg, x264 zerolatency) → WHEP:
#                                            ffmpeg burns the wall clock into the picture;
#                                            PRESET=veryfast publishes High profile (default
#                                            ultrafast: Constrained Baseline), H264=42e01f makes
#                                            the viewer offer only that H.264 (the WebRTC rendition)
#   benches/webrtc.sh load <viewers> [secs]  N WHEP viewers of live/<name> (publish one first),
#                                            server CPU per viewer from /proc while they play
# Env: BASE (server URL), NAME (stream, default bench), KEY (WHIP stream key, default = NAME),
# RILL_PID (server pid, for CPU; default: the pid listening on BASE's port, via ss).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BASE=${BASE:-http://127.0.0.1:8080}
NAME=${NAME:-bench}
KEY=${KEY:-$NAME}
case "${1:-}" in
  latency)
    node "$here/tests/browser/webrtc_latency.mjs" "$BASE" "$NAME" "$KEY" "${2:-60}"
    ;;
  latency-rtmp)
    secs=${2:-60}
    rtmp=${RTMP:-rtmp://127.0.0.1:1935/live/$KEY}
    # 32 bits of the wall-clock milliseconds (ffmpeg's time(0)) drawn per frame in a 32×8 grid.
    bits="255*mod(floor(mod(time(0)*1000\,4294967296)/pow(2\,X))\,2)"
    ffmpeg -hide_banner -nostdin -loglevel error -re -f lavfi -i "color=c=gray:s=32x8:r=30" \
      -f lavfi -i "sine=frequency=440:sample_rate=44100" \
      -vf "format=gray,geq=lum='if(lt(Y\,4)\,$bits\,255-$bits)',scale=320:240:flags=neighbor,format=yuv420p" \
      -c:v libx264 -preset "${PRESET:-ultrafast}" -tune zerolatency -g 30 -b:v 800k -c:a aac -t $((secs + 20)) -f flv "$rtmp" &
    ff=$!
    sleep 4
    node "$here/tests/browser/webrtc_latency.mjs" "$BASE" "$NAME" - "$secs"
    kill "$ff" 2>/dev/null || true
    ;;
  load)
    n=${2:?viewers}; secs=${3:-30}
    pid=${RILL_PID:-$(ss -ltnpH "sport = :${BASE##*:}" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)}
    ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
    hz=$(getconf CLK_TCK)
    node "$here/tests/browser/webrtc_load.mjs" "$BASE" "$NAME" "$n" "$secs" >/tmp/webrtc-load.json &
    node_pid=$!
    sleep $((secs / 2 + 5))   # viewers connected and playing
    a=$(ticks); sleep 10; b=$(ticks)
    wait "$node_pid"
    cpu=$(echo "($b - $a) / $hz / 10 * 100" | bc -l)
    printf '{"viewers": %s, "server_cpu_percent": %.1f, "cpu_percent_per_viewer": %.2f, "client": %s}\n' \
      "$n" "$cpu" "$(echo "$cpu / $n" | bc -l)" "$(cat /tmp/webrtc-load.json)"
    ;;
  *) echo "usage: $0 latency [seconds] | load <viewers> [seconds]" >&2; exit 64 ;;
esac
