#!/usr/bin/env bash
# The monitoring binaries the tests run as plain processes: Prometheus (+ promtool),
# Alertmanager (+ amtool), node-exporter, blackbox_exporter and postgres_exporter from Debian.
# The tests start and stop their own processes on free loopback ports in temp dirs, so `up` only
# installs; Debian's packaged daemons are kept stopped so they do not hold the default ports or scrape anything.
set -euo pipefail
LOG_TAG=monitoring.sh
# shellcheck source=scripts/test-env/lib.sh
. "$(dirname "$0")/lib.sh"

up() {
  local missing=()
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
  command -v prometheus-node-exporter >/dev/null 2>&1 || missing+=(prometheus-node-exporter)
  command -v prometheus-blackbox-exporter >/dev/null 2>&1 || missing+=(prometheus-blackbox-exporter)
  command -v prometheus-postgres-exporter >/dev/null 2>&1 || missing+=(prometheus-postgres-exporter)
  apt_install "${missing[@]}"
  promtool --version 2>&1 | head -n1
  prometheus-alertmanager --version 2>&1 | head -n1
  prometheus-node-exporter --version 2>&1 | head -n1
  prometheus-blackbox-exporter --version 2>&1 | head -n1
  prometheus-postgres-exporter --version 2>&1 | head -n1
}

case "${1:-up}" in
  up) up ;;
  down) : ;; # nothing long-lived: each test owns and ends its own processes
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
