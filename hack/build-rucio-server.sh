#!/usr/bin/env bash
# Installs the Rucio server (the `rucio` package from PyPI: its Flask REST app, its SQLAlchemy
# schema, its client) into a virtualenv of its own, for the data tests' real Rucio server
# (tests/support/rucio_server.py). Every package is pinned in hack/rucio-server-requirements.txt:
# Rucio caps its dependencies below the broker's, so it cannot share the test environment.
# Cached under ~/.cache/eb-operator/rucio/<version>/ (keyed by the pins); ~50 s cold.
#   bash hack/build-rucio-server.sh      prints the virtualenv's python on its last line
set -euo pipefail
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${EB_CACHE_DIR:-$HOME/.cache/eb-operator}"
# shellcheck source=versions.env
. "$HACK_DIR/versions.env"
die() { echo "build-rucio-server: $*" >&2; exit 1; }

PINS="$HACK_DIR/rucio-server-requirements.txt"
grep -qx "rucio==$RUCIO_VERSION" "$PINS" || die "$PINS does not pin rucio==$RUCIO_VERSION (versions.env)"
key="$(sha256sum "$PINS" | cut -c1-12)"
venv="$CACHE/rucio/$RUCIO_VERSION/venv-$key"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  echo "installing the Rucio server $RUCIO_VERSION into $venv (~50 s)" >&2
  began=$SECONDS
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv?)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$PINS" >&2 \
    || die "pip could not install $PINS"
  "$venv/bin/python" -c "import rucio.client, flask, sqlalchemy, werkzeug" \
    || die "the Rucio server does not import in $venv"
  touch "$venv/.complete"
  find "$CACHE/rucio/$RUCIO_VERSION" -maxdepth 1 -name 'venv-*' ! -name "${venv##*/}" -exec rm -rf {} +
  echo "installed the Rucio server $RUCIO_VERSION in $((SECONDS - began)) s" >&2
fi
echo "$venv/bin/python"
