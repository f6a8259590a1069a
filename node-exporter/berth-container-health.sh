#!/bin/sh
# Docker's HEALTHCHECK verdict for every running container that has one, as node-exporter
# textfile metrics (cAdvisor does not export it). Run every minute on the VM as root by the
# systemd timer berth-container-health.timer that init_setup.sh installs (it copies this file
# with mode 0644, hence `/bin/sh FILE` in the unit).
# node-exporter reads TEXTFILE_DIR (its --collector.textfile.directory, through its /host mount).
#   berth_container_unhealthy{name,project,service,env} 1 = unhealthy, 0 = healthy or starting
# The file is replaced atomically. When `docker ps` fails the old file is left alone (and
# exit 1), so its age grows and ContainerHealthUnknown fires after 5 minutes.
set -eu
TEXTFILE_DIR="${TEXTFILE_DIR:-/var/lib/node_exporter/textfile_collector}"
out="$TEXTFILE_DIR/berth_container_health.prom"

list="$(docker ps --format '{{.Names}}|{{.Label "com.docker.compose.project"}}|{{.Label "com.docker.compose.service"}}|{{.Status}}')"

mkdir -p "$TEXTFILE_DIR"
tmp="$(mktemp "$TEXTFILE_DIR/.berth_container_health.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
{
  echo '# HELP berth_container_unhealthy 1 if Docker reports the container unhealthy, 0 if healthy or starting.'
  echo '# TYPE berth_container_unhealthy gauge'
  printf '%s\n' "$list" | while IFS='|' read -r name project service status; do
    case "$status" in
      *'(unhealthy)'*) value=1 ;;
      *'(healthy)'* | *'(health: starting)'*) value=0 ;;
      *) continue ;; # no healthcheck
    esac
    # Container names and compose labels are [A-Za-z0-9_.-]; anything else is dropped.
    clean() { printf '%s' "$1" | tr -cd 'A-Za-z0-9_.-'; }
    env=''
    case "$project" in berth-production | berth-staging | berth-testing) env="${project#berth-}" ;; esac
    printf 'berth_container_unhealthy{name="%s",project="%s",service="%s",env="%s"} %s\n' \
      "$(clean "$name")" "$(clean "$project")" "$(clean "$service")" "$env" "$value"
  done
} >"$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
