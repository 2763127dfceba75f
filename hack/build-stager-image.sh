#!/usr/bin/env bash
# Builds the data stager image with no registry and no Docker engine:
#   eb-stager:<version>  the eb-workload base (Debian bookworm + python3, uid 1000, built by
#                        hack/cluster.sh) plus one layer: the packages pinned in
#                        hack/stager-requirements.txt (boto3, httpx, webdav4, rucio-clients),
#                        the eb_operator.stager package, and `eb-stager` on PATH.
# Init containers stage data in with it, release containers stage results out, and a Pod made
# before its offered start waits in it (docs/data-and-notebooks.md).
# The tar is cached in ~/.cache/eb-operator/images/ under a content key (this script, the pins,
# the stager's sources, the base image); a second run reuses it. It is imported into the local
# cluster's containerd when that runs (skipped when containerd already has that exact tar).
#   bash hack/build-stager-image.sh [--no-import]
# Prints the path of the tar on its last line.
set -euo pipefail
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$HACK_DIR")"
CACHE="${EB_CACHE_DIR:-$HOME/.cache/eb-operator}"
STATE="${EB_CLUSTER_DIR:-$HOME/.local/state/eb-operator/cluster}"
IMPORT=1
[ "${1:-}" = --no-import ] && IMPORT=0
die() { echo "build-stager-image: $*" >&2; exit 1; }
# shellcheck source=hack/image-layer.sh
. "$HACK_DIR/image-layer.sh"

version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO_DIR/src/eb_operator/__init__.py")"
[ -n "$version" ] || die "no __version__ in src/eb_operator/__init__.py"
TAG="eb-stager:$version"
PINS="$HACK_DIR/stager-requirements.txt"
SOURCES=("$REPO_DIR/src/eb_operator/__init__.py" "$REPO_DIR"/src/eb_operator/stager/*.py)

base_tar="$(workload_base_tar)"
key="$( (cat "${BASH_SOURCE[0]}" "$HACK_DIR/image-layer.sh" "$PINS" "${SOURCES[@]}"; echo "${base_tar##*/}"; sha256sum "$HACK_DIR/oci-image.py") | sha256sum | cut -c1-12)"
out="$CACHE/images/eb-stager-$key.tar"

if [ ! -s "$out" ]; then
  require_python_311
  echo "building $TAG ($(grep -c '==' "$PINS") pinned packages) on ${base_tar##*/}" >&2
  began=$SECONDS
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  base_layer="$(extract_base_layer "$base_tar" "$work")"
  lib="$work/rootfs/opt/stager/lib"
  mkdir -p "$lib/eb_operator/stager" "$work/rootfs/opt/stager/bin"
  pip_into_layer "$lib" --no-deps -r "$PINS" \
    || die "pip could not install the pins of $PINS into the image layer"
  rm -rf "$lib/bin"
  cp "$REPO_DIR/src/eb_operator/__init__.py" "$lib/eb_operator/"
  cp "$REPO_DIR"/src/eb_operator/stager/*.py "$lib/eb_operator/stager/"
  printf '#!/bin/sh\nexec python3 -m eb_operator.stager "$@"\n' >"$work/rootfs/opt/stager/bin/eb-stager"
  chmod 0755 "$work/rootfs/opt/stager/bin/eb-stager"
  python3 "$HACK_DIR/oci-image.py" --tag "$TAG" --layer "$work/$base_layer" --rootfs "$work/rootfs" \
    --user 1000:1000 --workdir /home/eb \
    --env PATH=/opt/stager/bin:/usr/local/bin:/usr/bin:/bin --env PYTHONPATH=/opt/stager/lib \
    --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 --env HOME=/home/eb \
    --entrypoint /opt/stager/bin/eb-stager \
    --label org.opencontainers.image.title=eb-stager --label "org.opencontainers.image.version=$version" \
    -o "$out.part" >/dev/null
  mv "$out.part" "$out"
  find "$CACHE/images" -maxdepth 1 -name 'eb-stager-*.tar' ! -name "${out##*/}" -delete
  echo "built $TAG in $((SECONDS - began)) s: $out ($(du -h "$out" | cut -f1))" >&2
fi

if [ "$IMPORT" = 1 ]; then import_into_cluster "$TAG" "$out"; fi
echo "$out"
