"""Shared parts of every document: the component base, messages, options, updates, phases.

Option and update models follow ivoa-std ``openapi.yaml`` (digest §3.6); messages follow
``components/messages.yaml`` (digest §3.7). Costs and metrics are the C26 superset (digest §8.1
item 27): they are carried with their own ``kind`` in both dialects, because in C26 they have both
a ``kind`` (the model class) and a ``type`` (what is being measured).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from eb_operator.model.base import NameValueMap, WireFloat, WireInt, WireModel, WireStr
from eb_operator.model.times import Timestamp
from eb_operator.model.types import Group, Kind, canonical_uri, info, kind_of


class ExecutionSessionPhase(StrEnum):
    """ivoa-std ``ExecutionSessionPhase`` (digest §3.9). C26 names READY ``AVAILABLE`` and
    PROPOSED ``INITIAL``; :func:`phase_from_wire` reads both."""

    PROPOSED = "PROPOSED"
    OFFERED = "OFFERED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    WAITING = "WAITING"
    PREPARING = "PREPARING"
    READY = "READY"
    RUNNING = "RUNNING"
    RELEASING = "RELEASING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


#: Phases a session never leaves (digest §4.4).
FINAL_PHASES = frozenset(
    {
        ExecutionSessionPhase.REJECTED,
        ExecutionSessionPhase.EXPIRED,
        ExecutionSessionPhase.COMPLETED,
        ExecutionSessionPhase.FAILED,
        ExecutionSessionPhase.CANCELLED,
    }
)
#: Phases a client may cancel from (digest §4.2 T14, §4.4).
CANCELLABLE_PHASES = frozenset(
    {
        ExecutionSessionPhase.ACCEPTED,
        ExecutionSessionPhase.WAITING,
        ExecutionSessionPhase.PREPARING,
        ExecutionSessionPhase.READY,
        ExecutionSessionPhase.RUNNING,
    }
)
#: Phases that show an accept went through (the session may have moved on since).
ACCEPTED_PHASES = CANCELLABLE_PHASES | {ExecutionSessionPhase.RELEASING, ExecutionSessionPhase.COMPLETED}
_C26_PHASE_ALIASES = {"AVAILABLE": "READY", "INITIAL": "PROPOSED"}
C26_PHASE_NAMES = {"READY": "AVAILABLE", "PROPOSED": "INITIAL"}


def phase_from_wire(value: str) -> ExecutionSessionPhase:
    """A phase name in either dialect (case-insensitive) as the ivoa-std phase."""
    name = value.strip().upper()
    return ExecutionSessionPhase(_C26_PHASE_ALIASES.get(name, name))


def phase_to_wire(phase: ExecutionSessionPhase | str, calycopis: bool) -> str:
    name = str(phase)
    return C26_PHASE_NAMES.get(name, name) if calycopis else name


def _coerce_phase(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return phase_from_wire(value)
        except ValueError:
            names = ", ".join(p.value for p in ExecutionSessionPhase)
            raise PydanticCustomError(
                "phase", "{value} is not a session phase (one of {names})", {"value": value, "names": names}
            ) from None
    if not isinstance(value, ExecutionSessionPhase):
        raise PydanticCustomError("phase_type", "a phase must be a string")
    return value


PhaseField = Annotated[ExecutionSessionPhase, BeforeValidator(_coerce_phase)]


# --- messages --------------------------------------------------------------------------------


class MessageLevel(StrEnum):
    DEBUG = "DEBUG"
    WARN = "WARN"
    ERROR = "ERROR"
    INFO = "INFO"
    OTHER = "OTHER"


class MessageType(StrEnum):
    """Stable message type identifiers used by this broker (digest §6.2)."""

    INPUT_SYNTAX = "urn:ivoa:eb:input-syntax"
    EXECUTABLE_REQUIRED = "urn:ivoa:eb:executable-required"
    UNKNOWN_TYPE = "urn:ivoa:eb:unknown-type"
    OBSOLETE_TYPE = "urn:ivoa:eb:obsolete-type"
    NOT_SUPPORTED = "urn:ivoa:eb:not-supported"
    UNKNOWN_REQUIREMENT = "urn:ivoa:eb:unknown-requirement"
    UNKNOWN_EXTRA = "urn:ivoa:eb:unknown-extra"
    BAD_VALUE = "urn:ivoa:eb:bad-value"
    MISSING_VALUE = "urn:ivoa:eb:missing-value"
    RESOURCE_LIMIT = "urn:ivoa:eb:resource-limit"
    RESOURCE_CAPPED = "urn:ivoa:eb:resource-capped"
    UNRESOLVED_REFERENCE = "urn:ivoa:eb:unresolved-reference"
    AMBIGUOUS_REFERENCE = "urn:ivoa:eb:ambiguous-reference"
    UNREACHABLE = "urn:ivoa:eb:unreachable-endpoint"
    UNSUPPORTED_INTERVAL = "urn:ivoa:eb:unsupported-interval"
    NO_CAPACITY = "urn:ivoa:eb:no-capacity"
    INVALID_TRANSITION = "urn:ivoa:eb:invalid-transition"
    IMAGE_NOT_ALLOWED = "urn:ivoa:eb:image-not-allowed"
    OVER_LIMIT = "urn:ivoa:eb:over-limit"
    RATE_LIMITED = "urn:ivoa:eb:rate-limited"
    PREEMPTED = "urn:ivoa:eb:preempted"


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` placeholders (messagetemplates.org style); unknown names stay as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


class MessageItem(WireModel):
    """``MessageItem``: a message template, its values and the rendered text."""

    type: WireStr | None = None
    time: Timestamp | None = None
    level: MessageLevel | None = None
    template: WireStr | None = None
    values: NameValueMap | None = None
    message: WireStr | None = None

    @classmethod
    def make(
        cls,
        type_: str,
        level: MessageLevel,
        template: str,
        values: Mapping[str, object] | None = None,
        *,
        time: datetime | None = None,
    ) -> MessageItem:
        """A message whose ``message`` is ``template`` filled with ``values`` (stringified)."""
        strings = {k: str(v) for k, v in (values or {}).items()}
        return cls(
            type=type_,
            level=level,
            template=template,
            values=strings,
            message=render_template(template, strings),
            time=time,
        )

    @property
    def path(self) -> str | None:
        """The request field this message is about (digest §6.2 ``values.path``)."""
        return (self.values or {}).get("path")


def has_errors(messages: list[MessageItem]) -> bool:
    """True when any message is an ERROR: the request gets ``result: NO``."""
    return any(m.level is MessageLevel.ERROR for m in messages)


# --- costs and metrics (C26) -----------------------------------------------------------------


class CostItem(WireModel):
    """C26 ``AbstractCostItem`` / ``SimpleMinMaxFloatCost``: the client's ``max`` is what it will pay."""

    kind: WireStr
    type: WireStr | None = None
    description: WireStr | None = None
    min: WireFloat | None = None
    max: WireFloat | None = None


