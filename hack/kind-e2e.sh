#!/usr/bin/env bash
# Runs the end-to-end tests (tests/e2e) against a kind cluster, for machines with Docker and
# internet access (the project's own machines have neither: there `hack/cluster.sh up` gives the
# local cluster and the same tests run through its KUBECONFIG).
#
#   hack/kind-e2e.sh [--name eb-e2e] [--keep] [--reuse] [-- PYTEST ARGS...]
#
# It creates a kind cluster (Kubernetes at the version pinned in hack/versions.env unless
# KIND_NODE_IMAGE says otherwise), builds and loads the broker image (from ./Dockerfile, as
# eb-operator:dev), the workload image the tests use (eb-workload:latest: Debian bookworm
# with python3 and a uid-1000 user, like the local one) and the data stager image on it
# (eb-stager:<version>, as hack/build-stager-image.sh builds it locally), makes the cluster look like the local
# one where tests rely on it (one node advertising nvidia.com/gpu: 1 with the product label,
# every node labelled executionbroker.ivoa.net/pool=default), then runs
# `pytest tests/e2e -m e2e` with KUBECONFIG pointing at the kind cluster: the tests install the
# Helm chart charts/execution-broker with that image (helm upgrade --install, release eb-e2e in
# namespace eb-e2e) and use it only through its Service and kubectl. The cluster is deleted
# afterwards unless --keep is given; --reuse uses an existing cluster of that name.
#
# Needs: docker, kind (https://kind.sigs.k8s.io), kubectl, helm (or Go, to build the pinned one
# with hack/build-binaries.sh helm), python3 with the project installed (pip install -e '.[test]').
# Environment: KIND_NODE_IMAGE, EB_OPERATOR_IMAGE (default eb-operator:dev), KIND (path to kind),
# KUBECTL (path to kubectl), EB_HELM (path to helm).
set -euo pipefail
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$HACK_DIR")"
# shellcheck source=hack/versions.env
source "$HACK_DIR/versions.env"

NAME=eb-e2e KEEP=0 REUSE=0
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --reuse) REUSE=1; shift ;;
    --) shift; PYTEST_ARGS=("$@"); break ;;
    -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "kind-e2e: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

KIND="${KIND:-kind}"
KUBECTL="${KUBECTL:-kubectl}"
PY="${PYTHON:-python3}"
NODE_IMAGE="${KIND_NODE_IMAGE:-kindest/node:${K8S_VERSION%.*}.0}"
OPERATOR_IMAGE="${EB_OPERATOR_IMAGE:-eb-operator:dev}"
WORKLOAD_IMAGE="eb-workload:latest"

die() { echo "kind-e2e: $*" >&2; exit 1; }
for tool in docker "$KIND" "$KUBECTL" "$PY"; do
  command -v "$tool" >/dev/null || die "'$tool' is missing: this script needs docker, kind, kubectl and python3"
done
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (is dockerd running, may you use it?)"
HELM="${EB_HELM:-$HOME/.cache/eb-operator/helm/$HELM_VERSION/bin/helm}"
if [ ! -x "$HELM" ]; then
  if command -v helm >/dev/null; then HELM="$(command -v helm)"
  elif command -v go >/dev/null; then bash "$HACK_DIR/build-binaries.sh" helm
  else die "no helm: install helm 3, or Go (then hack/build-binaries.sh helm builds the pinned one)"; fi
fi

