#!/usr/bin/env bash
# Installs the two tools deploy/deploy.int.spec.ts uses to check the Helm chart, from package
# registries only, into a cache directory:
#   helm                 compiled from its Go module (the Go module proxy), pinned
#   kubernetes-validate  from PyPI into a virtualenv, pinned; it ships the Kubernetes JSON schemas,
#                        so strict schema checks need no network at test time
# Idempotent, and instant once installed. ATTEST_CACHE_DIR overrides the cache (~/.cache/attest).
#   bash deploy/helm/install-tools.sh
# The test finds the tools there by itself; set ATTEST_HELM / ATTEST_KUBERNETES_VALIDATE to use others.
set -euo pipefail

HELM_VERSION=v3.22.0
KUBERNETES_VALIDATE_VERSION=1.37.0

tools="${ATTEST_CACHE_DIR:-$HOME/.cache/attest}/deploy-tools"
mkdir -p "$tools/bin"

if [ "$(cat "$tools/bin/.helm-version" 2>/dev/null)" != "$HELM_VERSION" ] || [ ! -x "$tools/bin/helm" ]; then
  command -v go >/dev/null || { echo "install-tools: go is needed to build helm $HELM_VERSION" >&2; exit 1; }
  echo "install-tools: building helm $HELM_VERSION from its Go module (once; a few minutes)" >&2
  # Private module and build caches, removed afterwards: only the binary is kept.
  GOMODCACHE="$tools/go/mod" GOCACHE="$tools/go/build" GOBIN="$tools/bin" GOFLAGS="-buildvcs=false -modcacherw" \
    go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  rm -rf "$tools/go"
  echo "$HELM_VERSION" > "$tools/bin/.helm-version"
fi

if [ "$(cat "$tools/venv/.kubernetes-validate-version" 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ] || [ ! -x "$tools/venv/bin/kubernetes-validate" ]; then
  command -v python3 >/dev/null || { echo "install-tools: python3 is needed for kubernetes-validate" >&2; exit 1; }
  echo "install-tools: installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION from PyPI" >&2
  rm -rf "$tools/venv"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  echo "$KUBERNETES_VALIDATE_VERSION" > "$tools/venv/.kubernetes-validate-version"
fi

echo "install-tools: helm $HELM_VERSION at $tools/bin/helm; kubernetes-validate $KUBERNETES_VALIDATE_VERSION at $tools/venv/bin/kubernetes-validate" >&2
