#!/usr/bin/env bash
# Second command: install test dependencies (ffmpeg, GStreamer, Chromium) and run every test: unit
# tests of each crate, the zero-copy proof, and the end-to-end tests with real ffmpeg peers and a
# headless Chromium (which run one at a time: they take a lock, see tests/common/mod.rs). The
# catalog tests also run against a real PostgreSQL, started privately (scripts/postgres.sh) on
# port 55432 (RILL_TEST_PG_PORT) and stopped at the end. The full-disk test mounts a small tmpfs,
# so the suite runs as root (as CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/web-player.sh
scripts/browser.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
pg_dir=${RILL_TEST_PG_DIR:-$HOME/.cache/rill-postgres}
RILL_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$pg_dir" "${RILL_TEST_PG_PORT:-55432}")
export RILL_TEST_POSTGRES_URL RILL_REQUIRE_POSTGRES=1
trap 'scripts/postgres.sh stop "$pg_dir"' EXIT
cargo test --locked --workspace
