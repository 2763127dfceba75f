#!/usr/bin/env python3
"""Regenerate crds/*.yaml from the pydantic models (same as `eb-operator crds --write crds`)."""

from __future__ import annotations

from pathlib import Path

from eb_operator.model.crdgen import write

if __name__ == "__main__":
    for path in write(Path(__file__).resolve().parent.parent / "crds"):
        print(path)
