"""What the cluster benchmarks report with: latency percentiles, a process's memory and CPU time, and the JSON
document each prints (and writes to ``--out``).

One place, so that figures in the committed results (benchmarks/results/) taken by different
benchmarks are computed the same way and stay comparable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], p: float, digits: int = 2) -> float:
    """The value ``p`` per cent of the way into the sorted ``values``: an index, not interpolated,
    as every committed figure was taken."""
    s = sorted(values)
    return round(s[min(len(s) - 1, int(p / 100 * len(s)))], digits)


def memory_mib(pid: int | str) -> dict[str, float]:
    """The process's resident (``VmRSS``) and peak resident (``VmHWM``) memory in MiB, by those
    names; a name is missing where /proc does not show it (a kernel thread, a zombie)."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def cpu_seconds(pid: int | str) -> float:
    """The CPU time (user + system) the process has used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def emit(report: Mapping[str, Any], out: Path | None) -> None:
    """The report on stdout and, with ``--out``, in that file too."""
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")
