#!/usr/bin/env bash
# A private PostgreSQL server for tests and benchmarks (never the system's cluster).
#
#   scripts/postgres.sh start <dir> <port>   initdb (first time) and start; prints the URL
#                                           postgres://postgres@127.0.0.1:<port>/postgres
#                                           on stdout, and nothing else on stdout
#   scripts/postgres.sh stop <dir>          stop it (no-op if it is not running)
#
# Installs Debian's `postgresql` package if no /usr/lib/postgresql/*/bin/initdb exists. The
# cluster: superuser `postgres`, trust authentication, UTF-8 with the C.UTF-8 locale (so
# full-text search lowercases any script), listening only on 127.0.0.1:<port>, its Unix socket
# in the data directory. Starting an already running cluster just prints its URL.
#
# As root, the server runs as the `postgres` OS user (initdb and postgres refuse root). Its data
# directory is <dir>/data, unless that user cannot reach <dir> (e.g. under /root): then the
# data lives in /tmp/rill-postgres-<hash of dir> and <dir>/data is a symlink to it.
set -euo pipefail

usage() {
  echo "usage: $0 start <dir> <port> | stop <dir>" >&2
  exit 2
}

log() { echo "postgres.sh: $*" >&2; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a command as the user the server runs as.
as_server_user() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

bindir() {
  local initdb
  initdb=$(ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$initdb" ]; then dirname "$initdb"; fi
}

ensure_installed() {
  if [ -n "$(bindir)" ]; then return; fi
  local sudo=""
  is_root || sudo="sudo"
  log "installing postgresql"
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >&2; then
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >&2
  fi
  [ -n "$(bindir)" ] || { log "postgresql installed, but no /usr/lib/postgresql/*/bin/initdb"; exit 1; }
}

# The data directory for <dir> (absolute), creating the directories (not the cluster).
data_dir_for() {
  local dir=$1
  if [ -L "$dir/data" ]; then readlink -f "$dir/data"; return; fi
  if ! is_root || runuser -u postgres -- test -x "$dir"; then
    echo "$dir/data"
    return
  fi
  local hashed
  hashed="/tmp/rill-postgres-$(printf '%s' "$dir" | sha256sum | cut -c1-12)"
  mkdir -p "$hashed"
  chown postgres: "$hashed"
  chmod 700 "$hashed"
  ln -sfn "$hashed" "$dir/data"
  log "the postgres user cannot reach $dir; data in $hashed"
  echo "$hashed"
}

# The port of the server running from data directory $1 (from postmaster.pid), if any.
running_port() {
  local data=$1
  as_server_user "$BIN/pg_ctl" -D "$data" status >/dev/null 2>&1 || return 1
  sed -n 4p "$data/postmaster.pid"
}

url() { echo "postgres://postgres@127.0.0.1:$1/postgres"; }

start() {
  local dir=$1 port=$2 data port_now
  [[ "$port" =~ ^[0-9]+$ ]] || usage
  ensure_installed
  BIN=$(bindir)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  data=$(data_dir_for "$dir")
  if port_now=$(running_port "$data"); then
    [ "$port_now" = "$port" ] || log "already running on port $port_now (not $port)"
    url "$port_now"
    return
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    if is_root; then chown postgres: "$data"; fi
    chmod 700 "$data"
    as_server_user "$BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >&2
    local socket_dir=${data//\'/\'\'}
    {
      echo "# scripts/postgres.sh"
      echo "listen_addresses = '127.0.0.1'"
      # A Unix socket path is limited to 107 bytes; a longer data directory gets none.
      if [ $((${#data} + 20)) -lt 107 ]; then
        echo "unix_socket_directories = '$socket_dir'"
      else
        echo "unix_socket_directories = ''"
      fi
    } | as_server_user tee -a "$data/postgresql.conf" >/dev/null
  fi
  as_server_user "$BIN/pg_ctl" -D "$data" -l "$data/server.log" -o "-p $port" -w -t 60 start >&2 || {
    log "start failed; the end of $data/server.log:"
    tail -n 20 "$data/server.log" >&2 || true
    exit 1
  }
  url "$port"
}

stop() {
  local dir=$1 data
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd -P)
  [ -e "$dir/data" ] || return 0
  data=$(readlink -f "$dir/data")
  BIN=$(bindir)
  [ -n "$BIN" ] || return 0
  if running_port "$data" >/dev/null; then
    as_server_user "$BIN/pg_ctl" -D "$data" -m fast -w stop >&2
  fi
}

case "${1:-}" in
  start) [ $# -eq 3 ] || usage; start "$2" "$3" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  *) usage ;;
esac
