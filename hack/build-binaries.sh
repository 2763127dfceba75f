#!/usr/bin/env bash
# Builds the pinned upstream binaries the local cluster needs, from the Go module proxy, into
# a cache outside the repository keyed by version. A second run finds them and returns at once.
set -euo pipefail
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/versions.env
source "$HACK_DIR/versions.env"

CACHE="${EB_CACHE_DIR:-$HOME/.cache/eb-operator}"
K8S_BIN="$CACHE/k8s/$K8S_VERSION/bin"
ETCD_BIN="$CACHE/etcd/$ETCD_VERSION/bin"
KWOK_BIN="$CACHE/kwok/$KWOK_VERSION/bin"
HELM_BIN="$CACHE/helm/$HELM_VERSION/bin"
CRICTL_BIN="$CACHE/crictl/${CRICTL_VERSION:-v1.34.0}/bin"
VERSITYGW_BIN="$CACHE/versitygw/${VERSITYGW_VERSION:-v1.8.0}/bin"
TRAEFIK_BIN="$CACHE/traefik/$TRAEFIK_VERSION/bin"
KUBE_ROUTER_BIN="$CACHE/kube-router/$KUBE_ROUTER_VERSION/bin"
export GOFLAGS="-mod=mod" CGO_ENABLED="${CGO_ENABLED:-0}"

die() { echo "build-binaries: $*" >&2; exit 1; }
command -v go >/dev/null || die "the Go toolchain is missing: install Go >= 1.24 (apt-get install golang-go) and retry"

build_k8s() {
  local want=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy)
  local missing=()
  for b in "${want[@]}"; do [ -x "$K8S_BIN/$b" ] || missing+=("$b"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "building Kubernetes $K8S_VERSION: ${missing[*]} (cold: ~10 min on 2 cores)"
  local work; work="$(mktemp -d)"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local staging="v0.${K8S_VERSION#v1.}"
  (
    cd "$work"
    go mod init eb-k8s-build >/dev/null 2>&1
    go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
    local gomod; gomod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
    {
      echo "module eb-k8s-build"
      echo "go 1.24.0"
      echo "require k8s.io/kubernetes $K8S_VERSION"
      grep -E '^\s+k8s.io/[^ ]+ => ./staging' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
    } > go.mod
    cat > tools.go <<'GO'
//go:build tools
package tools
import _ "k8s.io/kubernetes/cmd/kubelet"
GO
    go mod tidy >/dev/null 2>&1 || true
    local ld="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
    mkdir -p "$K8S_BIN"
    for b in "${missing[@]}"; do
      echo "  go build $b"
      go build -trimpath -ldflags "$ld" -o "$K8S_BIN/$b.tmp" "k8s.io/kubernetes/cmd/$b"
      mv "$K8S_BIN/$b.tmp" "$K8S_BIN/$b"
    done
  ) || die "building Kubernetes $K8S_VERSION failed (see the go output above); check disk space and the Go module proxy, then rerun"
  rm -rf "$work"
}

build_etcd() {
  [ -x "$ETCD_BIN/etcd" ] && return 0
  echo "building etcd $ETCD_VERSION"
  local work; work="$(mktemp -d)"
  (
    cd "$work"
    cat > go.mod <<GOMOD
module eb-etcd-build
go 1.24.0
require go.etcd.io/etcd/server/v3 $ETCD_VERSION
replace (
  go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
  go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
  go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
  go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)
GOMOD
    cat > tools.go <<'GO'
//go:build tools
package tools
import _ "go.etcd.io/etcd/server/v3/etcdmain"
GO
    go mod tidy >/dev/null 2>&1 || true
    mkdir -p "$ETCD_BIN"
    go build -trimpath -ldflags "-s -w" -o "$ETCD_BIN/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$ETCD_BIN/etcd.tmp" "$ETCD_BIN/etcd"
  ) || die "building etcd $ETCD_VERSION failed; rerun, or check the Go module proxy"
  rm -rf "$work"
}