class MetricItem(WireModel):
    """C26 ``AbstractMetricItem`` / ``SimpleMinMaxFloatMetric``: the client's ``min`` is what it needs."""

    kind: WireStr
    type: WireStr | None = None
    description: WireStr | None = None
    min: WireFloat | None = None
    max: WireFloat | None = None


# --- the component base ----------------------------------------------------------------------

TypeUri = Annotated[WireStr, AfterValidator(canonical_uri)]
"""A discriminator value, stored in its canonical family (see :mod:`eb_operator.model.types`)."""


class Component(WireModel):
    """``AbstractComponent`` (ivoa-std), with C26's ``description``, ``modified``, costs and metrics
    as a superset (digest §8.1 items 7 and 27)."""

    type: TypeUri | None = None
    uuid: WireStr | None = None
    name: WireStr | None = None
    created: Timestamp | None = None
    modified: Timestamp | None = None
    description: WireStr | None = None
    messages: list[MessageItem] | None = None
    costs: list[CostItem] | None = None
    metrics: list[MetricItem] | None = None


def discriminator_tag(group: Group, unknown: str | None = "!unknown") -> Any:
    """A pydantic discriminator over a type URI in ``type``.

    Known URIs of ``group`` select their model; any other string selects the group's ``Unknown*``
    model so the judge can answer NO; a missing or non-string ``type`` is a structural error.
    """

    def tag(value: Any) -> str | None:
        uri = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        if not isinstance(uri, str):
            return None
        kind = kind_of(uri, group)
        return f"!{kind.value}" if kind is not None else unknown

    return Discriminator(
        tag,
        custom_error_type="missing_discriminator",
        custom_error_message="missing its type discriminator (`type`, or `kind` in C26)",
    )


def tagged(kind: Kind) -> Tag:
    return Tag(f"!{kind.value}")


UNKNOWN_TAG = Tag("!unknown")


# --- options (server -> client) --------------------------------------------------------------


class AbstractOption(WireModel):
    type: WireStr
    path: WireStr


