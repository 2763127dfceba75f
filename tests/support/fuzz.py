"""How many examples the fuzzers draw: the bounded CI figure, or far more under ``pytest --long``.

The option is registered in ``tests/conftest.py``; the fuzz modules read :func:`examples` when
they are imported, which is after pytest has parsed its options.
"""

from __future__ import annotations

_long = False


def set_long(on: bool) -> None:
    global _long
    _long = on


def is_long() -> bool:
    return _long


def examples(normal: int, long: int) -> int:
    """``normal`` in CI, ``long`` under ``pytest --long`` (a run of its own, not in CI)."""
    return long if _long else normal
