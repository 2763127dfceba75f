"""A real Rucio server for the data tests: the ``rucio`` package from PyPI (its Flask REST app)
in a virtualenv of its own (hack/build-rucio-server.sh), on SQLite, bootstrapped (schema, base
VO, root account with a userpass identity), served by werkzeug's threaded server.

:func:`run_rucio` starts it; :meth:`Rucio.register_s3` adds an RSE on an S3 bucket (versitygw
over TLS) whose replicas' URLs the server signs with the bucket's credentials (the RSE's
``sign_url: s3``, the way sites put Rucio in front of object stores), a scope, and files with
their replicas and adler32 checksums. The Rucio client in the eb-stager image then resolves a
DID to a signed URL and fetches it with no S3 credential of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tests.support import child_process
from tests.support.kube import REPO, wait_for
from tests.support.servers import S3, S3_KEY, S3_SECRET, free_port

TOOL = Path(__file__).resolve().parent / "rucio_tool.py"
USERNAME = "eb-rucio"
PASSWORD = "eb-rucio-secret"
ACCOUNT = "root"


def rucio_python() -> Path:
    """The Rucio server's virtualenv python (built once, then cached)."""
    done = subprocess.run(
        ["bash", str(REPO / "hack" / "build-rucio-server.sh")],
        check=True,
        timeout=1200,
        capture_output=True,
        text=True,
    )
    return Path(done.stdout.strip().splitlines()[-1])


CONFIG = """\
[common]
loglevel = WARNING
[database]
default = sqlite:///{home}/rucio.db
[bootstrap]
userpass_identity = {username}
userpass_pwd = {password}
userpass_email = eb-tests@example.org
[policy]
permission = generic
schema = generic
lfn2pfn_algorithm_default = hash
[monitor]
enable_metrics = False
[client]
request_retries = 3
auth_token_file_path = {home}/token
"""


@dataclass
class Rucio:
    url: str
    home: Path
    python: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def secret(self) -> dict[str, str]:
        """What the platform's Secret for this server holds (the stager's environment)."""
        return {"RUCIO_ACCOUNT": ACCOUNT, "RUCIO_USERNAME": USERNAME, "RUCIO_PASSWORD": PASSWORD}

    def tool(self, *args: str) -> str:
        env = {**os.environ, "RUCIO_HOME": str(self.home)}
        env.pop("RUCIO_CONFIG", None)
        done = subprocess.run(
            [str(self.python), str(TOOL), *args], env=env, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"rucio_tool {args[0]} failed: {done.stderr[-3000:]}")
        return done.stdout

    def register_s3(
        self, rse: str, s3: S3, bucket: str, scope: str, files: Mapping[str, tuple[str, bytes]]
    ) -> str:
        """An RSE on ``bucket`` of ``s3`` (which must be TLS: Rucio signs only https URLs),
        the scope, and ``files``: DID name -> (object key, bytes), each uploaded and registered
        as a replica. Returns the RSE's id."""
        host, port = s3.endpoint.removeprefix("https://").rsplit(":", 1)
        for key, data in files.values():
            s3.put(bucket, key, data)
        spec = {
            "url": self.url,
            "username": USERNAME,
            "password": PASSWORD,
            "rse": rse,
            "s3_host": host,
            "s3_port": int(port),
            "bucket": bucket,
            "access_key": S3_KEY,
            "secret_key": S3_SECRET,
            "scope": scope,
            "files": [{"name": n, "key": k, "hex": d.hex()} for n, (k, d) in files.items()],
        }
        began = time.monotonic()
        rse_id = self.tool("register", json.dumps(spec)).strip().splitlines()[-1]
        self.timings["register"] = time.monotonic() - began
        return rse_id


@contextlib.contextmanager
def run_rucio(host: str) -> Iterator[Rucio]:
    """A bootstrapped Rucio server on ``host``; ``timings`` says how long each step took."""
    timings: dict[str, float] = {}
    began = time.monotonic()
    python = rucio_python()
    timings["virtualenv"] = time.monotonic() - began
    home = Path(tempfile.mkdtemp(prefix="eb-rucio-"))
    (home / "etc").mkdir()
    (home / "etc" / "rucio.cfg").write_text(CONFIG.format(home=home, username=USERNAME, password=PASSWORD))
    port = free_port(host)
    server = Rucio(f"http://{host}:{port}", home, python, timings)
    step = time.monotonic()
    server.tool("boot")
    timings["bootstrap"] = time.monotonic() - step
    log = (home / "server.log").open("wb")
    env = {**os.environ, "RUCIO_HOME": str(home)}
    env.pop("RUCIO_CONFIG", None)
    step = time.monotonic()
    proc = subprocess.Popen(
        [str(python), str(TOOL), "serve", host, str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the Rucio server exited with {proc.returncode}; see {log.name}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{server.url}/ping", timeout=2, trust_env=False).status_code == 200
        return False

    try:
        wait_for(answers, 60, "the Rucio server to answer /ping")
        timings["serve"] = time.monotonic() - step
        timings["total"] = time.monotonic() - began
        yield server
    finally:
        child_process.stop(proc, grace=10)
        log.close()
        shutil.rmtree(home, ignore_errors=True)
