"""Rucio through its own client library (``rucio-clients``): resolve a DID to its replicas, fetch
one with the protocol the RSE names, and check the catalogue's checksum.

The client reads its settings from a ``rucio.cfg``; this module writes one into a private
temporary folder from the environment the operator sets from the platform's Secret:
``RUCIO_ACCOUNT`` (default ``root``), ``RUCIO_USERNAME``/``RUCIO_PASSWORD`` for userpass, or any
``RUCIO_AUTH_TYPE`` with what it needs (``RUCIO_CLIENT_CERT``/``RUCIO_CLIENT_KEY``,
``X509_USER_PROXY``, which the client reads itself); ``RUCIO_VO`` likewise. The request names
only the server and the DID.
"""

from __future__ import annotations

import configparser
import logging
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from eb_operator.stager.common import StageError, Tally


def _config(host: str, env: Mapping[str, str], folder: str) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    auth_type = env.get("RUCIO_AUTH_TYPE") or ("userpass" if env.get("RUCIO_USERNAME") else "x509")
    client = {
        "rucio_host": host,
        "auth_host": host,
        "account": env.get("RUCIO_ACCOUNT") or "root",
        "auth_type": auth_type,
        "request_retries": "3",
        "auth_token_file_path": os.path.join(folder, "token"),
    }
    if env.get("RUCIO_USERNAME"):
        client |= {"username": env["RUCIO_USERNAME"], "password": env.get("RUCIO_PASSWORD", "")}
    if env.get("RUCIO_CA_CERT"):
        client["ca_cert"] = env["RUCIO_CA_CERT"]
    parser["client"] = client
    path = os.path.join(folder, "rucio.cfg")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        parser.write(f)
    return path


#: The client's own summaries of a failure, which name no cause.
_GENERIC = ("Failed to download file", "None of the requested files", "No available source")


class _Recorder:
    """The download client's logger: everything goes to :mod:`logging` as before; errors are
    kept, as the client's exceptions often say less than its log (a DID that does not exist
    ends as "No available sources")."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        text = str(msg) % args if args else str(msg)
        if level >= logging.ERROR and not text.startswith(_GENERIC):
            self.errors.append(text)
        logging.log(level, text)


def _cause(traces: list[dict[str, Any]], log: _Recorder, error: BaseException) -> str:
    if log.errors:
        return log.errors[0]
    reasons = [str(t["stateReason"]) for t in traces if t.get("stateReason")]
    if reasons:
        return reasons[-1]
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def stage_in(host: str, did: str, dest: str, env: Mapping[str, str] = os.environ) -> Tally:
    """Download the file, dataset or container ``did`` (``scope:name``) into ``dest``."""
    tally = Tally()
    where = f"rucio {did} at {host}"
    with tempfile.TemporaryDirectory(prefix="eb-rucio-") as folder:
        os.environ["RUCIO_CONFIG"] = _config(host, env, folder)
        os.environ["RUCIO_CLIENT_MODE"] = "1"
        try:
            from rucio.client.client import Client
            from rucio.client.downloadclient import DownloadClient
            from rucio.common.exception import RucioException
        except ImportError as e:
            raise StageError(f"{where}: this stager image has no Rucio client ({e})") from None
        traces: list[dict[str, Any]] = []
        log = _Recorder()
        try:
            downloads = DownloadClient(client=Client(), logger=log, tracing=False)
            items = downloads.download_dids(
                [{"did": did, "base_dir": dest, "no_subdir": True}], traces_copy_out=traces
            )
        except RucioException as e:
            raise StageError(f"{where}: {_cause(traces, log, e)}") from None
        except Exception as e:  # the client wraps little: requests' and its own errors alike
            raise StageError(f"{where}: {type(e).__name__}: {e}") from None
    for item in items:
        for path in item.get("dest_file_paths") or []:
            tally.add(os.path.getsize(path))
    return tally
