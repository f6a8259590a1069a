#!/usr/bin/env bash
# PostgreSQL's server binaries for the Orders tests (test/service/orders.int.test.ts). The tests
# start their own throwaway cluster (initdb in a temp dir, pg_ctl on a free loopback port, as the
# postgres user: see test/helpers/postgres.ts), so `up` only installs Debian's postgresql; the
# package's own cluster is kept stopped so it holds no port.
set -euo pipefail

installed() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1
}

up() {
  if ! installed; then
    [ "$(id -u)" = 0 ] || { echo "postgres.sh: need root to apt-get install postgresql" >&2; exit 1; }
    echo "postgres.sh: installing postgresql"
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d exit 101 keeps the package's cluster from starting on install (it would take :5432).
    local policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod +x "$policy"
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql; }
  fi
  local initdb
  initdb="$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n1 || true)"
  "${initdb:-initdb}" --version
}

down() {
  # Nothing long-lived to stop: each test run owns and removes its own cluster.
  :
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
