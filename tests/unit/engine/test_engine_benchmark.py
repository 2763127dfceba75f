"""Keep benchmarks/engine.py from rotting: its --quick run must print well-formed JSON.

Only the shape is checked, never the timings (they depend on the machine and its load).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(300)
def test_the_quick_benchmark_prints_json_with_every_expected_key() -> None:
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "engine.py"), "--quick", "--requests", "8"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=300,
    )
    doc = json.loads(run.stdout)
    assert doc["benchmark"] == "engine"
    assert doc["quick"] is True
    assert {
        "machine",
        "platform",
        "naive_budget_seconds",
        "configs",
        "worst_case",
        "elapsed_seconds",
    } <= doc.keys()
    worst = doc["worst_case"]
    assert (worst["nodes"], worst["reservations"]) == (100, 1000)
    # fragmented: (nearly) every node has a free capacity of its own, and every node is visited
    assert worst["node_shapes"] > 90
    assert worst["mean_visited_nodes"] >= worst["nodes"]
    for figure in ("plan_ms", "find_then_explain_ms", "operator_decision_ms", "event_loop_blocked_ms"):
        assert worst[figure]["n"] >= 5
        assert 0 < worst[figure]["p50"] <= worst[figure]["p99"]
    assert worst["cold_plan_ms"] > 0
    assert [(c["nodes"], c["reservations"]) for c in doc["configs"]] == [
        (10, 0),
        (10, 1000),
        (100, 0),
        (100, 1000),
    ]
    for config in doc["configs"]:
        assert {
            "offers",
            "long_run_ms",
            "snapshot",
            "naive",
            "target_p99_ms",
            "target_met",
        } <= config.keys()
        assert {
            "requests",
            "p50_ms",
            "p99_ms",
            "max_ms",
            "p50_min_of_3_ms",
            "p99_min_of_3_ms",
            "cpu_p99_ms",
            "mean_visited_nodes",
            "peak_alloc_kib_max",
        } <= config["offers"].keys()
        assert {
            "ledger_build_ms",
            "ledger_peak_mib",
            "offer_set_upsert_and_snapshot_p99_ms",
            "unchanged_snapshot_us",
            "node_table_build_ms",
            "cold_plan_with_plain_lists_ms",
        } <= config["snapshot"].keys()
        naive = config["naive"]
        assert {"mode", "p50_ms", "ratio_p50", "ratio_extrapolated", "earliest_start_agrees"} <= naive.keys()
        assert naive["mode"] in {"measured", "extrapolated", "extrapolated+measured"}
        assert naive["ratio_extrapolated"] is ("extrapolated" in naive["mode"])
        assert naive["requests_extrapolated"] + naive["earliest_start_compared"] == naive["requests"]
        if naive["earliest_start_compared"]:
            assert naive["earliest_start_agrees"] is True
        else:
            assert naive["earliest_start_agrees"] is None, "no comparison ran: nothing to agree on"
        assert config["offers"]["requests"] == 8
    compared = [c["naive"]["earliest_start_compared"] for c in doc["configs"]]
    assert compared[0] > 0, "on 10 empty nodes the naive scan finishes, so the comparison runs"
