#!/usr/bin/env python3
"""Pack a root filesystem (or ready layer tars) into a `docker save` style image tar, with no
registry and no Docker engine. `ctr -n k8s.io images import FILE` (containerd) and
`kind load image-archive FILE` both read the result.

    hack/oci-image.py --tag eb-workload:latest --rootfs /tmp/rootfs --user 1000:1000 \
        --env PATH=/usr/local/bin:/usr/bin:/bin --cmd /bin/sh -o eb-workload.tar

Each --rootfs DIR (or --layer TAR) becomes one layer, in the order given. The output is
deterministic for the same input (fixed created time, sorted JSON), so its sha256 can be used
as a cache/import key. Standard library only: it runs on the host's python3.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

EPOCH = "1970-01-01T00:00:00Z"


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tar_rootfs(rootfs: str, out: str) -> None:
    # GNU tar keeps device nodes, hard links, xattrs and numeric owners exactly; sorted names and
    # a fixed mtime make the layer reproducible.
    subprocess.run(
        ["tar", "--numeric-owner", "--xattrs", "--sort=name", "--mtime=@0", "-C", rootfs, "-cf", out, "."],
        check=True,
    )


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tag", required=True, action="append", help="name:tag (repeatable)")
    p.add_argument("--rootfs", action="append", default=[], help="directory to pack as a layer")
    p.add_argument("--layer", action="append", default=[], help="an existing uncompressed layer tar")
    p.add_argument("--user", default="")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--entrypoint", nargs="*", default=None)
    p.add_argument("--cmd", nargs="*", default=None)
    p.add_argument("--workdir", default="")
    p.add_argument("--label", action="append", default=[], help="key=value")
    p.add_argument("--expose", action="append", default=[], help="port/proto, e.g. 8080/tcp")
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args()
    if not a.rootfs and not a.layer:
        p.error("give at least one --rootfs or --layer")

    work = tempfile.mkdtemp(prefix="oci-image-", dir=os.path.dirname(os.path.abspath(a.output)))
    try:
        layers: list[str] = []
        for i, d in enumerate(a.rootfs):
            path = os.path.join(work, f"rootfs{i}.tar")
            tar_rootfs(d, path)
            layers.append(path)
        layers.extend(a.layer)
        diff_ids = [sha256_file(path) for path in layers]
        default_path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        cfg: dict[str, object] = {"Env": a.env or [default_path]}
        if a.user:
            cfg["User"] = a.user
        if a.entrypoint is not None:
            cfg["Entrypoint"] = a.entrypoint
        if a.cmd is not None:
            cfg["Cmd"] = a.cmd
        if a.workdir:
            cfg["WorkingDir"] = a.workdir
        if a.label:
            cfg["Labels"] = dict(kv.split("=", 1) for kv in a.label)
        if a.expose:
            cfg["ExposedPorts"] = {port: {} for port in a.expose}
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": EPOCH,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
            "history": [{"created": EPOCH, "created_by": "hack/oci-image.py"} for _ in layers],
        }
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        manifest = [
            {
                "Config": config_name,
                "RepoTags": a.tag,
                "Layers": [f"{d}/layer.tar" for d in diff_ids],
            }
        ]
        tmp_out = a.output + ".tmp"
        with tarfile.open(tmp_out, "w", format=tarfile.GNU_FORMAT) as out:
            add_bytes(out, config_name, config_bytes)
            for d, path in zip(diff_ids, layers, strict=True):
                info = out.gettarinfo(path, arcname=f"{d}/layer.tar")
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with open(path, "rb") as f:
                    out.addfile(info, f)
            add_bytes(out, "manifest.json", json.dumps(manifest, sort_keys=True).encode())
        os.replace(tmp_out, a.output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(a.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
