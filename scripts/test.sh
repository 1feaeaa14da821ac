#!/usr/bin/env bash
# Second command: install test dependencies (ffmpeg, GStreamer) and run every test: unit tests of each
# crate, the zero-copy proof, and the end-to-end tests with real ffmpeg peers (which run one
# at a time: they take a lock, see tests/common/mod.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
cargo test --locked --workspace