WORK="$(mktemp -d)"
KUBECONFIG_FILE="$WORK/kubeconfig"
created=0
cleanup() {
  if [ "$created" = 1 ] && [ "$KEEP" = 0 ]; then
    echo "==> deleting kind cluster $NAME (--keep keeps it)"
    "$KIND" delete cluster --name "$NAME" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if "$KIND" get clusters 2>/dev/null | grep -qx "$NAME"; then
  [ "$REUSE" = 1 ] || die "a kind cluster named $NAME exists: delete it (kind delete cluster --name $NAME) or pass --reuse"
  echo "==> reusing kind cluster $NAME"
else
  echo "==> creating kind cluster $NAME ($NODE_IMAGE)"
  cat >"$WORK/kind.yaml" <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: worker
EOF
  "$KIND" create cluster --name "$NAME" --image "$NODE_IMAGE" --config "$WORK/kind.yaml" --wait 180s
  created=1
fi
"$KIND" get kubeconfig --name "$NAME" >"$KUBECONFIG_FILE"
export KUBECONFIG="$KUBECONFIG_FILE"

echo "==> building $WORKLOAD_IMAGE"
cat >"$WORK/Dockerfile.workload" <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd -g 1000 eb && useradd -u 1000 -g 1000 -m -d /home/eb -s /bin/sh eb
ENV HOME=/home/eb LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
WORKDIR /home/eb
USER 1000:1000
CMD ["/bin/sh"]
EOF
docker build -q -t "$WORKLOAD_IMAGE" -f "$WORK/Dockerfile.workload" "$WORK" >/dev/null
"$KIND" load docker-image --name "$NAME" "$WORKLOAD_IMAGE"

STAGER_IMAGE="eb-stager:$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO_DIR/src/eb_operator/__init__.py")"
echo "==> building $STAGER_IMAGE (the data stager; Pods made before their start wait in it)"
cat >"$WORK/Dockerfile.stager" <<EOF
FROM python:3.11-slim-bookworm AS deps
COPY hack/stager-requirements.txt /tmp/stager-requirements.txt
RUN pip install --quiet --no-deps --no-compile --target /opt/stager/lib -r /tmp/stager-requirements.txt \\
 && mkdir -p /opt/stager/bin && printf '#!/bin/sh\\nexec python3 -m eb_operator.stager "\$@"\\n' >/opt/stager/bin/eb-stager \\
 && chmod 0755 /opt/stager/bin/eb-stager
FROM $WORKLOAD_IMAGE
COPY --from=deps /opt/stager /opt/stager
COPY src/eb_operator/__init__.py /opt/stager/lib/eb_operator/__init__.py
COPY src/eb_operator/stager /opt/stager/lib/eb_operator/stager
ENV PATH=/opt/stager/bin:/usr/local/bin:/usr/bin:/bin PYTHONPATH=/opt/stager/lib PYTHONUNBUFFERED=1
ENTRYPOINT ["/opt/stager/bin/eb-stager"]
EOF
docker build -q -t "$STAGER_IMAGE" -f "$WORK/Dockerfile.stager" "$REPO_DIR" >/dev/null
"$KIND" load docker-image --name "$NAME" "$STAGER_IMAGE"

if [ -f "$REPO_DIR/Dockerfile" ]; then
  echo "==> building $OPERATOR_IMAGE from Dockerfile"
  docker build -q -t "$OPERATOR_IMAGE" "$REPO_DIR" >/dev/null
  "$KIND" load docker-image --name "$NAME" "$OPERATOR_IMAGE"
else
  echo "==> no Dockerfile in the repository yet: not building $OPERATOR_IMAGE"
fi

echo "==> making the cluster look like the local one (pool label, one node with nvidia.com/gpu: 1)"
"$KUBECTL" label nodes --all --overwrite executionbroker.ivoa.net/pool=default >/dev/null
GPU_NODE="$("$KUBECTL" get nodes -l '!node-role.kubernetes.io/control-plane' -o jsonpath='{.items[0].metadata.name}')"
"$KUBECTL" label node "$GPU_NODE" --overwrite nvidia.com/gpu.product=real-test-gpu >/dev/null
"$KUBECTL" patch node "$GPU_NODE" --subresource=status --type=json -p \
  '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"1"},{"op":"add","path":"/status/allocatable/nvidia.com~1gpu","value":"1"}]' >/dev/null

echo "==> pytest tests/e2e against kind cluster $NAME"
cd "$REPO_DIR"
EB_OPERATOR_IMAGE="$OPERATOR_IMAGE" EB_KUBECTL="$(command -v "$KUBECTL")" EB_HELM="$HELM" \
  EB_E2E_BUILD_IMAGE=never "$PY" -m pytest tests/e2e -m e2e "${PYTEST_ARGS[@]}"
