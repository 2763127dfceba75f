#!/usr/bin/env bash
# The local Kubernetes cluster the project tests against: a real control plane (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler), one real node (kubelet on containerd
# + runc with CNI bridge networking), kube-proxy, kube-router (NetworkPolicy enforcement only),
# kwok simulating many more nodes, some with GPUs, and Traefik as the ingress controller (Ingress,
# Gateway API, Traefik's Middleware CRDs) on a host port. Everything runs as host processes
# started by this script; no Docker, no registry.
#
#   hack/cluster.sh up [--kwok-nodes N] [--gpu-nodes M] [--no-kube-proxy]
#   hack/cluster.sh down [--purge]     stop everything `up` started and clean up
#   hack/cluster.sh status             each component and its pid, API and node health
#   hack/cluster.sh stop|start|restart kube-apiserver|kube-controller-manager|kubelet|kwok|traefik|kube-router
#                                      one component of a running cluster (fault tests); start and
#                                      restart wait for /readyz (apiserver), the node Ready (kubelet),
#                                      /ping (traefik) or /healthz (kube-router)
#   hack/cluster.sh env                `eval "$(hack/cluster.sh env)"` sets KUBECONFIG and PATH
#   hack/cluster.sh deps | images      only install the Debian packages / build+cache the images
#
# State lives outside the repository in ${EB_CLUSTER_DIR:-$HOME/.local/state/eb-operator/cluster};
# binaries and image tars are cached in ${EB_CACHE_DIR:-$HOME/.cache/eb-operator}.
# See docs/local-cluster.md for the layout, addresses, timings and pitfalls.
set -euo pipefail
umask 022

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/versions.env
source "$HACK_DIR/versions.env"

STATE="${EB_CLUSTER_DIR:-$HOME/.local/state/eb-operator/cluster}"
CACHE="${EB_CACHE_DIR:-$HOME/.cache/eb-operator}"
K8S_BIN="$CACHE/k8s/$K8S_VERSION/bin"
ETCD_BIN="$CACHE/etcd/$ETCD_VERSION/bin"
KWOK_BIN="$CACHE/kwok/$KWOK_VERSION/bin"
CRICTL_BIN="$CACHE/crictl/$CRICTL_VERSION/bin"
TRAEFIK_BIN="$CACHE/traefik/$TRAEFIK_VERSION/bin"
TRAEFIK_MANIFESTS="$CACHE/traefik/$TRAEFIK_VERSION/manifests"
GATEWAY_API_CRDS="$CACHE/gateway-api/$GATEWAY_API_VERSION/standard-crds.yaml"
KUBE_ROUTER_BIN="$CACHE/kube-router/$KUBE_ROUTER_VERSION/bin"
KUBECTL="$K8S_BIN/kubectl"

# Addresses. None of them is routed off this machine: the node IP is a /32 on lo, pods live on
# a local bridge, and every other cluster range gets an `unreachable` route.
NODE_NAME="eb-real-node"
NODE_IP="10.213.0.1"
POD_RANGE="10.214.0.0/16"          # all pod addresses of the real node (unreachable beyond the bridge)
POD_CIDR="10.214.0.0/24"           # the bridge's subnet
POD_GW="10.214.0.1"
SERVICE_CIDR="10.215.0.0/24"
KWOK_RANGE="10.216.0.0/15"         # kwok pod IPs (10.216/16) and kwok node IP (10.217.0.1): fake, unreachable
KWOK_POD_CIDR="10.216.0.0/16"
KWOK_NODE_IP="10.217.0.1"
BRIDGE="ebcni0"
RT_TABLE=2140                      # policy routing table for traffic coming out of pods
APISERVER_PORT="${EB_APISERVER_PORT:-6443}"
ETCD_CLIENT_PORT="${EB_ETCD_PORT:-2379}"
ETCD_PEER_PORT="$((ETCD_CLIENT_PORT + 1))"
KCM_PORT=10257
SCHED_PORT=10259
KUBELET_PORT=10250
KUBELET_HEALTHZ_PORT=10248
PROXY_HEALTHZ_PORT=10256
PROXY_METRICS_PORT=10249
# kube-router v2.1.0 serves /healthz on all addresses (it has no bind-address flag for it)
KUBE_ROUTER_HEALTH_PORT="${EB_KUBE_ROUTER_HEALTH_PORT:-20244}"
# The ingress: Traefik's `web` entrypoint. The node address by default: the host and Pods reach it,
# nothing outside the machine does (EB_INGRESS_ADDRESS=0.0.0.0 publishes it on every interface).
INGRESS_ADDRESS="${EB_INGRESS_ADDRESS:-$NODE_IP}"
INGRESS_PORT="${EB_INGRESS_PORT:-8088}"
TRAEFIK_PING_PORT="${EB_TRAEFIK_PING_PORT:-8089}"   # Traefik's own entrypoint: /ping only, 127.0.0.1
INGRESS_CLASS=traefik
INGRESS_NAMESPACE=eb-ingress                        # holds the shared Gateway
GATEWAY_CLASS=traefik
GATEWAY_NAME=eb-gateway
PAUSE_TAG="3.10.1"
PAUSE_IMAGE="docker.io/library/eb-pause:$PAUSE_TAG"
WORKLOAD_IMAGE="docker.io/library/eb-workload:latest"
# Bump when the workload image recipe changes (the cache key also hashes the recipe itself).
WORKLOAD_RECIPE_VERSION=1

SOCK="$STATE/containerd/containerd.sock"
KUBECONFIG_FILE="$STATE/kubeconfig"
PKI="$STATE/pki"
CFG="$STATE/config"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy kube-router kwok traefik)

UP_TIMEOUT="${EB_UP_TIMEOUT:-180}"
# How long a kwok node's Lease lasts (kwok renews it every quarter of that) and how long the
# controller-manager waits for a renewal before it calls the node NotReady. The defaults are a
# kubelet's and Kubernetes' own; benchmarks/scale.py raises both for thousands of kwok nodes,
# whose renewals (every 10 s each) would otherwise take more than this machine's two cores.
NODE_LEASE_SECONDS="${EB_NODE_LEASE_SECONDS:-40}"
NODE_MONITOR_GRACE="${EB_NODE_MONITOR_GRACE:-50s}"

log() { printf '%s cluster: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf '\ncluster: ERROR: %s\n' "$1" >&2
  shift
  for line in "$@"; do printf '  %s\n' "$line" >&2; done
  exit 1
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "this needs root (it mounts, creates network namespaces and cgroups)" \
    "rerun as root, e.g. sudo -E $0 $*"
}

lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -n 9 && return 0
  log "another hack/cluster.sh up/down is running; waiting for it (up to 30 min)"
  flock -w 1800 9 || die "another hack/cluster.sh up/down has held $STATE/.lock for 30 minutes" \
    "see what it is doing (ps -ef | grep cluster.sh); stop it if it hangs, then rerun"
}

# ---------------------------------------------------------------------------------------------
# processes

