"""Storage: sizes within the limits, persistent storage only where a storage class exists, and a
``stageout`` only to a destination the platform can promise."""

from __future__ import annotations

from eb_operator.model.common import MessageLevel, MessageType
from eb_operator.model.errors import Path
from eb_operator.model.judge.findings import (
    Findings,
)
from eb_operator.model.resources import (
    SimpleStorageResource,
    StorageLifecycle,
)
from eb_operator.model.stageout import stage_out_problems
from eb_operator.model.types import Group


class StorageRules(Findings):
    def storage(self) -> None:
        limit = self.policy.limits.max_storage_gib
        total = 0
        for i, resource in enumerate(self.request.storage):
            path: Path = ("resources", "storage", i)
            if not isinstance(resource, SimpleStorageResource):
                self.unknown_type(resource.type, Group.STORAGE, (*path, "type"))
                continue
            self.unknown_requirements(resource, path)
            self.costs_and_metrics(resource.costs, resource.metrics, path)
            self.reference(resource, path)
            self.persistence(resource, path)
            self.stage_out(resource, path)
            requested = resource.size.requested if resource.size else None
            if requested is None:
                continue
            base = (*path, "size", "requested")
            low, high = requested.min, requested.max
            if low is not None and low < 0:
                self.no(MessageType.BAD_VALUE, "{path}: a size cannot be negative", (*base, "min"))
            elif high is not None and high < (low or 0):
                self.no(
                    MessageType.BAD_VALUE,
                    "{path}: the maximum {max} is below the minimum {min}",
                    (*base, "max"),
                    max=high,
                    min=low or 0,
                )
            elif low is not None and low > limit:
                self.no(
                    MessageType.RESOURCE_LIMIT,
                    "{path}: {value} GiB of storage requested, more than the limit of {limit}",
                    (*base, "min"),
                    value=low,
                    limit=limit,
                )
            else:
                total += 0 if resource.reuses is not None else low or 0
                if high is not None and high > limit:
                    self.say(
                        MessageLevel.WARN,
                        MessageType.RESOURCE_CAPPED,
                        "{path}: at most {limit} GiB of storage will be offered, not {value}",
                        (*base, "max"),
                        value=high,
                        limit=limit,
                    )
        if total > limit:
            self.no(
                MessageType.RESOURCE_LIMIT,
                "{path}: {value} GiB of storage requested in all, more than the limit of {limit}",
                ("resources", "storage"),
                value=total,
                limit=limit,
            )

    def stage_out(self, resource: SimpleStorageResource, path: Path) -> None:
        """A ``stageout`` (model/stageout.py): its own rules, at its own paths."""
        if resource.stageout is not None:
            where = (*path, "stageout")
            for p in stage_out_problems(resource.stageout, resource.offered_gib, self.policy):
                self.no(p.type, p.template, (*where, *p.where), **p.values)

    def reference(self, resource: SimpleStorageResource, path: Path) -> None:
        """Storage named by ``href`` (an earlier session's, to mount again) must be named by its
        uuid; whether it exists and is the caller's is found at offer time (the operator)."""
        if resource.reuses == "":
            self.no(
                MessageType.BAD_VALUE,
                "{path}: names no storage the broker made: {value} does not end in a storage uuid",
                (*path, "href"),
                value=str(resource.href),
            )

    def persistence(self, resource: SimpleStorageResource, path: Path) -> None:
        """Persistent storage (a ``lifetime``) needs a StorageClass, and a lifetime within the limit;
        storage reused from an earlier session has its claim already, and a lifetime only extends it."""
        if resource.lifecycle is StorageLifecycle.UNMANAGED:
            self.no(
                MessageType.NOT_SUPPORTED,
                "{path}: the broker manages the storage it offers; unmanaged storage is not supported",
                (*path, "lifecycle"),
            )
        if resource.lifetime is None:
            return
        where = (*path, "lifetime")
        if self.policy.storage_class_name is None and resource.reuses is None:
            self.no(
                MessageType.NOT_SUPPORTED,
                "{path}: this platform offers no persistent storage (no storage class is configured)",
                where,
            )
            return
        requested = resource.lifetime.requested
        low = requested.min if requested else None
        high = requested.max if requested else None
        limit = self.policy.limits.max_storage_lifetime_seconds
        if low is not None and high is not None and high.seconds < low.seconds:
            self.no(
                MessageType.BAD_VALUE,
                "{path}: the maximum {max} is below the minimum {min}",
                (*where, "requested", "max"),
                max=str(high),
                min=str(low),
            )
        elif low is not None and low.seconds > limit:
            self.no(
                MessageType.RESOURCE_LIMIT,
                "{path}: storage kept for {value} after the session, longer than the limit of {limit}",
                (*where, "requested", "min"),
                value=str(low),
                limit=f"{limit} s",
            )
