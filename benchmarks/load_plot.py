"""SVGs of a ``benchmarks/load.py`` report: latency and throughput per window over the run, and
(``--state``) the objects the broker keeps and etcd's database size over the run.

    python benchmarks/load_plot.py benchmarks/results/load.json benchmarks/results/load.svg
    python benchmarks/load_plot.py --state benchmarks/results/retention.json benchmarks/results/retention.svg

Plain SVG written by hand (no plotting library to install): two panels sharing the time axis,
p50 and p99 latency of each kind of request, then requests per second and any 5xx.
"""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path
from typing import Any

W, PANEL_H, LEFT, RIGHT, TOP, GAP = 860, 230, 70, 150, 40, 60
COLOURS = {
    "offer": "#1f77b4",
    "accept": "#d62728",
    "reject": "#2ca02c",
    "cancel": "#9467bd",
    "get": "#8c564b",
}


def _nice(top: float) -> float:
    for step in (1, 2, 5):
        for exp in range(-1, 7):
            v = step * 10**exp
            if v >= top:
                return float(v)
    return top


def _panel(
    y0: float,
    series: list[tuple[str, str, bool, list[tuple[float, float]]]],
    x_max: float,
    title: str,
    unit: str,
) -> list[str]:
    plot_w = W - LEFT - RIGHT
    y_max = _nice(max([v for *_, pts in series for _, v in pts] + [1.0]) * 1.05)
    out = [f'<text x="{LEFT}" y="{y0 - 12}" font-size="14" font-weight="bold">{escape(title)}</text>']
    out.append(f'<rect x="{LEFT}" y="{y0}" width="{plot_w}" height="{PANEL_H}" fill="none" stroke="#999"/>')
    for i in range(5):
        v = y_max * i / 4
        y = y0 + PANEL_H - PANEL_H * i / 4
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{v:g}</text>')
    out.append(
        f'<text x="16" y="{y0 + PANEL_H / 2}" font-size="12" transform="rotate(-90 16 {y0 + PANEL_H / 2})" '
        f'text-anchor="middle">{escape(unit)}</text>'
    )
    for n, (label, colour, dashed, pts) in enumerate(series):
        if not pts:
            continue
        coords = " ".join(
            f"{LEFT + plot_w * x / x_max:.1f},{y0 + PANEL_H - PANEL_H * min(v, y_max) / y_max:.1f}"
            for x, v in pts
        )
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.8"{dash}/>')
        ly = y0 + 14 + 16 * n
        out.append(
            f'<line x1="{W - RIGHT + 10}" y1="{ly - 4}" x2="{W - RIGHT + 34}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="1.8"{dash}/>'
        )
        out.append(f'<text x="{W - RIGHT + 40}" y="{ly}" font-size="11">{escape(label)}</text>')
    return out


def svg(report: dict[str, Any]) -> str:
    wins = report["windows"]
    x_max = max(w["to_s"] for w in wins) if wins else 1.0
    lat: list[tuple[str, str, bool, list[tuple[float, float]]]] = []
    for kind in ("offer", "accept", "reject", "cancel"):
        for q, dashed in (("p50", False), ("p99", True)):
            pts = [
                ((w["from_s"] + w["to_s"]) / 2, w["latency_ms"][kind][q])
                for w in wins
                if kind in w["latency_ms"]
            ]
            lat.append((f"{kind} {q}", COLOURS[kind], dashed, pts))
    mid = [(w["from_s"] + w["to_s"]) / 2 for w in wins]
    thr = [
        ("all requests/s", "#333", False, [(x, w["per_s"]) for x, w in zip(mid, wins, strict=True)]),
        (
            "offers/s",
            COLOURS["offer"],
            False,
            [
                (x, w["latency_ms"].get("offer", {}).get("n", 0) / (w["to_s"] - w["from_s"]))
                for x, w in zip(mid, wins, strict=True)
            ],
        ),
        ("5xx/window", "#ff7f0e", True, [(x, w["status_5xx"]) for x, w in zip(mid, wins, strict=True)]),
    ]
    head = (
        f"{report['clients']} clients, {report['duration_s']:.0f} s, {report['requests']} requests, "
        f"{report['status_5xx']} x 5xx, {report['double_bookings']['found']} double bookings"
    )
    top = (lat, f"Latency per {report['windows'][0]['to_s']:.0f} s window", "ms")
    return _figure(head, x_max, top, (thr, "Throughput", "per second"))


def state_svg(report: dict[str, Any]) -> str:
    """Objects in the run's namespace, and etcd's database (file and in use), over the run."""
    rows = report["state"]
    x_max = max([r["at_s"] for r in rows] + [1.0])
    objects = [
        ("OfferSets", COLOURS["offer"], False, [(r["at_s"], r["offersets"]) for r in rows]),
        ("sessions done", COLOURS["accept"], False, [(r["at_s"], r["executions_done"]) for r in rows]),
        ("sessions live", COLOURS["cancel"], True, [(r["at_s"], r["executions_live"]) for r in rows]),
        ("Pods", COLOURS["reject"], True, [(r["at_s"], r["pods"]) for r in rows]),
    ]
    mib = 1024 * 1024
    etcd = [
        ("db file", "#333", False, [(r["at_s"], r.get("etcd_db_bytes", 0) / mib) for r in rows]),
        ("db in use", "#ff7f0e", True, [(r["at_s"], r.get("etcd_db_in_use_bytes", 0) / mib) for r in rows]),
    ]
    ttl = report.get("platform", {}).get("retention_ttl_s")
    head = (
        f"{report['clients']} clients, {report['duration_s']:.0f} s, {report['per_s']}/s, "
        f"retention TTL {ttl if ttl is not None else 'default'} s"
    )
    top = (objects, "Objects in the run's namespace", "objects")
    return _figure(head, x_max, top, (etcd, "etcd database", "MiB"))


def _figure(head: str, x_max: float, top: tuple[Any, str, str], bottom: tuple[Any, str, str]) -> str:
    """Two panels over one time axis (seconds into the run), under a title line."""
    height = TOP + 2 * PANEL_H + GAP + 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif">',
        f'<rect width="{W}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="18" font-size="13">benchmarks/load.py: {escape(head)}</text>',
        *_panel(TOP + 20, top[0], x_max, top[1], top[2]),
        *_panel(TOP + 20 + PANEL_H + GAP, bottom[0], x_max, bottom[1], bottom[2]),
    ]
    plot_w = W - LEFT - RIGHT
    base = TOP + 20 + 2 * PANEL_H + GAP
    for i in range(6):
        s = x_max * i / 5
        x = LEFT + plot_w * i / 5
        parts.append(f'<text x="{x:.1f}" y="{base + 16}" font-size="11" text-anchor="middle">{s:.0f}</text>')
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{base + 34}" font-size="12" text-anchor="middle">'
        "seconds into the run</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    state = sys.argv[1] == "--state"
    paths = sys.argv[2:] if state else sys.argv[1:]
    report = json.loads(Path(paths[0]).read_text())
    Path(paths[1]).write_text(state_svg(report) if state else svg(report))
