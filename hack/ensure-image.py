#!/usr/bin/env python3
"""Make sure the local cluster's containerd has the broker image and the data stager image,
building each only when needed.

The image is rebuilt (hack/build-image.sh) when the package source changed since the last build
(a digest of pyproject.toml and src/eb_operator/**/*.py, kept next to the image tar in the
cache), re-imported from that tar when a restarted cluster lost it, and left alone otherwise.
Prints what it did: cached, imported or built. The stager image (eb-stager, which data staging
and the wait before an offered start run) is hack/build-stager-image.sh's: cached by a content key
and imported when containerd lacks that tar. hack/up.sh and the e2e tests use it.

    python3 hack/ensure-image.py [--tag eb-operator:dev] [--always]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    return Path(os.environ.get("EB_CACHE_DIR") or Path.home() / ".cache" / "eb-operator")


def state_dir() -> Path:
    return Path(
        os.environ.get("EB_CLUSTER_DIR") or Path.home() / ".local" / "state" / "eb-operator" / "cluster"
    )


def source_digest(repo: Path = REPO) -> str:
    """A digest of everything that goes into the broker image."""
    h = hashlib.sha256()
    for f in [repo / "pyproject.toml", *sorted((repo / "src" / "eb_operator").rglob("*.py"))]:
        h.update(str(f.relative_to(repo)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _ctr(*args: str) -> subprocess.CompletedProcess[str]:
    sock = state_dir() / "containerd" / "containerd.sock"
    return subprocess.run(
        ["ctr", "-a", str(sock), "-n", "k8s.io", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def present(tag: str) -> bool:
    ref = tag if "/" in tag.split(":")[0] else f"docker.io/library/{tag}"
    proc = _ctr("images", "ls", "-q", f"name=={ref}")
    return proc.returncode == 0 and bool(proc.stdout.strip())


def ensure(tag: str, always: bool = False) -> str:
    images = cache_dir() / "images"
    stamp = images / f"{tag.replace(':', '_').replace('/', '_')}.src"
    tar = images / "eb-operator-image.tar"  # where hack/build-image.sh writes it
    digest = source_digest()
    if not always and stamp.exists() and stamp.read_text().strip() == digest and tar.exists():
        if present(tag):
            return "cached"
        if _ctr("images", "import", str(tar)).returncode == 0 and present(tag):
            return "imported"
    # build-image.sh reports on stdout; keep this script's stdout to its one-word answer
    cmd = ["bash", str(REPO / "hack" / "build-image.sh"), "--tag", tag]
    subprocess.run(cmd, check=True, timeout=1800, stdout=sys.stderr)
    stamp.write_text(digest + "\n")
    return "built"


def ensure_stager() -> str:
    """The eb-stager image in the local containerd (hack/build-stager-image.sh builds it only when
    its inputs changed, and imports it only when containerd lacks that tar); its tag."""
    cmd = ["bash", str(REPO / "hack" / "build-stager-image.sh")]
    subprocess.run(cmd, check=True, timeout=1800, stdout=subprocess.DEVNULL)
    return stager_tag()


def stager_tag(repo: Path = REPO) -> str:
    for line in (repo / "src" / "eb_operator" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__ = "):
            return "eb-stager:" + line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("no __version__ in src/eb_operator/__init__.py")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tag", default="eb-operator:dev")
    p.add_argument("--always", action="store_true", help="build even if nothing changed")
    args = p.parse_args(argv)
    if not (state_dir() / "containerd" / "containerd.sock").exists():
        print(
            "ensure-image: the local cluster's containerd is not running (hack/cluster.sh up)",
            file=sys.stderr,
        )
        return 1
    how = ensure(args.tag, args.always)
    print(f"{how}; {ensure_stager()} ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
