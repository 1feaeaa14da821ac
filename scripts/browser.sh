#!/usr/bin/env bash
# Prepares the headless-browser harness (tests/browser/play.mjs): Debian's chromium (and
# nodejs/npm when npm is missing) via scripts/deps.sh browser, then `npm ci` in tests/browser
# when its lock changed since the last install (playwright-core only: no browser download).
# Idempotent; fast when already prepared.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh browser
cd tests/browser
stamp=node_modules/.rill-lock.sha256
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "tests/browser: npm ci"
  npm ci --no-audit --no-fund --prefer-offline --ignore-scripts --loglevel=error
  echo "$want" >"$stamp"
fi
