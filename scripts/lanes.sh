#!/usr/bin/env bash
# The test suite in lanes (test/lanes.ts): the VM's files beside the unit tests and the other
# integration files, each lane one file at a time; then the engine restart test, alone. Each line
# of output is prefixed with its lane. Usage: lanes.sh [--no-unit]   (exit: non-zero if any lane failed)
set -uo pipefail
cd "$(dirname "$0")/.." || exit
beside=(--project host)
[ "${1:-}" = --no-unit ] || beside=(--project unit --project host)

lane() {
  local name=$1
  shift
  npx vitest run "$@" 2>&1 | sed -u "s/^/[$name] /"
  return "${PIPESTATUS[0]}"
}

started=$SECONDS
lane vm --project vm &
vm=$!
lane host "${beside[@]}"
host_status=$?
wait "$vm"
vm_status=$?
lanes_s=$((SECONDS - started))
lane alone --project alone
alone_status=$?
echo "== lanes: vm exit $vm_status, host exit $host_status (together ${lanes_s} s); alone exit $alone_status ($((SECONDS - started - lanes_s)) s)"
[ "$vm_status" = 0 ] && [ "$host_status" = 0 ] && [ "$alone_status" = 0 ]
