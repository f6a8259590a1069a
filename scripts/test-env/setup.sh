#!/usr/bin/env bash
# Brings up every real part the integration tests use. Each script is idempotent: on a machine
# where the parts already run, this takes seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for part in containers vm monitoring k8s-tools; do
  if [ -f "$here/$part.sh" ]; then
    echo "== test-env: $part"
    bash "$here/$part.sh" up
  fi
done
