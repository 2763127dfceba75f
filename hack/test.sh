#!/usr/bin/env bash
# The whole test suite: install, lint, type check, import layers, then unit + integration + e2e
# tests in one pytest run against a real cluster. Uses the cluster in KUBECONFIG when it answers;
# otherwise brings up the project's local cluster and stops it again afterwards
# (EB_KEEP_CLUSTER=1 keeps it running).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"

step() { printf '\n==> %s\n' "$*"; }

step "installing the package and test tools"
"$PY" -m pip install --quiet --disable-pip-version-check -e '.[test]'

# The browser tests drive Debian's headless Chromium through its chromedriver (Selenium, from the
# test extras above); nothing downloads a browser.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  step "apt-get install chromium chromium-driver (browser tests)"
  [ "$(id -u)" -eq 0 ] || { echo "installing chromium needs root: rerun as root, or apt-get install chromium chromium-driver" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

step "ruff"
"$PY" -m ruff check src tests benchmarks hack
"$PY" -m ruff format --check src tests benchmarks hack
step "mypy"
"$PY" -m mypy
step "import layers"
"$PY" -c "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"

started_cluster=0
# shellcheck source=hack/versions.env
source hack/versions.env
KUBECTL="${EB_CACHE_DIR:-$HOME/.cache/eb-operator}/k8s/$K8S_VERSION/bin/kubectl"
[ -x "$KUBECTL" ] || KUBECTL=kubectl
if [ -n "${KUBECONFIG:-}" ] && timeout 10 "$KUBECTL" get --raw /readyz >/dev/null 2>&1; then
  step "using the cluster in KUBECONFIG=$KUBECONFIG"
elif bash hack/cluster.sh status >/dev/null 2>&1; then
  step "using the running local cluster (left running afterwards)"
  eval "$(bash hack/cluster.sh env)"
else
  step "bringing up the local cluster"
  bash hack/cluster.sh up
  eval "$(bash hack/cluster.sh env)"
  started_cluster=1
fi
cleanup() {
  if [ "$started_cluster" = 1 ] && [ "${EB_KEEP_CLUSTER:-0}" != 1 ]; then
    step "stopping the local cluster (EB_KEEP_CLUSTER=1 keeps it)"
    bash hack/cluster.sh down || true
  fi
}
trap cleanup EXIT

step "pytest: unit, integration, e2e"
# No reruns: a test that fails once fails the run (a test that may retry says so on itself, and
# the summary counts its reruns). Every test has a time limit, so the suite always ends.
"$PY" -m pytest --timeout 600 "$@"