build_kwok() {
  [ -x "$KWOK_BIN/kwok" ] && return 0
  echo "building kwok $KWOK_VERSION"
  mkdir -p "$KWOK_BIN"
  GOBIN="$KWOK_BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
    || die "building kwok $KWOK_VERSION failed"
}

build_helm() {
  [ -x "$HELM_BIN/helm" ] && return 0
  echo "building helm $HELM_VERSION"
  mkdir -p "$HELM_BIN"
  go mod download -json "helm.sh/helm/v3@$HELM_VERSION" >/dev/null || die "downloading helm $HELM_VERSION failed"
  # The ldflags helm's Makefile sets: its version, and the Kubernetes version of its client
  # libraries (k8s.io/client-go v0.X.Y -> 1.X), which `helm template` assumes without a cluster
  # (unset, helm says v1.20 and charts with a kubeVersion constraint refuse to render).
  local gomod minor
  gomod="$(go env GOMODCACHE)/cache/download/helm.sh/helm/v3/@v/$HELM_VERSION.mod"
  minor="$(awk '$1 == "k8s.io/client-go" {split($2, v, "."); print v[2]}' "$gomod")"
  [ -n "$minor" ] || die "cannot read the k8s.io/client-go version from $gomod"
  GOBIN="$HELM_BIN" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
    || die "building helm $HELM_VERSION failed"
}

# crictl: the CRI client hack/cluster.sh uses to remove pod sandboxes cleanly (and handy for debugging)
build_crictl() {
  [ -x "$CRICTL_BIN/crictl" ] && return 0
  echo "building crictl ${CRICTL_VERSION:-v1.34.0}"
  mkdir -p "$CRICTL_BIN"
  GOBIN="$CRICTL_BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION:-v1.34.0}" \
    || die "building crictl ${CRICTL_VERSION:-v1.34.0} failed"
}

# versitygw: a real S3-compatible server (POSIX backend) for the data-staging integration tests
build_versitygw() {
  [ -x "$VERSITYGW_BIN/versitygw" ] && return 0
  echo "building versitygw ${VERSITYGW_VERSION:-v1.8.0} (S3 server for the data-staging tests)"
  mkdir -p "$VERSITYGW_BIN"
  GOBIN="$VERSITYGW_BIN" go install -trimpath -ldflags "-s -w" \
    "github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION:-v1.8.0}" \
    || die "building versitygw ${VERSITYGW_VERSION:-v1.8.0} failed"
}

# Traefik: the local cluster's ingress controller. Its go.mod has `replace` directives (three
# forks) and an `exclude`, which `go install pkg@version` refuses, so it is built through a
# throwaway main module that repeats them, read from that version's go.mod (as for Kubernetes).
# Its CRDs (traefik.io Middleware, ...) ship in the same module zip; hack/cluster.sh installs them
# from the module cache.
build_traefik() {
  traefik_manifests
  [ -x "$TRAEFIK_BIN/traefik" ] && return 0
  echo "building traefik $TRAEFIK_VERSION (cold: several minutes on 2 cores)"
  local work; work="$(mktemp -d)"
  (
    cd "$work"
    go mod init eb-traefik-build >/dev/null 2>&1
    go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" >/dev/null
    local gomod; gomod="$(go env GOMODCACHE)/cache/download/github.com/traefik/traefik/v3/@v/$TRAEFIK_VERSION.mod"
    local replaces excludes
    # `replace (` block lines look like "<tab>path => path version"; single-line ones "replace path => ..."
    replaces="$(awk '/^replace \($/ {b=1; next} b && /^\)/ {b=0} b && /=>/ {print "replace " $0} /^replace [^(]/ {print}' "$gomod")"
    excludes="$(awk '/^exclude \($/ {b=1; next} b && /^\)/ {b=0} b && NF {print "exclude " $0} /^exclude [^(]/ {print}' "$gomod")"
    [ -n "$replaces" ] || { echo "no replace directives found in $gomod: has the recipe changed?" >&2; exit 1; }
    {
      echo "module eb-traefik-build"
      echo "go 1.25.0"
      echo "require github.com/traefik/traefik/v3 $TRAEFIK_VERSION"
      echo "$replaces"
      echo "$excludes"
    } > go.mod
    cat > tools.go <<'GO'
//go:build tools
package tools
import _ "github.com/traefik/traefik/v3/cmd/traefik"
GO
    go mod tidy >/dev/null 2>&1 || true
    mkdir -p "$TRAEFIK_BIN"
    go build -trimpath -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
      -o "$TRAEFIK_BIN/traefik.tmp" github.com/traefik/traefik/v3/cmd/traefik
    mv "$TRAEFIK_BIN/traefik.tmp" "$TRAEFIK_BIN/traefik"
  ) || die "building traefik $TRAEFIK_VERSION failed (see the go output above); rerun, or check the Go module proxy"
  rm -rf "$work"
}

