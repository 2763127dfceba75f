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
# shellcheck source=hack/image-layer.sh
. "$HACK_DIR/image-layer.sh"

NOTEBOOK_TAG=eb-notebook:latest
NOTEBOOK_PINS=(jupyter-server==2.21.1 ipykernel==6.29.5 jupyterlab==4.6.6)

base_tar="$(workload_base_tar)"
key="$( (cat "${BASH_SOURCE[0]}" "$HACK_DIR/image-layer.sh"; echo "${NOTEBOOK_PINS[*]}"; echo "${base_tar##*/}"; sha256sum <"$HACK_DIR/oci-image.py") | sha256sum | cut -c1-12)"
out="$CACHE/images/eb-notebook-$key.tar"

if [ ! -s "$out" ]; then
  require_python_311
  echo "building $NOTEBOOK_TAG (${NOTEBOOK_PINS[*]}) on ${base_tar##*/}" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  base_layer="$(extract_base_layer "$base_tar" "$work")"
  lib="$work/rootfs/opt/nb/lib"
  mkdir -p "$lib" "$work/rootfs/opt/nb/bin"
  pip_into_layer "$lib" "${NOTEBOOK_PINS[@]}" \
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

if [ "$IMPORT" = 1 ]; then import_into_cluster "$NOTEBOOK_TAG" "$out"; fi
echo "$out"
