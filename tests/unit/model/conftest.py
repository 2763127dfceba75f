"""Wire-model unit tests: pure Python, no cluster. Document builders live in tests/support/wire.py,
the official schemas as validators in tests/support/ivoa_schema.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # `tests.support` without -m pytest
