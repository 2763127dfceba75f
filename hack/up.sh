#!/usr/bin/env bash
# Sets everything up and runs the broker: the local cluster (or the cluster in KUBECONFIG),
# the CRDs, RBAC and default ExecutionPlatform, then the operator and the REST API as local
# processes from this source tree. `bash hack/up.sh stop` stops the broker processes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
STATE="${EB_CLUSTER_DIR:-$HOME/.local/state/eb-operator/cluster}/broker"
API_PORT="${EB_API_PORT:-8080}"
mkdir -p "$STATE"
# shellcheck source=hack/versions.env
source hack/versions.env
KUBECTL="${EB_CACHE_DIR:-$HOME/.cache/eb-operator}/k8s/$K8S_VERSION/bin/kubectl"

stop_broker() {
  for c in operator api; do
    if [ -f "$STATE/$c.pid" ] && kill -0 "$(cat "$STATE/$c.pid")" 2>/dev/null; then
      kill "$(cat "$STATE/$c.pid")" && echo "stopped $c"
    fi
    rm -f "$STATE/$c.pid"
  done
}
if [ "${1:-}" = stop ]; then stop_broker; exit 0; fi

if [ -n "${KUBECONFIG:-}" ] && { [ -x "$KUBECTL" ] || KUBECTL=kubectl; } && timeout 10 "$KUBECTL" get --raw /readyz >/dev/null 2>&1; then
  echo "using the cluster in KUBECONFIG=$KUBECONFIG"
else
  bash hack/cluster.sh up
  eval "$(bash hack/cluster.sh env)"
fi
[ -x "$KUBECTL" ] || KUBECTL=kubectl

"$PY" -m pip install --quiet --disable-pip-version-check -e .
"$KUBECTL" apply -f crds/
"$KUBECTL" wait --for=condition=Established --timeout=60s -f crds/ >/dev/null
"$KUBECTL" apply -f manifests/namespace.yaml -f manifests/platform-default.yaml

stop_broker
nohup eb-operator operator --no-peering >"$STATE/operator.log" 2>&1 &
echo $! >"$STATE/operator.pid"
EB_API_ALLOW_ANONYMOUS="${EB_API_ALLOW_ANONYMOUS:-false}" \
  nohup eb-operator api --host 127.0.0.1 --port "$API_PORT" >"$STATE/api.log" 2>&1 &
echo $! >"$STATE/api.pid"

for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$(cat "$STATE/api.pid")" 2>/dev/null || { echo "the API exited; see $STATE/api.log" >&2; exit 1; }
  sleep 1
done
curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null || { echo "the API did not become ready in 60 s; see $STATE/api.log" >&2; exit 1; }
cat <<MSG

The broker is running.
  export KUBECONFIG=$KUBECONFIG
  operator log: $STATE/operator.log    API log: $STATE/api.log
  REST API:     http://127.0.0.1:$API_PORT   (see README "REST API" for curl examples)
  stop:         bash hack/up.sh stop ; bash hack/cluster.sh down
MSG
