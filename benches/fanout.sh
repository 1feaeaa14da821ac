#!/usr/bin/env bash
# Fan-out benchmark: one 2.5 Mbit/s H.264+AAC publisher, N viewers, Rill vs nginx-rtmp.
# See benches/README.md. Knobs (environment):
#   COUNTS="100 500 1000"   viewer counts
#   PROTOCOLS="rtmp http-flv"  Rill's play protocols to measure
#   ANALYTICS=on            Rill variants: on ([analytics] enabled, the default), off, or "on off"
#                           (both, alternating, fresh server each run)
#   REPEAT=1                rounds: every (N, protocol, variant) is measured REPEAT times
#   NGINX=1                 0: skip the nginx-rtmp baseline (and installing nginx)
#   WINDOW_S=20             measurement window (s), WARMUP=5 seconds after the last connect
#   RAMP_MS=2               delay between viewer connects
#   OUT_DIR=/tmp/rill-fanout  where logs, the test file and the JSON lines go
# Needs: cargo, ffmpeg (libx264, aac), nginx + /usr/lib/nginx/modules/ngx_rtmp_module.so, jq, curl.

set -euo pipefail
WINDOW_S=${WINDOW_S:-20}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NGINX=${NGINX:-1}
if [[ $NGINX == 0 ]]; then
    "$ROOT/scripts/deps.sh" run
    for tool in ffmpeg jq curl; do command -v "$tool" >/dev/null || { echo "fanout: $tool is missing (scripts/deps.sh bench)" >&2; exit 1; }; done
else
    "$ROOT/scripts/deps.sh" bench
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
COUNTS=${COUNTS:-100 500 1000}
PROTOCOLS=${PROTOCOLS:-rtmp http-flv}
ANALYTICS=${ANALYTICS:-on}
REPEAT=${REPEAT:-1}
for a in $ANALYTICS; do [[ $a == on || $a == off ]] || { echo "fanout: ANALYTICS must be on, off or \"on off\", not $a" >&2; exit 2; }; done
for p in $PROTOCOLS; do [[ $p == rtmp || $p == http-flv ]] || { echo "fanout: PROTOCOLS: rtmp and/or http-flv, not $p" >&2; exit 2; }; done
WARMUP=${WARMUP:-5}
RAMP_MS=${RAMP_MS:-2}
OUT_DIR=${OUT_DIR:-/tmp/rill-fanout}
MEDIA=${MEDIA:-$OUT_DIR/testsrc-720p30-2500k.flv}
NGINX_RTMP_MODULE=${NGINX_RTMP_MODULE:-/usr/lib/nginx/modules/ngx_rtmp_module.so}
RILL_RTMP_PORT=${FANOUT_RILL_RTMP_PORT:-11935}
RILL_HTTP_PORT=${FANOUT_RILL_HTTP_PORT:-18080}
RILL_SRT_PORT=${FANOUT_RILL_SRT_PORT:-18890}       # UDP; unused, moved off the default 8890
RILL_WEBRTC_PORT=${FANOUT_RILL_WEBRTC_PORT:-18189} # UDP; unused, moved off the default 8189
NGINX_RTMP_PORT=${FANOUT_NGINX_RTMP_PORT:-21935}
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=$OUT_DIR/fanout-$STAMP.jsonl
RUN_DIR=$OUT_DIR/run-$STAMP