pidfile() { echo "$PIDS/$1.pid"; }
cmdline() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true; }
alive() {
  local pid=$1 st
  [ -r "/proc/$pid/stat" ] || return 1
  st="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [ "$st" != Z ] && [ -n "$st" ]
}
# pid of a component if it runs from our pid file (and really is ours), else empty
comp_pid() {
  local pf pid
  pf="$(pidfile "$1")"
  [ -f "$pf" ] || return 0
  pid="$(cat "$pf")"
  if alive "$pid" && [[ "$(cmdline "$pid")" == *"$STATE"* ]]; then echo "$pid"; fi
}
binary_of() {
  case "$1" in
    etcd) echo "$ETCD_BIN/etcd" ;;
    kwok) echo "$KWOK_BIN/kwok" ;;
    traefik) echo "$TRAEFIK_BIN/traefik" ;;
    kube-router) echo "$KUBE_ROUTER_BIN/kube-router" ;;
    containerd) command -v containerd || echo /usr/bin/containerd ;;
    *) echo "$K8S_BIN/$1" ;;
  esac
}
# every process on the machine whose binary is $1 (basename) and whose command line names our state dir
procs_of() {
  local want=$1 pid cmd exe
  for pid in $(pgrep -f -- "$(sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$STATE")"); do
    [ "$pid" = $$ ] && continue
    cmd="$(cmdline "$pid")"
    [[ "$cmd" == *"$STATE"* ]] || continue
    exe="${cmd%% *}"
    [ "${exe##*/}" = "$want" ] && echo "$pid"
  done
  return 0
}
port_owner() { # prints "pid command" of the listener on $1:$2 (tcp), empty if free
  local line
  line="$(ss -Hltnp "sport = :$2" 2>/dev/null | awk -v a="$1" '$4 ~ ("^(" a "|0.0.0.0|\\*|\\[::\\]):") {print; exit}')"
  [ -n "$line" ] || return 0
  local pid; pid="$(grep -o 'pid=[0-9]*' <<<"$line" | head -1 | cut -d= -f2)"
  echo "${pid:-?} $(cmdline "${pid:-0}" | cut -c1-120)"
}
ports_of() {
  case "$1" in
    etcd) echo "127.0.0.1:$ETCD_CLIENT_PORT 127.0.0.1:$ETCD_PEER_PORT" ;;
    kube-apiserver) echo "$NODE_IP:$APISERVER_PORT" ;;
    kube-controller-manager) echo "127.0.0.1:$KCM_PORT" ;;
    kube-scheduler) echo "127.0.0.1:$SCHED_PORT" ;;
    kubelet) echo "$NODE_IP:$KUBELET_PORT 127.0.0.1:$KUBELET_HEALTHZ_PORT" ;;
    kube-proxy) echo "127.0.0.1:$PROXY_HEALTHZ_PORT 127.0.0.1:$PROXY_METRICS_PORT" ;;
    kube-router) echo "0.0.0.0:$KUBE_ROUTER_HEALTH_PORT" ;;
    traefik) echo "$INGRESS_ADDRESS:$INGRESS_PORT 127.0.0.1:$TRAEFIK_PING_PORT" ;;
  esac
}

# preflight_one NAME: a component about to start must have no leftover process and free ports
preflight_one() {
  local name=$1 left hp owner
  left="$(procs_of "$(basename "$(binary_of "$name")")" | tr '\n' ' ')"
  [ -z "${left// /}" ] || die "a leftover $name process from an earlier run is still running (pid ${left% }) but is not in $(pidfile "$name")" \
    "probably the previous cluster crashed or its pid files were removed" \
    "run: $0 down    (it stops leftovers too), then: $0 up"
  for hp in $(ports_of "$name"); do
    owner="$(port_owner "${hp%:*}" "${hp##*:}")"
    [ -z "$owner" ] || die "port $hp needed by $name is already in use by: $owner" \
      "stop that process (or, if it is a leftover of this cluster, run: $0 down), then rerun: $0 up"
  done
}

# check every component that is not running yet, before starting anything
preflight() {
  local name
  for name in "${COMPONENTS[@]}"; do
    [ -n "$(comp_pid "$name")" ] || preflight_one "$name"
  done
}

# start_proc NAME CMD...: start unless our pid file says it runs; refuse leftovers and busy ports
start_proc() {
  local name=$1; shift
  local pid; pid="$(comp_pid "$name")"
  if [ -n "$pid" ]; then log "$name already running (pid $pid)"; return 0; fi
  preflight_one "$name"
  rm -f "$(pidfile "$name")"
  printf '\n==== %s start %s\n' "$(date -Is)" "$name" >>"$LOGS/$name.log"
  # The daemon must not inherit any open descriptor beyond stdio: a lock held by whoever ran us
  # (e.g. `flock /tmp/x.lock hack/cluster.sh restart kwok`) would otherwise stay held for its life.
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1
  ) &
  echo $! >"$(pidfile "$name")"
  log "started $name (pid $!, log $LOGS/$name.log)"
}

# wait_for NAME TIMEOUT DESCRIPTION CHECK...: poll CHECK once a second; fail fast if NAME died
wait_for() {
  local name=$1 timeout=$2 what=$3; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$name" ] && [ -z "$(comp_pid "$name")" ]; then
      die "$name exited while waiting for $what" "last lines of $LOGS/$name.log:" \
        "$(tail -n 15 "$LOGS/$name.log" 2>/dev/null | sed 's/^/    /')" \
        "fix the cause, then: $0 down && $0 up"
    fi
    if ((SECONDS >= deadline)); then
      die "timed out after ${timeout}s waiting for $what" \
        "last lines of $LOGS/${name:-kube-apiserver}.log:" \
        "$(tail -n 15 "$LOGS/${name:-kube-apiserver}.log" 2>/dev/null | sed 's/^/    /')" \
        "see $LOGS/ for all component logs; $0 status shows what runs; $0 down cleans up"
    fi
    sleep 1
  done
}

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# ---------------------------------------------------------------------------------------------
# dependencies

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "missing packages: $* and apt-get is not available" \
    "install them with your package manager and rerun"
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    apt-get update -qq >"$LOGS/apt.log" 2>&1 || die "apt-get update failed (see $LOGS/apt.log)" \
      "check that the Debian mirror is reachable, then rerun"
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >>"$LOGS/apt.log" 2>&1 \
    || die "apt-get install $* failed (see $LOGS/apt.log)" "install them by hand and rerun"
}

ensure_deps() {
  mkdir -p "$LOGS"
  local -A pkg_of=(
    [containerd]=containerd [ctr]=containerd [runc]=runc [iptables]=iptables [ip6tables]=iptables
    [conntrack]=conntrack [socat]=socat [openssl]=openssl [debootstrap]=debootstrap [curl]=curl
    [gcc]=gcc [ss]=iproute2 [ip]=iproute2 [flock]=util-linux [setsid]=util-linux [mount]=mount
    [python3]=python3 [nsenter]=util-linux [tar]=tar [ipset]=ipset
  )
  local missing=() c
  for c in "${!pkg_of[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("${pkg_of[$c]}"); done
  for c in bridge host-local loopback portmap; do
    [ -x "/usr/lib/cni/$c" ] || { missing+=(containernetworking-plugins); break; }
  done
  [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -n "$(ls /usr/lib/*/libc.a 2>/dev/null)" ] || missing+=(libc6-dev)
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
  if [ ${#missing[@]} -gt 0 ]; then
    # shellcheck disable=SC2046
    apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
  fi
  command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || apt_install golang-go
  case ":$PATH:" in *:/usr/local/go/bin:*) ;; *) [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin" ;; esac
  for c in containerd ctr runc iptables conntrack openssl debootstrap curl gcc python3 ipset; do
    command -v "$c" >/dev/null || die "required tool '$c' is still missing after apt-get install" \
      "install it by hand (apt-get install ${pkg_of[$c]}) and rerun"
  done
}

ensure_binaries() {
  local need=0 b
  for b in "$K8S_BIN"/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kubectl,kube-proxy} \
    "$ETCD_BIN/etcd" "$KWOK_BIN/kwok" "$CRICTL_BIN/crictl" "$TRAEFIK_BIN/traefik" "$KUBE_ROUTER_BIN/kube-router"; do
    [ -x "$b" ] || need=1
  done
  for b in "$GATEWAY_API_CRDS" "$TRAEFIK_MANIFESTS"/{crds,rbac-crd,rbac-gateway}.yaml; do
    [ -s "$b" ] || need=1
  done
  [ "$need" = 0 ] && return 0
  # Someone else (CI, another shell) may be building into the same cache: wait, don't race.
  local other
  while other="$(pgrep -f 'build-binaries\.sh' || true)" && other="${other%%$'\n'*}" && [ -n "$other" ]; do
    log "waiting for a running hack/build-binaries.sh (pid $other) to finish first"
    while alive "$other"; do sleep 5; done
  done
  log "building pinned binaries (cold: ~20-25 min on 2 cores; log $LOGS/build.log)"
  if ! bash "$HACK_DIR/build-binaries.sh" etcd kwok k8s crictl kube-router traefik gateway-api >"$LOGS/build.log" 2>&1; then
    die "building the pinned binaries failed" "last lines of $LOGS/build.log:" \
      "$(tail -n 12 "$LOGS/build.log" | sed 's/^/    /')" \
      "fix the cause (disk space? Go module proxy reachable?) and rerun: $0 up" \
      "(or build by hand: hack/build-binaries.sh etcd kwok k8s crictl kube-router traefik gateway-api)"
  fi
  for b in "$K8S_BIN"/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kubectl,kube-proxy} \
    "$ETCD_BIN/etcd" "$KWOK_BIN/kwok" "$CRICTL_BIN/crictl" "$TRAEFIK_BIN/traefik" "$KUBE_ROUTER_BIN/kube-router"; do
    [ -x "$b" ] || die "hack/build-binaries.sh finished but $b is missing" "see $LOGS/build.log"
  done
  for b in "$GATEWAY_API_CRDS" "$TRAEFIK_MANIFESTS"/{crds,rbac-crd,rbac-gateway}.yaml; do
    [ -s "$b" ] || die "hack/build-binaries.sh finished but $b is missing" "see $LOGS/build.log"
  done
}

