"""Engine unit tests: pure Python, no cluster. Builders live in tests/support/builders.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # `tests.support` without -m pytest