class StringValueOption(AbstractOption):
    type: WireStr = info(Kind.STRING_VALUE_OPTION).canonical
    pattern: WireStr | None = None


class EnumValueOption(AbstractOption):
    type: WireStr = info(Kind.ENUM_VALUE_OPTION).canonical
    values: list[WireStr]


class IntegerValueOption(AbstractOption):
    type: WireStr = info(Kind.INTEGER_VALUE_OPTION).canonical
    min: WireInt | None = None
    max: WireInt | None = None
    units: WireStr | None = None


class IntegerDeltaOption(AbstractOption):
    type: WireStr = info(Kind.INTEGER_DELTA_OPTION).canonical
    min: WireInt | None = None
    max: WireInt | None = None
    units: WireStr | None = None


class UnknownOption(AbstractOption):
    """An option of a type this model does not define, kept as sent."""


Option = Annotated[
    Annotated[StringValueOption, tagged(Kind.STRING_VALUE_OPTION)]
    | Annotated[EnumValueOption, tagged(Kind.ENUM_VALUE_OPTION)]
    | Annotated[IntegerValueOption, tagged(Kind.INTEGER_VALUE_OPTION)]
    | Annotated[IntegerDeltaOption, tagged(Kind.INTEGER_DELTA_OPTION)]
    | Annotated[UnknownOption, UNKNOWN_TAG],
    discriminator_tag(Group.OPTION),
]


# --- updates (client -> server) --------------------------------------------------------------

PHASE_PATH = "phase"
PHASE_PATH_ALIASES = frozenset({"phase", "/phase", "state", "/state"})  # digest §9 item 2, §4.5


class AbstractUpdate(WireModel):
    """``AbstractUpdate``. ``ident`` is the session identifier found in the body, if any (legacy
    ``ident``/``uuid``, tex §5.2.3): the API compares it with the URL. It is never rendered."""

    type: WireStr
    path: WireStr
    ident: WireStr | None = Field(default=None, exclude=True)


class StringValueUpdate(AbstractUpdate):
    type: WireStr = info(Kind.STRING_VALUE_UPDATE).canonical
    value: WireStr


class EnumValueUpdate(AbstractUpdate):
    type: WireStr = info(Kind.ENUM_VALUE_UPDATE).canonical
    value: WireStr


class PhaseUpdate(EnumValueUpdate):
    """An ``EnumValueUpdate`` on ``phase`` (or ``/phase``, ``state``, ``/state``): the session
    state change of digest §4. ``value`` holds the ivoa-std phase name."""

    path: WireStr = PHASE_PATH
    value: PhaseField  # narrower than the str of EnumValueUpdate on purpose

    @property
    def phase(self) -> ExecutionSessionPhase:
        return ExecutionSessionPhase(self.value)


class IntegerValueUpdate(AbstractUpdate):
    type: WireStr = info(Kind.INTEGER_VALUE_UPDATE).canonical
    value: WireInt
    units: WireStr | None = None


class IntegerDeltaUpdate(AbstractUpdate):
    type: WireStr = info(Kind.INTEGER_DELTA_UPDATE).canonical
    delta: WireInt
    units: WireStr | None = None


def _update_tag(value: Any) -> str | None:
    uri = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    path = value.get("path") if isinstance(value, dict) else getattr(value, "path", None)
    kind = kind_of(uri, Group.UPDATE)
    if kind is None:
        return None
    if kind is Kind.ENUM_VALUE_UPDATE and path == PHASE_PATH:
        return "!phase"
    return f"!{kind.value}"


Update = Annotated[
    Annotated[StringValueUpdate, tagged(Kind.STRING_VALUE_UPDATE)]
    | Annotated[PhaseUpdate, Tag("!phase")]
    | Annotated[EnumValueUpdate, tagged(Kind.ENUM_VALUE_UPDATE)]
    | Annotated[IntegerValueUpdate, tagged(Kind.INTEGER_VALUE_UPDATE)]
    | Annotated[IntegerDeltaUpdate, tagged(Kind.INTEGER_DELTA_UPDATE)],
    Discriminator(
        _update_tag,
        custom_error_type="update_type",
        custom_error_message="needs a known update type (uri:enum-value-update, uri:string-value-update, "
        "uri:integer-value-update or uri:integer-delta-update)",
    ),
]


class UpdateRequest(WireModel):
    """ivoa-std ``UpdateRequest``: ``{update: AbstractUpdate}`` (C26 sends the update bare)."""

    update: Update
