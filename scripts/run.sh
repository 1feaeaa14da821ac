#!/usr/bin/env bash
# First command: install what is missing, build, and run Rill with the default configuration.
# Extra arguments go to rill (e.g. scripts/run.sh --config my.toml). RILL_* variables override config.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
scripts/web-player.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
cargo build --release --locked --bin rill
exec "$CARGO_TARGET_DIR/release/rill" "$@"
