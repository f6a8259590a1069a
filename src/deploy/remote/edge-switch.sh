#!/bin/sh
# The edge's part of a switch in its common case (the site exists with this domain), as ONE
# program run inside the edge container, where Caddy's admin API listens on loopback:
#   docker exec -i berth-edge sh -s ADMIN LOCK WAIT_S DOMAIN_PATH DOMAIN GRAFANA_PATH
#       GRAFANA_DOMAIN DIAL_PATH UPSTREAM HEALTH_PATH       (built by src/deploy/commands/edge.ts)
# One round trip instead of a dozen: take the edge's lock, does the edge reach the new container,
# check the site (and Grafana's) are as the settings say, move the one `dial`, read it back, put
# the old one back if it did not take, release the lock. The paths and the body are
# src/edge/caddy.ts's; busybox wget sends POST, which Caddy applies to a key as PATCH.
# Exit codes are EXIT.edge in src/deploy/limits.ts: 0 switched (prints the old upstream),
# 3 the running config needs the site added or changed (the deploy loads a whole config),
# 5 the edge cannot reach the new container, 6 the edge did not take the switch (old upstream
# back, checked), 7 neither the switch nor the way back took (the edge's route is unknown),
# 75 another deploy holds the edge's lock.
# Everything runs from `main "$@"` on the last line: a program cut off in transit never runs half.

# 10 s each: busybox wget waits 900 s by default, and a hung admin API must not hold the lock
# (every other environment's deploy waits on it).
get() {
  wget -q -T 10 -O - "http://$admin$1" 2>/dev/null
}

post() {
  wget -q -T 10 -O - --header 'Content-Type: application/json' --post-data "$2" "http://$admin$1" >/dev/null 2>&1
}

switch_site() {
  # A lost connection must not stop it between moving the dial and checking it.
  trap '' HUP PIPE
  admin=$1 lock=$2 wait_s=$3 domain_path=$4 domain=$5 grafana_path=$6 grafana=$7 dial_path=$8 upstream=$9
  shift 9
  health=$1
  i=0
  until mkdir "$lock" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt "$wait_s" ]; then
      echo "another deploy held the edge's lock for $wait_s s (if none runs: docker exec berth-edge rm -rf $lock)"
      exit 75
    fi
    sleep 1
  done
  trap 'rmdir "$lock" 2>/dev/null' EXIT
  # Under the lock: a deploy's clean-up that removed the container held the lock while it did.
  # The reach check (the slow request: the app serves load) runs while the admin API is read.
  wget -q -O /dev/null -T 3 "http://$upstream$health" 2>/dev/null &
  reach=$!
  site=$(get "$domain_path")
  if [ -n "$grafana" ]; then grafana_site=$(get "$grafana_path"); fi
  before=$(get "$dial_path")
  read_dial=$?
  wait "$reach" || {
    echo "the edge cannot reach $upstream$health"
    exit 5
  }
  [ "$site" = "\"$domain\"" ] || exit 3
  if [ -n "$grafana" ] && [ "$grafana_site" != "\"$grafana\"" ]; then exit 3; fi
  [ "$read_dial" -eq 0 ] || exit 3
  if post "$dial_path" "\"$upstream\"" && [ "$(get "$dial_path")" = "\"$upstream\"" ]; then
    echo "$before"
    exit 0
  fi
  now=$(get "$dial_path")
  # The put-back is checked too: "old upstream back" is only said when it is true.
  i=0
  while [ "$i" -lt 3 ]; do
    i=$((i + 1))
    if post "$dial_path" "$before" && [ "$(get "$dial_path")" = "$before" ]; then
      echo "the edge sends $domain to ${now:-nothing} after the switch, not to $upstream"
      exit 6
    fi
    sleep 1
  done
  echo "the edge did not take the switch to $upstream, nor the way back to $before: it sends $domain to $(get "$dial_path" || echo 'an upstream it cannot tell')"
  exit 7
}

main() {
  switch_site "$@"
}

main "$@"
