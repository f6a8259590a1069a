#!/usr/bin/env bash
# Brings up every real part the integration tests use, in dependency order: Docker Engine
# and registry first (the test VM's docker talks to it), then the test VM, the monitoring
# binaries, PostgreSQL, Caddy + pebble (ACME), helm, and the throwaway Debian root for init_setup.sh. Each script is idempotent: on a
# machine where the parts already run, this takes seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for part in engine vm monitoring postgres edge k8s-tools cicd; do
  echo "== test-env: $part"
  started=$SECONDS
  bash "$here/$part.sh" up
  echo "== test-env: $part ready in $((SECONDS - started)) s"
done
echo "== test-env: every part ready in $SECONDS s"
