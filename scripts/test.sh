#!/usr/bin/env bash
# Second command: every test, in two tiers (as root, as CI runs it). `scripts/test.sh fast` or
# `scripts/test.sh e2e` runs one tier only.
#
# 1. Fast tier — `cargo test --workspace`: every unit and in-process test (sans-IO cores, golden
#    playlists and MPDs, the packager, the Bus, the catalog on SQLite, WebRTC on a virtual
#    clock…). Needs nothing but the build dependencies: no ffmpeg, no GStreamer plugins, no
#    Chromium, no PostgreSQL, no npm (without web-player/dist/ the player scripts are
#    placeholders, and the build says so). Under two minutes once built.
# 2. End-to-end tier — installs ffmpeg, GStreamer's plugins, Chromium and PostgreSQL, builds
#    the player page, then runs the tests that need real peers: the server tests under tests/
#    (package feature `e2e`, see Cargo.toml) and the crates' tests marked #[ignore] for this tier
#    (ffmpeg clips through the ladder, the TS demuxer against ffmpeg output, the catalog on
#    PostgreSQL). The server tests run one at a time (they take a lock, see tests/common/mod.rs).
#    The catalog tests use a private PostgreSQL (scripts/postgres.sh) on port 55432
#    (RILL_TEST_PG_PORT), stopped at the end. The full-disk test mounts a small tmpfs: root.
set -euo pipefail
cd "$(dirname "$0")/.."
tier=${1:-all}
case "$tier" in
  all | fast | e2e) ;;
  *) echo "usage: $0 [fast|e2e]" >&2; exit 2 ;;
esac
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}

if [ "$tier" != e2e ]; then
  scripts/deps.sh build
  echo "== fast tier: unit and in-process tests"
  cargo test --locked --workspace
fi

if [ "$tier" != fast ]; then
  scripts/deps.sh test
  scripts/web-player.sh
  scripts/browser.sh
  pg_dir=${RILL_TEST_PG_DIR:-$HOME/.cache/rill-postgres}
  RILL_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$pg_dir" "${RILL_TEST_PG_PORT:-55432}")
  export RILL_TEST_POSTGRES_URL RILL_REQUIRE_POSTGRES=1
  trap 'scripts/postgres.sh stop "$pg_dir"' EXIT
  echo "== end-to-end tier: real ffmpeg, GStreamer, Chromium and PostgreSQL peers"
  # Every integration test target (the crates' unit tests ran in the fast tier), ignored ones too.
  cargo test --locked --workspace --features e2e --test '*' -- --include-ignored
fi
