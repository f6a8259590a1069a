#!/usr/bin/env bash
# The deploy tests' stand-in for the production VM: a real OpenSSH server on 127.0.0.1 with its
# own host key, and a deploy user `berth` whose `docker` reaches the Docker Engine that
# engine.sh starts. The deploy tool connects to it exactly as it would to a real VM.
#
#   scripts/test-env/vm.sh up      install openssh-server if missing, create the user and keys,
#                                  start sshd, write .test-env/vm.env (idempotent, ~1 s when up)
#   scripts/test-env/vm.sh status  say what runs; exit 1 when the VM cannot be reached
#   scripts/test-env/vm.sh down    stop this sshd (by PID file); keys, user and state stay
#
# Everything lives under $BERTH_TEST_STATE/vm (default /var/lib/berth-test/vm), outside the
# checkout, so clones share one VM. Test-machine only: never run this on a real server.
set -euo pipefail
LOG_TAG=vm
# shellcheck source=scripts/test-env/lib.sh
. "$(dirname "$0")/lib.sh"

repo="$REPO_ROOT"
state_root="$STATE"
vm="$state_root/vm"
port="${BERTH_VM_SSH_PORT:-2222}"
user="${BERTH_VM_USER:-berth}"
docker_group="${BERTH_DOCKER_GROUP:-berth-docker}"
keys="$vm/keys"                  # root-only: host key, the client key the tests use, known_hosts
config="$vm/sshd_config"
pid_file="$vm/sshd.pid"
log_file="$vm/sshd.log"
remote_dir="$vm/opt-berth"       # BERTH_REMOTE_DIR: this VM's /opt/berth
env_file="$repo/.test-env/vm.env"

[ "$(id -u)" = 0 ] || die "run as root (it creates a user and starts sshd)"

# DOCKER_HOST of the engine engine.sh started; empty when that script has not run.
engine_docker_host() {
  local f="$repo/.test-env/engine.env"
  if [ -f "$f" ]; then sed -n 's/^DOCKER_HOST=//p' "$f" | tail -n 1; fi
}

# Only our own sshd's command line counts (see `running` in lib.sh).
sshd_running() { running "$pid_file" " -f $config "; }

install_packages() {
  command -v sshd >/dev/null && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null && return
  # apt_install keeps the package from starting the system's own sshd on port 22.
  apt_install openssh-server openssh-client
}

create_user() {
  if ! id "$user" >/dev/null 2>&1; then
    log "creating user $user"
    useradd --create-home --shell /bin/bash "$user"
  fi
  # '*' = no password can ever match, but the account is not "locked" ('!'), which sshd
  # (UsePAM no) would refuse even for public-key logins.
  usermod -p '*' "$user"
}

# The engine socket is root's; the deploy user reaches it through a group, as `docker`
# group members do on a real VM (same power as root: this is a throwaway test machine).
grant_engine_access() {
  local docker_host sock
  docker_host="$(engine_docker_host)"
  if [ -z "$docker_host" ]; then
    log "warning: .test-env/engine.env not found; run scripts/test-env/engine.sh up first (docker will not work for $user)"
    return
  fi
  sock="${docker_host#unix://}"
  getent group "$docker_group" >/dev/null || groupadd --system "$docker_group"
  id -nG "$user" | tr ' ' '\n' | grep -qx "$docker_group" || usermod -aG "$docker_group" "$user"
  if [ -S "$sock" ]; then
    chgrp "$docker_group" "$(dirname "$sock")" "$sock"
    chmod g+rx "$(dirname "$sock")"
    chmod g+rw "$sock"
  else
    log "warning: engine socket $sock does not exist (is dockerd running? scripts/test-env/engine.sh up)"
  fi
}

# `docker compose` (the v2 plugin) is what the product runs on the VM; engine.sh installs it
# for every user.
check_compose_for_user() {
  su -s /bin/sh "$user" -c 'docker compose version' >/dev/null 2>&1 \
    || log "warning: 'docker compose' does not work for $user (scripts/test-env/engine.sh up installs it)"
}

