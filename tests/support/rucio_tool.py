"""Run by the Rucio server's own Python (its virtualenv, tests/support/rucio_server.py), never
imported by the tests: ``boot`` (the schema on SQLite, the base VO, the root account with its
userpass identity), ``serve HOST PORT`` (the REST app in werkzeug's threaded server), and
``register JSON`` (an RSE on an S3 bucket whose URLs the server signs, a scope, and files with
their replicas; prints the RSE's id). The configuration is ``$RUCIO_HOME/etc/rucio.cfg``."""

from __future__ import annotations

import json
import os
import sys
import time
import zlib


def boot() -> None:
    from rucio.db.sqla import models
    from rucio.db.sqla.session import get_engine
    from rucio.db.sqla.util import create_base_vo, create_root_account

    models.register_models(get_engine())
    create_base_vo()
    create_root_account()


def serve(host: str, port: int) -> None:
    from rucio.web.rest.flaskapi.v1.main import application
    from werkzeug.serving import make_server

    server = make_server(host, port, application, threaded=True)
    print(f"serving on {host}:{port}", flush=True)
    server.serve_forever()


def register(spec: dict) -> None:  # type: ignore[type-arg]
    os.environ["RUCIO_CLIENT_MODE"] = "1"
    from rucio.client import Client

    client = Client(
        rucio_host=spec["url"],
        auth_host=spec["url"],
        account="root",
        auth_type="userpass",
        creds={"username": spec["username"], "password": spec["password"]},
        vo="def",
    )
    rse, host, port, bucket = spec["rse"], spec["s3_host"], int(spec["s3_port"]), spec["bucket"]
    client.add_rse(rse, deterministic=False)
    client.add_protocol(
        rse,
        {
            "scheme": "https",
            "hostname": host,
            "port": port,
            "prefix": f"/{bucket}/",
            "impl": "rucio.rse.protocols.webdav.Default",
            "domains": {
                "lan": {"read": 1, "write": 1, "delete": 1},
                "wan": {"read": 1, "write": 1, "delete": 1, "third_party_copy_read": 1},
            },
        },
    )
    client.add_rse_attribute(rse, "sign_url", "s3")
    client.add_rse_attribute(rse, "s3_url_style", "path")
    rse_id = client.get_rse(rse)["id"]
    accounts = os.path.join(os.environ["RUCIO_HOME"], "etc", "rse-accounts.cfg")
    with open(accounts, "w") as f:
        json.dump(
            {
                rse_id: {
                    "access_key": spec["access_key"],
                    "secret_key": spec["secret_key"],
                    "signature_version": "s3v4",
                    "region": "us-east-1",
                }
            },
            f,
        )
    client.add_scope("root", spec["scope"])
    for item in spec["files"]:
        data = bytes.fromhex(item["hex"])
        client.add_replica(
            rse,
            spec["scope"],
            item["name"],
            len(data),
            f"{zlib.adler32(data) & 0xFFFFFFFF:08x}",
            pfn=f"https://{host}:{port}/{bucket}/{item['key']}",
        )
    print(rse_id)


if __name__ == "__main__":
    began = time.monotonic()
    command = sys.argv[1]
    if command == "boot":
        boot()
    elif command == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif command == "register":
        register(json.loads(sys.argv[2]))
    else:
        sys.exit(f"unknown command {command}")
    print(f"{command} took {time.monotonic() - began:.2f} s", file=sys.stderr)
