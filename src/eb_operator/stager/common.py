"""What every transfer shares: the one error type, safe paths, atomic writes, the file walk and
the tally behind the summary line."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

#: Bytes read or written at a time.
CHUNK = 1 << 20
#: Seconds a connection attempt or a silent read may take before the transfer fails.
TIMEOUT = 60.0


class StageError(Exception):
    """A transfer failed; the text is the one line the session's FAILED message quotes."""


@dataclass
class Tally:
    """Files and bytes moved, and when the transfer began (for the summary line)."""

    files: int = 0
    bytes: int = 0
    unverified: int = 0
    began: float = field(default_factory=time.monotonic)

    def add(self, size: int, *, verified: bool = True) -> None:
        self.files += 1
        self.bytes += size
        if not verified:
            self.unverified += 1

    def summary(self, verb: str) -> str:
        seconds = max(time.monotonic() - self.began, 1e-6)
        line = (
            f"{verb} {self.files} files, {self.bytes} bytes in {seconds:.2f} s "
            f"({self.bytes / seconds / 1e6:.1f} MB/s)"
        )
        if self.unverified:
            line += f"; {self.unverified} not verified (the server reports neither size nor checksum)"
        return line


def safe_join(root: str, relative: str) -> str:
    """``root/relative``, refusing anything that would land outside ``root``."""
    path = os.path.normpath(os.path.join(root, relative))
    if path != root and not path.startswith(root.rstrip("/") + "/"):
        raise StageError(f"refusing to write outside {root}: {relative}")
    return path


def part_path(target: str) -> str:
    """Where ``target`` is written until it is complete (then renamed)."""
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    return target + ".part"


def files_under(root: str) -> Iterator[tuple[str, str, int]]:
    """Every regular file below ``root`` as (path, path relative to root with ``/``, size), in
    a stable order; symbolic links are not followed (a workload cannot make the stager read
    outside its volume)."""
    if not os.path.isdir(root):
        raise StageError(f"{root} is not a directory")
    for here, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(here, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            yield path, relative, os.path.getsize(path)