# ---------------------------------------------------------------------------------------------
# images: pause and eb-workload, built from source / Debian packages, cached by content key

PAUSE_TAR="" WORKLOAD_TAR=""
build_images() {
  mkdir -p "$CACHE/images"
  local gomodcache pause_src
  gomodcache="$(go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")"
  pause_src="$gomodcache/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c"
  if [ ! -f "$pause_src" ]; then
    (cd /tmp && GOFLAGS=-mod=mod go mod download "k8s.io/kubernetes@$K8S_VERSION") >>"$LOGS/images.log" 2>&1 \
      || die "cannot fetch k8s.io/kubernetes@$K8S_VERSION for pause.c (see $LOGS/images.log)"
  fi
  local key; key="$( (cat "$pause_src"; echo "$PAUSE_TAG"; sha256sum <"$HACK_DIR/oci-image.py") | sha256sum | cut -c1-12)"
  PAUSE_TAR="$CACHE/images/eb-pause-$PAUSE_TAG-$key.tar"
  if [ ! -f "$PAUSE_TAR" ]; then
    log "building the pause image from $K8S_VERSION's pause.c"
    local w; w="$(mktemp -d)"
    mkdir -p "$w/rootfs"
    gcc -Os -Wall -static -DVERSION="v$PAUSE_TAG-eb" -o "$w/rootfs/pause" "$pause_src" >>"$LOGS/images.log" 2>&1 \
      || die "gcc -static pause.c failed (see $LOGS/images.log)" "apt-get install gcc libc6-dev and rerun"
    python3 "$HACK_DIR/oci-image.py" --tag "eb-pause:$PAUSE_TAG" --rootfs "$w/rootfs" --user 65535:65535 \
      --entrypoint /pause -o "$PAUSE_TAR" >/dev/null
    rm -rf "$w"
  fi

  # The workload image: Debian bookworm minbase + python3, user eb (uid 1000) by default.
  local recipe; recipe="$(declare -f build_workload_rootfs)"
  key="$( (echo "$WORKLOAD_RECIPE_VERSION"; echo "$recipe"; sha256sum <"$HACK_DIR/oci-image.py") | sha256sum | cut -c1-12)"
  WORKLOAD_TAR="$CACHE/images/eb-workload-v$WORKLOAD_RECIPE_VERSION-$key.tar"
  if [ ! -f "$WORKLOAD_TAR" ]; then
    log "building the eb-workload image (debootstrap bookworm minbase + python3; ~1-3 min once)"
    local w="$CACHE/images/build-workload"
    cleanup_build_dir "$w"
    mkdir -p "$w"
    build_workload_rootfs "$w/rootfs" >>"$LOGS/images.log" 2>&1 || {
      cleanup_build_dir "$w"
      die "building the workload root filesystem failed" "last lines of $LOGS/images.log:" \
        "$(tail -n 10 "$LOGS/images.log" | sed 's/^/    /')" "check the Debian mirror is reachable, then rerun"
    }
    python3 "$HACK_DIR/oci-image.py" --tag eb-workload:latest --rootfs "$w/rootfs" --user 1000:1000 \
      --workdir /home/eb --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --env HOME=/home/eb --env LANG=C.UTF-8 --env PYTHONDONTWRITEBYTECODE=1 --cmd /bin/sh \
      --label org.opencontainers.image.title=eb-workload -o "$WORKLOAD_TAR.part" >/dev/null
    mv "$WORKLOAD_TAR.part" "$WORKLOAD_TAR"
    cleanup_build_dir "$w"
    # older versions of the image are no longer useful
    find "$CACHE/images" -maxdepth 1 -name 'eb-workload-*.tar' ! -name "${WORKLOAD_TAR##*/}" -delete
  fi
}

