#!/usr/bin/env bash
# The monitoring binaries the tests run as plain processes: Prometheus (+ promtool),
# Alertmanager (+ amtool), node-exporter and blackbox_exporter from Debian, plus docker-compose to validate
# docker-compose.monitoring.yml. The tests start and stop their own processes on free loopback
# ports in temp dirs, so `up` only installs; Debian's packaged daemons are kept stopped so they
# do not hold the default ports or scrape anything.
set -euo pipefail

need_pkgs() {
  local missing=()
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
  command -v prometheus-node-exporter >/dev/null 2>&1 || missing+=(prometheus-node-exporter)
  command -v prometheus-blackbox-exporter >/dev/null 2>&1 || missing+=(prometheus-blackbox-exporter)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  echo "${missing[@]:-}"
}

up() {
  local missing
  missing="$(need_pkgs)"
  if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || { echo "monitoring.sh: need root to apt-get install: $missing" >&2; exit 1; }
    echo "monitoring.sh: installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d exit 101 keeps the packages' own services from starting on install (no
    # systemd here anyway, but with init scripts they would grab :9090/:9093/:9100).
    local policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod +x "$policy"
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    # Without `apt-get update` first when the package lists are fresh enough (fast path).
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; }
  fi
  promtool --version 2>&1 | head -n1
  prometheus-alertmanager --version 2>&1 | head -n1
  prometheus-node-exporter --version 2>&1 | head -n1
  prometheus-blackbox-exporter --version 2>&1 | head -n1
}

down() {
  # Nothing long-lived to stop: each test owns and ends its own processes.
  :
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
