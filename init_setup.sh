#!/usr/bin/env bash
# Prepares a fresh Ubuntu 22.04/24.04 or Debian 12 VM for Berth, once, as a sudo user:
#
#   sudo ./init_setup.sh [--dry-run] [--env-file PATH]
#
# Run it from a checkout (or a copy) of the repository: it reads its settings from .env next to
# it (see the "setup" section of .env.example) and copies .env.example, the monitoring compose
# file, prometheus/, alertmanager/, blackbox/, node-exporter/, grafana/,
# src/deploy/remote/db-backup.sh and scripts/db-monitor-role.sql from there. Every
# step first checks what is already true and changes only what is not, so a second run changes
# nothing and says so.
# --dry-run prints every command and file it would change, and changes none.
set -euo pipefail

readonly SUPPORTED="Ubuntu 22.04, Ubuntu 24.04, Debian 12"
readonly DOCKER_PACKAGES=(docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin)
readonly SSHD_DROPIN=/etc/ssh/sshd_config.d/10-berth-hardening.conf
readonly GRAFANA_PORT=8950
# Public app port per environment (the proxy container publishes it; see docker-compose.yml).
declare -A APP_PORTS=([production]=8000 [staging]=8001 [testing]=8002)
# Monitoring variables that are secrets: generated once when empty, never overwritten.
readonly GENERATED_SECRETS=(GRAFANA_ADMIN_PASSWORD)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DRY_RUN=0
ENV_FILE="$HERE/.env"
CHANGED=0
UNCHANGED=0
# Set by step_db_exporters, read by step_monitoring: the compose profiles the monitoring .env must
# list, and the exporter changes that running containers only see after a restart.
EXPORTER_PROFILES=()
MONITORING_RESTART=()

usage() {
  cat <<EOF
Usage: sudo $0 [--dry-run] [--env-file PATH]

Installs Docker Engine and the compose plugin, creates the deploy user with the CI public key,
hardens SSH, opens the firewall for SSH, the app ports and Grafana, logs in to the registry,
creates the environments' directories and .env files, and starts the monitoring stack.
Supported: $SUPPORTED. Settings: the "setup" section of .env.example, copied into .env.

  --dry-run        print what would change, change nothing
  --env-file PATH  settings file (default: .env next to this script)
EOF
}

join() { local IFS=,; local all="$*"; echo "${all//,/, }"; }
die() { printf 'init_setup: error: %s\n' "$*" >&2; exit 1; }
note() { printf '  %s\n' "$*"; }
changed() { CHANGED=$((CHANGED + 1)); printf '✓ %-18s %s\n' "$1" "$2"; }
unchanged() { UNCHANGED=$((UNCHANGED + 1)); printf '· %-18s nothing to change%s\n' "$1" "${2:+ ($2)}"; }

# Every change goes through run or put_file, so --dry-run is honest by construction.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    note "would run: $*"
  else
    "$@"
  fi
}

# run, with the command's own chatter (ids, "Rules updated") dropped.
run_quiet() {
  if [ "$DRY_RUN" = 1 ]; then
    note "would run: $*"
  else
    "$@" >/dev/null
  fi
}

# put_file DEST MODE OWNER:GROUP < content. Returns 1 when DEST already is exactly that.
put_file() {
  local dest="$1" mode="$2" owner="$3" tmp
  tmp="$(mktemp)"
  cat >"$tmp"
  # OWNER may be names or numeric ids (65534 is nobody:nogroup on Debian, nobody:nobody elsewhere).
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest" \
    && { [ "$(stat -c '%a %U:%G' "$dest")" = "${mode#0} $owner" ] \
      || [ "$(stat -c '%a %u:%g' "$dest")" = "${mode#0} $owner" ]; }; then
    rm -f "$tmp"
    return 1
  fi
  if [ "$DRY_RUN" = 1 ]; then
    note "would write $dest (mode $mode, $owner)"
  else
    [ -d "$(dirname "$dest")" ] || install -d -m 0755 "$(dirname "$dest")"
    install -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$tmp" "$dest"
  fi
  rm -f "$tmp"
}

# A user's home directory, or nothing when the user does not exist (yet).
home_of() { getent passwd "$1" | cut -d: -f6 || true; }

# ---------------------------------------------------------------------------------------------
# settings

