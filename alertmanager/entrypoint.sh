#!/bin/sh
# Starts Alertmanager once the Slack webhook URL is known, from (first match wins):
#   1. the compose secret slack_webhook_url (host file named by SLACK_WEBHOOK_URL_FILE), or
#   2. the SLACK_WEBHOOK_URL environment variable.
# alertmanager.yml reads it from $WEBHOOK_FILE (a private tmpfs file), so the URL never appears
# in a config file, an image, or a command line. Without it Alertmanager would start and then
# silently fail every notification: refuse to start instead, naming the variables.
set -eu
SECRET_FILE="${SECRET_FILE:-/run/secrets/slack_webhook_url}"
WEBHOOK_FILE="${WEBHOOK_FILE:-/tmp/slack_webhook_url}"
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
exec "$ALERTMANAGER_BIN" "$@"
