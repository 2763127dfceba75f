"""The top-level documents: OfferSetRequest, ExecutionSessionResponse, OfferSetResponse (digest §3.2,
§3.8, §3.9), the phase options of digest §4.4, and the error document of digest §6.2.

These are ivoa-std shaped; :mod:`eb_operator.model.dialect` reads and writes the C26 shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, PrivateAttr
from pydantic_core import PydanticCustomError

from eb_operator.model.base import WireModel, WireStr
from eb_operator.model.common import (
    CANCELLABLE_PHASES,
    Component,
    CostItem,
    EnumValueOption,
    ExecutionSessionPhase,
    MessageItem,
    MetricItem,
    Option,
    PhaseField,
)
from eb_operator.model.errors import Path, format_path
from eb_operator.model.executables import Executable
from eb_operator.model.resources import (
    ComputeResource,
    DataResource,
    ExecutionResourceList,
    SimpleComputeResource,
    StorageResource,
)
from eb_operator.model.times import IsoDuration, IsoInterval, Timestamp
from eb_operator.model.types import Kind, info

SESSION_TYPE = info(Kind.SCHEDULED_SESSION).canonical
OFFERSET_TYPE = info(Kind.OFFERSET).canonical


class ScheduleRequestBlock(WireModel):
    """``ScheduleRequestBlock``: the minimum run time and the acceptable start windows (a union)."""

    duration: IsoDuration | None = None
    start: list[IsoInterval] | None = None


class ScheduleOfferItem(WireModel):
    """``ScheduleOfferItem``: one offered window (``…/PT0S`` for an exact time) and its duration."""

    duration: IsoDuration | None = None
    start: IsoInterval | None = None


class RequestSchedule(WireModel):
    requested: ScheduleRequestBlock | None = None


class SessionSchedule(WireModel):
    """A session's schedule: the request echoed, plus the offered timeline."""

    requested: ScheduleRequestBlock | None = None
    preparing: ScheduleOfferItem | None = None
    executing: ScheduleOfferItem | None = None
    releasing: ScheduleOfferItem | None = None


class PathMap:
    """Where each part of a normalised (ivoa-std shaped) document came from in the client's.

    The dialect reader moves subtrees (C26 ``compute`` becomes ``resources/compute/0``, flat
    ``cores/min`` becomes ``cores/requested/min`` ...) and records each move here, so that errors
    and NO messages name fields as the client wrote them.
    """

    def __init__(self, prefix: Path = ()) -> None:
        self._moves: dict[Path, Path] = {}
        self.prefix = prefix

    def add(self, new: Path, old: Path) -> None:
        self._moves[new] = old

    def to_client(self, path: Path) -> Path:
        for cut in range(len(path), 0, -1):
            old = self._moves.get(path[:cut])
            if old is not None:
                return self.prefix + old + path[cut:]
        return self.prefix + path

    def client_path(self, path: Path) -> str:
        return format_path(self.to_client(path))

    # Provenance, not content: a request reads the same whichever dialect it was written in, so
    # the map must not make two equal requests compare unequal.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, PathMap)

    __hash__ = None  # type: ignore[assignment]


class OfferSetRequest(WireModel):
    """``OfferSetRequest`` (ivoa-std), which C26 ``ExecutionRequest`` documents are read into.

    ``costs`` and ``metrics`` are the C26 superset. Use :func:`eb_operator.model.parse_offerset_request`
    to read client documents: it also accepts C26/C105, and keeps the path map that lets
    :meth:`client_path` name fields as the client wrote them.
    """

    name: WireStr | None = None
    executable: Executable | None = None
    resources: ExecutionResourceList | None = None
    schedule: RequestSchedule | None = None
    costs: list[CostItem] | None = None
    metrics: list[MetricItem] | None = None

    _paths: PathMap = PrivateAttr(default_factory=PathMap)

    def client_path(self, *parts: str | int) -> str:
        """``"resources/compute/0/cores/requested/min"`` as the client wrote it (for C26:
        ``"compute/cores/min"``)."""
        return self._paths.client_path(parts)

    def set_paths(self, paths: PathMap) -> None:
        self._paths = paths

    @property
    def paths(self) -> PathMap:
        return self._paths

    @property
    def compute(self) -> list[ComputeResource]:
        return list(self.resources.compute or []) if self.resources else []

    @property
    def storage(self) -> list[StorageResource]:
        return list(self.resources.storage or []) if self.resources else []

    @property
    def data(self) -> list[DataResource]:
        return list(self.resources.data or []) if self.resources else []

    @property
    def requested_schedule(self) -> ScheduleRequestBlock | None:
        return self.schedule.requested if self.schedule else None

    def simple_compute(self) -> SimpleComputeResource | None:
        """The first compute resource if it is a simple one (the only kind the broker runs)."""
        first = self.compute[:1]
        return first[0] if first and isinstance(first[0], SimpleComputeResource) else None


class ExecutionSessionResponse(Component):
    """``ExecutionSessionResponse``: an offer, and later the session it becomes (same object, same
    URL; only ``phase`` moves on). ivoa-std requires ``uuid``, ``href``, ``type`` and the phase
    (which its ``required`` list misnames ``state``; we emit ``phase`` only, digest §9 item 2)."""

    uuid: WireStr
    href: WireStr
    type: WireStr = SESSION_TYPE
    phase: PhaseField
    expires: Timestamp | None = None
    executable: Executable | None = None
    resources: ExecutionResourceList | None = None
    schedule: SessionSchedule | None = None
    options: list[Option] | None = None


class Result(StrEnum):
    YES = "YES"
    NO = "NO"


def _coerce_result(value: Any) -> Any:
    # YAML 1.1 readers turn an unquoted YES/NO into a boolean (digest §9 item 37).
    if value is True:
        return Result.YES
    if value is False:
        return Result.NO
    if isinstance(value, str) and value in Result.__members__:
        return Result(value)
    if isinstance(value, Result):
        return value
    raise PydanticCustomError("result", 'result must be "YES" or "NO"')


class OfferSetResponse(Component):
    """``OfferSetResponse``: YES with offers, or NO with messages saying why. ``result`` is an enum
    of *strings*; YAML writers must quote it."""

    uuid: WireStr
    href: WireStr
    type: WireStr = OFFERSET_TYPE
    result: Annotated[Result, BeforeValidator(_coerce_result)]
    offers: list[ExecutionSessionResponse] | None = None


class ErrorResponse(WireModel):
    """The error document of digest §6.2: at least one ERROR message (C26: under ``meta``)."""

    messages: list[MessageItem]


def phase_options(phase: ExecutionSessionPhase | str) -> list[Option]:
    """The options a session advertises in ``phase`` (digest §4.4)."""
    current = ExecutionSessionPhase(phase)
    values = _PHASE_OPTIONS.get(current, ())
    options: list[Option] = [EnumValueOption(path="phase", values=list(values))] if values else []
    return options


_PHASE_OPTIONS: Mapping[ExecutionSessionPhase, tuple[str, ...]] = {
    ExecutionSessionPhase.OFFERED: ("ACCEPTED", "REJECTED"),
    **{phase: ("CANCELLED",) for phase in CANCELLABLE_PHASES},
}
