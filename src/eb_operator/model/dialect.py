"""The two wire dialects (digest §8): reading C26/C105 into the ivoa-std shape, writing it back.

Reading is a pure dict-to-dict *normalisation* done before validation, liberal in what it takes
(digest §0.1): ``kind`` becomes ``type``; a ``meta`` block is hoisted (``url`` becomes ``href``);
a single C26 ``compute`` object becomes ``resources.compute[0]``, top-level ``storage``/``data``
move into ``resources``; flat ``{min, max}`` quantities become ``requested``; a single start
interval becomes a one-item list; the C26 ``rucio`` block is flattened; the prose's ``spec:``
sub-block is hoisted. Every move is recorded in a :class:`PathMap`, so errors and NO messages name
the client's own fields. Nothing here raises on unexpected *types*: it leaves them in place for
pydantic to report at the right path. It raises only for contradictions (``type`` and ``kind`` that
differ, a field given both flat and in ``meta``).

Responses are read back the same way (:func:`normalise_response`), for a broker that reads its
peers' offer sets and sessions (stacked brokers, digest §1): there, flat quantities are the
*offered* values, the C26 ``available`` block is ``executing``, connectors are access methods.

Writing (:func:`render_calycopis`) turns the ivoa-std JSON of a model into C26 or C105:
READY<->AVAILABLE, PROPOSED<->INITIAL, ``href``<->``meta.url``, session ``options`` ->
``meta.options``, executable ``access`` -> session ``connectors``, ``executing`` <-> ``available``,
offered quantities flat, one ``compute`` object, type URIs in the dialect's own family (§8.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from eb_operator.model.common import (
    AbstractOption,
    AbstractUpdate,
    MessageItem,
    UpdateRequest,
    phase_to_wire,
)
from eb_operator.model.errors import Path, RequestError
from eb_operator.model.executables import AbstractExecutable
from eb_operator.model.offerset import (
    ErrorResponse,
    ExecutionSessionResponse,
    OfferSetRequest,
    OfferSetResponse,
    PathMap,
)
from eb_operator.model.resources import (
    AbstractComputeResource,
    AbstractDataResource,
    AbstractStorageResource,
    ExecutionResourceList,
    Volume,
)
from eb_operator.model.types import Dialect, Group, Kind, family_of, kind_of, translate, uri_for

Json = dict[str, Any]

__all__ = [
    "Dialect",
    "detect_request_dialect",
    "normalise_request",
    "normalise_response",
    "render_calycopis",
]


# --- detection -------------------------------------------------------------------------------


def _discriminators(doc: Mapping[str, Any]) -> list[Any]:
    found: list[Any] = []

    def take(obj: Any) -> None:
        if isinstance(obj, dict):
            found.extend(obj[k] for k in ("kind", "type") if k in obj)

    take(doc.get("executable"))
    holders: list[Any] = [doc]
    if isinstance(doc.get("resources"), dict):
        holders.append(doc["resources"])
    for holder in holders:
        for key in ("compute", "storage", "data"):
            value = holder.get(key)
            for item in value if isinstance(value, list) else [value]:
                take(item)
    return found


def detect_request_dialect(doc: object, hint: Dialect | None = None) -> Dialect:
    """The dialect a request is written in (digest §8.3).

    ``kind`` keys, a ``meta`` block or a top-level ``compute`` object mean Calycopis; ``type`` keys
    or ``resources`` mean ivoa-std. Which Calycopis (C26 or C105) follows the type URIs used.
    The document's own markers win; ``hint`` (e.g. C26 for ``POST /requests``) settles a document
    that has none, and picks C105 over C26 when the URIs do not tell.
    """
    if not isinstance(doc, dict):
        return hint or Dialect.IVOA_STD
    executable = doc.get("executable")
    exe = executable if isinstance(executable, dict) else {}
    caly = 0
    std = 0
    caly += 2 if "kind" in exe else 0
    std += 2 if "type" in exe else 0
    caly += 1 if "meta" in exe or "meta" in doc else 0
    caly += 1 if isinstance(doc.get("compute"), dict) or "costs" in doc or "metrics" in doc else 0
    std += 1 if "resources" in doc or "name" in doc else 0
    if caly == std == 0:
        return hint or Dialect.IVOA_STD
    if std >= caly:
        return Dialect.IVOA_STD
    families = {family_of(uri) for uri in _discriminators(doc)}
    if Dialect.C26 in families:
        return Dialect.C26
    if Dialect.C105 in families or hint is Dialect.C105:
        return Dialect.C105
    return Dialect.C26


# --- reading ---------------------------------------------------------------------------------

_META_TARGETS = {"url": "href"}
_RUCIO_TARGETS = {"scope": "domain", "type": "objecttype"}
_COUNT_KEYS = ("min", "max", "units")


class _Reader:
    def __init__(self, paths: PathMap) -> None:
        self.paths = paths

    def moved(self, new: Path, old: Path) -> None:
        if new != old:
            self.paths.add(new, old)

    # Components: executable, compute, storage, data, volume.
    def component(self, obj: Any, new: Path, old: Path, group: Group) -> Any:
        if not isinstance(obj, dict):
            return obj
        out: Json = {}
        origin: dict[str, Path] = {}

        def put(key: str, value: Any, source: Path) -> None:
            if key in out:
                raise RequestError(source, f"`{key}` is given twice")
            out[key] = value
            origin[key] = source
            self.moved((*new, key), source)

        for key, value in obj.items():
            if key == "kind":
                if "type" in obj and obj["type"] != value:
                    raise RequestError((*old, key), "`type` and `kind` are both given and differ")
                if "type" not in obj:
                    put("type", value, (*old, key))
            elif key == "meta" and isinstance(value, dict):
                for meta_key, meta_value in value.items():
                    put(_META_TARGETS.get(str(meta_key), str(meta_key)), meta_value, (*old, key, meta_key))
            elif key == "meta":
                raise RequestError((*old, key), "`meta` must be an object")
            elif key == "spec" and group is not Group.VOLUME and isinstance(value, dict):
                # The prose's `spec:` sub-block: its fields now sit next to `type` (digest §3.0).
                for spec_key, spec_value in value.items():
                    put(spec_key, spec_value, (*old, key, spec_key))
            else:
                put(key, value, (*old, key))

        if isinstance(out.get("messages"), list):
            out["messages"] = self.messages(out["messages"], (*new, "messages"), origin["messages"])
        if isinstance(out.get("options"), list):
            out["options"] = self.messages(out["options"], (*new, "options"), origin["options"])
        if group is Group.COMPUTE:
            for key in ("cores", "memory"):
                if key in out:
                    out[key] = self.quantity(out[key], (*new, key), origin[key])
            if "gpus" in out:
                out["gpus"] = self.gpus(out["gpus"], (*new, "gpus"), origin["gpus"])
            if isinstance(out.get("volumes"), list):
                vol_old = origin["volumes"]
                out["volumes"] = [
                    self.component(v, (*new, "volumes", i), (*vol_old, i), Group.VOLUME)
                    for i, v in enumerate(out["volumes"])
                ]
        elif group is Group.STORAGE and "size" in out:
            out["size"] = self.quantity(out["size"], (*new, "size"), origin["size"])
        elif group is Group.DATA and isinstance(out.get("rucio"), dict):
            block = out.pop("rucio")
            block_old = origin["rucio"]
            for key, value in block.items():
                target = _RUCIO_TARGETS.get(str(key), str(key))
                if target in out:
                    raise RequestError((*block_old, key), f"`{target}` is given twice")
                out[target] = value
                self.moved((*new, target), (*block_old, key))
        return out

    def messages(self, items: list[Any], new: Path, old: Path) -> list[Any]:
        """MessageItem and option lists: C26 names their discriminator ``kind``."""
        out: list[Any] = []
        for i, item in enumerate(items):
            if isinstance(item, dict) and "kind" in item and "type" not in item:
                item = {("type" if k == "kind" else k): v for k, v in item.items()}
                self.moved((*new, i, "type"), (*old, i, "kind"))
            out.append(item)
        return out

    def quantity(self, value: Any, new: Path, old: Path) -> Any:
        """Flat ``{min, max[, units]}`` (C26, and the prose) is the requested block."""
        flat = isinstance(value, dict) and "requested" not in value and "offered" not in value
        if flat and any(k in value for k in _COUNT_KEYS):
            self.moved((*new, "requested"), old)
            return {"requested": value}
        return value

    def gpus(self, value: Any, new: Path, old: Path) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            self.moved((*new, "requested", "min"), old)
            self.moved((*new, "requested", "max"), old)
            return {"requested": {"min": value, "max": value}}
        if not isinstance(value, dict):
            return value
        out: Json = dict(value)
        if "memory" in out:
            out["memory"] = self.quantity(out["memory"], (*new, "memory"), (*old, "memory"))
        if "requested" in out or "offered" in out:
            return out
        requested: Json = {}
        if "count" in out:
            count = out.pop("count")
            requested = {"min": count, "max": count}
            self.moved((*new, "requested", "min"), (*old, "count"))
            self.moved((*new, "requested", "max"), (*old, "count"))
        for key in ("min", "max"):
            if key in out:
                if key in requested:
                    raise RequestError((*old, key), "give either `count` or `min`/`max`")
                requested[key] = out.pop(key)
                self.moved((*new, "requested", key), (*old, key))
        if requested:
            out["requested"] = requested
        return out

    def resource_list(self, value: Any, new: Path, old: Path, group: Group) -> Any:
        if not isinstance(value, list):
            return value
        return [self.component(item, (*new, i), (*old, i), group) for i, item in enumerate(value)]

    def schedule(self, value: Any, new: Path, old: Path) -> Any:
        if not isinstance(value, dict) or not isinstance(value.get("requested"), dict):
            return value
        requested = dict(value["requested"])
        start = requested.get("start")
        if start is not None and not isinstance(start, list):
            # C26 has a single interval where ivoa-std has a list (digest §8.1 item 19).
            requested["start"] = [start]
            self.moved((*new, "requested", "start", 0), (*old, "requested", "start"))
        return {**value, "requested": requested}


_GROUP_OF_LIST = {"compute": Group.COMPUTE, "storage": Group.STORAGE, "data": Group.DATA}


def normalise_request(doc: Mapping[str, Any], prefix: Path = ()) -> tuple[Json, PathMap]:
    """An OfferSetRequest or C26/C105 ExecutionRequest as an ivoa-std shaped dict, and its path map.

    ``prefix`` is where ``doc`` sits in the client's document (``("request",)`` when it was
    wrapped), so that mapped paths are complete.
    """
    paths = PathMap(prefix)
    reader = _Reader(paths)
    out: Json = {}
    for key, value in doc.items():
        if key == "executable":
            out[key] = reader.component(value, (key,), (key,), Group.EXECUTABLE)
        elif key == "resources" and isinstance(value, dict):
            resources: Json = {}
            for rkey, rvalue in value.items():
                group = _GROUP_OF_LIST.get(rkey)
                path = (key, rkey)
                resources[rkey] = reader.resource_list(rvalue, path, path, group) if group else rvalue
            out[key] = resources
        elif key == "schedule":
            out[key] = reader.schedule(value, (key,), (key,))
        elif key == "meta" and isinstance(value, dict) and "name" in value and "name" not in doc:
            # ExecutionRequest has no name; accept one in `meta` rather than drop it.
            out["name"] = value["name"]
            paths.add(("name",), ("meta", "name"))
            rest = {k: v for k, v in value.items() if k != "name"}
            if rest:
                out["meta"] = rest
        elif key not in _GROUP_OF_LIST:
            out[key] = value

    top_level = [key for key in _GROUP_OF_LIST if key in doc]
    if top_level:
        resources_value = out.setdefault("resources", {})
        if isinstance(resources_value, dict):
            for key in top_level:
                if key in resources_value:
                    raise RequestError((key,), f"`{key}` is given both at the top level and in `resources`")
                value = doc[key]
                group = _GROUP_OF_LIST[key]
                if key == "compute" and isinstance(value, dict):
                    # C26 has exactly one compute resource where ivoa-std has a list.
                    resources_value[key] = [reader.component(value, ("resources", key, 0), (key,), group)]
                    paths.add(("resources", key, 0), (key,))
                else:
                    resources_value[key] = reader.resource_list(value, ("resources", key), (key,), group)
                    paths.add(("resources", key), (key,))
    return out, paths


# --- reading responses -----------------------------------------------------------------------

_CONNECTOR_STATUS = {"AVAILABLE": "ACTIVE"}


class _ResponseReader(_Reader):
    """A peer's session or offer set (C26 or C105) in the ivoa-std shape. Paths are not kept: a
    peer's document is checked by the broker reading it, and its errors name the peer's fields."""

    def __init__(self) -> None:
        super().__init__(PathMap())

    def quantity(self, value: Any, new: Path, old: Path) -> Any:
        """In a response, flat ``{min, max}`` are what the peer offers."""
        flat = isinstance(value, dict) and "requested" not in value and "offered" not in value
        if flat and any(k in value for k in _COUNT_KEYS):
            return {"offered": value}
        return value

    def gpus(self, value: Any, new: Path, old: Path) -> Any:
        if not isinstance(value, dict) or "requested" in value or "offered" in value:
            return value
        out: Json = {k: v for k, v in value.items() if k not in ("min", "max")}
        counts = {k: value[k] for k in ("min", "max") if k in value}
        if "memory" in out:
            out["memory"] = self.quantity(out["memory"], new, old)
        if counts:
            out["offered"] = counts
        return out

    def session(self, doc: Mapping[str, Any]) -> Json:
        out: Json = self.component(dict(doc), (), (), Group.SESSION)
        if "executable" in out:
            out["executable"] = self.component(out["executable"], ("executable",), (), Group.EXECUTABLE)
        resources: Json = {}
        if isinstance(out.get("resources"), dict):
            resources = dict(out["resources"])
        for key, group in _GROUP_OF_LIST.items():
            if key not in out:
                continue
            value = out.pop(key)
            if key == "compute" and isinstance(value, dict):
                value = [value]
            resources[key] = self.resource_list(value, ("resources", key), (key,), group)
        if resources:
            out["resources"] = resources
        schedule = out.get("schedule")
        if isinstance(schedule, dict) and "available" in schedule and "executing" not in schedule:
            schedule = dict(schedule)
            schedule["executing"] = schedule.pop("available")
            out["schedule"] = schedule
        connectors = out.pop("connectors", None)
        executable = out.get("executable")
        if isinstance(connectors, list) and isinstance(executable, dict) and "access" not in executable:
            access = [self.access(c) for c in connectors if isinstance(c, dict)]
            out["executable"] = {**executable, "access": access}
        return out

    @staticmethod
    def access(connector: Mapping[str, Any]) -> Json:
        out = {k: v for k, v in connector.items() if k not in ("kind", "type", "location", "status")}
        if "status" in connector:
            status = connector["status"]
            out["status"] = _CONNECTOR_STATUS.get(status, status) if isinstance(status, str) else status
        if "location" in connector:
            out["locations"] = [connector["location"]]
        return out

    def offerset(self, doc: Mapping[str, Any]) -> Json:
        out: Json = self.component(dict(doc), (), (), Group.OFFERSET)
        if isinstance(out.get("offers"), list):
            out["offers"] = [self._offer(o) for o in out["offers"]]
        return out

    def _offer(self, offer: Any) -> Any:
        """One offer in the ivoa-std shape; as sent when it cannot be read (validating it then
        says why), so that one bad offer is not the whole set's failure."""
        if not isinstance(offer, dict):
            return offer
        try:
            return self.session(offer)
        except RequestError:
            return offer