cleanup_build_dir() {
  local w=$1 m
  [ -d "$w" ] || return 0
  # debootstrap mounts proc/sys inside the target; never rm -rf through a mount
  for m in $(awk -v p="$w/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  if awk -v p="$w/" 'index($5, p) == 1 {found=1} END {exit !found}' /proc/self/mountinfo; then
    die "cannot unmount everything under $w" "unmount by hand (see /proc/self/mountinfo) and rerun"
  fi
  rm -rf "$w"
}

debian_mirror() {
  local m
  m="$(grep -rhoE 'https?://[^ ]*debian(/)?$|https?://[^ ]*/debian( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | grep -v security | head -1 | tr -d ' ')" || true
  echo "${m:-http://deb.debian.org/debian}"
}

build_workload_rootfs() {
  local root=$1
  debootstrap --variant=minbase --include=python3-minimal,python3,ca-certificates --components=main \
    bookworm "$root" "$(debian_mirror)"
  # a non-root user for the restricted PodSecurity profile
  echo 'eb:x:1000:1000:eb workload user:/home/eb:/bin/sh' >>"$root/etc/passwd"
  echo 'eb:x:1000:' >>"$root/etc/group"
  echo 'eb:*:19000:0:99999:7:::' >>"$root/etc/shadow"
  install -d -o 1000 -g 1000 -m 0755 "$root/home/eb"
  chmod 1777 "$root/tmp"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
  : >"$root/etc/machine-id"
  echo eb-workload >"$root/etc/hostname"
}

import_images() {
  local tar name marker want have
  for pair in "$PAUSE_TAR=$PAUSE_IMAGE" "$WORKLOAD_TAR=$WORKLOAD_IMAGE"; do
    tar="${pair%%=*}"; name="${pair#*=}"
    marker="$STATE/containerd/imported-${name##*/}"
    want="${tar##*/}"
    have="$(cat "$marker" 2>/dev/null || true)"
    if [ "$have" = "$want" ] && ctr -a "$SOCK" -n k8s.io images ls -q 2>/dev/null | grep -x "$name" >/dev/null; then
      continue
    fi
    log "importing $name into containerd"
    ctr -a "$SOCK" -n k8s.io images import --no-unpack=false "$tar" >>"$LOGS/images.log" 2>&1 \
      || die "ctr images import $tar failed (see $LOGS/images.log)" "delete $tar to rebuild it, then rerun"
    ctr -a "$SOCK" -n k8s.io images ls -q | grep -x "$name" >/dev/null \
      || die "after importing $tar containerd has no image $name" "see $LOGS/images.log"
    echo "$want" >"$marker"
  done
}

# ---------------------------------------------------------------------------------------------
# PKI and kubeconfigs

cert() { # cert NAME CN [O] [SAN] [usage: client|server|both] [CA name]
  local name=$1 cn=$2 o=${3:-} san=${4:-} usage=${5:-client} ca=${6:-ca}
  [ -f "$PKI/$name.crt" ] && return 0
  local subj="/CN=$cn"; [ -n "$o" ] && subj="/O=$o$subj"
  local eku="clientAuth"; [ "$usage" = server ] && eku="serverAuth"; [ "$usage" = both ] && eku="serverAuth,clientAuth"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

ca() { # ca NAME CN
  [ -f "$PKI/$1.crt" ] && return 0
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$1.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/$1.crt" 2>/dev/null
}

make_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  [ -f "$PKI/ca.crt" ] || log "creating the PKI in $PKI"
  ca ca eb-operator-local-ca
  # the aggregation layer's own CA: delegated authentication (controller-manager, scheduler,
  # aggregated API servers) reads it from kube-system/extension-apiserver-authentication
  ca front-proxy-ca eb-operator-front-proxy-ca
  cert front-proxy-client front-proxy-client "" "" client front-proxy-ca
  local svc_ip="${SERVICE_CIDR%.*}.1"
  cert apiserver kube-apiserver "" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$svc_ip" server
  cert apiserver-kubelet-client kube-apiserver-kubelet-client
  cert admin eb-admin system:masters
  cert controller-manager system:kube-controller-manager
  cert scheduler system:kube-scheduler
  cert kube-proxy system:kube-proxy
  cert kubelet "system:node:$NODE_NAME" system:nodes
  cert kubelet-serving "$NODE_NAME" "" "DNS:$NODE_NAME,IP:$NODE_IP" server
  cert kwok eb-kwok system:masters
  cert traefik eb-traefik
  cert kube-router eb-kube-router
  if [ ! -f "$PKI/sa.key" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  chmod 600 "$PKI"/*.key
}

# put FILE: write stdin to FILE only if it differs (running components watch some of their files)
put() {
  local f=$1 t
  t="$(mktemp "$f.XXXXXX")"
  cat >"$t"
  if cmp -s "$t" "$f"; then rm -f "$t"; else chmod 644 "$t"; mv "$t" "$f"; fi
}

kubeconfig() { # kubeconfig FILE CERTNAME USER
  local file=$1 name=$2 user=$3
  put "$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: eb-local
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$name.crt")
    client-key-data: $(base64 -w0 <"$PKI/$name.key")
contexts:
- name: eb-local
  context: {cluster: eb-local, user: $user}
current-context: eb-local
EOF
  chmod 600 "$file"
}

write_configs() {
  mkdir -p "$CFG" "$STATE/cni/net.d" "$STATE/containerd" "$STATE/kubelet" "$STATE/kube-controller-manager" "$STATE/kube-scheduler"
  kubeconfig "$KUBECONFIG_FILE" admin eb-admin
  kubeconfig "$CFG/controller-manager.kubeconfig" controller-manager system:kube-controller-manager
  kubeconfig "$CFG/scheduler.kubeconfig" scheduler system:kube-scheduler
  kubeconfig "$CFG/kube-proxy.kubeconfig" kube-proxy system:kube-proxy
  kubeconfig "$CFG/kubelet.kubeconfig" kubelet "system:node:$NODE_NAME"
  kubeconfig "$CFG/kwok.kubeconfig" kwok eb-kwok
  kubeconfig "$CFG/traefik.kubeconfig" traefik eb-traefik
  kubeconfig "$CFG/kube-router.kubeconfig" kube-router eb-kube-router

  put "$CFG/admission.yaml" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    # Every namespace is "restricted" unless labelled otherwise: what passes here passes anywhere.
    defaults: {enforce: restricted, enforce-version: latest, audit: restricted, audit-version: latest, warn: restricted, warn-version: latest}
    exemptions: {usernames: [], runtimeClasses: [], namespaces: [kube-system]}
EOF

  put "$CFG/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection: {kubeconfig: $CFG/scheduler.kubeconfig, qps: 200, burst: 400}
leaderElection: {leaderElect: false}
EOF

  put "$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # pitfall 1: processes here may not lower oom_score_adj; runc fails with "can't get final child's PID"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
EOF

  put "$STATE/cni/net.d/10-eb-bridge.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "eb-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GW"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # (the loopback plugin is invoked by containerd itself for every sandbox's lo)

  put "$CFG/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
# pitfall 2: cgroup v1 hybrid host
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$SOCK
imageServiceEndpoint: unix://$SOCK
podLogsDir: $STATE/pod-logs
clusterDomain: cluster.local
resolvConf: ""
registerNode: true
serializeImagePulls: false
# never garbage-collect the locally imported images (they cannot be pulled again)
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%", imagefs.inodesFree: "1%"}
maxPods: 110
containerLogMaxSize: 10Mi
containerLogMaxFiles: 2
rotateCertificates: false
serverTLSBootstrap: false
EOF

  put "$CFG/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $CFG/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_RANGE
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
nodePortAddresses: ["$NODE_IP/32"]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF

  # Traefik's static configuration. Its routers send traffic to the endpoints (Pod IPs on the
  # bridge, reachable from this host), not to Service ClusterIPs. Websockets need no option.
  put "$CFG/traefik.yaml" <<EOF
global: {checkNewVersion: false, sendAnonymousUsage: false}
entryPoints:
  web:
    address: "$INGRESS_ADDRESS:$INGRESS_PORT"
  traefik:
    address: "127.0.0.1:$TRAEFIK_PING_PORT"
ping: {entryPoint: traefik}
log: {level: INFO, noColor: true}
accessLog:
  filePath: $LOGS/traefik-access.log
providers:
  # Traefik applies a provider's changes at most every 2 s by default: a new session's route
  # (its Ingress, then its EndpointSlice) waited up to that long after READY to answer.
  providersThrottleDuration: 200ms
  kubernetesIngress:
    ingressClass: $INGRESS_CLASS
    ingressEndpoint: {ip: $NODE_IP}
  kubernetesCRD: {}
  kubernetesGateway:
    statusAddress: {ip: $NODE_IP}
EOF
}

# ---------------------------------------------------------------------------------------------
# host networking (all of it undone by `down`)

sysctl_set() { # remember the original once, then set
  local key=$1 val=$2 f="/proc/sys/${1//.//}"
  [ -w "$f" ] || return 0
  grep -q "^$key=" "$STATE/sysctl.orig" 2>/dev/null || echo "$key=$(cat "$f")" >>"$STATE/sysctl.orig"
  echo "$val" >"$f"
}

net_up() {
  ip addr show dev lo | grep " $NODE_IP/32 " >/dev/null || ip addr add "$NODE_IP/32" dev lo
  # pitfall 4: nothing may leave the machine
  local r
  for r in "$POD_RANGE" "$KWOK_RANGE"; do
    ip route show type unreachable | grep "^unreachable $r" >/dev/null || ip route add unreachable "$r"
  done
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr show dev "$BRIDGE" | grep " $POD_GW/" >/dev/null || ip addr add "$POD_GW/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Service IPs from this host: a connection is routed before kube-proxy's nat OUTPUT rules
  # rewrite it to an endpoint, so an `unreachable` route would fail it at once. Routed to the pod
  # bridge instead, a Service IP works from host processes (Traefik's ForwardAuth, tests) as it
  # does from Pods, and one kube-proxy does not rewrite stays on the bridge, where nothing answers
  # it. (Pods' own traffic is routed by table $RT_TABLE below, which has no such route.)
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE"
  # Traffic routed out of a pod may go to local addresses (the local table wins) or other pods,
  # and nowhere else: a policy table whose default route is unreachable.
  ip route replace "$POD_CIDR" dev "$BRIDGE" table "$RT_TABLE"
  ip route replace unreachable default table "$RT_TABLE"
  ip rule show | grep "^$RT_TABLE:" >/dev/null || ip rule add iif "$BRIDGE" priority "$RT_TABLE" lookup "$RT_TABLE"
  sysctl_set net.ipv4.ip_forward 1
  sysctl_set net.bridge.bridge-nf-call-iptables 1
}

# the KUBE-* chains the kubelet and kube-proxy leave in iptables/ip6tables (only when no other
# kubelet or kube-proxy runs on this machine, so nobody else's rules are touched)
iptables_cleanup() {
  if pgrep -x kubelet >/dev/null || pgrep -x kube-proxy >/dev/null || pgrep -x kube-router >/dev/null; then return 0; fi
  local ipt table rule chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for table in filter nat mangle; do
      "$ipt" -w -t "$table" -S >/dev/null 2>&1 || continue
      while IFS= read -r rule; do
        # the rule as iptables -S prints it, quotes around comments included
        eval "\"\$ipt\" -w -t \"\$table\" -D ${rule#-A }" 2>/dev/null || true
      done < <("$ipt" -w -t "$table" -S | grep -E '^-A .* -j KUBE-' | grep -vE '^-A KUBE-')
      for chain in $("$ipt" -w -t "$table" -S | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
        "$ipt" -w -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$ipt" -w -t "$table" -S | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
        "$ipt" -w -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
  # kube-router's ipsets (named kube-router-* and KUBE-*), once no rule refers to them
  if command -v ipset >/dev/null && ! pgrep -x kube-router >/dev/null; then
    local set
    for set in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router-|inet6:KUBE-|inet6:kube-router-)'); do
      ipset destroy "$set" 2>/dev/null || true
    done
  fi
}

net_down() {
  ip rule del priority "$RT_TABLE" 2>/dev/null || true
  ip route flush table "$RT_TABLE" 2>/dev/null || true
  ip route del "$SERVICE_CIDR" dev "$BRIDGE" 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  local r
  for r in "$SERVICE_CIDR" "$POD_RANGE" "$KWOK_RANGE"; do ip route del unreachable "$r" 2>/dev/null || true; done
  ip addr del "$NODE_IP/32" dev lo 2>/dev/null || true
  if [ -f "$STATE/sysctl.orig" ]; then
    local kv
    while IFS= read -r kv; do
      [ -n "$kv" ] && echo "${kv#*=}" >"/proc/sys/$(tr . / <<<"${kv%%=*}")" 2>/dev/null || true
    done <"$STATE/sysctl.orig"
    rm -f "$STATE/sysctl.orig"
  fi
}

# ---------------------------------------------------------------------------------------------
# components

start_apiserver() {
  start_proc kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
    --cert-dir "$STATE/kube-apiserver" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --admission-control-config-file "$CFG/admission.yaml" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --profiling=false --v=1
  wait_for kube-apiserver 120 "kube-apiserver /readyz" apiserver_ready
}

start_control_plane() {
  mkdir -p "$STATE/etcd"; chmod 700 "$STATE/etcd"
  start_proc etcd "$ETCD_BIN/etcd" --name eb --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "eb=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" \
    --quota-backend-bytes 4294967296 --unsafe-no-fsync --log-level warn
  wait_for etcd 60 "etcd to be healthy" curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health"
  start_apiserver

  start_controller_manager

  start_proc kube-scheduler "$K8S_BIN/kube-scheduler" --config "$CFG/scheduler.yaml" \
    --authentication-kubeconfig "$CFG/scheduler.kubeconfig" --authorization-kubeconfig "$CFG/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --cert-dir "$STATE/kube-scheduler" --v=1
}

start_controller_manager() {
  start_proc kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$CFG/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$CFG/controller-manager.kubeconfig" --authorization-kubeconfig "$CFG/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --cert-dir "$STATE/kube-controller-manager" \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials=true --service-cluster-ip-range "$SERVICE_CIDR" \
    --cluster-cidr "$POD_RANGE" --allocate-node-cidrs=false --leader-elect=false \
    --kube-api-qps 100 --kube-api-burst 200 --profiling=false --v=1 \
    --node-monitor-grace-period "$NODE_MONITOR_GRACE"
}

apiserver_ready() {
  [ "$(curl -sS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://$NODE_IP:$APISERVER_PORT/readyz" 2>/dev/null)" = ok ]
}

node_ready() {
  [ "$(kc get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

bootstrap_rbac() {
  # pitfall 3: the apiserver's kubelet client must be allowed to use the kubelet API (logs, exec)
  kc apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: eb-apiserver-kubelet-api-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}]
EOF
}

start_containerd() {
  mkdir -p "$STATE/containerd/root" "$STATE/containerd/state" "$STATE/pod-logs"
  start_proc containerd "$(command -v containerd)" --config "$STATE/containerd/config.toml"
  wait_for containerd 60 "containerd to answer on $SOCK" ctr -a "$SOCK" version
}

start_kubelet() {
  start_proc kubelet "$K8S_BIN/kubelet" --config "$CFG/kubelet.yaml" --kubeconfig "$CFG/kubelet.kubeconfig" \
    --root-dir "$STATE/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels "executionbroker.ivoa.net/pool=default,nvidia.com/gpu.product=real-test-gpu" --v=1
  wait_for kubelet "$UP_TIMEOUT" "node $NODE_NAME to register and become Ready" node_ready "$NODE_NAME"
}

start_kube_proxy() {
  if ! iptables -w -t nat -L -n >/dev/null 2>&1; then
    log "WARNING: iptables does not work here ($(iptables -t nat -L -n 2>&1 | head -1)); kube-proxy is not started:" \
      "Pods cannot reach Service IPs (out-of-cluster clients and Pods that do not call the API still work)"
    return 0
  fi
  start_proc kube-proxy "$K8S_BIN/kube-proxy" --config "$CFG/kube-proxy.yaml" --v=1
  wait_for kube-proxy 60 "kube-proxy /healthz" curl -fsS "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"
}

# NetworkPolicy enforcement for the real node's Pods: kube-router with only its firewall
# controller (iptables filter chains + ipsets beside kube-proxy's nat rules). Pods on kwok nodes
# have no packets to filter; kube-router skips them (it acts on Pods whose hostIP is this node's).
start_kube_router() {
  if ! iptables -w -L -n >/dev/null 2>&1 || ! ipset list -n >/dev/null 2>&1; then
    die "iptables or ipset does not work here, so NetworkPolicies cannot be enforced" \
      "iptables: $(iptables -L -n 2>&1 | head -1)" "ipset: $(ipset list -n 2>&1 | head -1)"
  fi
  # read-only: what its informers list and watch (it starts them all, whichever controllers run)
  kc apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: eb-kube-router}
rules:
- apiGroups: [""]
  resources: [namespaces, pods, services, endpoints, nodes]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: eb-kube-router}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: eb-kube-router}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: eb-kube-router}]
EOF
  start_proc kube-router "$KUBE_ROUTER_BIN/kube-router" --kubeconfig "$CFG/kube-router.kubeconfig" \
    --run-firewall=true --run-router=false --run-service-proxy=false \
    --hostname-override "$NODE_NAME" --service-cluster-ip-range "$SERVICE_CIDR" \
    --enable-ipv4=true --enable-ipv6=false --health-port "$KUBE_ROUTER_HEALTH_PORT" --metrics-port 0 \
    --iptables-sync-period 5m --v=1
  wait_for kube-router 60 "kube-router /healthz and its filter chains" kube_router_ready
}
kube_router_ready() {
  curl -fsS --max-time 3 "http://127.0.0.1:$KUBE_ROUTER_HEALTH_PORT/healthz" >/dev/null \
    && iptables -w -S KUBE-ROUTER-FORWARD >/dev/null 2>&1
}

# The Kubernetes objects the ingress needs before Traefik starts (its providers wait for their
# CRDs): the Gateway API CRDs (standard channel) and Traefik's CRDs, both from their Go modules at
# the pinned versions; Traefik's ClusterRoles (from its module) bound to the user of its client
# certificate; the IngressClass and GatewayClass `traefik`; and one shared Gateway whose HTTP
# listener is Traefik's `web` entrypoint (Traefik maps a listener to the entrypoint by port).
ingress_objects() {
  kc apply --server-side --force-conflicts -f "$GATEWAY_API_CRDS" >/dev/null
  kc apply --server-side --force-conflicts -f "$TRAEFIK_MANIFESTS/crds.yaml" >/dev/null
  kc wait --for=condition=Established --timeout=60s \
    crd/gateways.gateway.networking.k8s.io crd/httproutes.gateway.networking.k8s.io \
    crd/gatewayclasses.gateway.networking.k8s.io crd/middlewares.traefik.io >/dev/null
  # the upstream ClusterRoles (kubectl reads the YAML), without their bindings to in-cluster
  # ServiceAccounts
  kc create --dry-run=client -o json -f "$TRAEFIK_MANIFESTS/rbac-crd.yaml" -f "$TRAEFIK_MANIFESTS/rbac-gateway.yaml" \
    | python3 -c '
import json, sys
text, items, at = sys.stdin.read(), [], 0
while text[at:].strip():  # kubectl prints one JSON document per object
    obj, at = json.JSONDecoder().raw_decode(text, len(text) - len(text[at:].lstrip()))
    items += obj["items"] if obj["kind"] == "List" else [obj]
roles = [dict(r, metadata={"name": "eb-traefik-" + r["metadata"]["name"]}) for r in items if r["kind"] == "ClusterRole"]
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": roles}))' >"$CFG/traefik-rbac.json"
  kc apply -f "$CFG/traefik-rbac.json" >/dev/null
  local role bindings=""
  for role in $(python3 -c 'import json,sys; print(" ".join(r["metadata"]["name"] for r in json.load(open(sys.argv[1]))["items"]))' "$CFG/traefik-rbac.json"); do
    bindings+="---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: $role}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: $role}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: eb-traefik}]
"
  done
  kc apply -f - >/dev/null <<EOF
$bindings
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: $INGRESS_CLASS}
spec: {controller: traefik.io/ingress-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: $GATEWAY_CLASS}
spec: {controllerName: traefik.io/gateway-controller}
---
apiVersion: v1
kind: Namespace
metadata:
  name: $INGRESS_NAMESPACE
  labels: {executionbroker.ivoa.net/ingress: "true"}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: $GATEWAY_NAME, namespace: $INGRESS_NAMESPACE}
spec:
  gatewayClassName: $GATEWAY_CLASS
  listeners:
  - name: web
    protocol: HTTP
    port: $INGRESS_PORT
    allowedRoutes: {namespaces: {from: All}}
EOF
}

start_traefik() {
  ingress_objects
  start_proc traefik env KUBECONFIG="$CFG/traefik.kubeconfig" "$TRAEFIK_BIN/traefik" --configFile="$CFG/traefik.yaml"
  wait_for traefik 60 "traefik /ping" curl -fsS --max-time 3 "http://127.0.0.1:$TRAEFIK_PING_PORT/ping"
  wait_for traefik 60 "Gateway $INGRESS_NAMESPACE/$GATEWAY_NAME to be Programmed by traefik" gateway_programmed
  # where clients find the ingress (`hack/cluster.sh env` prints it; tests/support/ingress.py reads it)
  put "$STATE/ingress.env" <<EOF
EB_INGRESS_URL=http://$(ingress_host):$INGRESS_PORT
EB_INGRESS_CLASS=$INGRESS_CLASS
EB_GATEWAY_NAMESPACE=$INGRESS_NAMESPACE
EB_GATEWAY_NAME=$GATEWAY_NAME
EOF
}
gateway_programmed() {
  [ "$(kc get gateway -n "$INGRESS_NAMESPACE" "$GATEWAY_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Programmed")].status}')" = True ]
}

advertise_gpu() {
  # pitfall 6: an extended resource through the node status subresource
  local cap
  cap="$(kc get node "$NODE_NAME" -o 'jsonpath={.status.capacity.nvidia\.com/gpu}')"
  if [ "$cap" != 1 ]; then
    kc patch node "$NODE_NAME" --subresource=status --type=json -p \
      '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"1"},{"op":"add","path":"/status/allocatable/nvidia.com~1gpu","value":"1"}]' >/dev/null
  fi
  kc label node "$NODE_NAME" --overwrite nvidia.com/gpu.product=real-test-gpu executionbroker.ivoa.net/pool=default >/dev/null
}

start_kwok() {
  start_proc kwok "$KWOK_BIN/kwok" --kubeconfig "$CFG/kwok.kubeconfig" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --cidr "$KWOK_POD_CIDR" --node-ip "$KWOK_NODE_IP" --node-lease-duration-seconds "$NODE_LEASE_SECONDS" \
    --config "$HACK_DIR/kwok-stages.yaml" # node status every ~10 min, not ~20 s (see that file)
}

# kwok_nodes N M: exactly N harness kwok nodes eb-kwok-0..N-1, the first M with 4 GPUs each
kwok_nodes() {
  local n=$1 m=$2 i f="$STATE/kwok-nodes.yaml"
  : >"$f"
  local gpu_labels gpu_res
  for ((i = 0; i < n; i++)); do
    gpu_labels="" gpu_res=""
    if ((i < m)); then
      gpu_labels=$'\n    nvidia.com/gpu.product: nvidia-ad104\n    nvidia.com/gpu.count: "4"'
      gpu_res=', nvidia.com/gpu: "4"'
    fi
    cat >>"$f" <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: eb-kwok-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels:
    kubernetes.io/hostname: eb-kwok-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    executionbroker.ivoa.net/pool: default
    executionbroker.ivoa.net/harness: cluster-sh$gpu_labels
spec:
  taints: [{key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}]
status:
  capacity: {cpu: "32", memory: 128Gi, pods: "110", ephemeral-storage: 1Ti$gpu_res}
  allocatable: {cpu: "32", memory: 128Gi, pods: "110", ephemeral-storage: 1Ti$gpu_res}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake, kubeProxyVersion: fake,
    containerRuntimeVersion: fake, kernelVersion: fake, osImage: kwok, machineID: eb-kwok-$i, systemUUID: eb-kwok-$i, bootID: ""}
EOF
  done
  # remove harness nodes beyond N (nodes made by tests or benchmarks carry other labels)
  local name
  for name in $(kc get nodes -l executionbroker.ivoa.net/harness=cluster-sh -o name); do
    i="${name##*/eb-kwok-}"
    if ! [[ "$i" =~ ^[0-9]+$ ]] || ((i >= n)); then kc delete "$name" --wait=false >/dev/null; fi
  done
  if ((n > 0)); then
    # create, or replace a node whose GPU shape changed (status is only taken at creation)
    for ((i = 0; i < n; i++)); do
      local want=0 have
      ((i < m)) && want=4
      have="$(kc get node "eb-kwok-$i" -o 'jsonpath={.status.capacity.nvidia\.com/gpu}' 2>/dev/null || echo absent)"
      [ "$have" = absent ] && continue
      [ "${have:-0}" = "$want" ] || kc delete node "eb-kwok-$i" --wait=true >/dev/null
    done
    kc apply -f "$f" >/dev/null
    wait_for kwok 120 "$n kwok nodes to be Ready" kwok_nodes_ready "$n"
  fi
  echo "$n $m" >"$STATE/kwok-nodes.count"
}
kwok_nodes_ready() {
  local ready
  ready="$(kc get nodes -l executionbroker.ivoa.net/harness=cluster-sh \
    -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)"
  [ "$ready" -ge "$1" ]
}

# ---------------------------------------------------------------------------------------------
# subcommands

cmd_up() {
  local kwok_n="" gpu_m="" proxy=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --kwok-nodes) kwok_n="${2:?--kwok-nodes needs a number}"; shift 2 ;;
      --kwok-nodes=*) kwok_n="${1#*=}"; shift ;;
      --gpu-nodes) gpu_m="${2:?--gpu-nodes needs a number}"; shift 2 ;;
      --gpu-nodes=*) gpu_m="${1#*=}"; shift ;;
      --no-kube-proxy) proxy=0; shift ;;
      *) die "unknown option for up: $1" "usage: $0 up [--kwok-nodes N] [--gpu-nodes M] [--no-kube-proxy]" ;;
    esac
  done
  [[ -z "$kwok_n" || "$kwok_n" =~ ^[0-9]+$ ]] || die "--kwok-nodes wants a number, got '$kwok_n'"
  [[ -z "$gpu_m" || "$gpu_m" =~ ^[0-9]+$ ]] || die "--gpu-nodes wants a number, got '$gpu_m'"
  # Without flags: keep what a running cluster has, else 4 kwok nodes of which 2 have GPUs.
  if [ -z "$kwok_n" ] && [ -z "$gpu_m" ] && [ -f "$STATE/kwok-nodes.count" ] && [ -n "$(comp_pid kwok)" ]; then
    read -r kwok_n gpu_m <"$STATE/kwok-nodes.count"
  fi
  kwok_n="${kwok_n:-4}"; gpu_m="${gpu_m:-2}"
  ((gpu_m <= kwok_n)) || die "--gpu-nodes ($gpu_m) cannot exceed --kwok-nodes ($kwok_n)"

  need_root up
  [ "${#SOCK}" -lt 100 ] || die "the state directory path is too long for containerd's unix socket ($SOCK)" \
    "set EB_CLUSTER_DIR to a shorter path"
  lock
  local t0=$SECONDS
  mkdir -p "$STATE" "$LOGS" "$PIDS"
  ensure_deps
  if stale_state; then
    log "found the data of a cluster none of whose processes runs any more (crash or reboot?): cleaning it up, starting afresh"
    cleanup_runtime || die "could not clean up the stale cluster state in $STATE" "see the messages above; then: $0 down && $0 up"
    mkdir -p "$PIDS"
  fi
  preflight
  ensure_binaries
  build_images
  make_pki
  write_configs
  net_up
  start_containerd
  # importing the images (~10 s) overlaps with starting the control plane
  import_images >"$LOGS/import.out" 2>&1 &
  local import_pid=$!
  start_control_plane
  bootstrap_rbac
  if ! wait "$import_pid"; then
    cat "$LOGS/import.out" >&2
    die "importing the images into containerd failed (see above and $LOGS/images.log)"
  fi
  cat "$LOGS/import.out" >&2
  start_kubelet
  [ "$proxy" = 1 ] && start_kube_proxy
  start_kube_router
  advertise_gpu
  start_kwok
  kwok_nodes "$kwok_n" "$gpu_m"
  kc label nodes --all --overwrite executionbroker.ivoa.net/pool=default >/dev/null
  start_traefik
  log "cluster up in $((SECONDS - t0))s"
  cat <<EOF

