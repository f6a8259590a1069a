#!/usr/bin/env bash
# PostgreSQL's server binaries for the Orders tests (test/service/orders.int.test.ts). The tests
# start their own throwaway cluster (initdb in a temp dir, pg_ctl on a free loopback port, as the
# postgres user: see test/helpers/postgres.ts), so `up` only installs Debian's postgresql; the
# package's own cluster is kept stopped (apt_install), so it holds no port.
set -euo pipefail
LOG_TAG=postgres.sh
# shellcheck source=scripts/test-env/lib.sh
. "$(dirname "$0")/lib.sh"

initdb_path() { compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n1; }

case "${1:-up}" in
  up)
    initdb_path >/dev/null || apt_install postgresql
    "$(initdb_path)" --version
    ;;
  down) : ;; # nothing long-lived: each test run owns and removes its own cluster
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
