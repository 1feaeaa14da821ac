#!/usr/bin/env bash
# Second command: install test dependencies (ffmpeg, GStreamer, Chromium) and run every test: unit
# tests of each crate, the zero-copy proof, and the end-to-end tests with real ffmpeg peers and a
# headless Chromium (which run one at a time: they take a lock, see tests/common/mod.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/web-player.sh
scripts/browser.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
cargo test --locked --workspace