# Reads KEY=VALUE lines without executing the file (it holds secrets and is not a script).
# A variable already set in the environment wins, as with dotenv.
load_env_file() {
  local file="$1" line key value
  [ -f "$file" ] || die "$file not found: copy .env.example to .env and fill in the setup section (CI_PUBLIC_KEY at least)"
  while IFS= read -r line || [ -n "$line" ]; do
    [[ "$line" =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key="${BASH_REMATCH[1]}"
    value="${BASH_REMATCH[2]}"
    value="${value%$'\r'}"
    if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then value="${BASH_REMATCH[1]}"; fi
    [ -n "${!key+set}" ] || printf -v "$key" '%s' "$value"
  done <"$file"
}

check_settings() {
  DEPLOY_USER="${DEPLOY_USER:-deploy}"
  REGISTRY="${REGISTRY:-docker.io}"
  REGISTRY_USERNAME="${REGISTRY_USERNAME:-}"
  REGISTRY_TOKEN="${REGISTRY_TOKEN:-}"
  BERTH_REMOTE_DIR="${BERTH_REMOTE_DIR:-/opt/berth}"
  BERTH_ENVIRONMENTS="${BERTH_ENVIRONMENTS:-production staging testing}"
  CI_PUBLIC_KEY="${CI_PUBLIC_KEY:-}"
  DEPLOY_BACKUP_KEEP="${DEPLOY_BACKUP_KEEP:-7}"

  [ -n "$CI_PUBLIC_KEY" ] || die "CI_PUBLIC_KEY is not set in $ENV_FILE: the public half of the key GitHub Actions deploys with (ssh-keygen -t ed25519 -f berth-ci; paste berth-ci.pub)"
  [[ "$CI_PUBLIC_KEY" =~ ^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh.com)\ [A-Za-z0-9+/]+=*(\ .*)?$ ]] \
    || die "CI_PUBLIC_KEY does not look like an OpenSSH public key line ('ssh-ed25519 AAAA... comment'); did you paste the private key?"
  [[ "$DEPLOY_USER" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "DEPLOY_USER '$DEPLOY_USER' is not a valid user name"
  [[ "$DEPLOY_BACKUP_KEEP" =~ ^[1-9][0-9]{0,2}$ ]] || die "DEPLOY_BACKUP_KEEP must be a number of backups from 1 to 999, got '$DEPLOY_BACKUP_KEEP'"
  [[ "$BERTH_REMOTE_DIR" = /* ]] || die "BERTH_REMOTE_DIR must be an absolute path, got '$BERTH_REMOTE_DIR'"
  if [ -n "$REGISTRY_USERNAME" ] && [ -z "$REGISTRY_TOKEN" ]; then
    die "REGISTRY_USERNAME is set but REGISTRY_TOKEN is not: set both (a read-only access token) or neither (public images)"
  fi
  local env
  for env in $BERTH_ENVIRONMENTS; do
    [ -n "${APP_PORTS[$env]:-}" ] || die "BERTH_ENVIRONMENTS: unknown environment '$env' (production, staging, testing)"
  done
}

check_os() {
  [ -r /etc/os-release ] || die "cannot read /etc/os-release; supported: $SUPPORTED"
  local id version name
  # Read in subshells: os-release is a shell fragment whose names must not leak in here.
  # shellcheck source=/dev/null
  id="$(. /etc/os-release && echo "${ID:-}")"
  # shellcheck source=/dev/null
  version="$(. /etc/os-release && echo "${VERSION_ID:-}")"
  # shellcheck source=/dev/null
  name="$(. /etc/os-release && echo "${PRETTY_NAME:-$id $version}")"
  case "$id $version" in
    "ubuntu 22.04" | "ubuntu 24.04" | "debian 12") ;;
    *) die "unsupported OS: $name. Supported: $SUPPORTED" ;;
  esac
  OS_ID="$id"
  # shellcheck source=/dev/null
  OS_CODENAME="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  [ -n "$OS_CODENAME" ] || die "/etc/os-release has no VERSION_CODENAME"
  OS_NAME="$name"
}

# Disabling password and root login must not lock out the person running this.
check_not_locking_out() {
  local user="${SUDO_USER:-}" home
  if [ -z "$user" ] || [ "$user" = root ]; then
    die "run this as a sudo user, not as root: it disables root SSH login. Create one first (adduser NAME && usermod -aG sudo NAME, copy your key to /home/NAME/.ssh/authorized_keys), log in as NAME and run sudo $0"
  fi
  home="$(home_of "$user")"
  [ -s "$home/.ssh/authorized_keys" ] \
    || die "$user has no SSH key in $home/.ssh/authorized_keys: password login is about to be disabled and you would be locked out. Add your public key there first"
}

# ---------------------------------------------------------------------------------------------
# steps

step_packages() {
  local missing=()
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v ufw >/dev/null 2>&1 || missing+=(ufw)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  [ -s /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
  if [ "${#missing[@]}" = 0 ]; then unchanged packages; return; fi
  run apt-get update -qq
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  changed packages "installed ${missing[*]}"
}

step_docker() {
  if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    # app.env is read with `env_file: format: raw`, which compose has since 2.30.
    local compose_version
    compose_version="$(docker compose version --short 2>/dev/null | sed 's/^v//')"
    if [ "$(printf '%s\n2.30.0\n' "$compose_version" | sort -V | head -n1)" != 2.30.0 ]; then
      die "docker compose $compose_version is older than 2.30 (needed for app.env's raw format): apt-get install --only-upgrade docker-compose-plugin, then run again"
    fi
    unchanged docker "$(docker compose version 2>/dev/null | head -n1)"
    return
  fi
  # A distribution docker without the compose v2 plugin: replacing it is the operator's call.
  if command -v docker >/dev/null 2>&1; then
    die "docker is installed but 'docker compose' (the v2 plugin) is not. Remove the distribution's docker (apt-get remove docker.io docker-compose) and run again, or install docker-compose-plugin from Docker's repository"
  fi
  local arch list
  arch="$(dpkg --print-architecture)"
  list="deb [arch=$arch signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/$OS_ID $OS_CODENAME stable"
  run install -d -m 0755 /etc/apt/keyrings
  run curl -fsSL "https://download.docker.com/linux/$OS_ID/gpg" -o /etc/apt/keyrings/docker.asc
  run chmod a+r /etc/apt/keyrings/docker.asc
  printf '%s\n' "$list" | put_file /etc/apt/sources.list.d/docker.list 0644 root:root || true
  run apt-get update -qq
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${DOCKER_PACKAGES[@]}"
  changed docker "installed ${DOCKER_PACKAGES[*]} from Docker's apt repository"
}

step_docker_service() {
  if systemctl is-enabled --quiet docker 2>/dev/null && systemctl is-active --quiet docker 2>/dev/null; then
    unchanged "docker service"
    return
  fi
  run systemctl enable --now docker
  changed "docker service" "enabled and started"
}

step_deploy_user() {
  local user="$DEPLOY_USER" home did=()
  if ! getent group docker >/dev/null; then
    run groupadd --system docker
    did+=("group docker")
  fi
  if ! id -u "$user" >/dev/null 2>&1; then
    run useradd --create-home --shell /bin/bash --groups docker "$user"
    did+=("created")
  elif [[ " $(id -nG "$user") " != *" docker "* ]]; then
    run usermod --append --groups docker "$user"
    did+=("added to group docker")
  fi
  # useradd leaves the password field '!' (locked); sshd with UsePAM=no then refuses even keys.
  # '*' means "no password can ever match" without locking the account.
  if [ "$(getent shadow "$user" | cut -d: -f2 || true)" != "*" ]; then
    run usermod --password '*' "$user"
    did+=("no password")
  fi
  home="$(home_of "$user")"
  home="${home:-/home/$user}"
  if [ "$(stat -c '%a %U' "$home/.ssh" 2>/dev/null)" != "700 $user" ]; then
    run install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
    did+=("$home/.ssh")
  fi
  local keys="$home/.ssh/authorized_keys" current=""
  [ -f "$keys" ] && current="$(cat "$keys")"
  if ! grep -qxF -- "$CI_PUBLIC_KEY" <<<"$current"; then
    { [ -n "$current" ] && printf '%s\n' "$current"; printf '%s\n' "$CI_PUBLIC_KEY"; } \
      | put_file "$keys" 0600 "$user:$user" || true
    did+=("CI key")
  elif [ "$(stat -c '%a %U' "$keys")" != "600 $user" ]; then
    run chown "$user:$user" "$keys"
    run chmod 0600 "$keys"
    did+=("key file mode")
  fi
  if [ "${#did[@]}" = 0 ]; then unchanged "deploy user" "$user"; else changed "deploy user" "$user: $(join "${did[@]}")"; fi
}

step_sshd() {
  grep -Eqi '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\.d/\*\.conf' /etc/ssh/sshd_config \
    || die "/etc/ssh/sshd_config does not include /etc/ssh/sshd_config.d/*.conf; add 'Include /etc/ssh/sshd_config.d/*.conf' at its top and run again"
  # sshd keeps the FIRST value it reads, and drop-ins are read in name order: 10- sorts before
  # cloud-init's 50-cloud-init.conf, which turns password login back on on some images.
  if put_file "$SSHD_DROPIN" 0644 root:root <<'EOF'; then
# Written by Berth's init_setup.sh: keys only, no root login.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
PermitRootLogin no
PubkeyAuthentication yes
MaxAuthTries 3
X11Forwarding no
EOF
    if [ "$DRY_RUN" = 1 ]; then
      note "would run: sshd -t && systemctl try-reload-or-restart ssh"
      changed sshd "would harden via $SSHD_DROPIN"
      return
    fi
    if ! sshd -t; then
      rm -f "$SSHD_DROPIN"
      die "sshd -t rejected the configuration with $SSHD_DROPIN; removed it again, sshd left as it was"
    fi
    check_sshd_effective
    # Ubuntu 24.04 starts sshd from ssh.socket: a plain reload fails while ssh.service is idle.
    run systemctl try-reload-or-restart ssh
    changed sshd "hardened via $SSHD_DROPIN and reloaded"
  else
    check_sshd_effective
    unchanged sshd
  fi
}

# What sshd will really do, after every drop-in and default: fail if something still wins.
check_sshd_effective() {
  local effective
  effective="$(sshd -T 2>/dev/null)" || die "sshd -T failed: run 'sshd -t' to see why"
  grep -qx 'passwordauthentication no' <<<"$effective" \
    || die "sshd still allows password login: another file in /etc/ssh/sshd_config or sshd_config.d sets PasswordAuthentication earlier"
  grep -qx 'permitrootlogin no' <<<"$effective" \
    || die "sshd still allows root login: another file in /etc/ssh/sshd_config or sshd_config.d sets PermitRootLogin earlier"
}

step_firewall() {
  local rules=() rule added missing=() env ssh_port
  # The port(s) sshd really listens on, so a wrong setting can never close SSH.
  for ssh_port in $(sshd -T 2>/dev/null | awk '$1 == "port" { print $2 }'); do rules+=("$ssh_port/tcp"); done
  [ "${#rules[@]}" -gt 0 ] || rules+=("22/tcp")
  for env in $BERTH_ENVIRONMENTS; do rules+=("${APP_PORTS[$env]}/tcp"); done
  # With a domain the edge serves HTTPS (and Grafana when it has one; no rule is ever removed,
  # so an upgraded VM's old ports keep answering).
  if edge_wanted; then rules+=("80/tcp" "443/tcp"); fi
  [ -n "${GRAFANA_DOMAIN:-}" ] || rules+=("$GRAFANA_PORT/tcp")
  added="$(ufw show added 2>/dev/null || true)"
  for rule in "${rules[@]}"; do
    grep -qx "ufw allow $rule" <<<"$added" || missing+=("$rule")
  done
  local active=0 status
  status="$(ufw status 2>/dev/null || true)"
  grep -qx 'Status: active' <<<"$status" && active=1
  if [ "${#missing[@]}" = 0 ] && [ "$active" = 1 ]; then
    unchanged firewall "allows ${rules[*]}"
    return
  fi
  if [ "$active" = 0 ]; then
    run ufw default deny incoming
    run ufw default allow outgoing
  fi
  for rule in "${missing[@]}"; do run_quiet ufw allow "$rule"; done
  # SSH is allowed above before this, so enabling never cuts the session running this script.
  [ "$active" = 1 ] || run_quiet ufw --force enable
  changed firewall "allows ${rules[*]}; everything else inbound is denied"
  note "Docker publishes container ports past ufw: keep internal services bound to 127.0.0.1"
}

step_registry_login() {
  if [ -z "$REGISTRY_USERNAME" ]; then
    unchanged "registry login" "REGISTRY_USERNAME not set: public images"
    return
  fi
  local home key config
  home="$(home_of "$DEPLOY_USER")"
  home="${home:-/home/$DEPLOY_USER}"
  config="$home/.docker/config.json"
  # docker stores Docker Hub credentials under its legacy index URL.
  key="$REGISTRY"
  [ "$REGISTRY" = docker.io ] && key="https://index.docker.io/v1/"
  if [ -f "$config" ] && grep -qF "\"$key\"" "$config"; then
    unchanged "registry login" "$DEPLOY_USER is logged in to $REGISTRY"
    return
  fi
  if [ "$DRY_RUN" = 1 ]; then
    note "would run: docker login --username $REGISTRY_USERNAME --password-stdin $REGISTRY (as $DEPLOY_USER, token on stdin)"
  else
    # printf is a shell builtin: the token never appears in a process's arguments.
    printf '%s\n' "$REGISTRY_TOKEN" \
      | runuser -u "$DEPLOY_USER" -- env HOME="$home" docker login --username "$REGISTRY_USERNAME" --password-stdin "$REGISTRY" >/dev/null \
      || die "docker login to $REGISTRY as $REGISTRY_USERNAME failed: check REGISTRY_USERNAME and REGISTRY_TOKEN"
  fi
  changed "registry login" "$DEPLOY_USER logged in to $REGISTRY"
}

# The lines of one "# --- section:NAME" block of .env.example.
example_section() {
  awk -v name="$1" '
    $0 ~ "^# --- section:" name "( |$)" { inside = 1; next }
    $0 ~ "^# --- /section:" name "( |$)" { inside = 0 }
    inside' "$HERE/.env.example"
}

# Prints .env.example's sections with KEY=VALUE overrides applied (added when absent).
env_from_example() {
  local sections="$1"; shift
  local section
  for section in $sections; do example_section "$section"; done \
    | awk -v overrides="$*" '
      BEGIN { n = split(overrides, pairs, " "); for (i = 1; i <= n; i++) { split(pairs[i], kv, "="); want[kv[1]] = pairs[i] } }
      match($0, /^[A-Za-z_][A-Za-z0-9_]*=/) { key = substr($0, 1, RLENGTH - 1); if (key in want) { print want[key]; done[key] = 1; next } }
      { print }
      END { for (k in want) if (!(k in done)) print want[k] }'
}

step_env_dirs() {
  [ -f "$HERE/.env.example" ] || die "$HERE/.env.example not found: run init_setup.sh from a checkout of the repository"
  local did=() env dir
  if [ "$(stat -c '%a %U' "$BERTH_REMOTE_DIR" 2>/dev/null)" != "755 root" ]; then
    run install -d -m 0755 -o root -g root "$BERTH_REMOTE_DIR"
    did+=("$BERTH_REMOTE_DIR")
  fi
  for env in $BERTH_ENVIRONMENTS; do
    dir="$BERTH_REMOTE_DIR/$env"
    if [ "$(stat -c '%a %U' "$dir" 2>/dev/null)" != "750 $DEPLOY_USER" ]; then
      run install -d -m 0750 -o "$DEPLOY_USER" -g "$DEPLOY_USER" "$dir"
      did+=("$dir")
    fi
    # The app's settings (app.env, read raw) apart from compose's (.env). A VM set up before the
    # split keeps its app settings in .env: app.env starts as a byte-for-byte copy of it, which is
    # what the app was given until then. Both are the operator's files: never overwritten.
    if [ ! -f "$dir/app.env" ]; then
      if [ -f "$dir/.env" ]; then
        run install -m 0600 -o "$DEPLOY_USER" -g "$DEPLOY_USER" "$dir/.env" "$dir/app.env"
      else
        {
          printf '# %s app settings: created by init_setup.sh; yours to edit. KEY=VALUE, the value\n' "$env"
          printf '# byte for byte (no quotes, no $ expansion, no comment after a value).\n'
          env_from_example "service"
        } | put_file "$dir/app.env" 0600 "$DEPLOY_USER:$DEPLOY_USER" || true
      fi
      did+=("$dir/app.env")
    fi
    if [ ! -f "$dir/.env" ]; then
      {
        printf '# %s environment: created by init_setup.sh from .env.example; yours to edit.\n' "$env"
        printf '# Read by docker compose only; the app reads app.env.\n'
        env_from_example "image" "BERTH_ENV=$env" "APP_PORT=${APP_PORTS[$env]}"
      } | put_file "$dir/.env" 0600 "$DEPLOY_USER:$DEPLOY_USER" || true
      did+=("$dir/.env")
    fi
  done
  if [ "${#did[@]}" = 0 ]; then unchanged environments "$BERTH_ENVIRONMENTS"; else changed environments "created $(join "${did[@]}")"; fi
}

step_network() {
  if docker network inspect berth >/dev/null 2>&1; then
    unchanged network berth
    return
  fi
  run_quiet docker network create berth
  changed network "created docker network berth"
}

# The monitoring .env: .env.example's monitoring section, values from the settings file for
# every variable the monitoring compose file reads, and secrets generated once. An existing file
# is kept; only empty secrets are filled.
monitoring_env() {
  local file="$1" out key value line
  if [ -f "$file" ]; then out="$(cat "$file")"; else
    out="# Monitoring stack: created by init_setup.sh from .env.example; yours to edit."$'\n'
    while IFS= read -r line; do
      if [[ "$line" =~ ^([A-Za-z_][A-Za-z0-9_]*)= ]]; then
        key="${BASH_REMATCH[1]}"
        [ -z "${!key:-}" ] || line="$key=${!key}"
      fi
      out+="$line"$'\n'
    done < <(example_section monitoring)
    while IFS= read -r key; do
      grep -qE "^$key=" <<<"$out" || [ -z "${!key:-}" ] || out+="$key=${!key}"$'\n'
    done < <(grep -oE '[$][{][A-Za-z_][A-Za-z0-9_]*' "$HERE/docker-compose.monitoring.yml" | cut -c3- | sort -u)
  fi
  for key in "${GENERATED_SECRETS[@]}"; do
    value="$(grep -E "^$key=" <<<"$out" | tail -n1 | cut -d= -f2-)"
    [ -z "$value" ] || continue
    value="$(openssl rand -base64 33 | tr -d '/+=\n' | cut -c1-32)"
    if grep -qE "^$key=" <<<"$out"; then
      # Fill the empty KEY= line in place, next to its comment.
      out="$(awk -v k="$key" -v v="$value" 'index($0, k "=") == 1 { print k "=" v; next } { print }' <<<"$out")"
    else
      out+="$key=$value"
    fi
  done
  # The exporters' profiles join whatever the operator listed (never removed: an operator may
  # have added a profile by hand). Every COMPOSE_PROFILES line gets the merged list, so no
  # earlier or later line can win over it.
  if [ "${#EXPORTER_PROFILES[@]}" -gt 0 ]; then
    local profiles profile
    profiles="$(grep -E '^COMPOSE_PROFILES=' <<<"$out" | tail -n1 | cut -d= -f2- || true)"
    for profile in "${EXPORTER_PROFILES[@]}"; do
      [[ ",$profiles," == *",$profile,"* ]] || profiles="${profiles:+$profiles,}$profile"
    done
    if grep -qE '^COMPOSE_PROFILES=' <<<"$out"; then
      out="$(awk -v v="$profiles" 'index($0, "COMPOSE_PROFILES=") == 1 { print "COMPOSE_PROFILES=" v; next } { print }' <<<"$out")"
    else
      out="${out%$'\n'}"$'\n'"COMPOSE_PROFILES=$profiles"
    fi
  fi
  printf '%s\n' "${out%$'\n'}"
}

# The scrape targets belong to the deploys: the deploy user writes app-<env>.yml and
# probe-<env>.yml here (docs/monitoring.md, "Environments"). Files from when environments were
# listed by hand are moved aside, not deleted (they may hold an operator's edits), before
# Prometheus starts reading the new config.
step_monitoring_targets() {
  local dir="$BERTH_REMOTE_DIR/monitoring/prometheus/targets" aside f did=() moved=()
  aside="$BERTH_REMOTE_DIR/monitoring/prometheus/targets.hand-listed"
  if [ "$(stat -c '%a %U' "$dir" 2>/dev/null)" != "755 $DEPLOY_USER" ]; then
    run install -d -m 0755 -o "$DEPLOY_USER" -g "$DEPLOY_USER" "$dir"
    did+=("$dir writable by $DEPLOY_USER")
  fi
  for f in "$dir"/*.yml; do
    [ -f "$f" ] || continue
    grep -qE '^# .* Written by (every deploy of |init_setup\.sh)' "$f" || moved+=("${f##*/}")
  done
  if [ "${#moved[@]}" -gt 0 ]; then
    [ -d "$aside" ] || run install -d -m 0755 -o root -g root "$aside"
    for f in "${moved[@]}"; do run mv --backup=numbered "$dir/$f" "$aside/$f"; done
    did+=("moved hand-listed ${moved[*]} to $aside")
    note "each environment is scraped and probed again from its next deploy (npm run deploy)"
  fi
  if [ "${#did[@]}" = 0 ]; then
    unchanged "scrape targets" "written by the deploys"
  else
    changed "scrape targets" "$(join "${did[@]}")"
  fi
}

# The exporters' password files' directory: only uid 65534 (the image's `nobody`) reads it.
secrets_dir() {
  if [ "$(stat -c '%a %u:%g' "$1" 2>/dev/null)" != "700 65534:65534" ]; then
    run install -d -m 0700 -o 65534 -g 65534 "$1"
  fi
}

# The role the environment's exporter logs in as (scripts/db-monitor-role.sql), given the password
# from its file; the SQL goes to psql in the database's container on stdin. Fails when the
# environment's database container is not running.
monitor_role() {
  local env=$1 password=$2 db
  [ -f "$HERE/scripts/db-monitor-role.sql" ] || die "$HERE/scripts/db-monitor-role.sql not found: run init_setup.sh from a checkout of the repository"
  db="$(docker ps -q --filter "label=com.docker.compose.project=berth-$env" --filter label=com.docker.compose.service=db 2>/dev/null | head -n 1)"
  [ -n "$db" ] || return 1
  if [ "$DRY_RUN" = 1 ]; then
    note "would run: docker exec -i $db psql -U berth -d berth (role berth_monitor; its password on stdin)"
    return 0
  fi
  { printf '\\set pw %s\n' "$password"; cat "$HERE/scripts/db-monitor-role.sql"; } |
    docker exec -i "$db" psql -X -q -v ON_ERROR_STOP=1 -U berth -d berth >/dev/null
}

# Connects each environment's database to its postgres-exporter-<env> (docker-compose.monitoring.yml):
# the password file the exporter reads, the target Prometheus scrapes, and the compose profile that
# starts it (written into the monitoring .env by step_monitoring, which then starts the exporter or
# restarts the stack so it reads a changed password). Only for an environment with a DB_PASSWORD
# whose compose network exists: the exporter joins berth-<env>_default as an external network, and
# `docker compose up` of the whole stack fails while that network is missing (before the
# environment's first deploy). Such an environment gets nothing here (no target, so nothing
# pages) and is connected by the first run after its first deploy.
step_db_exporters() {
  local mon="$BERTH_REMOTE_DIR/monitoring" env upper password secret user target file monitor fresh
  local did=() waiting=() connected=() no_role=()
  local secrets="$mon/secrets" targets="$mon/prometheus/targets" profiles=""
  profiles="$(grep -E '^COMPOSE_PROFILES=' "$mon/.env" 2>/dev/null | tail -n1 | cut -d= -f2- || true)"
  for env in $BERTH_ENVIRONMENTS; do
    password="$(grep -E '^DB_PASSWORD=' "$BERTH_REMOTE_DIR/$env/.env" 2>/dev/null | tail -n1 | cut -d= -f2- || true)"
    [ -n "$password" ] || continue
    if ! docker network inspect "berth-${env}_default" >/dev/null 2>&1; then
      waiting+=("$env")
      continue
    fi
    connected+=("$env")
    EXPORTER_PROFILES+=("postgres-$env")
    [[ ",$profiles," == *",postgres-$env,"* ]] || did+=("$env: profile postgres-$env")
    upper="${env^^}"
    secret="$(grep -E "^POSTGRES_PASSWORD_FILE_$upper=" "$mon/.env" 2>/dev/null | tail -n1 | cut -d= -f2- || true)"
    user="$(grep -E "^POSTGRES_USER_$upper=" "$mon/.env" 2>/dev/null | tail -n1 | cut -d= -f2- || true)"
    file="$secrets/postgres-$env.password"
    if [ -n "$secret" ]; then
      # The operator keeps this password file elsewhere (docs/monitoring.md): theirs to fill.
      note "$env: the exporter's password file is POSTGRES_PASSWORD_FILE_$upper in $mon/.env: left alone (it must hold the password of ${user:-berth_monitor}, POSTGRES_USER_$upper; init_setup.sh makes berth_monitor only with its own file)"
    elif [ -n "$user" ] && [ "$user" != berth_monitor ]; then
      # An operator's own login (an older .env named the owner, berth): as before berth_monitor,
      # its password file follows DB_PASSWORD.
      secrets_dir "$secrets"
      if printf '%s' "$password" | put_file "$file" 0600 65534:65534; then
        did+=("$env: password file")
        MONITORING_RESTART+=("postgres-$env password")
      fi
      note "$env: the exporter logs in as $user (POSTGRES_USER_$upper in $mon/.env), with DB_PASSWORD; remove that line for berth_monitor (pg_monitor only)"
    else
      # The exporter logs in as berth_monitor (pg_monitor only) with a password of its own, made
      # once. A file from before berth_monitor (it held the owner's password), or anything not
      # made here, is made anew. The role comes first and the file after: a file whose password
      # the role does not have would lock the exporter out. Only uid 65534 (the image's
      # `nobody`) reads the file. The password goes through a pipe from printf (a builtin),
      # never an argument; no newline, the file holds only the password.
      secrets_dir "$secrets"
      monitor="$(cat "$file" 2>/dev/null || true)"
      fresh=0
      if [ "$monitor" = "$password" ] || ! [[ "$monitor" =~ ^[A-Za-z0-9]{32}$ ]]; then
        monitor="$(openssl rand -base64 33 | tr -d '/+=\n' | cut -c1-32)"
        fresh=1
      fi
      if ! monitor_role "$env" "$monitor"; then
        no_role+=("$env")
      elif [ "$fresh" = 1 ] && printf '%s' "$monitor" | put_file "$file" 0600 65534:65534; then
        did+=("$env: password file")
        MONITORING_RESTART+=("postgres-$env password")
      fi
    fi
    target="$targets/postgres-$env.yml"
    if [ -e "$target.down" ]; then
      note "$env: taken down (npm run deploy -- down --env $env): its database target stays parked until the next deploy"
      continue
    fi
    if put_file "$target" 0644 "$DEPLOY_USER:$DEPLOY_USER" <<EOF; then did+=("$env: ${target##*/}"); fi
# The database of Berth's $env environment, through its postgres_exporter. Written by init_setup.sh
# from DB_PASSWORD in $BERTH_REMOTE_DIR/$env/.env (docs/monitoring.md, "The database").
- targets: [postgres-exporter-$env:9187]
  labels: {env: $env}
EOF
  done
  [ "${#waiting[@]}" = 0 ] || note "database not watched yet (no compose network berth-<env>_default before the first deploy): ${waiting[*]}; run init_setup.sh again after it"
  # Said in the step's own line too: its exporter reports pg_up 0 (and pages) until a run that
  # finds the database running gives it the role.
  local role_note=""
  if [ "${#no_role[@]}" -gt 0 ]; then
    role_note="; no role berth_monitor yet in ${no_role[*]}: its database is not running (docker compose -p berth-<env> ps db), run init_setup.sh again once it is"
  fi
  if [ "${#did[@]}" -gt 0 ]; then
    changed "db exporters" "$(join "${did[@]}") (password never printed)$role_note"
  elif [ "${#connected[@]}" -gt 0 ]; then
    unchanged "db exporters" "watching ${connected[*]}$role_note"
  else
    unchanged "db exporters" "no database deployed yet"
  fi
}

step_monitoring() {
  local dir="$BERTH_REMOTE_DIR/monitoring" src did=() compose
  compose="$HERE/docker-compose.monitoring.yml"
  [ -f "$compose" ] || die "$compose not found: run init_setup.sh from a checkout of the repository"
  if [ "$(stat -c '%a %U' "$dir" 2>/dev/null)" != "755 root" ]; then
    run install -d -m 0755 -o root -g root "$dir"
    did+=("$dir")
  fi
  # Config files are read by non-root containers: world-readable, root-owned. The promtool
  # tests stay in the repository.
  local files=0
  while IFS= read -r src; do
    put_file "$dir/$src" 0644 root:root <"$HERE/$src" && files=$((files + 1))
  done < <(cd "$HERE" && find docker-compose.monitoring.yml prometheus alertmanager blackbox node-exporter grafana -type f \
    ! -path '*/tests/*' ! -name '.*' 2>/dev/null | sort)
  [ "$files" = 0 ] || did+=("$files config files")
  if monitoring_env "$dir/.env" | put_file "$dir/.env" 0600 root:root; then
    did+=(".env")
    note "Grafana admin password: in $dir/.env (never printed)"
  fi
  if [ "$DRY_RUN" = 0 ] && ! grep -qE '^SLACK_WEBHOOK_URL(_FILE)?=.+' "$dir/.env"; then
    note "Alertmanager will not start until SLACK_WEBHOOK_URL or SLACK_WEBHOOK_URL_FILE is set in $dir/.env"
  fi
  local running=""
  running="$(docker compose --project-name berth-monitoring --project-directory "$dir" -f "$dir/docker-compose.monitoring.yml" ps --status running --quiet 2>/dev/null || true)"
  [ "${#MONITORING_RESTART[@]}" = 0 ] || did+=("${MONITORING_RESTART[@]}")
  if [ "${#did[@]}" = 0 ] && [ -n "$running" ]; then
    unchanged monitoring "running in $dir"
    return
  fi
  local compose_cmd=(docker compose --project-name berth-monitoring --project-directory "$dir" -f "$dir/docker-compose.monitoring.yml")
  run "${compose_cmd[@]}" up -d --remove-orphans
  # Running containers keep the config they read at start; new files need a restart.
  [ -z "$running" ] || [ "${#did[@]}" = 0 ] || run "${compose_cmd[@]}" restart
  [ "${#did[@]}" -gt 0 ] || did+=("was not running")
  changed monitoring "$(join "${did[@]}"): docker compose up -d (Grafana on :$GRAFANA_PORT)"
}

# The HTTPS edge (docs/edge.md): one Caddy per VM on 80/443, started once a domain is set, i.e.
# GRAFANA_DOMAIN in these settings or APP_DOMAIN in an environment's .env (set it there, then run
# this again). Without one nothing changes: the environments stay on their ports over plain HTTP.
edge_wanted() {
  [ -z "${GRAFANA_DOMAIN:-}" ] || return 0
  local env
  for env in $BERTH_ENVIRONMENTS; do
    grep -qE '^APP_DOMAIN=[^[:space:]#]' "$BERTH_REMOTE_DIR/$env/.env" 2>/dev/null && return 0
  done
  return 1
}

# The edge's .env: .env.example's edge section with the values of these settings. No secrets:
# readable by the deploy user, whose deploys read the ACME and Grafana settings from it. Created
# once, then the operator's.
edge_env() {
  local file="$1" line key
  if [ -f "$file" ]; then cat "$file"; return; fi
  echo "# The HTTPS edge: created by init_setup.sh from .env.example; yours to edit (docs/edge.md)."
  while IFS= read -r line; do
    if [[ "$line" =~ ^([A-Za-z_][A-Za-z0-9_]*)= ]]; then
      key="${BASH_REMATCH[1]}"
      [ -z "${!key:-}" ] || line="$key=${!key}"
    fi
    printf '%s\n' "$line"
  done < <(example_section edge)
}

step_edge() {
  local dir="$BERTH_REMOTE_DIR/edge" did=() src files=0
  if ! edge_wanted; then
    unchanged edge "no APP_DOMAIN or GRAFANA_DOMAIN yet: environments answer on their ports over plain HTTP"
    return
  fi
  [ -f "$HERE/docker-compose.edge.yml" ] || die "$HERE/docker-compose.edge.yml not found: run init_setup.sh from a checkout of the repository"
  if [ "$(stat -c '%a %U' "$dir" 2>/dev/null)" != "755 root" ]; then
    run install -d -m 0755 -o root -g root "$dir"
    did+=("$dir")
  fi
  # Roots of a private ACME CA go here (ACME_CA_ROOT); compose mounts the folder read-only.
  if [ ! -d "$dir/edge/trust" ]; then
    run install -d -m 0755 -o root -g root "$dir/edge" "$dir/edge/trust"
    did+=("$dir/edge/trust")
  fi
  for src in docker-compose.edge.yml edge/bootstrap.json; do
    put_file "$dir/$src" 0644 root:root <"$HERE/$src" && files=$((files + 1))
  done
  [ "$files" = 0 ] || did+=("$files config files")
  if edge_env "$dir/.env" | put_file "$dir/.env" 0644 root:root; then did+=(".env"); fi
  local compose=(docker compose --project-name berth-edge --project-directory "$dir" -f "$dir/docker-compose.edge.yml")
  local running=""
  running="$("${compose[@]}" ps --status running --quiet 2>/dev/null || true)"
  if [ "${#did[@]}" = 0 ] && [ -n "$running" ]; then
    unchanged edge "running in $dir"
    return
  fi
  # Caddy resumes its last loaded config (--resume), so a recreated edge keeps every site and
  # upstream the deploys set; certificates are on the berth-edge-data volume.
  run "${compose[@]}" up -d --remove-orphans
  [ "${#did[@]}" -gt 0 ] || did+=("was not running")
  changed edge "$(join "${did[@]}"): docker compose up -d (ports 80 and 443; a deploy adds each domain)"
}

# The end of every step that installs a systemd timer: reload units when a file changed, enable
# the timer unless it is enabled and running, report. STEP TIMER WHAT [what the step changed...]
finish_timer() {
  local step="$1" timer="$2" what="$3"
  shift 3
  local did=("$@")
  [ "${#did[@]}" = 0 ] || run systemctl daemon-reload
  if [ "${#did[@]}" = 0 ] && systemctl is-enabled --quiet "$timer" 2>/dev/null \
    && systemctl is-active --quiet "$timer" 2>/dev/null; then
    unchanged "$step" "$what"
    return
  fi
  run systemctl enable --now "$timer"
  did+=("timer enabled ($what)")
  changed "$step" "$(join "${did[@]}")"
}

# Docker's health verdicts reach Prometheus through node-exporter's textfile directory, written
# every minute by node-exporter/berth-container-health.sh. A systemd timer, not cron: every
# supported VM has systemd, not every cloud image has cron, and the journal keeps its failures.
step_container_health() {
  local unit=/etc/systemd/system/berth-container-health did=()
  local script="$BERTH_REMOTE_DIR/monitoring/node-exporter/berth-container-health.sh"
  if put_file "$unit.service" 0644 root:root <<EOF
[Unit]
Description=Berth: Docker's container health verdicts for node-exporter (ContainerUnhealthy)
After=docker.service
Wants=docker.service

[Service]
Type=oneshot
Environment=TEXTFILE_DIR=/var/lib/node_exporter/textfile_collector
ExecStart=/bin/sh $script
EOF
  then did+=("${unit##*/}.service"); fi
  if put_file "$unit.timer" 0644 root:root <<EOF
[Unit]
Description=Berth: container health verdicts every minute

[Timer]
OnBootSec=30s
OnUnitActiveSec=1min
AccuracySec=5s

[Install]
WantedBy=timers.target
EOF
  then did+=("${unit##*/}.timer"); fi
  finish_timer "container health" berth-container-health.timer "every minute" "${did[@]}"
}

# Prints FILE with KEY=VALUE where KEY= was empty (in place) or absent (appended). The value comes
# from the environment (VALUE), never from an argument: arguments are visible in `ps`.
with_key() {
  { cat "$1" 2>/dev/null || true; } | KEY="$2" awk '
    BEGIN { k = ENVIRON["KEY"]; v = ENVIRON["VALUE"] }
    $0 == k "=" && !done { print k "=" v; done = 1; next }
    index($0, k "=") == 1 { done = 1 }
    { print }
    END { if (!done) print k "=" v }'
}

# Each environment's PostgreSQL (the `db` service, started by the deploy): a password generated
# once into .env (DB_PASSWORD, for the db container), the app's DATABASE_URL naming the db on the
# environment's own network in app.env, and a private backups directory. A value already there is
# never replaced: the data volume only knows the password it was created with.
step_databases() {
  local did=() env dir password
  for env in $BERTH_ENVIRONMENTS; do
    dir="$BERTH_REMOTE_DIR/$env"
    password="$(grep -E '^DB_PASSWORD=' "$dir/.env" 2>/dev/null | tail -n1 | cut -d= -f2- || true)"
    if [ -z "$password" ]; then
      if docker volume inspect "berth-$env-db" >/dev/null 2>&1; then
        die "$dir/.env has no DB_PASSWORD but the database volume berth-$env-db exists: put back the password it was created with (DB_PASSWORD=... in $dir/.env) and run again"
      fi
      password="$(openssl rand -base64 33 | tr -d '/+=\n' | cut -c1-32)"
      VALUE="$password" with_key "$dir/.env" DB_PASSWORD | put_file "$dir/.env" 0600 "$DEPLOY_USER:$DEPLOY_USER" || true
      did+=("$env: database password")
    fi
    if ! grep -qE '^DATABASE_URL=.+' "$dir/app.env" 2>/dev/null; then
      VALUE="postgres://berth:$password@berth-$env-db:5432/berth" with_key "$dir/app.env" DATABASE_URL \
        | put_file "$dir/app.env" 0600 "$DEPLOY_USER:$DEPLOY_USER" || true
      did+=("$env: DATABASE_URL")
    fi
    if [ "$(stat -c '%a %U' "$dir/backups" 2>/dev/null)" != "700 $DEPLOY_USER" ]; then
      run install -d -m 0700 -o "$DEPLOY_USER" -g "$DEPLOY_USER" "$dir/backups"
      did+=("$dir/backups")
    fi
  done
  if [ "${#did[@]}" = 0 ]; then unchanged databases "passwords kept"; else changed databases "$(join "${did[@]}") (never printed)"; fi
}

# A daily backup of every environment's database (db-backup.sh scheduled), keeping
# DEPLOY_BACKUP_KEEP per environment; it also writes berth_backup_last_success_timestamp_seconds
# for node-exporter. Root, like the container-health timer: the files go to the environment's owner.
step_db_backups() {
  local unit=/etc/systemd/system/berth-db-backup did=() env dirs=""
  local script=/usr/local/lib/berth/db-backup.sh
  for env in $BERTH_ENVIRONMENTS; do dirs+=" $BERTH_REMOTE_DIR/$env"; done
  [ -f "$HERE/src/deploy/remote/db-backup.sh" ] || die "$HERE/src/deploy/remote/db-backup.sh not found: run init_setup.sh from a checkout of the repository"
  if put_file "$script" 0755 root:root <"$HERE/src/deploy/remote/db-backup.sh"; then did+=("$script"); fi
  if put_file "$unit.service" 0644 root:root <<EOF
[Unit]
Description=Berth: daily backup of each environment's database
After=docker.service
Wants=docker.service

[Service]
Type=oneshot
ExecStart=/bin/sh $script scheduled /var/lib/node_exporter/textfile_collector $DEPLOY_BACKUP_KEEP$dirs
EOF
  then did+=("${unit##*/}.service"); fi
  if put_file "$unit.timer" 0644 root:root <<EOF
[Unit]
Description=Berth: database backups once a day

[Timer]
OnCalendar=*-*-* 03:15:00
RandomizedDelaySec=20min
Persistent=true

[Install]
WantedBy=timers.target
EOF
  then did+=("${unit##*/}.timer"); fi
  finish_timer "db backups" berth-db-backup.timer "daily, keeping $DEPLOY_BACKUP_KEEP" "${did[@]}"
}

main() {
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --dry-run) DRY_RUN=1 ;;
      --env-file) [ "$#" -ge 2 ] || die "--env-file needs a path"; ENV_FILE="$2"; shift ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
  [ "$(id -u)" = 0 ] || die "run as root through sudo: sudo $0 $*"
  check_os
  load_env_file "$ENV_FILE"
  check_settings
  check_not_locking_out
  umask 022

  printf '== Berth init_setup on %s%s\n' "$OS_NAME" "$([ "$DRY_RUN" = 1 ] && echo ' (dry run: nothing is changed)')"
  step_packages
  step_docker
  step_docker_service
  step_deploy_user
  step_sshd
  step_firewall
  step_registry_login
  step_env_dirs
  step_databases
  step_network
  step_monitoring_targets
  step_db_exporters
  step_monitoring
  step_edge
  step_container_health
  step_db_backups
  if [ "$CHANGED" = 0 ]; then
    printf '== nothing to change: %d steps already as wanted\n' "$UNCHANGED"
  elif [ "$DRY_RUN" = 1 ]; then
    printf '== dry run: %d steps would change, %d already as wanted\n' "$CHANGED" "$UNCHANGED"
  else
    printf '== done: %d steps changed, %d already as wanted\n' "$CHANGED" "$UNCHANGED"
  fi
}

main "$@"