The local cluster is up: Kubernetes $K8S_VERSION, real node $NODE_NAME (1 fake GPU) + $kwok_n kwok nodes ($gpu_m with 4 GPUs).
  export KUBECONFIG=$KUBECONFIG_FILE        # or: eval "\$(hack/cluster.sh env)"
  $KUBECTL get nodes
Pods on the real node use locally imported images with imagePullPolicy: Never (eb-workload:latest: sh,
coreutils, python3, user 1000). Namespaces default to PodSecurity "restricted". kwok nodes are tainted
kwok.x-k8s.io/node=fake:NoSchedule. NetworkPolicies are enforced on the real node (kube-router).
Ingress (Traefik $TRAEFIK_VERSION): http://$(ingress_host):$INGRESS_PORT/ for Ingresses of class $INGRESS_CLASS
and HTTPRoutes attached to Gateway $INGRESS_NAMESPACE/$GATEWAY_NAME; access log $LOGS/traefik-access.log.
Logs: $LOGS.  Stop: hack/cluster.sh down
EOF
}

ingress_host() { if [ "$INGRESS_ADDRESS" = 0.0.0.0 ]; then echo "$NODE_IP"; else echo "$INGRESS_ADDRESS"; fi; }

stop_pid() { # stop_pid PID NAME: TERM, wait up to 15 s, then KILL
  local pid=$1 name=$2 i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 30; i++)); do alive "$pid" || return 0; sleep 0.5; done
  log "$name (pid $pid) did not stop on TERM; killing"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 10; i++)); do alive "$pid" || return 0; sleep 0.5; done
}