def normalise_response(doc: Mapping[str, Any], kind: str = "session") -> Json:
    """A peer's ``ExecutionSessionResponse`` (``kind="session"``) or ``OfferSetResponse``
    (``kind="offerset"``), in C26, C105 or ivoa-std, as an ivoa-std shaped dict (not validated:
    the caller validates it). Raises :class:`RequestError` only for contradictions (``type`` and
    ``kind`` that differ, a field given both flat and in ``meta``)."""
    reader = _ResponseReader()
    return reader.offerset(doc) if kind == "offerset" else reader.session(doc)


# --- writing ---------------------------------------------------------------------------------

_META_KEYS = ("uuid", "name", "href", "description", "created", "modified", "messages", "options")
_ACCESS_STATUS = {"ACTIVE": "AVAILABLE"}


def _messages(items: list[Json]) -> list[Json]:
    return [{("kind" if k == "type" else k): v for k, v in item.items()} for item in items]


class _Writer:
    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def kind(self, uri: str) -> str:
        return translate(uri, self.dialect)

    def meta(self, data: Json) -> Json:
        meta: Json = {}
        for key in _META_KEYS:
            if key in data:
                value = data.pop(key)
                if key in ("messages", "options"):
                    value = _messages(value)
                meta["url" if key == "href" else key] = value
        return meta

    def move_meta(self, data: Json, out: Json) -> None:
        """``data``'s metadata fields, taken out of it, as ``out["meta"]`` (where there are any)."""
        meta = self.meta(data)
        if meta:
            out["meta"] = meta

    def with_rest(self, out: Json, data: Json) -> Json:
        """``out`` with the fields left in ``data`` as they are, but costs and metrics, which C105
        predates."""
        if self.dialect is Dialect.C105:
            data.pop("costs", None)
            data.pop("metrics", None)
        out.update(data)
        return out

    def component(self, data: Json, default: Kind | None = None) -> Json:
        data = dict(data)
        out: Json = {}
        if "type" in data:
            out["kind"] = self.kind(data.pop("type"))
        elif default is not None:
            out["kind"] = uri_for(default, self.dialect) or uri_for(default, Dialect.C26)
        self.move_meta(data, out)
        return self.with_rest(out, data)

    @staticmethod
    def flat(block: Any) -> Any:
        """``{requested, offered}`` -> the flat ``{min, max}`` C26 uses: offered in an offer."""
        if not isinstance(block, dict):
            return block
        return block.get("offered", block.get("requested", {}))

    def executable(self, data: Json) -> Json:
        out = self.component(data)
        out.pop("access", None)  # reported as session connectors in C26
        return out

    def compute(self, data: Json) -> Json:
        out = self.component(data)
        for key in ("cores", "memory"):
            if key in out:
                out[key] = self.flat(out[key])
        if isinstance(out.get("gpus"), dict):
            gpus = dict(out["gpus"])
            counts = self.flat({k: gpus.pop(k) for k in ("requested", "offered") if k in gpus})
            if "memory" in gpus:
                gpus["memory"] = self.flat(gpus["memory"])
            out["gpus"] = {**counts, **gpus}
        if isinstance(out.get("volumes"), list):
            out["volumes"] = [self.component(v, Kind.SIMPLE_VOLUME) for v in out["volumes"]]
        return out

    def storage(self, data: Json) -> Json:
        out = self.component(data)
        if "size" in out:
            out["size"] = self.flat(out["size"])
        return out

    def data(self, data: Json) -> Json:
        out = self.component(data)
        if kind_of(data.get("type"), Group.DATA) is Kind.RUCIO_DATA:
            block = {}
            for flat_key, block_key in (("endpoint", "endpoint"), ("domain", "scope"), ("object", "object")):
                if flat_key in out:
                    block[block_key] = out.pop(flat_key)
            if "objecttype" in out:
                block["type"] = out.pop("objecttype")
            out["rucio"] = block
        return out

    def resources(self, data: Json, *, single_compute: bool) -> Json:
        out: Json = {}
        compute = data.get("compute") or []
        if compute:
            if len(compute) > 1 and single_compute:
                raise ValueError("the C26 dialect carries exactly one compute resource")
            out["compute"] = self.compute(compute[0])
        if data.get("storage") is not None:
            out["storage"] = [self.storage(s) for s in data["storage"]]
        if data.get("data") is not None:
            out["data"] = [self.data(d) for d in data["data"]]
        return out

    def request(self, data: Json) -> Json:
        out: Json = {}
        if "executable" in data:
            out["executable"] = self.executable(data["executable"])
        out.update(self.resources(data.get("resources") or {}, single_compute=True))
        requested = (data.get("schedule") or {}).get("requested")
        if requested is not None:
            block = dict(requested)
            starts = block.pop("start", None)
            if starts:
                if len(starts) > 1:
                    raise ValueError("the C26 dialect carries a single start interval")
                block["start"] = starts[0]
            out["schedule"] = {"requested": block}
        if self.dialect is Dialect.C26:
            for key in ("costs", "metrics"):
                if key in data:
                    out[key] = data[key]
        return out

    def session(self, data: Json) -> Json:
        data = dict(data)
        data.pop("type", None)
        out: Json = {"kind": uri_for(Kind.SCHEDULED_SESSION, self.dialect)}
        self.move_meta(data, out)
        out["phase"] = phase_to_wire(data.pop("phase"), calycopis=True)
        if "expires" in data:
            out["expires"] = data.pop("expires")
        executable = data.pop("executable", None)
        if executable is not None:
            out["executable"] = self.executable(executable)
        out.update(self.resources(data.pop("resources", None) or {}, single_compute=False))
        schedule = data.pop("schedule", None) or {}
        timeline: Json = {}
        for ours, theirs in (
            ("preparing", "preparing"),
            ("executing", "available"),
            ("releasing", "releasing"),
        ):
            item = schedule.get(ours)
            if item is None:
                continue
            item = dict(item)
            if "start" in item and theirs != "available":
                item["start"] = str(item["start"]).split("/", 1)[0]  # C26 ISO8601Instant
            timeline[theirs] = item
        if timeline:
            out["schedule"] = timeline
        connectors = self.connectors(executable or {})
        if connectors:
            out["connectors"] = connectors
        return self.with_rest(out, data)

    @staticmethod
    def connectors(executable: Json) -> list[Json]:
        found: list[Json] = []
        for access in executable.get("access") or []:
            base = {k: v for k, v in access.items() if k not in ("locations", "status")}
            if "status" in access:
                base["status"] = _ACCESS_STATUS.get(access["status"], access["status"])
            locations = access.get("locations") or [None]
            found.extend({**base, "location": loc} if loc is not None else dict(base) for loc in locations)
        return found

    def offerset(self, data: Json) -> Json:
        data = dict(data)
        data.pop("type", None)
        out: Json = {}
        kind = uri_for(Kind.OFFERSET, self.dialect)
        if kind is not None:
            out["kind"] = kind
        self.move_meta(data, out)
        if "result" in data:
            out["result"] = data.pop("result")
        offers = data.pop("offers", None)
        out.update(data)
        if offers is not None:
            out["offers"] = [self.session(o) for o in offers]
        return out


