#!/usr/bin/env bash
# The HTTPS edge's real parts, as plain binaries: Debian's `caddy` (2.6) and `pebble` (Let's
# Encrypt's test ACME server, with `pebble-challtestsrv` as its mock DNS), plus a listener
# certificate for pebble (Debian ships none). `up` only installs and makes the certificate;
# every test starts its own pebble, challtestsrv and caddy on free loopback ports in a temp dir
# and stops them. Debian's caddy.service is kept from starting (it would take :80).
# Writes .test-env/edge.env.
set -euo pipefail

LOG_TAG=edge.sh
# shellcheck source=scripts/test-env/lib.sh
. "$(dirname "$0")/lib.sh"
EDGE_STATE="$STATE/edge"
TEST_ENV_FILE="$TEST_ENV_DIR/edge.env"

missing_pkgs() {
  local missing=()
  command -v caddy >/dev/null 2>&1 || missing+=(caddy)
  command -v pebble >/dev/null 2>&1 || missing+=(pebble)
  command -v pebble-challtestsrv >/dev/null 2>&1 || missing+=(pebble)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  # The edge-switch program's test runs it under busybox's sh and wget too (caddy:alpine has those).
  command -v busybox >/dev/null 2>&1 || missing+=(busybox)
  printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' '
}

# pebble's own TLS listener (ACME directory on 14000, management on 15000): a self-signed
# certificate for localhost / 127.0.0.1. Clients (caddy's acme_ca_root, the tests) trust it.
listener_cert() {
  local crt="$EDGE_STATE/pebble-listener.crt" key="$EDGE_STATE/pebble-listener.key"
  if [ -s "$crt" ] && [ -s "$key" ] && openssl x509 -in "$crt" -noout -checkend 86400 >/dev/null 2>&1; then
    return 0
  fi
  mkdir -p "$EDGE_STATE"
  log "making pebble's listener certificate"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
    -subj "/CN=pebble listener (berth tests)" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -keyout "$key.tmp" -out "$crt.tmp" >/dev/null 2>&1
  chmod 600 "$key.tmp"
  mv "$key.tmp" "$key"
  mv "$crt.tmp" "$crt"
}

up() {
  local missing
  missing="$(missing_pkgs)"
  # shellcheck disable=SC2086 # the list is meant to split
  apt_install $missing
  # The package's service would hold :80/:443/:2019 if an init system ever started it.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now caddy >/dev/null 2>&1 || true
  fi
  listener_cert
  mkdir -p "$(dirname "$TEST_ENV_FILE")"
  local content
  content="$(printf 'EDGE_PEBBLE_CERT=%s\nEDGE_PEBBLE_KEY=%s\n' "$EDGE_STATE/pebble-listener.crt" "$EDGE_STATE/pebble-listener.key")"
  write_if_changed "$TEST_ENV_FILE" "$content" || true
  log "$(caddy version 2>/dev/null | head -n1 | cut -d' ' -f1), pebble $(dpkg-query -W -f='${Version}' pebble 2>/dev/null), listener cert $EDGE_STATE/pebble-listener.crt"
}

down() {
  # Nothing long-lived: each test starts and stops its own pebble, challtestsrv and caddy.
  :
}

status() {
  local missing
  missing="$(missing_pkgs)"
  if [ -n "${missing// /}" ]; then echo "edge: missing packages: $missing"; return 1; fi
  [ -s "$EDGE_STATE/pebble-listener.crt" ] || { echo "edge: no pebble listener certificate (run up)"; return 1; }
  echo "edge: caddy, pebble, pebble-challtestsrv, busybox installed; listener cert in $EDGE_STATE"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