# Traefik's own CRDs (traefik.io: Middleware, IngressRoute, ...) and the ClusterRoles its
# Kubernetes CRD and Gateway providers need, copied from that version's module zip (the files
# Traefik's documentation serves) next to the binary, for hack/cluster.sh to apply.
traefik_manifests() {
  local out="$CACHE/traefik/$TRAEFIK_VERSION/manifests"
  [ -s "$out/crds.yaml" ] && [ -s "$out/rbac-crd.yaml" ] && [ -s "$out/rbac-gateway.yaml" ] && return 0
  local dir
  dir="$(cd /tmp && go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" | awk -F'"' '$2 == "Dir" {print $4}')"
  local ref="$dir/docs/content/reference/dynamic-configuration"
  [ -s "$ref/kubernetes-crd-definition-v1.yml" ] || die "no Traefik CRDs in $ref (module github.com/traefik/traefik/v3@$TRAEFIK_VERSION)"
  mkdir -p "$out"
  install -m 0644 "$ref/kubernetes-crd-rbac.yml" "$out/rbac-crd.yaml"
  install -m 0644 "$ref/kubernetes-gateway-rbac.yml" "$out/rbac-gateway.yaml"
  install -m 0644 "$ref/kubernetes-crd-definition-v1.yml" "$out/crds.yaml.tmp"
  mv "$out/crds.yaml.tmp" "$out/crds.yaml"
}

# The Gateway API CRDs (standard channel) from the sigs.k8s.io/gateway-api module zip, at the
# version Traefik supports, concatenated into one file for hack/cluster.sh to apply.
build_gateway_api() {
  local out="$CACHE/gateway-api/$GATEWAY_API_VERSION/standard-crds.yaml"
  [ -s "$out" ] && return 0
  echo "fetching the Gateway API $GATEWAY_API_VERSION CRDs (standard channel)"
  local dir f
  dir="$(cd /tmp && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | awk -F'"' '$2 == "Dir" {print $4}')"
  [ -d "$dir/config/crd/standard" ] || die "no config/crd/standard in sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION"
  mkdir -p "${out%/*}"
  for f in "$dir"/config/crd/standard/*.yaml; do
    echo "---"
    cat "$f"
  done >"$out.tmp"
  chmod 0644 "$out.tmp"
  mv "$out.tmp" "$out"
}

# kube-router: only its NetworkPolicy controller runs (hack/cluster.sh), enforcing policies with
# iptables and ipsets beside the bridge CNI. Its go.mod has no replace directives.
build_kube_router() {
  [ -x "$KUBE_ROUTER_BIN/kube-router" ] && return 0
  echo "building kube-router $KUBE_ROUTER_VERSION"
  mkdir -p "$KUBE_ROUTER_BIN"
  GOBIN="$KUBE_ROUTER_BIN" go install -trimpath \
    -ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION" \
    || die "building kube-router $KUBE_ROUTER_VERSION failed"
}

targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(etcd kwok k8s)
for t in "${targets[@]}"; do "build_${t//-/_}"; done
