"""demand_from_request: a judged wire request in the engine's units, with the digest's defaults
(§9 items 13-15, §5.2) and the platform's limits, windows and GPU flavours."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from tests.support import ivoa_examples as ex
from tests.support.wire import compute, docker, request, storage

from eb_operator.engine.demand import demand_from_request
from eb_operator.engine.types import Demand, GpuDemand, Window
from eb_operator.model import judge_request, parse_offerset_request
from eb_operator.model.platform import GpuFlavour, PlatformPolicy, RequestLimits
from eb_operator.model.times import parse_instant

pytestmark = pytest.mark.unit

NOW = parse_instant("2026-08-14T08:00:00Z")
H = 3600
AD104 = "https://www.purl.org/ivoa.net/resource-types/nvidia-ad104"
POLICY = PlatformPolicy(
    preparation_seconds=60,
    horizon_seconds=24 * H,
    default_duration_seconds=2 * H,
    default_start_window_seconds=2 * H,
    node_selector={"eb/pool": "science"},
    max_offers=3,
    limits=RequestLimits(max_cores=32, max_memory_gib=128, max_gpus=2),
    gpu_flavours=[
        GpuFlavour(
            name="ad104",
            resource_name="nvidia.com/gpu",
            product="NVIDIA-RTX-4070",
            type_uris=[AD104],
            memory_gib=24,
        ),
        GpuFlavour(name="a100", resource_name="nvidia.com/a100", product="NVIDIA-A100", memory_gib=80),
    ],
)


def at(clock: str) -> int:
    return parse_instant(f"2026-08-14T{clock}:00Z")


def demand(doc: dict[str, Any], policy: PlatformPolicy = POLICY, now: int = NOW) -> Demand:
    req, _ = parse_offerset_request(copy.deepcopy(doc))
    assert [m for m in judge_request(req, policy) if m.level == "ERROR"] == []
    return demand_from_request(req, policy, now)


def test_a_bare_request_gets_every_default() -> None:
    got = demand(request(docker()))
    assert got == Demand(
        cores_min=1,
        cores_max=1,
        memory_min_gib=1,
        memory_max_gib=1,
        duration=2 * H,
        windows=(Window(NOW + 60, NOW + 60 + 2 * H),),
        gpu=None,
        storage_gib=0,
        preparation=60,
        node_selector={"eb/pool": "science"},
        max_offers=3,
    )


@pytest.mark.parametrize(
    ("block", "low", "high"),
    [
        pytest.param(4, 4, 4, id="a missing max is the min"),
        pytest.param((4, 8), 4, 8, id="min and max kept"),
        pytest.param((None, 8), 1, 8, id="a missing min is one"),
        pytest.param((4, 100), 4, 32, id="a max over the limit is capped"),
    ],
)
def test_cores_default_and_cap(block: Any, low: int, high: int) -> None:
    got = demand(request(docker(), compute(cores=block)))
    assert (got.cores_min, got.cores_max) == (low, high)


def test_memory_defaults_and_caps_in_gib() -> None:
    got = demand(request(docker(), compute(memory=(16, 512))))
    assert (got.memory_min_gib, got.memory_max_gib) == (16, 128)


def test_memory_with_units_rounds_the_minimum_up() -> None:
    doc = request(docker(), compute() | {"memory": {"requested": {"min": 1536, "units": "MiB"}}})
    assert demand(doc).memory_min_gib == 2


@pytest.mark.parametrize(
    ("start", "windows"),
    [
        pytest.param(["2026-08-14T09:00:00Z/PT3H"], [("09:00", "12:00")], id="a window ahead is kept"),
        pytest.param(
            ["2026-08-14T07:00:00Z/PT2H"],
            [("08:01", "09:00")],
            id="a window under way starts after preparation",
        ),
        pytest.param(
            ["2026-08-14T06:00:00Z/PT1H", "2026-08-14T09:00:00Z/PT1H"],
            [("09:00", "10:00")],
            id="a window in the past is dropped",
        ),
        pytest.param(
            ["2026-08-15T07:00:00Z/PT2H"], [("+07:00", "+08:00")], id="a window across the horizon is cut"
        ),
        pytest.param(["2026-08-14T10:00:00Z/2026-08-14T11:00:00Z"], [("10:00", "11:00")], id="start/end"),
        pytest.param(["2026-08-14T10:00:00Z"], [("10:00", "10:00")], id="an exact start"),
        pytest.param(
            ["2026-08-14T12:00:00Z/PT1H", "2026-08-14T09:00:00Z/PT1H", "2026-08-14T09:30:00Z/PT1H"],
            [("09:00", "10:30"), ("12:00", "13:00")],
            id="windows are a sorted union",
        ),
        pytest.param(["2026-08-14T09:00:00Z/PT1H"], [("09:00", "10:00")], id="one window"),
    ],
)
def test_start_windows_are_clipped_to_preparation_and_horizon(
    start: list[str], windows: list[tuple[str, str]]
) -> None:
    def t(clock: str) -> int:
        return at(clock[1:]) + 24 * H if clock.startswith("+") else at(clock)

    got = demand(request(docker(), start=start))
    assert got.windows == tuple(Window(t(s), t(e)) for s, e in windows)


def test_the_requested_duration_is_the_minimum_run_time() -> None:
    assert demand(request(docker(), duration="PT4H")).duration == 4 * H


@pytest.mark.parametrize(
    ("doc", "gpu"),
    [
        pytest.param(
            ex.SEED_R1,
            GpuDemand(1, "nvidia.com/gpu", "NVIDIA-RTX-4070"),
            id="any GPU picks the first flavour",
        ),
        pytest.param(
            request(docker(), compute(cores=2, gpus={"name": "a100", "count": 2})),
            GpuDemand(2, "nvidia.com/a100", "NVIDIA-A100"),
            id="gpus by flavour name",
        ),
        pytest.param(
            ex.GPU_EXTRAS, GpuDemand(1, "nvidia.com/gpu", "NVIDIA-RTX-4070"), id="extras by type URI"
        ),
        pytest.param(
            request(docker(), compute(cores=2, gpus={"memory": {"requested": {"min": 40}}})),
            GpuDemand(1, "nvidia.com/a100", "NVIDIA-A100"),
            id="a memory minimum skips the small flavour",
        ),
        pytest.param(
            request(docker(), compute(cores=2, gpus={"requested": {"min": 1, "max": 8}})),
            GpuDemand(1, "nvidia.com/gpu", "NVIDIA-RTX-4070"),
            id="the minimum is the count",
        ),
        pytest.param(
            request(docker(), compute(cores=2, gpus={"requested": {"min": 0, "max": 1}})),
            None,
            id="zero minimum is optional",
        ),
        pytest.param(request(docker(), compute(cores=2)), None, id="no GPUs"),
    ],
)
def test_gpus_become_a_flavour_demand(doc: dict[str, Any], gpu: GpuDemand | None) -> None:
    assert demand(doc).gpu == gpu


def test_storage_minimums_add_up_and_a_sizeless_scratch_counts_one_gib() -> None:
    doc = request(docker(), storage=[storage("a", (10, 20)), storage("b", 5), storage("c")])
    assert demand(doc).storage_gib == 16


def test_known_data_sizes_add_staging_time_to_preparation() -> None:
    doc = {
        **ex.NB_DEMO_C26,
        "data": [
            {
                "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/ivoa-data-resource.yaml",
                "ivoa": {"datalink": {"access_url": "https://example.org/big.fits", "content_length": 2**30}},
            }
        ],
    }
    assert demand(doc).preparation == 60 + math.ceil(2**30 / POLICY.data_bandwidth_bytes_per_second)


def test_a_later_now_moves_the_default_window() -> None:
    got = demand(request(docker()), now=NOW + H)
    assert got.windows == (Window(NOW + H + 60, NOW + H + 60 + 2 * H),)


@pytest.mark.parametrize(
    "start",
    [
        pytest.param("2026-08-14T06:00:00Z/PT1H", id="in the past"),
        pytest.param("2026-08-16T09:00:00Z/PT1H", id="beyond the horizon"),
    ],
)
def test_when_no_window_is_usable_the_requested_ones_pass_through_so_the_engine_can_say_why(
    start: str,
) -> None:
    got = demand(request(docker(), start=[start]))
    requested = parse_offerset_request(request(docker(), start=[start]))[0].requested_schedule
    assert requested is not None
    assert requested.start is not None
    window = requested.start[0]
    assert window.start is not None
    assert got.windows == (Window(window.start, window.start + window.seconds),)
