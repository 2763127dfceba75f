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

targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(etcd kwok k8s)
for t in "${targets[@]}"; do "build_$t"; done
