# Sourced by hack/build-stager-image.sh and hack/build-test-images.sh: what both do to add one
# layer of pip-installed packages to the eb-workload base image (built by hack/cluster.sh) and to
# hand the result to the local cluster. Both include this file in their cache keys. The caller
# defines die(), CACHE and STATE.

# The newest eb-workload base tar in the cache.
workload_base_tar() {
  local tar
  tar="$(ls -t "$CACHE"/images/eb-workload-*.tar 2>/dev/null | head -1 || true)"
  [ -n "$tar" ] || die "no eb-workload base image in $CACHE/images: run 'bash hack/cluster.sh up' (or 'hack/cluster.sh images') first"
  echo "$tar"
}

# pip picks wheels for the Python it runs on: it must be the base image's python3 (CPython 3.11).
require_python_311() {
  local minor
  minor="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  [ "$minor" = 3.11 ] || die "pip must run on CPython 3.11 to match the base image's python3 (found $minor)"
}

# extract_base_layer BASE_TAR WORK: the base image's one layer into WORK; prints its file name.
extract_base_layer() {
  local layer
  tar -xf "$1" -C "$2" manifest.json
  layer="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Layers"][0])' "$2/manifest.json")"
  tar -xf "$1" -C "$2" "$layer"
  echo "$layer"
}

# pip_into_layer TARGET PIP-ARGS...: binary wheels for the base image (CPython 3.11, x86_64 glibc)
# installed into TARGET, whatever this machine's platform is.
pip_into_layer() {
  local target="$1"
  shift
  python3 -m pip install --quiet --disable-pip-version-check --no-compile --only-binary=:all: \
    --python-version 3.11 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --implementation cp --target "$target" "$@" >&2
}

# import_into_cluster TAG TAR: into the local cluster's containerd when it runs, unless it already
# holds the image from this very tar (a marker file names the tar last imported).
import_into_cluster() {
  local tag="$1" tar="$2" sock="$STATE/containerd/containerd.sock" marker
  [ -S "$sock" ] || return 0
  marker="$STATE/containerd/imported-${tag}"
  if [ "$(cat "$marker" 2>/dev/null || true)" != "${tar##*/}" ] \
    || ! ctr -a "$sock" -n k8s.io images ls -q 2>/dev/null | grep -x "docker.io/library/$tag" >/dev/null; then
    ctr -a "$sock" -n k8s.io images import --no-unpack=false "$tar" >/dev/null \
      || die "importing $tar into the local containerd failed"
    echo "${tar##*/}" >"$marker"
    echo "imported docker.io/library/$tag into the local cluster's containerd" >&2
  fi
}
