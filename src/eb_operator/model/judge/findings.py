"""The judge's shared ground: what is being judged, the messages, and the checks every part of a
request needs (type URIs, fields no model defines, costs and metrics, references by name).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydantic import BaseModel

from eb_operator.model.common import CostItem, MessageItem, MessageLevel, MessageType, MetricItem
from eb_operator.model.errors import Path
from eb_operator.model.offerset import OfferSetRequest
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.types import Group, Kind, info, kind_of, prose_type

INFORMATIONAL_FIELDS = frozenset(
    {
        "description",
        "comment",
        "comments",
        "note",
        "notes",
        "title",
        "label",
        "labels",
        "annotations",
        "tags",
        "href",
        "url",
        "meta",
        "created",
        "modified",
        "messages",
        "options",
        "uuid",
        "name",
        # C26 LifecycleComponent state on a component is server output: ignored on input (§8.1 item 15).
        "phase",
        "schedule",
        "connectors",
        "expires",
    }
)
"""Unknown fields that never express a requirement, so they are ignored rather than refused."""

_WALK_SKIP = frozenset({"messages", "costs", "metrics", "options"})
COST_KINDS = frozenset({Kind.ABSTRACT_COST, Kind.SIMPLE_COST})
METRIC_KINDS = frozenset({Kind.ABSTRACT_METRIC, Kind.SIMPLE_METRIC})
GROUP_WORDS = {
    Group.EXECUTABLE: "executable",
    Group.COMPUTE: "compute resource",
    Group.STORAGE: "storage resource",
    Group.DATA: "data resource",
    Group.VOLUME: "volume",
}


def is_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def unknown_fields(model: BaseModel, path: Path) -> Iterator[Path]:
    """Paths of fields under ``model`` that no model defines and that are not informational."""
    for key in model.model_extra or {}:
        if key not in INFORMATIONAL_FIELDS:
            yield (*path, key)
    for name, spec in type(model).model_fields.items():
        if name in _WALK_SKIP:
            continue
        value = getattr(model, name)
        key = spec.alias or name
        if isinstance(value, BaseModel):
            yield from unknown_fields(value, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from unknown_fields(item, (*path, key, i))


@dataclass
class Findings:
    """The request being judged, the platform's policy, and the messages found so far; the checks
    every part of a request shares (type URIs, unknown fields, costs and metrics, references)."""

    request: OfferSetRequest
    policy: PlatformPolicy
    messages: list[MessageItem] = field(default_factory=list)

    def say(
        self, level: MessageLevel, type_: MessageType, template: str, path: Path, **values: object
    ) -> None:
        where = self.request.client_path(*path)
        self.messages.append(MessageItem.make(type_, level, template, {"path": where, **values}))

    def no(self, type_: MessageType, template: str, path: Path, **values: object) -> None:
        self.say(MessageLevel.ERROR, type_, template, path, **values)

    def unknown_type(self, uri: str | None, group: Group, path: Path) -> None:
        what = GROUP_WORDS.get(group, str(group))
        prose = prose_type(uri)
        if prose is not None:
            if prose.successor is not None:
                self.no(
                    MessageType.OBSOLETE_TYPE,
                    "{path}: {uri} is an obsolete identifier from the prose of the standard; use {successor}",
                    path,
                    uri=uri,
                    successor=info(prose.successor).canonical,
                )
            else:
                self.no(
                    MessageType.OBSOLETE_TYPE,
                    "{path}: {uri} is an identifier from the prose of the standard that no schema defines",
                    path,
                    uri=uri,
                )
            return
        known = kind_of(uri)
        if known is not None:
            self.no(
                MessageType.UNKNOWN_TYPE,
                "{path}: {uri} is not a {what} type",
                path,
                uri=uri,
                what=what,
            )
            return
        self.no(MessageType.UNKNOWN_TYPE, "{path}: unknown {what} type {uri}", path, uri=uri, what=what)

    def unknown_requirements(self, model: BaseModel, path: Path, skip: Sequence[str] = ()) -> None:
        for where in unknown_fields(model, path):
            if len(where) == len(path) + 1 and where[-1] in skip:
                continue
            self.no(
                MessageType.UNKNOWN_REQUIREMENT,
                "{path}: the broker does not understand {field}, so it cannot promise to meet it",
                where,
                field=where[-1],
            )

    def unknown_requirements_shallow(self, model: BaseModel, skip: Sequence[str]) -> None:
        for key in model.model_extra or {}:
            if key not in INFORMATIONAL_FIELDS and key not in skip:
                self.no(
                    MessageType.UNKNOWN_REQUIREMENT,
                    "{path}: the broker does not understand {field}, so it cannot promise to meet it",
                    (key,),
                    field=key,
                )

    def costs_and_metrics(
        self, costs: list[CostItem] | None, metrics: list[MetricItem] | None, path: Path
    ) -> None:
        for i, cost in enumerate(costs or []):
            where = (*path, "costs", i)
            if kind_of(cost.kind, Group.COST) not in COST_KINDS:
                self.no(
                    MessageType.UNKNOWN_TYPE,
                    "{path}: unknown cost kind {uri}",
                    (*where, "kind"),
                    uri=cost.kind,
                )
            elif cost.max is not None and cost.max < 0:
                # The broker charges nothing, so any maximum of zero or more is met.
                self.no(
                    MessageType.BAD_VALUE, "{path}: a maximum cost below zero cannot be met", (*where, "max")
                )
        for i, metric in enumerate(metrics or []):
            where = (*path, "metrics", i)
            if kind_of(metric.kind, Group.METRIC) not in METRIC_KINDS:
                self.no(
                    MessageType.UNKNOWN_TYPE,
                    "{path}: unknown metric kind {uri}",
                    (*where, "kind"),
                    uri=metric.kind,
                )
            elif metric.min is not None:
                self.no(
                    MessageType.NOT_SUPPORTED,
                    "{path}: the broker cannot promise a minimum for metric {metric}",
                    (*where, "min"),
                    metric=metric.type or metric.kind,
                )

    def resolve(self, ref: str, *, with_data: bool) -> tuple[list[int], list[int]]:
        """Indices of the storage and data resources ``ref`` names: by name first, then by uuid
        (digest §9 item 28)."""
        storage = self.request.storage
        data = self.request.data if with_data else []
        for attr in ("name", "uuid"):
            s = [i for i, r in enumerate(storage) if getattr(r, attr) == ref]
            d = [i for i, r in enumerate(data) if getattr(r, attr) == ref]
            if s or d:
                return s, d
        return [], []
