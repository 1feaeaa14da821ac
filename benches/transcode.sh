#!/usr/bin/env bash
# Rill's live ladder (GStreamer, rill-transcode) vs ffmpeg producing the same ladder from the
# same input with the same x264 settings, one after the other in one run. Reports CPU seconds
# (user+sys), the ratio, and each one's realtime factor (media duration / wall time).
#
#   benches/transcode.sh [seconds=30] [preset=veryfast] [runs=3]
#
# Runs alternate (rill, ffmpeg, rill, ffmpeg…) so that load from other processes hits both;
# each pair is printed, then the median CPU ratio.
#
# Input: 1280x720 30 fps testsrc2, libx264 with B-frames, GOP 2 s (as OBS/ffmpeg push it).
# Ladder: 480p 1500 kbit/s, 360p 730 kbit/s (the default ladder below a 720p source), x264
# tune=zerolatency, CBR with a 1 s VBV, bilinear scaling, keyframes only on source keyframes.
# Both run flat out (offline); the Rill side goes through the Bus like a live stream.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
preset=${2:-veryfast}
runs=${3:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ffmpeg -hide_banner -v error -f lavfi -i "testsrc2=size=1280x720:rate=30" -t "$seconds" \
  -c:v libx264 -preset veryfast -g 60 -pix_fmt yuv420p -f flv "$work/in.flv"
cargo build -q --release -p rill-transcode --example ladder
ladder="$CARGO_TARGET_DIR/release/examples/ladder"

measure() { # name, command...: prints "name wall user sys"
  local name=$1; shift
  /usr/bin/time -f "%e %U %S" -o "$work/time" "$@" >"$work/$name.out" 2>"$work/$name.err" \
    || { cat "$work/$name.err"; exit 1; }
  echo "$name $(cat "$work/time")"
}

x264="-c:v libx264 -preset $preset -tune zerolatency -x264-params scenecut=0:keyint=1000000 -force_key_frames source"
ratios=()
for run in $(seq "$runs"); do
  rill=$(measure rill "$ladder" "$work/in.flv" x264enc "$preset" 480p=854x480@1500 360p=640x360@730)
  # shellcheck disable=SC2086
  ff=$(measure ffmpeg ffmpeg -hide_banner -v error -i "$work/in.flv" -filter_complex \
    "[0:v]split=2[a][b];[a]scale=854:480:flags=bilinear[o1];[b]scale=640:360:flags=bilinear[o2]" \
    -map "[o1]" $x264 -b:v 1500k -maxrate 1500k -bufsize 1500k -f null /dev/null \
    -map "[o2]" $x264 -b:v 730k -maxrate 730k -bufsize 730k -f null /dev/null)
  echo "run $run (load average $(cut -d' ' -f1 /proc/loadavg))"
  grep -E "^rung|^input" "$work/rill.out" | sed 's/^/  /'
  ratios+=("$(echo "$rill" "$ff" | awk -v media="$seconds" '{
    rill_cpu = $3 + $4; ff_cpu = $7 + $8;
    printf "  rill:   wall %.2f s, cpu %.2f s (user %.2f, sys %.2f), realtime factor %.2f\n", $2, rill_cpu, $3, $4, media / $2 > "/dev/stderr";
    printf "  ffmpeg: wall %.2f s, cpu %.2f s (user %.2f, sys %.2f), realtime factor %.2f\n", $6, ff_cpu, $7, $8, media / $6 > "/dev/stderr";
    printf "  cpu ratio rill/ffmpeg: %.2f\n", rill_cpu / ff_cpu > "/dev/stderr";
    printf "%.3f", rill_cpu / ff_cpu }')")
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END { printf "median cpu ratio rill/ffmpeg over %d runs: %.2f\n", NR, r[int((NR + 1) / 2)] }'
