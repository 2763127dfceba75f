"""Finishing a session: what is kept of it when it ends. Run before its final phase is written,
so a failure here is retried with the step, never forgotten.

* **Its log.** The finished Pod is kept (until retention deletes the Execution, or its storage is
  deleted: a finished Pod still holds its claims), and a copy of the workload container's log (its
  last :data:`LOG_BYTES`) goes into a ConfigMap beside the Execution, owned by it: readable as long
  as the session is (``GET /sessions/{uuid}/logs``), also once the Pod is gone (garbage-collected by
  the cluster, evicted, or deleted with its storage).
* **Its storage.** Each claim it holds gets its verdict at once (``storage.claim_verdict`` with
  the session's outcome: results it should have delivered and did not keep their volume for
  ``keepUndeliveredSeconds``), and ``status.storage`` says until when each stays and how each
  delivery went.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eb_operator.cluster import objects
from eb_operator.cluster.convert import LABEL_EXECUTION_UID, LABEL_MANAGED_BY, MANAGER
from eb_operator.cluster.crs import ApiError
from eb_operator.cluster.owners import owner_reference
from eb_operator.engine.types import Phase
from eb_operator.model.times import format_instant
from eb_operator.operator import children, storage
from eb_operator.operator.builders.pod import pod_name
from eb_operator.operator.builders.status import message_item
from eb_operator.operator.builders.storage import ANN_DELETE_AFTER, child_name
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.events import kv
from eb_operator.operator.lifecycle import Step
from eb_operator.operator.state import ExecutionView

log = logging.getLogger("eb_operator.operator")
Obj = Mapping[str, Any]

#: The most of a log the copy keeps: its end (a ConfigMap holds at most 1 MiB).
LOG_BYTES = 256 * 1024
LOG_LINES = 50_000
LOG_KEY = "main.log"
MAIN = "main"


def log_copy_name(execution_name: str) -> str:
    return child_name(execution_name, "log")


def clip_log(text: str, limit: int = LOG_BYTES) -> str:
    """The end of ``text`` within ``limit`` bytes (UTF-8), starting at a line, saying what was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    tail = data[-limit:].decode("utf-8", errors="ignore")
    tail = tail.split("\n", 1)[1] if "\n" in tail else tail
    return f"[the start of this log was not kept: the copy holds its last {limit} bytes]\n{tail}"


def build_log_copy(view: ExecutionView, text: str) -> dict[str, Any]:
    """The ConfigMap that keeps a finished session's log, owned by its Execution."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": log_copy_name(view.name),
            "namespace": view.namespace,
            "labels": {LABEL_MANAGED_BY: MANAGER, LABEL_EXECUTION_UID: view.uid},
            "ownerReferences": [owner_reference(view.ref(), "Execution")],
        },
        "data": {LOG_KEY: clip_log(text)},
    }


@dataclass(frozen=True, slots=True)
class Kept:
    """What the final status write adds: ``status`` fields and messages."""

    status: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)


class Finishing:
    def __init__(self, ctx: OperatorContext) -> None:
        self.ctx = ctx

    async def finish(self, view: ExecutionView, step: Step) -> Kept:
        """Keep the log and settle the storage of a session about to reach ``step.phase``."""
        status: dict[str, Any] = {}
        logs = await self._keep_log(view)
        if logs is not None:
            status["logs"] = logs
        messages: list[dict[str, Any]] = []
        if view.storage:
            status["storage"], messages = await self._settle(view, step)
        return Kept(status, messages)

    async def _keep_log(self, view: ExecutionView) -> str | None:
        ctx = self.ctx
        namespace = view.child_namespace or view.namespace
        try:
            text = await objects.read_pod_log(ctx.cluster, namespace, pod_name(view.name), MAIN, LOG_LINES)
        except ApiError as e:  # e.g. the kubelet is gone with its node: nothing to keep
            log.warning("%s", kv(msg="log not kept", execution=view.key, error=e))
            return None
        if text is None:
            return None
        await objects.create_if_absent(ctx.cluster, build_log_copy(view, text))
        return log_copy_name(view.name)

    async def _settle(
        self, view: ExecutionView, step: Step
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        ctx = self.ctx
        now = ctx.now()
        delivered = step.phase == Phase.COMPLETED
        reports = {r.index: r for r in (ctx.state.delivery_of(view) or _NO_DELIVERY).results}
        entries, messages = [], []
        for old in view.storage:
            entry = dict(old)
            report = reports.get(int(entry["index"]))
            if report is not None:
                entry["delivery"] = {
                    "state": "Delivered" if report.ok else "Failed",
                    **({"files": report.files} if report.files is not None else {}),
                    **({"bytes": report.bytes} if report.bytes is not None else {}),
                    "at": format_instant(now),
                    "message": report.message,
                }
            if entry.get("claim"):
                entry["expires"] = await self._settle_claim(view, entry, delivered, now)
                kept = entry["expires"] and entry["expires"] != format_instant(now)
                if entry.get("delivers") and not delivered and kept:
                    text = (
                        f"the results of resources/storage/{entry['index']} stay in storage {entry['uuid']} "
                        f"until {entry['expires']}: a later request mounts them with a storage item "
                        f"naming it (href: {entry['uuid']})"
                    )
                    messages.append(message_item("INFO", "urn:results-kept", text, now))
            entries.append(entry)
        return entries, messages

    async def _settle_claim(self, view: ExecutionView, entry: Obj, delivered: bool, now: int) -> str | None:
        """Apply the claim's verdict now; when it will be (or was) deleted."""
        ctx = self.ctx
        claim = await objects.get(
            ctx.cluster, "PersistentVolumeClaim", str(entry["namespace"]), str(entry["claim"])
        )
        if claim is None:
            return format_instant(now)
        ended, _ = storage.sessions_over(claim, ctx.state.phase_of_uid, but=view.uid)
        verdict = storage.claim_verdict(claim, ended, now, delivered)
        await children.apply_verdict(ctx.cluster, claim, verdict)
        if verdict.delete:
            return format_instant(now)
        notes = verdict.annotations or (claim.get("metadata", {}).get("annotations") or {})
        found = notes.get(ANN_DELETE_AFTER)
        return str(found) if found else None


@dataclass(frozen=True, slots=True)
class _Nothing:
    results: tuple[Any, ...] = ()


_NO_DELIVERY = _Nothing()