mkdir -p "$OUT_DIR" "$RUN_DIR"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PIDS=()
cleanup() {
    local pid i
    for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do # newest first: publisher before server
        kill -TERM "${PIDS[i]}" 2>/dev/null || true
        sleep 0.2
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[fanout] $*" >&2; }

# --- build -------------------------------------------------------------------------------
log "building rill and flv-load (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
# Without OUT_DIR: cargo would take this script's knob for its own and rebuild crates whose build
# scripts use it (ring, rustls, ...) every time it changes.
(cd "$ROOT" && env -u OUT_DIR cargo build --release --bin rill -p rill &&
    env -u OUT_DIR cargo build --release -p rill-benches --bin flv-load) >&2
RILL=$CARGO_TARGET_DIR/release/rill
LOAD=$CARGO_TARGET_DIR/release/flv-load

# --- test media (once) -------------------------------------------------------------------
if [[ ! -s $MEDIA ]]; then
    log "encoding test file $MEDIA (60 s, 1280x720@30, H.264 2.3-2.5 Mbit/s + AAC 128k)"
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 \
        -c:v libx264 -preset veryfast -b:v 2300k -maxrate 2500k -bufsize 2500k -g 60 -pix_fmt yuv420p \
        -c:a aac -b:a 128k -f flv "$MEDIA.tmp" && mv "$MEDIA.tmp" "$MEDIA"
fi

# --- helpers -----------------------------------------------------------------------------
start_publisher() { # $1 = rtmp url, $2 = log file
    ffmpeg -nostdin -hide_banner -loglevel warning -re -stream_loop -1 -i "$MEDIA" -c copy -f flv "$1" >"$2" 2>&1 &
    PIDS+=($!)
}

wait_port() { # $1 = port
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    log "port $1 never opened"; return 1
}

port_free() { # $1 = port; fails if something already listens there (e.g. a leftover server)
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        log "port $1 is already in use; stop whatever listens there first"; return 1
    fi
}

wait_stream() { # $1 = play url: one probe viewer must be receiving
    for _ in $(seq 30); do
        if [[ $("$LOAD" --url "$1" --viewers 1 --seconds 1 --warmup 0.5 --ramp-ms 0 2>/dev/null | jq -r .connected) == 1 ]]; then
            return 0
        fi
        sleep 0.5
    done
    log "stream $1 never became playable"; return 1
}

measure() { # $1 = label, $2 = url, $3 = viewers, $4 = server pid, $5 = protocol, $6 = server, $7 = analytics, $8 = round
    local line
    line=$("$LOAD" --url "$2" --viewers "$3" --seconds "$WINDOW_S" --warmup "$WARMUP" --ramp-ms "$RAMP_MS" \
        --server-pid "$4" --label "$1")
    line=$(jq -c --arg p "$5" --arg s "$6" --arg a "$7" --argjson r "$8" \
        '. + {protocol: $p, server: $s, analytics: $a, round: $r}' <<<"$line")
    echo "$line" | tee -a "$RESULTS"
}

start_rill() { # $1 = run dir, $2 = analytics (on|off)
    local enabled=true
    [[ $2 == off ]] && enabled=false
    mkdir -p "$1/data"
    port_free "$RILL_HTTP_PORT"
    port_free "$RILL_RTMP_PORT"
    (cd "$1" && RILL_AUTH_MODE=open RILL_HTTP_LISTEN=127.0.0.1:$RILL_HTTP_PORT RILL_RTMP_LISTEN=127.0.0.1:$RILL_RTMP_PORT \
        RILL_SRT_LISTEN=127.0.0.1:$RILL_SRT_PORT RILL_WEBRTC_UDP_LISTEN=127.0.0.1:$RILL_WEBRTC_PORT \
        RILL_ANALYTICS_ENABLED=$enabled RILL_SERVER_DATA_DIR="$1/data" RILL_SERVER_LOG=warn exec "$RILL" >"$1/rill.log" 2>&1) &
    RILL_PID=$!
    PIDS+=("$RILL_PID")
    for _ in $(seq 50); do # the subshell has to cd and exec first
        [[ $(cat "/proc/$RILL_PID/comm" 2>/dev/null) == rill ]] && break
        sleep 0.1
    done
    [[ $(cat "/proc/$RILL_PID/comm" 2>/dev/null) == rill ]] || { log "pid $RILL_PID is not rill"; return 1; }
    wait_port "$RILL_HTTP_PORT"
    wait_port "$RILL_RTMP_PORT"
    curl -fsS "http://127.0.0.1:$RILL_HTTP_PORT/healthz" >/dev/null
    kill -0 "$RILL_PID" 2>/dev/null || { log "rill exited:"; cat "$1/rill.log" >&2; return 1; }
}

run_rill() { # $1 = N, $2 = protocol (rtmp|http-flv), $3 = analytics (on|off), $4 = round
    local dir=$RUN_DIR/rill-$2-$1-analytics-$3-r$4 url
    mkdir -p "$dir"
    start_rill "$dir" "$3"
    start_publisher "rtmp://127.0.0.1:$RILL_RTMP_PORT/live/bench" "$dir/ffmpeg.log"
    if [[ $2 == rtmp ]]; then url=rtmp://127.0.0.1:$RILL_RTMP_PORT/live/bench; else url=http://127.0.0.1:$RILL_HTTP_PORT/live/bench.flv; fi
    wait_stream "$url"
    sleep 2 # let the probe viewer's teardown and the GOP cache settle before the RSS baseline
    measure "rill-$2-$1-analytics-$3" "$url" "$1" "$RILL_PID" "$2" rill "$3" "$4"
    curl -fsS "http://127.0.0.1:$RILL_HTTP_PORT/metrics" | grep -v '^#' >"$dir/metrics.txt" || true
    cleanup
    log "rill $2 N=$1 analytics $3 round $4: log lines by level: $(grep -oE '\b(ERROR|WARN)\b' "$dir/rill.log" | sort | uniq -c | tr '\n' ' ')"
}

run_nginx() { # $1 = N, $2 = round
    local dir=$RUN_DIR/nginx-rtmp-$1-r$2
    mkdir -p "$dir/logs"
    cat >"$dir/nginx.conf" <<EOF
load_module $NGINX_RTMP_MODULE;
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 8192; }
rtmp {
    server {
        listen 127.0.0.1:$NGINX_RTMP_PORT;
        application live { live on; }
    }
}
EOF
    port_free "$NGINX_RTMP_PORT"
    nginx -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
    local ngx=$!
    PIDS+=("$ngx")
    sleep 0.2
    [[ $(cat "/proc/$ngx/comm" 2>/dev/null) == nginx ]] || { log "pid $ngx is not nginx"; cat "$dir/stdout.log" >&2; return 1; }
    wait_port "$NGINX_RTMP_PORT"
    start_publisher "rtmp://127.0.0.1:$NGINX_RTMP_PORT/live/bench" "$dir/ffmpeg.log"
    wait_stream "rtmp://127.0.0.1:$NGINX_RTMP_PORT/live/bench"
    sleep 2
    measure "nginx-rtmp-$1" "rtmp://127.0.0.1:$NGINX_RTMP_PORT/live/bench" "$1" "$ngx" rtmp nginx-rtmp n/a "$2"
    cleanup
}

