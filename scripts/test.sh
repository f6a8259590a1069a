#!/usr/bin/env bash
# The whole test suite on a fresh machine: install what the tests need, start the real local
# parts (container engine, registry, test VM, monitoring binaries), then run every test: in lanes
# (scripts/lanes.sh), or just what the arguments name (`npm test -- test/edge`).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
bash scripts/test-env/setup.sh
started=$SECONDS
status=0
if [ "$#" -gt 0 ]; then npx vitest run "$@" || status=$?; else bash scripts/lanes.sh || status=$?; fi
echo "== vitest: $((SECONDS - started)) s"
exit "$status"