make_keys() {
  install -d -m 755 "$state_root" "$vm"
  install -d -m 700 "$keys"
  [ -f "$keys/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "berth-test-vm host" -f "$keys/ssh_host_ed25519_key"
  [ -f "$keys/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "berth-test-vm deploy" -f "$keys/id_ed25519"
  # The line a user would get from `ssh-keyscan -p PORT HOST` and check by hand.
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$keys/ssh_host_ed25519_key.pub")" > "$keys/known_hosts"

  local home
  home="$(getent passwd "$user" | cut -d: -f6)"
  install -d -m 700 -o "$user" -g "$user" "$home/.ssh"
  install -m 600 -o "$user" -g "$user" "$keys/id_ed25519.pub" "$home/.ssh/authorized_keys"
  install -d -m 755 -o "$user" -g "$user" "$remote_dir"
}

write_config() {
  local docker_host sftp
  docker_host="$(engine_docker_host)"
  sftp=/usr/lib/openssh/sftp-server
  {
    echo "# Berth test VM (scripts/test-env/vm.sh). Generated: edits are overwritten."
    echo "Port $port"
    echo "ListenAddress 127.0.0.1"
    echo "HostKey $keys/ssh_host_ed25519_key"
    echo "PidFile $pid_file"
    echo "AllowUsers $user"
    echo "PermitRootLogin no"
    echo "AuthenticationMethods publickey"
    echo "PubkeyAuthentication yes"
    echo "PasswordAuthentication no"
    echo "KbdInteractiveAuthentication no"
    echo "UsePAM no"
    echo "AuthorizedKeysFile .ssh/authorized_keys"
    echo "X11Forwarding no"
    echo "AllowAgentForwarding no"
    echo "PrintMotd no"
    echo "LogLevel VERBOSE"
    # Concurrent deploys in the tests open several connections at once.
    echo "MaxStartups 50:30:100"
    echo "MaxSessions 20"
    # Dead clients (the dropped-connection test) are noticed within seconds.
    echo "ClientAliveInterval 5"
    echo "ClientAliveCountMax 2"
    [ -n "$docker_host" ] && echo "SetEnv DOCKER_HOST=$docker_host"
    echo "Subsystem sftp $sftp"
  } > "$config.new"
}

start_sshd() {
  install -d -m 755 /run/sshd   # privilege-separation dir; normally made by systemd
  /usr/sbin/sshd -t -f "$config.new" || die "sshd rejected the generated config $config.new"
  if sshd_running && cmp -s "$config.new" "$config"; then
    rm -f "$config.new"
    return
  fi
  mv "$config.new" "$config"
  if sshd_running; then
    log "config changed: restarting sshd"
    stop_sshd
  fi
  # Without -D sshd daemonizes once its socket listens and writes the PID file: nothing of it
  # stays attached to this script's shell.
  /usr/sbin/sshd -f "$config" -E "$log_file"
  for _ in $(seq 1 50); do
    sshd_running && break
    sleep 0.1
  done
  sshd_running || die "sshd did not start; see $log_file"
}

stop_sshd() {
  sshd_running || { rm -f "$pid_file"; return 0; }
  local pid
  pid="$(cat "$pid_file")"
  # Only the listener (our PID file); open sessions end when their client disconnects.
  kill "$pid"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  rm -f "$pid_file"
}

ssh_cmd() {
  ssh -i "$keys/id_ed25519" -p "$port" \
    -o BatchMode=yes -o ConnectTimeout=5 \
    -o UserKnownHostsFile="$keys/known_hosts" -o StrictHostKeyChecking=yes \
    "$user@127.0.0.1" "$@"
}

write_env() {
  install -d "$repo/.test-env"
  cat > "$env_file.tmp" <<EOF
# written by scripts/test-env/vm.sh up: the test VM the deploy tests connect to
VM_HOST=127.0.0.1
VM_SSH_PORT=$port
VM_USER=$user
VM_SSH_KEY_FILE=$keys/id_ed25519
VM_KNOWN_HOSTS_FILE=$keys/known_hosts
BERTH_REMOTE_DIR=$remote_dir
BERTH_VM_SSHD_PID_FILE=$pid_file
BERTH_VM_SSHD_LOG=$log_file
EOF
  mv "$env_file.tmp" "$env_file"
}

up() {
  install_packages
  create_user
  make_keys
  grant_engine_access
  check_compose_for_user
  write_config
  start_sshd
  for _ in $(seq 1 30); do
    ssh_cmd true 2>/dev/null && break
    sleep 0.2
  done
  ssh_cmd true || die "cannot log in as $user over ssh; see $log_file"
  write_env
  if [ -n "$(engine_docker_host)" ] && ! ssh_cmd docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    die "$user reaches sshd but not the engine at $(engine_docker_host); is engine.sh up?"
  fi
  log "sshd on 127.0.0.1:$port (pid $(cat "$pid_file")), user $user, remote dir $remote_dir"
  log "try: ssh -i $keys/id_ed25519 -p $port -o UserKnownHostsFile=$keys/known_hosts $user@127.0.0.1 docker ps"
  log "wrote ${env_file#"$repo"/}"
}

status() {
  if ! sshd_running; then
    log "sshd is not running (scripts/test-env/vm.sh up starts it)"
    return 1
  fi
  log "sshd on 127.0.0.1:$port (pid $(cat "$pid_file"))"
  if ssh_cmd true 2>/dev/null; then log "login as $user: ok"; else log "login as $user: FAILED (see $log_file)"; return 1; fi
  local v
  if v="$(ssh_cmd docker version --format '{{.Server.Version}}' 2>/dev/null)"; then
    log "engine via $user's docker: ok (server $v)"
  else
    log "engine via $user's docker: not reachable"
    return 1
  fi
}

down() {
  stop_sshd
  rm -f "$env_file"
  log "sshd stopped (keys, user $user and $vm are kept for the next up)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
