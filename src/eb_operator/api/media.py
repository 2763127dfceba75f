"""Content negotiation, exactly as digest §2.2. Pure functions, no FastAPI.

Requests: YAML unless the body is declared JSON; ``application/yaml``, ``application/x-yaml`` and
``text/yaml`` are YAML; anything else is 415. Responses: the ``Accept`` header decides with
q-values; no header (or only wildcards) gives YAML, ties go to YAML, and nothing acceptable is 406.
XML is not implemented, so it is never produced and an XML body is 415.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Format(StrEnum):
    YAML = "yaml"
    JSON = "json"


YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
JSON_TYPES = ("application/json",)
# The order in which equally acceptable types are chosen: YAML first (digest §2.2, tie -> YAML).
_PREFERENCE: tuple[tuple[str, Format], ...] = (
    *((t, Format.YAML) for t in YAML_TYPES),
    *((t, Format.JSON) for t in JSON_TYPES),
)
_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii"})


class UnsupportedMediaTypeError(ValueError):
    """The request body's declared media type is not YAML or JSON (415)."""

    def __init__(self, content_type: str) -> None:
        super().__init__(content_type)
        self.content_type = content_type


class NotAcceptableError(ValueError):
    """The Accept header allows neither YAML nor JSON (406)."""

    def __init__(self, accept: str) -> None:
        super().__init__(accept)
        self.accept = accept


@dataclass(frozen=True, slots=True)
class Negotiated:
    format: Format
    media_type: str  # what goes in Content-Type, before the charset

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; charset=utf-8"


YAML = Negotiated(Format.YAML, "application/yaml")
JSON = Negotiated(Format.JSON, "application/json")


@dataclass(frozen=True, slots=True)
class _Range:
    type: str
    subtype: str
    q: float

    def specificity(self, media_type: str) -> int:
        """-1 if this range does not match ``media_type``; else 0 (*/*), 1 (type/*) or 2 (exact)."""
        mtype, _, msub = media_type.partition("/")
        if self.type == "*":
            return 0 if self.subtype == "*" else -1
        if self.type != mtype:
            return -1
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == msub else -1


def _split_params(item: str) -> tuple[str, dict[str, str]]:
    head, *params = item.split(";")
    out: dict[str, str] = {}
    for p in params:
        k, sep, v = p.partition("=")
        if sep:
            out[k.strip().lower()] = v.strip().strip('"')
    return head.strip().lower(), out


def _parse_accept(accept: str) -> list[_Range]:
    ranges: list[_Range] = []
    for item in accept.split(","):
        if not item.strip():
            continue
        media, params = _split_params(item)
        mtype, slash, msub = media.partition("/")
        if not slash or not mtype or not msub or (mtype == "*" and msub != "*"):
            continue  # malformed entry: ignored
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            continue
        if not 0.0 <= q <= 1.0:
            continue
        ranges.append(_Range(mtype, msub, q))
    return ranges


def negotiate_response(accept: str | None) -> Negotiated:
    """Choose the response format for an ``Accept`` header value (digest §2.2, checklist 4-9)."""
    if accept is None or not accept.strip():
        return YAML
    ranges = _parse_accept(accept)
    if not ranges:
        return YAML  # nothing we can read was declared: treat as nothing declared
    candidates: list[tuple[float, int, int, str, Format]] = []
    for rank, (media_type, fmt) in enumerate(_PREFERENCE):
        matching = [(s, r.q) for r in ranges if (s := r.specificity(media_type)) >= 0]
        if not matching:
            continue
        top = max(s for s, _ in matching)
        q = max(q for s, q in matching if s == top)  # the most specific range decides (RFC 9110 §12.5.1)
        if q > 0:
            # higher q wins; then a type named explicitly over one reached by a wildcard; then preference
            candidates.append((q, top, -rank, media_type, fmt))
    if not candidates:
        raise NotAcceptableError(accept)
    _, _, _, media_type, fmt = max(candidates)
    return Negotiated(fmt, media_type)


def request_format(content_type: str | None) -> Format:
    """The format of a request body from its ``Content-Type`` (digest §2.2, checklist 1-3, 9)."""
    if content_type is None or not content_type.strip():
        return Format.YAML
    formats: set[Format] = set()
    for item in content_type.split(","):
        if not item.strip():
            continue
        media, params = _split_params(item)
        charset = params.get("charset")
        if charset is not None and charset.lower() not in _CHARSETS:
            raise UnsupportedMediaTypeError(content_type)
        if media in YAML_TYPES:
            formats.add(Format.YAML)
        elif media in JSON_TYPES:
            formats.add(Format.JSON)
        else:
            raise UnsupportedMediaTypeError(content_type)
    if not formats or Format.YAML in formats:
        return Format.YAML  # "if both are declared, assume YAML"
    return Format.JSON
