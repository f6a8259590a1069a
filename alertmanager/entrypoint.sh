#!/bin/sh
# Starts Alertmanager once the Slack webhook URL is known, from (first match wins):
#   1. the compose secret slack_webhook_url (host file named by SLACK_WEBHOOK_URL_FILE), or
#   2. the SLACK_WEBHOOK_URL environment variable.
# alertmanager.yml reads it from $WEBHOOK_FILE (a private tmpfs file), so the URL never appears
# in a config file, an image, or a command line. Without it Alertmanager would start and then
# silently fail every notification: refuse to start instead, naming the variables.
#
# The heartbeat URL (HEARTBEAT_URL, optional) cannot be read from a file by Alertmanager 0.25's
# webhook receiver, so Alertmanager runs on a private copy of its config ($CONFIG_COPY, tmpfs,
# mode 0600) with a webhook to that URL added below the `  - name: heartbeat` line. --config.file
# is rewritten to the copy: an edit of alertmanager.yml takes effect on restart, not on HUP.
set -eu
SECRET_FILE="${SECRET_FILE:-/run/secrets/slack_webhook_url}"
WEBHOOK_FILE="${WEBHOOK_FILE:-/tmp/slack_webhook_url}"
CONFIG_COPY="${CONFIG_COPY:-/tmp/alertmanager.yml}"
ALERTMANAGER_BIN="${ALERTMANAGER_BIN:-/bin/alertmanager}"

umask 077
if [ -s "$SECRET_FILE" ]; then
  url="$(cat "$SECRET_FILE")"
else
  url="${SLACK_WEBHOOK_URL:-}"
fi
unset SLACK_WEBHOOK_URL
url="$(printf '%s' "$url" | tr -d ' \r\n\t')"
case "$url" in
  http://* | https://*) ;;
  '')
    echo "alertmanager: no Slack webhook URL. Put it in the file named by SLACK_WEBHOOK_URL_FILE (default alertmanager/slack_webhook_url) or set SLACK_WEBHOOK_URL in .env." >&2
    exit 78 ;;
  *)
    echo "alertmanager: the Slack webhook URL (SLACK_WEBHOOK_URL_FILE / SLACK_WEBHOOK_URL) must be an http(s) URL such as https://hooks.slack.com/services/... (value not printed)." >&2
    exit 78 ;;
esac
printf '%s\n' "$url" >"$WEBHOOK_FILE"

heartbeat="$(printf '%s' "${HEARTBEAT_URL:-}" | tr -d ' \r\n\t')"
unset HEARTBEAT_URL
case "$heartbeat" in
  '')
    echo "alertmanager: no HEARTBEAT_URL: the Watchdog alert goes nowhere, and if this VM dies nobody is told (README \"Heartbeat\")." >&2 ;;
  *"'"* | *\\*)
    echo "alertmanager: HEARTBEAT_URL must not contain quotes or backslashes (value not printed)." >&2
    exit 78 ;;
  http://* | https://*) ;;
  *)
    echo "alertmanager: HEARTBEAT_URL must be an http(s) URL such as https://hc-ping.com/<uuid> (value not printed)." >&2
    exit 78 ;;
esac

config=''
for arg do
  shift
  case "$arg" in
    --config.file=*) config="${arg#--config.file=}"; arg="--config.file=$CONFIG_COPY" ;;
  esac
  set -- "$@" "$arg"
done
if [ -z "$config" ]; then
  echo "alertmanager: entrypoint.sh needs --config.file=FILE among its arguments." >&2
  exit 64
fi
marker='  - name: heartbeat'
if [ -n "$heartbeat" ] && ! grep -qxF "$marker" "$config"; then
  echo "alertmanager: $config has no line '$marker' (the heartbeat receiver) to add HEARTBEAT_URL to." >&2
  exit 78
fi
while IFS= read -r line || [ -n "$line" ]; do
  printf '%s\n' "$line"
  if [ "$line" = "$marker" ] && [ -n "$heartbeat" ]; then
    printf "    webhook_configs:\n      - url: '%s'\n        send_resolved: false\n" "$heartbeat"
  fi
done <"$config" >"$CONFIG_COPY"
exec "$ALERTMANAGER_BIN" "$@"
