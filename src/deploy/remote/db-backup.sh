#!/bin/sh
# Backups of an environment's database (the `db` service of compose project berth-<env>), on the
# VM, in <env dir>/backups/. The deploy CLI sends this file on stdin (backup, restore, list); the
# daily timer init_setup.sh installs runs a copy of it (scheduled).
#
#   backup DIR KEEP [TAG]     dump into DIR/backups/<env>-<UTC time>[-TAG].dump, then keep the
#                             KEEP newest (0: keep all); prints NAME SIZE
#   restore DIR NAME          dump the data as it is now (…-pre-restore.dump), then restore NAME
#   list DIR                  the backups, newest first: MTIME SIZE NAME
#   scheduled TEXTFILE_DIR KEEP DIR...
#                             backup every DIR whose environment has a database, then write
#                             berth_backup_last_success_timestamp_seconds{env} for node-exporter
#
# <env> is DIR's last component. A dump is pg_dump's custom format: compressed, one consistent
# snapshot however busy the app is, restorable by pg_restore. It is written beside its final
# name and renamed only once complete and synced, so a file with the final name is always a
# whole backup. Exit codes: 3 no running database, 4 no such backup (src/deploy/limits.ts).
set -eu

EXIT_NO_DATABASE=3
EXIT_NO_BACKUP=4

db_container() {
  docker ps -q --filter "label=com.docker.compose.project=berth-$1" \
    --filter label=com.docker.compose.service=db --filter status=running | head -n 1
}

# Backups of one environment, newest first: MTIME SIZE NAME (names are <env>-….dump: no spaces).
list() {
  [ -d "$1/backups" ] || return 0
  find "$1/backups" -maxdepth 1 -type f -name "$(basename "$1")-*.dump" -printf '%T@ %s %f\n' \
    | sort -rn
}

# When root runs this (the timer), the files still belong to the environment's owner, who
# restores and prunes them through the deploy.
own() { [ "$(id -u)" != 0 ] || chown --reference="$1" "$2"; }

backup() {
  dir="$1" keep="$2" tag="${3:-}"
  env="$(basename "$dir")"
  c="$(db_container "$env")"
  if [ -z "$c" ]; then
    echo "$env has no running database (docker compose -p berth-$env ps db): deploy first, or start it with docker compose -p berth-$env up -d db" >&2
    exit "$EXIT_NO_DATABASE"
  fi
  umask 077
  if [ ! -d "$dir/backups" ]; then mkdir -p "$dir/backups" && own "$dir" "$dir/backups"; fi
  name="$env-$(date -u +%Y%m%dT%H%M%S.%3NZ)${tag:+-$tag}.dump"
  tmp="$dir/backups/.$name.tmp"
  trap 'rm -f "$tmp"' EXIT HUP INT TERM
  # Inside the container: its own pg_dump matches its server, and the local socket needs no password.
  if ! docker exec "$c" sh -c 'exec pg_dump -U "$POSTGRES_USER" -d "$POSTGRES_DB" --format=custom' >"$tmp"; then
    echo "pg_dump in $c failed (see its message above); no backup was written" >&2
    exit 1
  fi
  [ -s "$tmp" ] || { echo "pg_dump in $c wrote nothing; no backup was written" >&2; exit 1; }
  sync "$tmp"
  own "$dir" "$tmp"
  mv -f "$tmp" "$dir/backups/$name"
  trap - EXIT HUP INT TERM
  if [ "$keep" -gt 0 ]; then
    list "$dir" | tail -n +"$((keep + 1))" | while read -r _ _ old; do rm -f "$dir/backups/$old"; done
  fi
  printf '%s %s\n' "$name" "$(stat -c %s "$dir/backups/$name")"
}

restore() {
  dir="$1" name="$2"
  env="$(basename "$dir")"
  case "$name" in */* | .* | '') name="" ;; esac
  if [ -z "$name" ] || [ ! -f "$dir/backups/$name" ]; then
    echo "no backup ${2} in $dir/backups; there are: $(list "$dir" | cut -d' ' -f3 | tr '\n' ' ')" >&2
    exit "$EXIT_NO_BACKUP"
  fi
  # Kept out of retention (keep 0): pruning now could delete the very file being restored.
  before="$(backup "$dir" 0 pre-restore)"
  c="$(db_container "$env")"
  # One transaction: a restore that fails half-way leaves the data as it was.
  docker exec -i "$c" sh -c 'exec pg_restore -U "$POSTGRES_USER" -d "$POSTGRES_DB" --clean --if-exists --no-owner --single-transaction --exit-on-error' \
    <"$dir/backups/$name"
  printf 'restored %s; the data before it is in %s\n' "$name" "${before%% *}"
}

# has_db ENV: the environment has a database container (running or not). One never started, or
# removed by `down`, has nothing to back up, and its backups' age must not page.
has_db() {
  [ -n "$(docker ps -aq --filter "label=com.docker.compose.project=berth-$1" --filter label=com.docker.compose.service=db)" ]
}

scheduled() {
  textfile_dir="$1" keep="$2"
  shift 2
  failed=0
  for dir in "$@"; do
    env="$(basename "$dir")"
    has_db "$env" || continue
    if out="$( (backup "$dir" "$keep") 2>&1)"; then
      echo "$env: backed up $out"
    else
      echo "$env: backup failed: $out" >&2
      failed=1
    fi
  done
  mkdir -p "$textfile_dir"
  tmp="$(mktemp "$textfile_dir/.berth_backup.XXXXXX")"
  trap 'rm -f "$tmp"' EXIT
  {
    echo '# HELP berth_backup_last_success_timestamp_seconds When the newest complete database backup of the environment was written.'
    echo '# TYPE berth_backup_last_success_timestamp_seconds gauge'
    for dir in "$@"; do
      has_db "$(basename "$dir")" || continue
      newest="$(list "$dir" | head -n 1 | cut -d' ' -f1)"
      [ -z "$newest" ] || printf 'berth_backup_last_success_timestamp_seconds{env="%s"} %s\n' "$(basename "$dir")" "${newest%.*}"
    done
  } >"$tmp"
  chmod 0644 "$tmp"
  mv "$tmp" "$textfile_dir/berth_backup.prom"
  trap - EXIT
  return "$failed"
}

main() {
  action="${1:-}"
  [ "$#" -gt 0 ] && shift
  case "$action" in
    backup) backup "$@" ;;
    restore) restore "$@" ;;
    list) list "$@" ;;
    scheduled) scheduled "$@" ;;
    *) echo "usage: db-backup.sh backup|restore|list|scheduled ..." >&2; exit 2 ;;
  esac
}

main "$@"
