#!/bin/sh
# What the deploy does to an environment's nginx proxy on the VM, in one program sent on stdin:
#   sh -s ACTION ARGS...   (built by src/deploy/commands/proxy.ts)
# The exit codes are EXIT.proxy in src/deploy/limits.ts: 0 ok, 3 no proxy running, 4 the new
# config fails `nginx -t`, 5 the reload failed, 6 the proxy did not send traffic where asked;
# `probe` exits with the probe's own status (remote/http-probe.sh).
# Everything runs from `main "$@"` on the last line: a program cut off in transit never runs
# half, and nothing it starts can read the rest of it from stdin.

# The environment's proxy container, if one runs.
findproxy() {
  docker ps -q --filter "label=com.docker.compose.project=$project" --filter label=com.docker.compose.service=proxy | head -n 1
}

# routed ID: sends one request through the proxy, from inside it (its wget: busybox's in
# nginx:alpine), tagged with X-Request-Id ID, and prints the upstream address the proxy's access
# log says served it. That log line is the proxy's own word on where traffic goes, per container,
# which no /health body can say when old and new run the same version.
# Only the log from the second the request went out is read: under load a proxy logs hundreds
# of lines a second, and reading 15 s of them took most of a switch.
routed() {
  since=$(date +%s)
  docker exec "$proxy" timeout 5 wget -q -O /dev/null --header "X-Request-Id: $1" "http://127.0.0.1:$proxy_port$path" >/dev/null 2>&1
  docker logs --since "$since" "$proxy" 2>&1 | grep -F "\"request_id\":\"$1\"" | sed -n 's/.*"upstream":"\([^"]*\)".*/\1/p' | tail -n 1
}

# switch PROJECT FILE APP FORMAT PATH TOKEN TRIES CHECK_PORT APP_PORT ADDRESS CONF PROXY NGINX...
# The whole switch in one program, so a lost SSH connection cannot split it (it ignores
# SIGHUP/SIGPIPE and finishes on its own): write the new upstream beside the old, move it in,
# then, in one exec in the proxy (IN_PROXY_SWITCH), `nginx -t`, graceful reload, and requests
# through the proxy until 3 in a row were served by the new container. Any failure puts the
# previous upstream back (only if there was one) and reloads, so the old container keeps serving.
# With no proxy running the new file stays in place (exit 3): the deploy starts the proxy on it
# and then asks `routed` itself.
switch_to() {
  trap '' HUP PIPE
  project=$1 file=$2 app=$3 fmt=$4 path=$5 token=$6 tries=$7 check_port=$8 app_port=$9
  shift 9
  known=$1 conf=$2 proxy=$3
  shift 3
  printf '%s' "$conf" > "$file.next" && chmod 644 "$file.next" || exit 1
  if [ -s "$file" ]; then cp -p "$file" "$file.prev" || exit 1; else rm -f "$file.prev"; fi
  mv -f "$file.next" "$file" || exit 1
  # The deploy passes the address it read after the health check and the proxy prepare found:
  # docker calls fewer while the VM serves load. Without them, asked here.
  given=$proxy
  [ -n "$proxy" ] || proxy=$(findproxy)
  [ -n "$proxy" ] || exit 3
  if [ -n "$known" ]; then want=$known:$app_port; else want=$(docker container inspect --format "$fmt" "$app"):$app_port; fi
  out=$(in_proxy "$@")
  rc=$?
  case "$rc" in
    0 | 4 | 5 | 6) ;;
    *)
      # The proxy prepare found may have gone since (recreated, stopped): the one running now.
      if [ -n "$given" ]; then
        proxy=$(findproxy)
        [ -n "$proxy" ] || exit 3
        out=$(in_proxy "$@")
        rc=$?
      fi
      ;;
  esac
  if [ "$rc" -eq 0 ]; then
    rm -f "$file.prev"
    printf '%s\n' "$out" | tail -n 1
    exit 0
  fi
  restore "$@"
  case "$rc" in
    4 | 5 | 6)
      printf '%s\n' "$out" | tail -n 1
      exit "$rc"
      ;;
  esac
  # The exec itself failed (the proxy stopped or was killed under it): not a config problem.
  echo "docker exec in the proxy failed (exit $rc): $(printf '%s\n' "$out" | tail -n 1)"
  exit 6
}

