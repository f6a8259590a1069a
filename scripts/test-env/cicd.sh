#!/usr/bin/env bash
# What the CI/CD tests need: shellcheck, and a throwaway Debian 12 root to run init_setup.sh in
# (test/cicd/init-setup.int.test.ts). The root is debootstrap's minbase plus openssh-server,
# openssl, ca-certificates and sudo, cached as a tarball; each test run unpacks a fresh copy.
# When engine.sh already cached a bookworm minbase, this reuses it (about 10 s instead of 40).
#
# Usage: cicd.sh up|down
set -euo pipefail
LOG_TAG=cicd.sh
# shellcheck source=scripts/test-env/lib.sh
. "$(dirname "$0")/lib.sh"

MINBASE="$CACHE_DIR/debian-bookworm-minbase.tar"
SETUP_ROOT="$CACHE_DIR/setup-root-bookworm.tar"
ENV_FILE="$TEST_ENV_DIR/cicd.env"
ROOT_PACKAGES=(openssh-server openssl ca-certificates sudo)

install_tools() {
  local missing=()
  command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
  apt_install "${missing[@]}"
}

# Runs a command chrooted into $1 with /proc and /dev mounted in a private mount namespace,
# so nothing stays mounted when it ends.
in_root() {
  local root="$1"; shift
  # shellcheck disable=SC2016 # expanded by the inner sh, on purpose
  unshare --mount --fork sh -c 'mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && shift && exec chroot "$@"' \
    sh "$root" "$root" "$@"
}

build_setup_root() {
  local work="$CACHE_DIR/setup-root.work"
  rm -rf "$work"
  mkdir -p "$work/rootfs"
  if [ -f "$MINBASE" ]; then
    log "setup root: minbase from engine.sh's cache + ${ROOT_PACKAGES[*]}"
    tar -C "$work/rootfs" -xf "$MINBASE"
    cp /etc/resolv.conf "$work/rootfs/etc/resolv.conf"
    # Packages' services must not start inside the build root.
    printf '#!/bin/sh\nexit 101\n' >"$work/rootfs/usr/sbin/policy-rc.d"
    chmod +x "$work/rootfs/usr/sbin/policy-rc.d"
    in_root "$work/rootfs" sh -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends ${ROOT_PACKAGES[*]}" \
      >"$CACHE_DIR/setup-root.log" 2>&1 || die "installing ${ROOT_PACKAGES[*]} in the setup root failed, see $CACHE_DIR/setup-root.log"
    rm -f "$work/rootfs/usr/sbin/policy-rc.d"
  else
    log "setup root: debootstrap bookworm minbase + ${ROOT_PACKAGES[*]} from $(debian_mirror) (about 40 s, once)"
    local include
    include="$(IFS=,; echo "${ROOT_PACKAGES[*]}")"
    debootstrap --variant=minbase --include="$include" bookworm "$work/rootfs" "$(debian_mirror)" \
      >"$CACHE_DIR/setup-root.log" 2>&1 || die "debootstrap failed, see $CACHE_DIR/setup-root.log"
  fi
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" -cf "$SETUP_ROOT.tmp" .
  mv "$SETUP_ROOT.tmp" "$SETUP_ROOT"
  rm -rf "$work"
}

up() {
  install_tools
  mkdir -p "$CACHE_DIR" "$(dirname "$ENV_FILE")"
  [ -f "$SETUP_ROOT" ] || build_setup_root
  printf 'SETUP_ROOT_TAR=%s\n' "$SETUP_ROOT" >"$ENV_FILE"
  log "setup root $(du -h "$SETUP_ROOT" | cut -f1) at $SETUP_ROOT"
}

down() {
  # Each test unpacks and removes its own root; the cached tarball stays for the next run.
  :
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
