"""The one error the model raises for documents it cannot read (the API answers it with 400).

A document that is *understood* but cannot be served is not an error here: that is a
``result: NO`` with messages (see :mod:`eb_operator.model.judge`). ``RequestError`` is only for
structure (digest §6.1): not an object, wrong JSON types, a polymorphic object without its
``type``/``kind`` discriminator, an unparseable ISO 8601 duration or interval, an unknown update type.
"""

from __future__ import annotations

from collections.abc import Iterable

PathPart = str | int
Path = tuple[PathPart, ...]

INPUT_SYNTAX = "urn:ivoa:eb:input-syntax"


def format_path(parts: Iterable[PathPart]) -> str:
    """``("resources", "compute", 0, "cores")`` -> ``"resources/compute/0/cores"``."""
    return "/".join(str(p) for p in parts)


class RequestError(Exception):
    """A structurally invalid client document.

    ``path`` names the bad field in the client's own terms (slash-separated, list indices as
    numbers, ``""`` for the document itself): a C26 client hears ``compute/cores/min`` where an
    ivoa-std client hears ``resources/compute/0/cores/requested/min``.
    """

    type_uri = INPUT_SYNTAX
    template = "Invalid value at {path}: {reason}"

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = path if isinstance(path, str) else format_path(path)
        self.reason = reason
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return self.template.format(path=self.path or "(document)", reason=self.reason)

    @property
    def values(self) -> dict[str, str]:
        """Values for ``template``, as a MessageItem carries them."""
        return {"path": self.path, "reason": self.reason}