# --- run ---------------------------------------------------------------------------------
log "window ${WINDOW_S}s, warmup ${WARMUP}s, ramp ${RAMP_MS}ms, counts: $COUNTS, protocols: $PROTOCOLS," \
    "analytics: $ANALYTICS, rounds: $REPEAT, nginx: $NGINX; logs in $RUN_DIR"
for (( round = 1; round <= REPEAT; round++ )); do
    for n in $COUNTS; do
        for p in $PROTOCOLS; do
            for a in $ANALYTICS; do
                run_rill "$n" "$p" "$a" "$round"
            done
        done
        if [[ $NGINX != 0 ]]; then run_nginx "$n" "$round"; fi
    done
done

# --- report ------------------------------------------------------------------------------
echo
echo "Raw JSON lines ($RESULTS):"
cat "$RESULTS"
echo
printf '%-6s %-11s %-9s %-9s %5s %9s %6s %9s %14s %10s %9s\n' N server protocol analytics round kbps/view conn min_kbps cpu_s/view_s rss/v_KiB client_cpu
jq -r '[.viewers, .server, .protocol, .analytics, .round, .mean_kbps_per_viewer, .connected, .min_kbps_viewer,
        .cpu_seconds_per_viewer_second, .rss_per_viewer_kib, .client_cpu_seconds] | map(. // "n/a") | @tsv' "$RESULTS" |
    while IFS=$'\t' read -r n s p a r k c m cpu rss ccpu; do
        printf '%-6s %-11s %-9s %-9s %5s %9.1f %6s %9.1f %14s %10s %9s\n' "$n" "$s" "$p" "$a" "$r" "$k" "$c" "$m" "$cpu" "$rss" "$ccpu"
    done
echo
echo "Rill, analytics on / off (mean over rounds; cpu_s/view_s = server CPU-s per viewer-second):"
printf '%-6s %-9s %6s %14s %14s %8s %16s\n' N protocol rounds cpu_on cpu_off ratio on-off/view_s
jq -rs 'map(select(.server == "rill" and .cpu_seconds_per_viewer_second != null)) |
        group_by([.viewers, .protocol])[] |
        (map(select(.analytics == "on") | .cpu_seconds_per_viewer_second)) as $on |
        (map(select(.analytics == "off") | .cpu_seconds_per_viewer_second)) as $off |
        select(($on | length) > 0 and ($off | length) > 0) |
        (($on | add) / ($on | length)) as $a | (($off | add) / ($off | length)) as $b |
        [.[0].viewers, .[0].protocol, "\($on | length)/\($off | length)", $a, $b,
         (if $b > 0 then ($a / $b * 1000 | round / 1000) else "n/a" end), ($a - $b)] | @tsv' "$RESULTS" |
    while IFS=$'\t' read -r n p r a b q d; do
        printf '%-6s %-9s %6s %14.8f %14.8f %8s %16.8f\n' "$n" "$p" "$r" "$a" "$b" "$q" "$d"
    done
[[ $NGINX == 0 ]] && exit 0
echo
echo "Rill / nginx-rtmp, RTMP play:"
printf '%-6s %10s %10s\n' N cpu_ratio rss_ratio
jq -rs 'group_by(.viewers)[] |
        (map(select(.server == "rill" and .protocol == "rtmp" and .analytics != "off"))[0]) as $r |
        (map(select(.server == "nginx-rtmp"))[0]) as $g |
        select($r != null and $g != null) |
        [$r.viewers,
         (if ($g.server_cpu_seconds // 0) > 0 and $r.server_cpu_seconds != null then (($r.server_cpu_seconds / $r.seconds) / ($g.server_cpu_seconds / $g.seconds) * 100 | round / 100) else "n/a" end),
         (if ($g.rss_per_viewer_kib // 0) > 0 and $r.rss_per_viewer_kib != null then ($r.rss_per_viewer_kib / $g.rss_per_viewer_kib * 100 | round / 100) else "n/a" end)] | @tsv' "$RESULTS" |
    while IFS=$'\t' read -r n c r; do printf '%-6s %10s %10s\n' "$n" "$c" "$r"; done