def render_calycopis(obj: BaseModel, data: Json, dialect: Dialect) -> Json:
    """``data`` (the ivoa-std JSON of ``obj``) in the C26 or C105 dialect."""
    writer = _Writer(dialect)
    if isinstance(obj, OfferSetResponse):
        return writer.offerset(data)
    if isinstance(obj, ExecutionSessionResponse):
        return writer.session(data)
    if isinstance(obj, OfferSetRequest):
        return writer.request(data)
    if isinstance(obj, UpdateRequest):
        return _messages([data["update"]])[0]
    if isinstance(obj, AbstractUpdate | AbstractOption | MessageItem):
        return _messages([data])[0]
    if isinstance(obj, ErrorResponse):
        return {"meta": {"messages": _messages(data["messages"])}}
    if isinstance(obj, AbstractExecutable):
        return writer.executable(data)
    if isinstance(obj, AbstractComputeResource):
        return writer.compute(data)
    if isinstance(obj, AbstractStorageResource):
        return writer.storage(data)
    if isinstance(obj, AbstractDataResource):
        return writer.data(data)
    if isinstance(obj, Volume):
        return writer.component(data, Kind.SIMPLE_VOLUME)
    if isinstance(obj, ExecutionResourceList):
        return writer.resources(data, single_compute=True)
    raise TypeError(f"cannot render a {type(obj).__name__} in the {dialect} dialect")
