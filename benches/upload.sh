#!/usr/bin/env bash
# Uploads and their processing, measured on this machine.
#
#   benches/upload.sh throughput [size_mb=2048]
#       One tus upload of size_mb MB (incompressible bytes) to a release server over loopback:
#       creation (POST) then one PATCH streaming the file (curl -T); prints MB/s and the
#       server's peak resident memory (VmHWM) next to its memory before the upload. The
#       PATCH's time includes the server's SHA-1 of the complete file.
#   benches/upload.sh ladder [seconds=60] [preset=veryfast] [runs=1]
#       The VOD ladder of a 1080p30 H.264/AAC MP4 (1080p 6000, 720p 3000, 480p 1100, 360p
#       365 kbit/s + AAC 128 kbit/s, keyframes every 2 s, no scene cuts), made by
#       `rill process-upload` (what the server runs for each upload) and by the ffmpeg CLI with
#       the same x264 settings writing CMAF HLS, alternately; prints wall time, CPU seconds
#       and the realtime factor (media seconds / wall seconds) of each.
#
# Runs the release binary ($RILL_BIN, default $CARGO_TARGET_DIR/release/rill; built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-throughput}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
rill=${RILL_BIN:-$CARGO_TARGET_DIR/release/rill}
[ -x "$rill" ] || cargo build -q --release -p rill
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

case "$what" in
throughput)
  size_mb=${2:-2048}
  head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$work/file.bin"
  http=$(free_port)
  token=bench-token
  RILL_HTTP_LISTEN=127.0.0.1:$http RILL_RTMP_LISTEN=127.0.0.1:$(free_port) \
    RILL_SRT_LISTEN=127.0.0.1:$(free_port) RILL_WEBRTC_UDP_LISTEN=127.0.0.1:$(free_port) \
    RILL_SERVER_DATA_DIR="$work/data" RILL_AUTH_ADMIN_TOKEN=$token RILL_SERVER_LOG=warn \
    RILL_VOD_MAX_UPLOAD_GB=1000 "$rill" >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done
  rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
  size=$(stat -c %s "$work/file.bin")
  location=$(curl -sf -D - -o /dev/null -X POST -H "Authorization: Bearer $token" -H 'Tus-Resumable: 1.0.0' \
    -H "Upload-Length: $size" -H "Upload-Metadata: filename $(printf bench.bin | base64)" \
    "http://127.0.0.1:$http/api/v1/uploads" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
  start=$(date +%s.%N)
  curl -sf -o /dev/null -X PATCH -T "$work/file.bin" -H "Authorization: Bearer $token" -H 'Tus-Resumable: 1.0.0' \
    -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' "$location"
  end=$(date +%s.%N)
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
  echo "upload: $size_mb MiB in $(echo "$end - $start" | bc -l | xargs printf %.2f) s = $(echo "$size / 1048576 / ($end - $start)" | bc -l | xargs printf %.0f) MiB/s"
  echo "server memory: resident $((rss_before / 1024)) MiB before, peak $((hwm / 1024)) MiB (VmHWM, whole run)"
  ;;
ladder)
  seconds=${2:-60}
  preset=${3:-veryfast}
  runs=${4:-1}
  ffmpeg -hide_banner -v error -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=$seconds" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$seconds" -c:v libx264 -preset veryfast -b:v 8M \
    -g 60 -pix_fmt yuv420p -c:a aac -b:a 128k -shortest -movflags +faststart "$work/in.mp4"
  rungs='[{"name":"1080p","width":1920,"height":1080,"video_kbps":6000},{"name":"720p","width":1280,"height":720,"video_kbps":3000},{"name":"480p","width":854,"height":480,"video_kbps":1100},{"name":"360p","width":640,"height":360,"video_kbps":365}]'
  measure() { # name, command...: prints "name wall user sys"
    local name=$1; shift
    /usr/bin/time -f "%e %U %S" -o "$work/time" "$@" >"$work/$name.out" 2>"$work/$name.err" \
      || { cat "$work/$name.err"; exit 1; }
    read -r wall user sys <"$work/time"
    printf "%-7s wall %6.1f s  cpu %6.1f s  %.2fx realtime\n" "$name" "$wall" "$(echo "$user + $sys" | bc -l)" \
      "$(echo "$seconds / $wall" | bc -l)"
  }
  x264="scenecut=0:keyint=60:min-keyint=60:bframes=0"
  for _ in $(seq "$runs"); do
    rm -rf "$work/rill" "$work/ffmpeg" && mkdir -p "$work/rill" "$work/ffmpeg"
    # process-upload exits when its stdin closes (the server went away): keep it open.
    export rill work preset rungs
    measure rill bash -c 'exec 3< <(sleep 100000); keep=$!
      "$rill" process-upload --input "$work/in.mp4" --recordings "$work/rill" --video benchbenchbe \
        --speed-preset "$preset" --rungs "$rungs" <&3; status=$?; kill $keep; exit $status'
    grep -q '"done"' "$work/rill.out" || { echo "rill did not finish: $(tail -c 300 "$work/rill.out")"; exit 1; }
    # shellcheck disable=SC2086
    measure ffmpeg ffmpeg -hide_banner -v error -i "$work/in.mp4" \
      -filter_complex "[0:v]split=4[a][b][c][d];[b]scale=1280:720[b2];[c]scale=854:480[c2];[d]scale=640:360[d2]" \
      -map "[a]" -map "[b2]" -map "[c2]" -map "[d2]" -map 0:a \
      -c:v libx264 -preset "$preset" -x264-params "$x264" \
      -b:v:0 6000k -b:v:1 3000k -b:v:2 1100k -b:v:3 365k -c:a aac -b:a 128k \
      -f hls -hls_segment_type fmp4 -hls_time 4 -hls_playlist_type vod \
      -var_stream_map "v:0 v:1 v:2 v:3 a:0" -master_pl_name master.m3u8 "$work/ffmpeg/%v/index.m3u8"
  done
  ;;
*) echo "usage: $0 throughput [size_mb] | ladder [seconds] [preset] [runs]" >&2; exit 2 ;;
esac
