"""Owner namespaces: made on first use, their session children cleaned up level-based, removed
once empty for a while (docs/operator.md, "Sharing a platform").

* :meth:`OwnerNamespaces.ensure` makes an owner's namespace before a session's first child: the
  Namespace (``restricted``), the operator's RoleBinding there, the REST API's (its sessions'
  logs) and the isolating NetworkPolicy.
* Children in another namespace than their Execution carry no owner reference, so they are deleted
  here: Services and Secrets when the session reaches a final phase (the finished Pod stays for its
  logs), everything when the Execution is deleted (:meth:`forget`), and by a periodic sweep of
  children whose Execution is gone (:meth:`sweep`).
* :meth:`sweep` also deletes an owner namespace that has held no Pod, no volume claim and no live
  session for ``namespaces.emptyGraceSeconds``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from eb_operator.cluster import objects
from eb_operator.cluster.convert import LABEL_EXECUTION_UID, LABEL_MANAGED_BY, MANAGER, label_value
from eb_operator.cluster.crs import ApiError
from eb_operator.model.common import FINAL_PHASES
from eb_operator.model.tenancy import owner_label, session_namespace
from eb_operator.operator.builders.namespace import (
    API_LOGS_ROLE_BINDING,
    LABEL_OWNER,
    LABEL_PLATFORM,
    build_namespace,
    build_network_policy,
    build_role_binding,
    managed_selector,
)
from eb_operator.operator.builders.pod import pod_name
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.events import kv
from eb_operator.operator.state import ExecutionView
from eb_operator.operator.workqueue import Retry

log = logging.getLogger("eb_operator.operator")
Obj = Mapping[str, Any]


#: Sweeps between two listings of the Services and Secrets of every owner namespace.
ORPHAN_SWEEPS = 10


class OwnerNamespaces:
    def __init__(self, ctx: OperatorContext) -> None:
        self.ctx = ctx
        self._ready: set[str] = set()  # complete (namespace, bindings, policy), as this process made them
        self._empty_since: dict[str, float] = {}
        self._sweeps = 0

    def namespace_of(self, view: ExecutionView) -> str:
        """Where ``view``'s children live: as recorded, else as the one rule places them."""
        if view.child_namespace:
            return view.child_namespace
        ctx = self.ctx
        return session_namespace(
            view.namespace, view.owner, ctx.cfg.sessions_namespace, ctx.policy.namespaces
        )

    # --- making one ---------------------------------------------------------------------------

    async def ensure(self, namespace: str, view: ExecutionView) -> None:
        """Make ``view``'s owner namespace complete, if it is one and this process has not yet."""
        if namespace == view.namespace or namespace in self._ready:
            return
        ctx = self.ctx
        owner = view.owner
        if not await objects.create_namespace(
            ctx.cluster, build_namespace(namespace, owner, ctx.cfg.platform)
        ):
            found = await objects.get_namespace(ctx.cluster, namespace)
            if found is None:
                raise Retry(0.5, f"namespace {namespace} was deleted meanwhile")
            if (found.get("status") or {}).get("phase") == "Terminating":
                raise Retry(2.0, f"namespace {namespace} is being deleted; it is made again after")
            labels = found["metadata"].get("labels") or {}
            if labels.get(LABEL_MANAGED_BY) != MANAGER or labels.get(LABEL_OWNER) != owner_label(owner):
                log.warning("%s", kv(msg="namespace exists and is not this owner's", namespace=namespace))
                raise Retry(60.0, f"namespace {namespace} exists and is not the broker's for this owner")
            holder = labels.get(LABEL_PLATFORM)
            if holder != label_value(ctx.cfg.platform):
                # Another platform's broker made it (two releases with one prefix), or one that is
                # gone: sharing it would let that broker's sweeper delete it under our sessions,
                # and our sessions would be missing from everything that lists ours by label.
                why = (
                    f"namespace {namespace} belongs to platform {holder}'s broker: give each "
                    "platform on a cluster its own namespaces.prefix, or delete that namespace"
                )
                log.warning("%s", kv(msg="owner namespace of another platform", namespace=namespace))
                raise Retry(60.0, why)
        self._empty_since.pop(namespace, None)
        try:
            if ctx.cfg.workloads_cluster_role and ctx.cfg.service_account:
                binding = build_role_binding(
                    namespace, ctx.cfg.workloads_cluster_role, ctx.cfg.service_account
                )
                await objects.create_if_absent(ctx.cluster, binding)
            if ctx.cfg.api_logs_cluster_role and ctx.cfg.api_service_account:
                binding = build_role_binding(
                    namespace,
                    ctx.cfg.api_logs_cluster_role,
                    ctx.cfg.api_service_account,
                    name=API_LOGS_ROLE_BINDING,
                )
                await objects.create_if_absent(ctx.cluster, binding)
            wanted = build_network_policy(namespace, ctx.policy.namespaces.ingress_from)
            found_policy, _ = await objects.create_if_absent(ctx.cluster, wanted)
            if found_policy.get("spec") != wanted["spec"]:  # the platform's ingressFrom changed
                rv = str(found_policy["metadata"]["resourceVersion"])
                await objects.replace_network_policy(ctx.cluster, wanted, rv)
        except ApiError as e:
            if e.status == 403:  # a RoleBinding just made is authorised a moment later
                raise Retry(0.5, f"not yet allowed in {namespace}") from None
            raise
        self._ready.add(namespace)
        log.info("%s", kv(msg="owner namespace ready", namespace=namespace, owner=owner))

    # --- cleaning up --------------------------------------------------------------------------

    async def release(self, namespace: str, uid: str) -> None:
        """Delete what a session that reached a final phase leaves besides its Pod."""
        selector = f"{LABEL_MANAGED_BY}={MANAGER},{LABEL_EXECUTION_UID}={uid}"
        await objects.delete_services(self.ctx.cluster, namespace, selector)
        await objects.delete_secrets(self.ctx.cluster, namespace, selector)

    async def forget(self, item: tuple[str, str, str]) -> None:
        """An Execution (``namespace``, ``uid``, ``name``) whose children live elsewhere was deleted:
        delete them too (its Pod included)."""
        namespace, uid, name = item
        await self.ctx.cluster.delete_pod(namespace, pod_name(name))
        await self.release(namespace, uid)
        log.info("%s", kv(msg="children of a deleted execution deleted", namespace=namespace, uid=uid))

    async def sweep(self) -> None:
        """Delete children whose Execution is gone or ended, and owner namespaces empty for long
        enough. Runs in the active operator once its state is loaded."""
        ctx = self.ctx
        now = ctx.cfg.clock()
        namespaces = await objects.list_namespaces(ctx.cluster, managed_selector(ctx.cfg.platform))
        names = {n["metadata"]["name"]: n for n in namespaces}
        busy = self._busy()
        # listing Services and Secrets costs two requests a namespace: every ORPHAN_SWEEPS sweeps
        orphans = self._sweeps % ORPHAN_SWEEPS == 0
        self._sweeps += 1
        for name, ns in names.items():
            if ns.get("status", {}).get("phase") == "Terminating":
                continue
            await self._orphans(name, services_and_secrets=orphans)
            if name in busy or await objects.any_claim(ctx.cluster, name):
                self._empty_since.pop(name, None)
                continue
            since = self._empty_since.setdefault(name, now)
            if now - since < ctx.policy.namespaces.empty_grace_seconds:
                continue
            if self._busy() & {name}:  # a session placed there while this sweep awaited
                continue
            self._ready.discard(name)  # before the delete: a new session makes it again
            self._empty_since.pop(name, None)
            if await objects.delete_namespace(ctx.cluster, name, ns["metadata"]["uid"]):
                log.info("%s", kv(msg="empty owner namespace deleted", namespace=name))
        for gone in set(self._empty_since) - set(names):
            del self._empty_since[gone]

    def _busy(self) -> set[str]:
        """Owner namespaces in use: where a live session has (or will have) its children, or where
        a broker Pod still is (a finished one, kept for its logs)."""
        ctx = self.ctx
        out = {p.namespace for p in ctx.state.broker_pods.values() if p.namespace}
        for view in ctx.state.executions.values():
            if view.phase not in FINAL_PHASES and view.owner:
                out.add(self.namespace_of(view))
        return out

    async def _orphans(self, namespace: str, *, services_and_secrets: bool) -> None:
        """Delete the Pods of ``namespace`` whose Execution is gone (known from the watch, no
        request) and, with ``services_and_secrets``, the Services and Secrets of sessions that
        ended or are gone."""
        ctx = self.ctx
        for uid, pod in list(ctx.state.broker_pods.items()):
            if pod.namespace == namespace and uid not in ctx.state.by_uid:
                await ctx.cluster.delete_pod(namespace, pod.name)
                log.info("%s", kv(msg="orphan pod deleted", namespace=namespace, pod=pod.name))
        if not services_and_secrets:
            return
        selector = f"{LABEL_MANAGED_BY}={MANAGER}"
        found = [
            *await objects.list_services(ctx.cluster, namespace, selector),
            *await objects.list_secrets(ctx.cluster, namespace, selector),
        ]
        stale: set[str] = set()
        for child in found:
            of = (child["metadata"].get("labels") or {}).get(LABEL_EXECUTION_UID)
            if of and self._ended(str(of)):
                stale.add(str(of))
        for uid in stale:
            await self.release(namespace, uid)
            log.info("%s", kv(msg="children of an ended session deleted", namespace=namespace, uid=uid))

    def _ended(self, uid: str) -> bool:
        key = self.ctx.state.by_uid.get(uid)
        view = self.ctx.state.executions.get(key) if key is not None else None
        return view is None or view.phase in FINAL_PHASES
