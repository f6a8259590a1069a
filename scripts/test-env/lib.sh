# shellcheck shell=bash
# Shared by the scripts/test-env/*.sh set-up scripts (sourced, never run). Each script sets
# LOG_TAG before sourcing; everything here is idempotent and safe to call on every `up`.
# shellcheck disable=SC2034 # the paths below are for the scripts that source this file

STATE="${BERTH_TEST_STATE:-/var/lib/berth-test}"
CACHE_DIR="$STATE/cache"
LOG_DIR="$STATE/logs"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TEST_ENV_DIR="$REPO_ROOT/.test-env"

log() { printf '%s: %s\n' "${LOG_TAG:-test-env}" "$*"; }
die() { printf '%s: error: %s\n' "${LOG_TAG:-test-env}" "$*" >&2; exit 1; }

# The Debian mirror this machine's apt uses (the only package source reachable here).
debian_mirror() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri="$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list)"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# apt_install PKG...: installs the packages without starting their services (the tests run
# their own daemons on loopback with their own configs). Tries without `apt-get update` first:
# on a machine whose lists are fresh that saves ~10 s.
apt_install() {
  [ "$#" -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || die "need root to apt-get install $*"
  log "installing $*"
  mkdir -p "$LOG_DIR"
  export DEBIAN_FRONTEND=noninteractive
  local policy=/usr/sbin/policy-rc.d created=0 rc=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
  # Other set-up scripts may run apt at the same time: wait for the dpkg lock instead of failing.
  local apt=(apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends)
  "${apt[@]}" "$@" >>"$LOG_DIR/apt.log" 2>&1 \
    || { apt-get -o DPkg::Lock::Timeout=600 update -qq >>"$LOG_DIR/apt.log" 2>&1 && "${apt[@]}" "$@" >>"$LOG_DIR/apt.log" 2>&1; } \
    || rc=$?
  if [ "$created" = 1 ]; then rm -f "$policy"; fi
  [ "$rc" = 0 ] || die "apt-get install $* failed, see $LOG_DIR/apt.log"
}

# Writes $2 to $1 only when it differs; returns 0 when the file changed.
write_if_changed() {
  local file="$1" content="$2"
  if [ -f "$file" ] && [ "$(cat "$file")" = "$content" ]; then return 1; fi
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$content" >"$file.tmp.$$"
  mv "$file.tmp.$$" "$file"
  return 0
}

# True when the PID in file $1 is alive and its command line contains $2. A PID file outlives
# its process (a later CI run on the same disk can carry it over) and the number may by then
# belong to anything, so only the command line counts. /proc rather than `kill -0`, which a
# non-root caller of `status` may not send to root's PID.
running() {
  local pidfile="$1" expect="$2" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$expect"
}

# wait_for WHAT SECONDS CHECK...: polls CHECK every 0.2 s.
wait_for() {
  local what="$1" seconds="$2" i
  shift 2
  for ((i = 0; i < seconds * 5; i++)); do
    "$@" && return 0
    sleep 0.2
  done
  die "$what did not come up within ${seconds}s (logs in $LOG_DIR)"
}

# start_daemon PIDFILE LOGFILE CMD...: starts CMD detached from this shell's session, so it
# outlives the caller's process group, and records its PID (setsid execs in place: $! is the
# daemon). 9>&-: the lock fd of `up` must not live on in the daemon, or the next `up` waits
# forever. cd /: a daemon must not keep the caller's checkout as its working directory.
start_daemon() {
  local pidfile="$1" logfile="$2"
  shift 2
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  (cd / && exec setsid "$@" </dev/null >>"$logfile" 2>&1 9>&-) &
  echo $! >"$pidfile"
}

# stop_daemon NAME PIDFILE EXPECT [SECONDS]: TERM, up to SECONDS (default 10), then KILL. Polls
# with `running`, not `kill -0`: where nothing reaps orphans, a stopped daemon stays a zombie
# (which `kill -0` still finds) with an empty command line.
stop_daemon() {
  local name="$1" pidfile="$2" expect="$3" seconds="${4:-10}" pid i
  if ! running "$pidfile" "$expect"; then
    rm -f "$pidfile"
    return 0
  fi
  pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  for ((i = 0; i < seconds * 5; i++)); do
    running "$pidfile" "$expect" || break
    sleep 0.2
  done
  if running "$pidfile" "$expect"; then kill -KILL "$pid"; fi
  rm -f "$pidfile"
  log "stopped $name (pid $pid)"
}

# with_lock NAME CMD...: one `up`/`down` of NAME at a time across every clone on the machine.
with_lock() {
  local name="$1"
  shift
  mkdir -p "$STATE"
  exec 9>"$STATE/.$name.lock"
  flock -w 900 9 || die "another $name set-up holds $STATE/.$name.lock"
  "$@"
}
