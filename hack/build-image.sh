#!/usr/bin/env bash
# Builds the broker image (operator and API in one, non-root) with no registry and no Docker
# engine: the eb-workload base layer (Debian bookworm + python3, built by hack/cluster.sh) plus
# one layer holding this package and its dependencies, installed with pip for CPython 3.11.
# Writes a docker-save style tar, and imports it into the local cluster's containerd when that
# is running. The Dockerfile builds the same image where Docker is available.
#   bash hack/build-image.sh [--tag eb-operator:dev] [--no-import]
set -euo pipefail
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$HACK_DIR")"
CACHE="${EB_CACHE_DIR:-$HOME/.cache/eb-operator}"
STATE="${EB_CLUSTER_DIR:-$HOME/.local/state/eb-operator/cluster}"
TAG=eb-operator:dev
IMPORT=1
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG=$2; shift 2 ;;
    --no-import) IMPORT=0; shift ;;
    *) echo "build-image: unknown argument $1" >&2; exit 2 ;;
  esac
done
die() { echo "build-image: $*" >&2; exit 1; }

base_tar="$(ls -t "$CACHE"/images/eb-workload-*.tar 2>/dev/null | head -1 || true)"
[ -n "$base_tar" ] || die "no eb-workload base image in $CACHE/images: run 'bash hack/cluster.sh up' first (it builds it)"
py_minor="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
[ "$py_minor" = 3.11 ] || die "pip must run on CPython 3.11 to match the base image's python3 (found $py_minor)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar -xf "$base_tar" -C "$work" manifest.json
base_layer="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Layers"][0])' "$work/manifest.json")"
tar -xf "$base_tar" -C "$work" "$base_layer"

mkdir -p "$work/rootfs/opt/eb"
python3 -m pip install --quiet --disable-pip-version-check --no-compile --only-binary=:all: \
  --target "$work/rootfs/opt/eb/lib" "$REPO_DIR" 2>"$work/pip.log" \
  || python3 -m pip install --quiet --disable-pip-version-check --no-compile \
    --target "$work/rootfs/opt/eb/lib" "$REPO_DIR" \
  || die "pip could not install the package into the image layer"
rm -rf "$work/rootfs/opt/eb/lib/bin"
mkdir -p "$work/rootfs/opt/eb/bin"
cat >"$work/rootfs/opt/eb/bin/eb-operator" <<'SH'
#!/bin/sh
exec python3 -m eb_operator.cli "$@"
SH
chmod 0755 "$work/rootfs/opt/eb/bin/eb-operator"

out="$CACHE/images/eb-operator-image.tar"
python3 "$HACK_DIR/oci-image.py" --tag "$TAG" --layer "$work/$base_layer" --rootfs "$work/rootfs" \
  --user 1000:1000 --workdir /home/eb \
  --env PATH=/opt/eb/bin:/usr/local/bin:/usr/bin:/bin --env PYTHONPATH=/opt/eb/lib \
  --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 --env HOME=/home/eb \
  --entrypoint /opt/eb/bin/eb-operator --cmd operator \
  --label org.opencontainers.image.title=eb-operator --expose 8080/tcp -o "$out.part" >/dev/null
mv "$out.part" "$out"
echo "built $TAG: $out ($(du -h "$out" | cut -f1))"

if [ "$IMPORT" = 1 ] && [ -S "$STATE/containerd/containerd.sock" ]; then
  ctr -a "$STATE/containerd/containerd.sock" -n k8s.io images import "$out" >/dev/null \
    || die "importing $out into the local containerd failed"
  echo "imported docker.io/library/$TAG into the local cluster's containerd"
fi
