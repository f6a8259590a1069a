#!/bin/sh
# HTTP probes of an app container from outside it: remote/proxy.sh (`probe`) runs this in the
# environment's proxy container, or in a one-off container of the proxy's image, on the project
# network where the app answers by its container name. The app's own image may have no shell, no
# node and no curl; the proxy image is ours and needs only `sh`, `wget` and `timeout` (busybox's
# in nginx:alpine). Sent on stdin: sh -s ACTION ARGS...
#   health URL TIMEOUT_S INTERVAL_S NEED [FIRST_S]
#                                          GET URL until NEED answers in a row are 2xx, or until
#                                          TIMEOUT_S passed; every FIRST_S (default INTERVAL_S)
#                                          until the first 2xx, INTERVAL_S after it. Last line `healthy: N answers in a row,
#                                          last HTTP 200` (exit 0) or `unhealthy: last answer WHAT`
#                                          (exit 1): src/deploy/health.ts reads both.
#   get URL [REQUEST_ID]                   one GET; prints `STATUS BODY`, or `0 WHY` (exit 1) when
#                                          nothing answered
# Exit 2: an unknown action; 127: no wget here.

# request URL SECONDS [ID]: one GET, ended after SECONDS. The body goes to fd 3. Prints, on a line
# of its own, the HTTP status (0 when nothing answered) and then what wget said last.
request() {
  r_url=$1 r_secs=$2
  if [ -n "${3:-}" ]; then set -- --header "X-Request-Id: $3"; else set --; fi
  said=$(timeout "$r_secs" wget -S -q -O - "$@" "$r_url" 2>&1 >&3 </dev/null)
  # coreutils' timeout exits 124; busybox's leaves wget killed by SIGTERM (143).
  case $? in 124 | 143) said="no answer within $r_secs s" ;; esac
  # -S prints every status line (one per redirect): the last one is the answer.
  status=$(printf '%s\n' "$said" | sed -n 's|^ *HTTP/[0-9.]* \([0-9][0-9][0-9]\).*|\1|p' | tail -n 1)
  why=$(printf '%s\n' "$said" | grep -v '^  ' | tail -n 1 | sed 's/^wget: //')
  printf '\n%s %s\n' "${status:-0}" "${why:-no answer}"
}

# A starting app is asked often (a refused connection costs nothing), so its first answer is
# seen within FIRST_S; the answers that confirm it are INTERVAL_S apart, to see it stay up.
health() {
  url=$1 need=$4 interval=$3 first=${5:-$3}
  end=$(($(date +%s) + $2))
  ok=0 last='no answer yet' answered=no
  while :; do
    left=$((end - $(date +%s)))
    # Each request gets at most 5 s, never beyond the deadline (but always at least 1 s).
    secs=5
    [ "$left" -lt "$secs" ] && secs=$left
    [ "$secs" -lt 1 ] && secs=1
    answer=$(request "$url" "$secs" 3>/dev/null | tail -n 1)
    code=${answer%% *}
    if [ "$code" -ge 200 ] && [ "$code" -lt 300 ]; then ok=$((ok + 1)) answered=yes; else ok=0; fi
    if [ "$code" -gt 0 ]; then last="HTTP $code"; else last=${answer#* }; fi
    if [ "$ok" -ge "$need" ]; then echo "healthy: $ok answers in a row, last $last"; exit 0; fi
    # Whole seconds: past `end` means at least TIMEOUT_S went by (at most one more).
    if [ "$(date +%s)" -gt "$end" ]; then echo "unhealthy: last answer $last"; exit 1; fi
    if [ "$answered" = yes ]; then sleep "$interval"; else sleep "$first"; fi
  done
}

get() {
  out=$(request "$1" 3 "${2:-}" 3>&1)
  answer=$(printf '%s\n' "$out" | tail -n 1)
  code=${answer%% *}
  # No answer: why. Else the body, everything before request's own line, at most 500 bytes.
  if [ "$code" = 0 ]; then echo "$answer"; exit 1; fi
  printf '%s %s\n' "$code" "$(printf '%s\n' "$out" | sed '$d' | head -c 500)"
}

main() {
  command -v wget >/dev/null 2>&1 || { echo "http-probe: no wget in the proxy image" >&2; exit 127; }
  action=$1
  shift
  case "$action" in
    health) health "$@" ;;
    get) get "$@" ;;
    *) echo "http-probe.sh: unknown action '$action'" >&2; exit 2 ;;
  esac
}

main "$@"
