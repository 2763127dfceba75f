#!/usr/bin/env bash
# Builds the images the notebook and data tests use, with no registry and no Docker engine:
#   eb-notebook:latest  the eb-workload base (Debian bookworm + python3, uid 1000, built by
#                       hack/cluster.sh) plus one layer: jupyter-server, ipykernel and JupyterLab
#                       from PyPI (pinned below), and `jupyter-server` / `jupyter` / `jupyter-lab`
#                       wrappers on PATH. `jupyter-server` serves /lab too (JupyterLab is enabled
#                       as a server extension); `jupyter lab --ServerApp.base_url=/prefix/` serves
#                       under a path prefix.
# The tar is cached in ~/.cache/eb-operator/images/ under a content key (this script, the pins,
# the base image); a second run reuses it. It is imported into the local cluster's containerd
# when that runs (skipped when containerd already has that exact tar).
#   bash hack/build-test-images.sh [--no-import]
# Prints the path of the tar on its last line.
set -euo pipefail
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${EB_CACHE_DIR:-$HOME/.cache/eb-operator}"
STATE="${EB_CLUSTER_DIR:-$HOME/.local/state/eb-operator/cluster}"
IMPORT=1
[ "${1:-}" = --no-import ] && IMPORT=0
die() { echo "build-test-images: $*" >&2; exit 1; }

NOTEBOOK_TAG=eb-notebook:latest
NOTEBOOK_PINS=(jupyter-server==2.21.1 ipykernel==6.29.5 jupyterlab==4.6.6)

base_tar="$(ls -t "$CACHE"/images/eb-workload-*.tar 2>/dev/null | head -1 || true)"
[ -n "$base_tar" ] || die "no eb-workload base image in $CACHE/images: run 'bash hack/cluster.sh up' (or 'hack/cluster.sh images') first"
key="$( (cat "${BASH_SOURCE[0]}"; echo "${NOTEBOOK_PINS[*]}"; echo "${base_tar##*/}"; sha256sum <"$HACK_DIR/oci-image.py") | sha256sum | cut -c1-12)"
out="$CACHE/images/eb-notebook-$key.tar"

if [ ! -s "$out" ]; then
  py_minor="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  [ "$py_minor" = 3.11 ] || die "pip must run on CPython 3.11 to match the base image's python3 (found $py_minor)"
  echo "building $NOTEBOOK_TAG (${NOTEBOOK_PINS[*]}) on ${base_tar##*/}" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  tar -xf "$base_tar" -C "$work" manifest.json
  base_layer="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Layers"][0])' "$work/manifest.json")"
  tar -xf "$base_tar" -C "$work" "$base_layer"
  lib="$work/rootfs/opt/nb/lib"
  mkdir -p "$lib" "$work/rootfs/opt/nb/bin"
  python3 -m pip install --quiet --disable-pip-version-check --no-compile --only-binary=:all: \
    --python-version 3.11 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --implementation cp --target "$lib" "${NOTEBOOK_PINS[@]}" >&2 \
    || die "pip could not install ${NOTEBOOK_PINS[*]} into the image layer"
  # pip --target puts the packages' data files (JupyterLab's assets in share/jupyter/lab, the
  # server-extension switches in etc/jupyter) under $lib: the image's JUPYTER_* variables point
  # there. ipykernel's kernel.json runs `python`, which the image does not have: without it Jupyter
  # uses its built-in spec for the running interpreter (python3).
  rm -rf "$lib/bin" "$lib/share/jupyter/kernels"
  [ -n "$(ls -A "$lib/share/jupyter/lab/static" 2>/dev/null)" ] \
    || die "JupyterLab's assets are not in $lib/share/jupyter/lab/static: has pip's --target layout changed?"
  [ -f "$lib/etc/jupyter/jupyter_server_config.d/jupyterlab.json" ] \
    || die "JupyterLab's server-extension config is not in $lib/etc/jupyter/jupyter_server_config.d"
  for cmd in jupyter-server:jupyter_server jupyter:jupyter_core.command jupyter-lab:jupyterlab; do
    printf '#!/bin/sh\nexec python3 -m %s "$@"\n' "${cmd#*:}" >"$work/rootfs/opt/nb/bin/${cmd%%:*}"
    chmod 0755 "$work/rootfs/opt/nb/bin/${cmd%%:*}"
  done
  python3 "$HACK_DIR/oci-image.py" --tag "$NOTEBOOK_TAG" --layer "$work/$base_layer" --rootfs "$work/rootfs" \
    --user 1000:1000 --workdir /home/eb \
    --env PATH=/opt/nb/bin:/usr/local/bin:/usr/bin:/bin --env PYTHONPATH=/opt/nb/lib \
    --env JUPYTER_PATH=/opt/nb/lib/share/jupyter --env JUPYTER_CONFIG_PATH=/opt/nb/lib/etc/jupyter \
    --env JUPYTERLAB_DIR=/opt/nb/lib/share/jupyter/lab \
    --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 --env HOME=/home/eb \
    --entrypoint /opt/nb/bin/jupyter-server \
    --label org.opencontainers.image.title=eb-notebook --expose 8888/tcp -o "$out.part" >/dev/null
  mv "$out.part" "$out"
  find "$CACHE/images" -maxdepth 1 -name 'eb-notebook-*.tar' ! -name "${out##*/}" -delete
  echo "built $NOTEBOOK_TAG: $out ($(du -h "$out" | cut -f1))" >&2
fi

sock="$STATE/containerd/containerd.sock"
if [ "$IMPORT" = 1 ] && [ -S "$sock" ]; then
  marker="$STATE/containerd/imported-${NOTEBOOK_TAG}"
  if [ "$(cat "$marker" 2>/dev/null || true)" != "${out##*/}" ] \
    || ! ctr -a "$sock" -n k8s.io images ls -q 2>/dev/null | grep -x "docker.io/library/$NOTEBOOK_TAG" >/dev/null; then
    ctr -a "$sock" -n k8s.io images import --no-unpack=false "$out" >/dev/null \
      || die "importing $out into the local containerd failed"
    echo "${out##*/}" >"$marker"
    echo "imported docker.io/library/$NOTEBOOK_TAG into the local cluster's containerd" >&2
  fi
fi
echo "$out"
