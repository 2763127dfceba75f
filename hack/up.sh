#!/usr/bin/env bash
# The first command of the README: a running IVOA ExecutionBroker, installed like a real operator.
#
#   bash hack/up.sh          bring it up (idempotent; a second run upgrades in place)
#   bash hack/up.sh stop     helm uninstall the broker (cancels its sessions; the cluster stays)
#   bash hack/up.sh down     stop, then stop the local cluster too (if this script started it)
#   bash hack/up.sh status   the release, its Pods and the URL
#
# Up: uses the cluster in KUBECONFIG when it answers, else starts the project's local cluster
# (hack/cluster.sh up); builds the broker image and imports it into the local containerd when the
# source changed (hack/ensure-image.py; on another cluster the image must be pullable or loaded:
# EB_IMAGE=registry/eb-operator:tag); installs the Helm chart charts/execution-broker as release
# execution-broker in namespace execution-broker with a static token for user "demo"; waits for
# the rollout; prints a working curl and ebctl example. Where the cluster has an ingress (the local
# cluster's Traefik, or EB_INGRESS_URL and EB_INGRESS_CLASS given), notebooks and web apps get
# routes from outside the cluster, and it prints a notebook example to open in a browser.
#
# Environment: EB_NAMESPACE, EB_RELEASE, EB_IMAGE, EB_API_PORT (port-forward port, 8080),
# EB_VALUES (an extra values file for helm), EB_INGRESS_URL and EB_INGRESS_CLASS (the ingress:
# its URL from this machine and its IngressClass; default: the local cluster's Traefik).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$PWD"
PY="${PYTHON:-python3}"
# shellcheck source=hack/versions.env
source hack/versions.env
CACHE="${EB_CACHE_DIR:-$HOME/.cache/eb-operator}"
CLUSTER_STATE="${EB_CLUSTER_DIR:-$HOME/.local/state/eb-operator/cluster}"
STATE="$CLUSTER_STATE/broker"
NS="${EB_NAMESPACE:-execution-broker}"
RELEASE="${EB_RELEASE:-execution-broker}"
IMAGE="${EB_IMAGE:-eb-operator:dev}"
PF_PORT="${EB_API_PORT:-8080}"
KUBECTL="$CACHE/k8s/$K8S_VERSION/bin/kubectl"; [ -x "$KUBECTL" ] || KUBECTL=kubectl
HELM="$CACHE/helm/$HELM_VERSION/bin/helm"
mkdir -p "$STATE"

say() { printf '==> %s\n' "$*"; }
die() { echo "up: $*" >&2; exit 1; }
answers() { [ -n "${KUBECONFIG:-}" ] && timeout 10 "$KUBECTL" get --raw /readyz >/dev/null 2>&1; }
local_kubeconfig() { [ "$(readlink -f "${KUBECONFIG:-}")" = "$(readlink -f "$CLUSTER_STATE/kubeconfig")" ]; }
fullname() { case "$RELEASE" in *execution-broker*) echo "$RELEASE" ;; *) echo "$RELEASE-execution-broker" ;; esac; }

stop_port_forward() {
  if [ -f "$STATE/port-forward.pid" ]; then
    kill "$(cat "$STATE/port-forward.pid")" 2>/dev/null || true
    rm -f "$STATE/port-forward.pid"
  fi
}

use_cluster() {
  if answers; then return 0; fi
  if [ -f "$CLUSTER_STATE/kubeconfig" ] && KUBECONFIG="$CLUSTER_STATE/kubeconfig" answers; then
    export KUBECONFIG="$CLUSTER_STATE/kubeconfig"; return 0
  fi
  return 1
}

need_helm() {
  [ -x "$HELM" ] || bash hack/build-binaries.sh helm
  [ -x "$HELM" ] || HELM="$(command -v helm)" || die "no helm: bash hack/build-binaries.sh helm"
}

case "${1:-up}" in
  stop)
    stop_port_forward
    if use_cluster; then
      need_helm
      if "$HELM" status "$RELEASE" -n "$NS" >/dev/null 2>&1; then
        say "helm uninstall $RELEASE (cancels its sessions, frees their reservations)"
        "$HELM" uninstall "$RELEASE" -n "$NS" --wait --timeout 5m
        # helm's --wait ends when the Deployments are gone; their Pods may still be shutting down
        "$KUBECTL" wait pod -n "$NS" -l "app.kubernetes.io/instance=$RELEASE" --for=delete --timeout=120s \
          >/dev/null 2>&1 || true
      else
        echo "no release $RELEASE in namespace $NS"
      fi
    fi
    exit 0 ;;
  down)
    bash "$0" stop
    if [ -f "$STATE/started-cluster" ]; then
      rm -f "$STATE/started-cluster"
      bash hack/cluster.sh down
    fi
    exit 0 ;;
  status)
    use_cluster || die "no cluster answers (bash hack/up.sh brings one up)"
    need_helm
    "$HELM" status "$RELEASE" -n "$NS" | head -6 || true
    "$KUBECTL" get pods -n "$NS" -l "app.kubernetes.io/instance=$RELEASE" -o wide
    [ -f "$STATE/url" ] && echo "REST API: $(cat "$STATE/url")"
    exit 0 ;;
  up) ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

