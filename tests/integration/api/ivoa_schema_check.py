"""Validate what the service answers against the official schemas (through the shared
``tests.support.ivoa_schema`` helper, which repairs the published ivoa-std refs in memory and
applies the discriminator mappings): ivoa-std for the default dialect, Calycopis 2026 for C26."""

from __future__ import annotations

from typing import Any

from tests.support.ivoa_schema import c26_validator, errors, ivoa_std_validator

C26_NAMES = {"OfferSetResponse": "OfferSetResponse", "ExecutionSessionResponse": "AbstractExecutionSession"}


def validate(doc: Any, name: str) -> None:
    """Fail unless ``doc`` is a valid ivoa-std ``name`` (an OpenAPI ``components.schemas`` name)."""
    problems = errors(ivoa_std_validator(name), doc)
    assert not problems, f"not a valid ivoa-std {name}:\n" + "\n".join(problems)


def validate_c26(doc: Any, name: str) -> None:
    """Fail unless ``doc`` is a valid Calycopis 2026 document of the kind ivoa-std calls ``name``."""
    problems = errors(c26_validator(C26_NAMES.get(name, name)), doc)
    assert not problems, f"not a valid C26 {name}:\n" + "\n".join(problems)
