"""What an Execution runs: its request, read from wherever it is kept.

Inline (a direct request), else its OfferSet's as offered (an accepted offer holds no request of
its own), with the executable from ``spec.executableRef`` when the request has none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from eb_operator.cluster.crs import EXECUTABLES, OFFERSETS, Cluster, NotFound

Obj = Mapping[str, Any]


async def execution_request(cluster: Cluster, obj: Obj) -> dict[str, Any] | None:
    """The request Execution ``obj`` runs; None when there is nothing to run."""
    spec = obj.get("spec") or {}
    request = dict(spec.get("request") or {})
    if not request and spec.get("offerSet"):
        with contextlib.suppress(NotFound):
            offerset = await cluster.get(OFFERSETS, obj["metadata"]["namespace"], spec["offerSet"])
            status = offerset.get("status") or {}
            request = dict(status.get("request") or (offerset.get("spec") or {}).get("request") or {})
    ref = spec.get("executableRef")
    if ref and not request.get("executable"):
        try:
            exe = await cluster.get(EXECUTABLES, obj["metadata"]["namespace"], ref)
        except NotFound:
            return None
        request["executable"] = exe.get("spec") or {}
    return request if request.get("executable") else None