t_start=$(date +%s)
if use_cluster; then
  say "using the cluster in KUBECONFIG=$KUBECONFIG"
else
  say "starting the local cluster (hack/cluster.sh up)"
  bash hack/cluster.sh up
  eval "$(bash hack/cluster.sh env)"
  touch "$STATE/started-cluster"
fi
export KUBECONFIG

say "installing the Python package (ebctl, the e2e tests)"
PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install --quiet --disable-pip-version-check -e . >/dev/null
need_helm

if local_kubeconfig; then
  say "broker image $IMAGE (built only when the source changed)"
  echo "    $("$PY" hack/ensure-image.py --tag "$IMAGE" 2>"$STATE/image-build.log")" \
    || die "building the image failed: $STATE/image-build.log"
else
  say "broker image $IMAGE: expected to be pullable by (or loaded into) the cluster's nodes"
fi

# Another install's operator on the same cluster would pause this one (kopf peering): say so.
others="$("$KUBECTL" get deployments -A -l app.kubernetes.io/part-of=execution-broker,app.kubernetes.io/component=operator \
  -o jsonpath='{range .items[?(@.spec.replicas>0)]}{.metadata.namespace}{"\n"}{end}' 2>/dev/null | grep -vx "$NS" || true)"
[ -z "$others" ] || echo "up: note: another broker operator runs in namespace(s) $others; only one of them works at a time (kopf peering)" >&2

say "namespace $NS (restricted Pod Security), CRDs"
"$KUBECTL" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $NS
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
    pod-security.kubernetes.io/warn: restricted
YAML
# helm installs crds/ only once and never upgrades them; apply them as they are now
"$KUBECTL" apply --server-side --force-conflicts -f charts/execution-broker/crds >/dev/null
"$KUBECTL" wait --for=condition=Established --timeout=60s -f charts/execution-broker/crds >/dev/null

# The ingress sessions are opened through: the local cluster's Traefik says where it listens
# (hack/cluster.sh writes ingress.env); elsewhere EB_INGRESS_URL and EB_INGRESS_CLASS name yours.
INGRESS_URL="${EB_INGRESS_URL:-}"; INGRESS_CLASS="${EB_INGRESS_CLASS:-}"
if [ -z "$INGRESS_URL" ] && local_kubeconfig && [ -f "$CLUSTER_STATE/ingress.env" ]; then
  INGRESS_URL="$(sed -n 's/^EB_INGRESS_URL=//p' "$CLUSTER_STATE/ingress.env")"
  INGRESS_CLASS="$(sed -n 's/^EB_INGRESS_CLASS=//p' "$CLUSTER_STATE/ingress.env")"
fi
# any HTTP answer will do (an unknown path is 404): a stale ingress.env without Traefik is not used
if [ -n "$INGRESS_URL" ] && ! curl -sS -o /dev/null -m 5 "$INGRESS_URL/" 2>/dev/null; then
  echo "up: note: no ingress answers at $INGRESS_URL: sessions get no routes from outside the cluster" >&2
  INGRESS_URL=""
fi

[ -s "$STATE/demo-token" ] || "$PY" -c 'import secrets; print("demo-" + secrets.token_hex(16))' >"$STATE/demo-token"
chmod 600 "$STATE/demo-token"
TOKEN="$(cat "$STATE/demo-token")"

values="$STATE/values.yaml"
repo_part="${IMAGE%:*}"; tag_part="${IMAGE##*:}"; [ "$repo_part" != "$IMAGE" ] || tag_part=latest
{
  cat <<YAML
image: {repository: "$repo_part", tag: "$tag_part", pullPolicy: IfNotPresent}
auth:
  staticTokens:
    - {user: demo, token: "$TOKEN"}
# kubectl-applied Executions may run in the default namespace too (the examples use it)
operator: {workloadNamespaces: [default]}
# Quick turns for a demo on one real core: 10 s slots, short lead and release times, offers
# that hold no longer than asked (the run time asked for, at most two offers, for a minute), and
# done objects kept for an hour.
platform:
  spec:
    slotSeconds: 10
    preparationSeconds: 5
    releaseSeconds: 5
    offerTtlSeconds: 60
    maxOffers: 2
    maxDurationFactor: 1.0
    retention: {ttlSecondsAfterFinished: 3600, offerSetTtlSeconds: 3600}
    # one demo user on a small machine may use all of it (the chart's defaults keep each user to
    # a tenth of what can be offered and a quarter of the cores: docs/operator.md)
    sharing:
      ownerLimits: {offeredCoreSeconds: "100%", offeredGpuSeconds: "100%", sessionCores: "100%", sessionGpus: "100%"}
YAML
  # On the project's local cluster NodePorts answer on the node's address from this machine,
  # which gives a URL without a port-forward.
  if local_kubeconfig; then echo 'api: {service: {type: NodePort}}'; fi
  # Notebooks and web apps reachable from outside the cluster, each for its owner only: a route
  # per session through the ingress, its gate the REST API's Service (docs/data-and-notebooks.md)
  if [ -n "$INGRESS_URL" ]; then
    echo "routes: {enabled: true, publicUrl: \"$INGRESS_URL\", ingressClassName: \"${INGRESS_CLASS:-traefik}\"}"
  fi
} >"$values"

