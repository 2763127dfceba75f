"""The schema copies under tests/data/spec are the official files, byte for byte (they are vendored
so the tests run anywhere; this checks them against the project's shared copy when it is present)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.support.ivoa_schema import SPEC_DIR

pytestmark = pytest.mark.unit

SHARED = Path(os.environ.get("EB_SHARED_SPEC", Path(__file__).resolve().parents[4] / "shared" / "spec"))
FILES = sorted(p.relative_to(SPEC_DIR) for p in SPEC_DIR.rglob("*") if p.is_file())


def test_the_vendored_copies_are_complete() -> None:
    assert Path("ivoa-std-schema/openapi.yaml") in FILES
    assert Path("calycopis-schema/v1.0/components.yaml") in FILES


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared spec copy at {SHARED}")
@pytest.mark.parametrize("name", FILES, ids=[str(f) for f in FILES])
def test_a_vendored_copy_is_identical_to_the_shared_one(name: Path) -> None:
    assert (SPEC_DIR / name).read_bytes() == (SHARED / name).read_bytes()


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared spec copy at {SHARED}")
def test_no_shared_schema_file_is_missing_from_the_copies() -> None:
    shared = sorted(
        p.relative_to(SHARED)
        for sub in ("ivoa-std-schema", "calycopis-schema")
        for p in (SHARED / sub).rglob("*")
        if p.is_file()
    )
    assert shared == FILES