stop_component() {
  local name=$1 pid pids
  pid="$(comp_pid "$name")"
  pids="$pid $(procs_of "$(basename "$(binary_of "$name")")" | tr '\n' ' ')"
  for pid in $(tr ' ' '\n' <<<"$pids" | sort -u); do
    [ -n "$pid" ] || continue
    log "stopping $name (pid $pid)"
    stop_pid "$pid" "$name"
  done
  rm -f "$(pidfile "$name")"
}

kill_pods() {
  # Pod sandboxes and containers, through the CRI while containerd still runs (this also runs the
  # CNI DEL that frees IPs, veths and network namespaces).
  if [ -n "$(comp_pid containerd)" ] && [ -x "$CRICTL_BIN/crictl" ]; then
    local n
    n="$("$CRICTL_BIN/crictl" -r "unix://$SOCK" pods -q 2>/dev/null | wc -l)"
    if [ "$n" -gt 0 ]; then
      log "removing $n pod sandbox(es) through the CRI"
      timeout 120 "$CRICTL_BIN/crictl" -r "unix://$SOCK" -t 60s rmp -fa >/dev/null 2>&1 || log "crictl rmp -fa failed; falling back to killing processes"
    fi
  fi
  # shims of our containerd (they survive containerd) and anything left in the kubelet's cgroups
  local pid
  for pid in $(procs_of containerd-shim-runc-v2); do kill -KILL "$pid" 2>/dev/null || true; done
  local cg procs
  for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$cg" ] || continue
    procs="$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)"
    for pid in $procs; do kill -KILL "$pid" 2>/dev/null || true; done
  done
  # leftover network namespaces of pods whose sandbox vanished without a CNI DEL (only when no
  # other container runtime runs here, so no other runtime's namespaces are touched)
  if [ -d /run/netns ] && ! pgrep -x containerd >/dev/null && ! pgrep -x crio >/dev/null && ! pgrep -x dockerd >/dev/null; then
    local ns
    for ns in /run/netns/cni-*; do
      [ -e "$ns" ] || continue
      [ -z "$(ip netns pids "${ns##*/}" 2>/dev/null)" ] && ip netns delete "${ns##*/}" 2>/dev/null || true
    done
  fi
}

remove_cgroups() {
  local cg
  for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$cg" ] || continue
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

unmount_state() {
  local m
  for _ in 1 2 3; do
    local left=0
    for m in $(awk -v p="$STATE/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-); do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || left=1
    done
    [ "$left" = 0 ] && break
  done
  if awk -v p="$STATE/" 'index($5, p) == 1 {f=1} END {exit !f}' /proc/self/mountinfo; then
    log "WARNING: some mounts under $STATE are still there: $(awk -v p="$STATE/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | head -3 | tr '\n' ' ')"
    return 1
  fi
}

# everything but the processes: pods' leftovers, iptables chains, cgroups, mounts, addresses and
# routes, and the cluster's data (etcd, containerd, kubelet)
cleanup_runtime() {
  log "cleaning up: pod leftovers"
  kill_pods
  log "cleaning up: iptables chains, cgroups"
  if [ -x "$K8S_BIN/kube-proxy" ] && iptables -w -t nat -S KUBE-SERVICES >/dev/null 2>&1; then
    "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  iptables_cleanup
  remove_cgroups
  log "cleaning up: mounts, network, data"
  if ! unmount_state; then
    net_down
    log "left data in $STATE because something is still mounted there; rerun $0 down after fixing"
    return 1
  fi
  net_down
  rm -rf "$STATE/etcd" "$STATE/containerd" "$STATE/kubelet" "$STATE/cni/ipam" "$STATE/pod-logs" "$PIDS" \
    "$STATE/kwok-nodes.count"
}

# true when a cluster left data behind but none of its processes runs any more (crash, reboot,
# or a CI runner that ended every process)
stale_state() {
  [ -d "$STATE/etcd" ] || [ -d "$STATE/containerd" ] || [ -d "$STATE/kubelet" ] || return 1
  local name
  for name in "${COMPONENTS[@]}"; do
    [ -z "$(comp_pid "$name")" ] || return 1
    [ -z "$(procs_of "$(basename "$(binary_of "$name")")")" ] || return 1
  done
  return 0
}

cmd_down() {
  local purge=0
  [ "${1:-}" = "--purge" ] && purge=1
  need_root down
  if [ ! -d "$STATE" ]; then log "nothing to do: $STATE does not exist"; return 0; fi
  lock
  stop_component traefik
  stop_component kwok
  stop_component kube-router
  stop_component kube-proxy
  stop_component kubelet
  kill_pods
  stop_component containerd
  stop_component kube-scheduler
  stop_component kube-controller-manager
  stop_component kube-apiserver
  stop_component etcd
  cleanup_runtime || return 1
  if [ "$purge" = 1 ]; then rm -rf "$STATE"; log "removed $STATE"; fi
  log "cluster is down (PKI, kubeconfig and logs kept in $STATE; down --purge removes them)"
}

cmd_status() {
  local name pid rc=0 hp
  printf '%-24s %-8s %s\n' COMPONENT PID STATE
  for name in "${COMPONENTS[@]}"; do
    pid="$(comp_pid "$name")"
    if [ -n "$pid" ]; then
      printf '%-24s %-8s %s\n' "$name" "$pid" "running  $(ps -o rss= -p "$pid" | awk '{printf "%.0f MiB", $1/1024}')"
    else
      local left; left="$(procs_of "$(basename "$(binary_of "$name")")" | tr '\n' ' ')"
      if [ -n "${left// /}" ]; then
        printf '%-24s %-8s %s\n' "$name" "-" "LEFTOVER process(es) ${left% } not started by this up: run hack/cluster.sh down"
        rc=1
      elif [ -f "$(pidfile "$name")" ]; then
        printf '%-24s %-8s %s\n' "$name" "-" "DEAD (pid file $(pidfile "$name"); see $LOGS/$name.log)"
        rc=1
      else
        printf '%-24s %-8s %s\n' "$name" "-" "stopped"
        [ "$name" = kube-proxy ] || rc=1
      fi
    fi
  done
  echo
  if [ -f "$PKI/admin.crt" ] && apiserver_ready; then
    echo "API server: https://$NODE_IP:$APISERVER_PORT /readyz ok"
    echo "nodes: $(kc get nodes --no-headers 2>/dev/null | awk '{print $2}' | sort | uniq -c | awk '{printf "%s %s  ", $1, $2}')"
    echo "real node $NODE_NAME Ready: $(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || echo absent)"
    if curl -fsS --max-time 3 "http://127.0.0.1:$TRAEFIK_PING_PORT/ping" >/dev/null 2>&1; then
      echo "ingress: http://$(ingress_host):$INGRESS_PORT/ (Traefik; IngressClass $INGRESS_CLASS, Gateway $INGRESS_NAMESPACE/$GATEWAY_NAME)"
    else
      echo "ingress: Traefik does not answer /ping on 127.0.0.1:$TRAEFIK_PING_PORT"
      rc=1
    fi
    if curl -fsS --max-time 3 "http://127.0.0.1:$KUBE_ROUTER_HEALTH_PORT/healthz" >/dev/null 2>&1; then
      echo "NetworkPolicy: enforced on $NODE_NAME (kube-router /healthz ok)"
    else
      echo "NetworkPolicy: NOT enforced (kube-router does not answer /healthz on :$KUBE_ROUTER_HEALTH_PORT)"
      rc=1
    fi
    echo "export KUBECONFIG=$KUBECONFIG_FILE"
  else
    echo "API server: not ready"
    rc=1
  fi
  return "$rc"
}

# stop|start|restart one component of a running cluster, for fault tests (tests/chaos): the
# others keep running; a kubelet stopped this way leaves its Pods' containers running, as a
# crashed kubelet would
cmd_component() {
  local action=$1 name=${2:-}
  case "$name" in
    kube-apiserver | kube-controller-manager | kubelet | kwok | traefik | kube-router) ;;
    *) die "$action works on kube-apiserver, kube-controller-manager, kubelet, kwok, traefik or kube-router, not '${name:-nothing}'" "e.g.: $0 $action kubelet" ;;
  esac
  need_root "$action"
  [ -f "$KUBECONFIG_FILE" ] || die "no cluster state in $STATE" "start the cluster first: $0 up"
  lock
  local t0=$SECONDS
  if [ "$action" != start ]; then
    stop_component "$name"
  fi
  if [ "$action" != stop ]; then
    if [ "$name" = kube-apiserver ]; then
      start_apiserver
    elif [ "$name" = kwok ]; then
      start_kwok # its nodes stay Ready: it renews their Leases again within their duration
    elif [ "$name" = kube-controller-manager ]; then
      start_controller_manager
    elif [ "$name" = traefik ]; then
      write_configs # picks up a changed EB_INGRESS_* setting
      start_traefik
    elif [ "$name" = kube-router ]; then
      start_kube_router
    else
      apiserver_ready || die "the API server does not answer /readyz; the kubelet would not register" \
        "$0 status shows what runs"
      start_kubelet
      advertise_gpu # a restarted kubelet zeroes extended resources no device plugin announces
    fi
  fi
  log "$action $name done in $((SECONDS - t0))s"
}

cmd_env() {
  echo "export KUBECONFIG=$KUBECONFIG_FILE"
  echo "export PATH=$K8S_BIN:\$PATH"
  [ ! -f "$STATE/ingress.env" ] || sed 's/^/export /' "$STATE/ingress.env"
}

main() {
  local cmd="${1:-}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    stop | start | restart) cmd_component "$cmd" "$@" ;;
    deps) need_root deps; mkdir -p "$LOGS"; ensure_deps ;;
    images) mkdir -p "$LOGS"; build_images; echo "$PAUSE_TAR"; echo "$WORKLOAD_TAR" ;;
    *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || [ "$cmd" = help ] || [ "$cmd" = -h ] || exit 2 ;;
  esac
}

main "$@"