# Runs in the proxy (sh -c; nginx:alpine's busybox has every tool it uses): WANT URL TRIES ID
# NGINX... The config test (bounded: a DNS that does not answer costs 20 s, not minutes), the
# graceful reload, then requests to the proxy's loopback-only check port (proxy/nginx.conf: the
# same upstream, naming in X-Berth-Upstream the address that answered) until 3 in a row name
# WANT: at most TRIES requests and 20 s, each request at most 3 s. busybox's wget prints no
# headers for an answer other than 2xx/3xx, so only those count. Three processes a request
# (timeout, wget, one sed): on a busy VM each process started costs milliseconds the switch waits
# for (`timeout`, not wget's -T: Debian's busybox wget, the test proxy's, crashes on -T). One exec
# instead of one per request plus a read of the access log: each docker call costs a round trip
# to dockerd, several times more while the VM serves load. A reload takes effect a moment after
# `nginx -s reload` returns, so the first requests may still meet the old workers (or, before the
# first reload of this nginx.conf, no check port yet).
# shellcheck disable=SC2016 # expanded by the sh in the proxy, not here
IN_PROXY_SWITCH='
want=$1 url=$2 tries=$3 id=$4
shift 4
timeout 20 "$@" -t 2>&1 || exit 4
"$@" -s reload 2>&1 || exit 5
i=0 ok=0 got=
end=$(($(date +%s) + 20))
while [ "$i" -lt "$tries" ] && [ "$(date +%s)" -le "$end" ]; do
  i=$((i + 1))
  got=$(timeout 3 wget -S -q -O /dev/null --header "X-Request-Id: $id-$i" "$url" 2>&1 | sed -n "s/^ *[Xx]-[Bb]erth-[Uu]pstream: *\([^[:space:]]*\).*/\1/p")
  if [ "$got" = "$want" ]; then
    ok=$((ok + 1))
    if [ "$ok" -ge 3 ]; then echo "switched to $got"; exit 0; fi
  else
    ok=0
    sleep 0.05
  fi
done
echo "after the reload the proxy still sent requests to ${got:-no upstream it named}, not to $want"
exit 6'

# in_proxy NGINX...: IN_PROXY_SWITCH in the proxy, for switch_to's new upstream.
in_proxy() {
  docker exec "$proxy" sh -c "$IN_PROXY_SWITCH" sh "$want" "http://127.0.0.1:$check_port$path" "$tries" "berth-switch-$token" "$@"
}

# restore NGINX...: the previous upstream back, and nginx reloaded on it. Never an empty file.
restore() {
  if [ -s "$file.prev" ]; then mv -f "$file.prev" "$file" && docker exec "$proxy" "$@" -s reload >/dev/null 2>&1; fi
}

# routed-address PROJECT PATH ID PROXY_PORT: the upstream address that served a request sent now
# (empty when the proxy logged none).
routed_address() {
  project=$1 path=$2 id=$3 proxy_port=$4
  proxy=$(findproxy)
  [ -n "$proxy" ] || exit 3
  routed "$id"
}

# probe PROJECT NETWORK PROBE ARGS...: remote/http-probe.sh (its text in PROBE) with ARGS, from
# where the app answers by name: in the running proxy (docker exec, as the proxy's own user), or,
# when none runs (a first deploy creates the proxy but starts it only at the switch), in a one-off
# container of the proxy's image on the project network: read-only, nobody, no capabilities,
# removed afterwards. The app's image is never asked to run anything. Exits with the probe's own
# status; 3 when the project has no proxy container at all.
probe_app() {
  project=$1 network=$2 probe=$3
  shift 3
  proxy=$(docker ps -q --filter "label=com.docker.compose.project=$project" --filter label=com.docker.compose.service=proxy --filter status=running | head -n 1)
  if [ -n "$proxy" ]; then
    printf '%s' "$probe" | docker exec -i "$proxy" sh -s "$@"
    exit
  fi
  created=$(docker ps -aq --filter "label=com.docker.compose.project=$project" --filter label=com.docker.compose.service=proxy | head -n 1)
  [ -n "$created" ] || { echo "no proxy container in $project to probe the app from (a deploy creates it)" >&2; exit 3; }
  image=$(docker container inspect --format '{{.Image}}' "$created") || exit 3
  printf '%s' "$probe" | docker run -i --rm --network "$network" --read-only --user 65534:65534 \
    --cap-drop ALL --security-opt no-new-privileges=true --pids-limit 32 --memory 32m --log-driver none \
    --entrypoint sh "$image" -s "$@"
}

# reload PROJECT NGINX...: test the config, then a graceful reload. The config test resolves
# upstream names: bounded, so a DNS that does not answer costs 20 s, not minutes.
reload() {
  project=$1
  shift
  proxy=$(findproxy)
  [ -n "$proxy" ] || exit 3
  timeout 20 docker exec "$proxy" "$@" -t 2>&1 && docker exec "$proxy" "$@" -s reload
}

main() {
  action=$1
  shift
  case "$action" in
    switch) switch_to "$@" ;;
    routed-address) routed_address "$@" ;;
    probe) probe_app "$@" ;;
    reload) reload "$@" ;;
    *) echo "proxy.sh: unknown action '$action'" >&2; exit 2 ;;
  esac
}

main "$@"