say "helm upgrade --install $RELEASE charts/execution-broker -n $NS"
t_helm=$(date +%s)
"$HELM" upgrade --install "$RELEASE" charts/execution-broker -n "$NS" -f "$values" \
  ${EB_VALUES:+-f "$EB_VALUES"} --wait --timeout 5m >/dev/null
FULL="$(fullname)"
"$KUBECTL" -n "$NS" rollout status "deployment/$FULL-operator" --timeout=180s >/dev/null
"$KUBECTL" -n "$NS" rollout status "deployment/$FULL-api" --timeout=180s >/dev/null
t_done=$(date +%s)

# The URL: a NodePort on a node address if it answers from here, else a port-forward.
stop_port_forward
URL=""
node_port="$("$KUBECTL" -n "$NS" get service "$FULL" -o jsonpath='{.spec.ports[0].nodePort}')"
if [ -n "$node_port" ]; then
  for ip in $("$KUBECTL" get nodes -o jsonpath='{range .items[*]}{.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}' | sort -u); do
    if curl -fsS -m 3 "http://$ip:$node_port/healthz" >/dev/null 2>&1; then URL="http://$ip:$node_port"; break; fi
  done
fi
if [ -z "$URL" ]; then
  nohup "$KUBECTL" -n "$NS" port-forward "service/$FULL" "$PF_PORT:80" --address 127.0.0.1 \
    >"$STATE/port-forward.log" 2>&1 &
  echo $! >"$STATE/port-forward.pid"
  URL="http://127.0.0.1:$PF_PORT"
  for _ in $(seq 1 60); do
    curl -fsS -m 2 "$URL/healthz" >/dev/null 2>&1 && break
    kill -0 "$(cat "$STATE/port-forward.pid")" 2>/dev/null || die "kubectl port-forward exited: $STATE/port-forward.log"
    sleep 0.5
  done
fi
curl -fsS -m 5 "$URL/readyz" >/dev/null || die "the REST API does not answer at $URL"
echo "$URL" >"$STATE/url"

TOOLS="$(dirname "$KUBECTL")"; [ "$TOOLS" = . ] && TOOLS=""
HELM_DIR="$(dirname "$HELM")"
cat <<MSG

The IVOA ExecutionBroker is running: release $RELEASE in namespace $NS
(image $IMAGE; helm install/upgrade and rollout $((t_done - t_helm)) s, all of up $((t_done - t_start)) s).

  export KUBECONFIG=$KUBECONFIG
  export EB_URL=$URL
  export EB_TOKEN=\$(cat $STATE/demo-token)
  export PATH=${TOOLS:+$TOOLS:}$HELM_DIR:\$PATH

Ask for offers with curl (YAML in, YAML out), accept the first (the other is released) and
watch it run to COMPLETED:

  curl -sS -X POST "\$EB_URL/offersets" -H "Authorization: Bearer \$EB_TOKEN" \\
    -H 'Content-Type: application/yaml' --data-binary @manifests/examples/offer-request.yaml | tee offerset.yaml
  UUID=\$(python3 -c 'import yaml; print(yaml.safe_load(open("offerset.yaml"))["offers"][0]["uuid"])')
  curl -sS -X POST "\$EB_URL/sessions/\$UUID" -H "Authorization: Bearer \$EB_TOKEN" \\
    -H 'Content-Type: application/json' -d '{"update": {"type": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}}'
  ebctl watch "\$UUID"

Or with the CLI: offer, accept the earliest, and watch it to COMPLETED:

  ebctl offer --cores 1 --memory 1 --duration 5m --image eb-workload:latest --accept --watch -- sh -c 'echo hello'

Or as a custom resource:

  kubectl apply -f manifests/examples/hello-execution.yaml
  kubectl wait execution/hello --for=jsonpath='{.status.phase}'=COMPLETED --timeout=5m && kubectl logs eb-hello
  kubectl delete -f manifests/examples/hello-execution.yaml

Stop: bash hack/up.sh stop  (uninstall)    bash hack/up.sh down  (and stop the local cluster)
MSG
if [ -n "$INGRESS_URL" ]; then
  build_images=""
  local_kubeconfig && build_images="
  bash hack/build-test-images.sh                # the notebook image eb-notebook:latest (once; ~5 min cold)"
  cat <<MSG

Open a notebook in your browser: JupyterLab through the ingress at $INGRESS_URL, for you only
(ebctl open prints a one-time login link; it sets a cookie for the session's path):
$build_images
  NB=\$(ebctl offer -f manifests/examples/notebook-request.yaml --accept | awk 'NR == 2 {print \$1}')
  ebctl open "\$NB" --wait 300                   # open the link it prints in a browser on this machine
  ebctl cancel "\$NB"                            # when you are done: the URL answers 404 at once
MSG
fi
