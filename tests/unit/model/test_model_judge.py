"""judge_request: the reasons for NO (digest §6.2, §9), each naming the field as the client wrote it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.support import ivoa_examples as ex
from tests.support.ivoa_schema import errors, ivoa_std_validator
from tests.support.wire import (
    C26_IVOA_DATA,
    C26_VOLUME,
    compute,
    docker,
    notebook,
    request,
    rucio_data,
    s3_data,
    simple_data,
    singularity,
    storage,
    volume,
)

from eb_operator.model import (
    MessageLevel,
    MessageType,
    has_errors,
    judge_request,
    parse_offerset_request,
    render,
    with_client_paths,
)
from eb_operator.model.platform import DataEndpoint, GpuFlavour, Images, PlatformPolicy, RequestLimits

pytestmark = pytest.mark.unit

AD104 = "https://www.purl.org/ivoa.net/resource-types/nvidia-ad104"
ERROR, WARN = MessageLevel.ERROR, MessageLevel.WARN
T = MessageType


def platform(**changes: Any) -> PlatformPolicy:
    """A platform with one GPU flavour, one reachable S3 endpoint and small limits."""
    base: dict[str, Any] = {
        "limits": RequestLimits(max_cores=64, max_memory_gib=256, max_gpus=2, max_storage_gib=2048),
        "gpu_flavours": [
            GpuFlavour(name="ad104", product="NVIDIA-RTX-4070", type_uris=[AD104], memory_gib=24),
            GpuFlavour(name="a100", product="NVIDIA-A100", memory_gib=80),
        ],
        "data_endpoints": [DataEndpoint(endpoint="https://s3.example.org/echo/")],
    }
    return PlatformPolicy(**{**base, **changes})


def gpus(**fields: Any) -> dict[str, Any]:
    return compute(cores=4, gpus=fields)


def extra(**fields: Any) -> dict[str, Any]:
    return compute(cores=4, extras=[fields])


def mounted(*volumes: dict[str, Any], **lists: Any) -> dict[str, Any]:
    return request(docker(), compute(cores=1, volumes=list(volumes)), **lists)


ACCEPTABLE = [
    pytest.param(ex.NB_DEMO, id="the digest 2.9 notebook"),
    pytest.param(ex.X2, id="X2 a notebook without resources"),
    pytest.param(ex.X3, id="X3 scratch space mounted by name"),
    pytest.param(ex.X4, id="X4 an S3 bucket on a reachable endpoint"),
    pytest.param(ex.SEED_R1, id="the seed request with a GPU"),
    pytest.param(ex.GPU_EXTRAS, id="a GPU as an extras item by type URI"),
    pytest.param(request(docker(), extra(name="a100", count=2)), id="an extras item by flavour name"),
    pytest.param(
        request(docker(), gpus(type=AD104, memory={"requested": {"min": 16}})), id="gpus with type and memory"
    ),
    pytest.param(request(docker(), compute(cores=1, gpus=0)), id="zero GPUs asks for none"),
    pytest.param(request(docker(), compute(cores=1, replicas=1)), id="a single replica"),
    pytest.param(
        request(docker(), compute(cores=1, description="my job", labels={"a": "b"})),
        id="informational fields",
    ),
    pytest.param(
        mounted(volume("d", "/d"), data=[simple_data("x", uuid="u-1"), simple_data("d")]),
        id="a volume naming a data resource",
    ),
    pytest.param(mounted(volume("u-1", "/d"), storage=[storage("s", uuid="u-1")]), id="a volume by uuid"),
    pytest.param(request(singularity()), id="singularity where apptainer is configured"),
    pytest.param(request(docker(), data=[rucio_data("r")]), id="Rucio where a stager is configured"),
    pytest.param(ex.MOUNTS_C26, id="C26 storage rucio data and mounts"),
    pytest.param(
        {
            "executable": {
                "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/docker-container.yaml",
                "image": {"locations": ["x"]},
            },
            "data": [
                {"kind": C26_IVOA_DATA, "ivoa": {"obscore": {"access_url": "https://example.org/obs.fits"}}}
            ],
        },
        id="IVOA data with an access URL",
    ),
    pytest.param(
        request(
            docker(),
            costs=[
                {
                    "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/costs/simple-minmax-float-cost.yaml",
                    "max": 10.0,
                }
            ],
        ),
        id="a cost maximum the free service meets",
    ),
]


@pytest.mark.parametrize("doc", ACCEPTABLE)
def test_acceptable_requests_get_no_reasons(doc: dict[str, Any]) -> None:
    policy = platform(images=Images(apptainer="apptainer:1.3", rucio_stager="rucio-stager:1"))
    request_, _ = parse_offerset_request(copy.deepcopy(doc))
    assert judge_request(request_, policy) == []


CASES = [
    # --- the executable
    pytest.param(
        request(name="x") | {"executable": None}, T.EXECUTABLE_REQUIRED, "executable", id="no executable"
    ),
    pytest.param(
        request({"type": "uri:zeppelin-notebook"}),
        T.UNKNOWN_TYPE,
        "executable/type",
        id="an unknown executable type",
    ),
    pytest.param(
        request({"type": "uri:docker-container-1.0"}),
        T.OBSOLETE_TYPE,
        "executable/type",
        id="a prose-only executable type",
    ),
    pytest.param(
        request({"type": "https://www.purl.org/ivoa.net/executable-types/zeppelin-notebook"}),
        T.OBSOLETE_TYPE,
        "executable/type",
        id="the prose's Zeppelin notebook",
    ),
    pytest.param(
        request(
            {
                "type": "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-resource-1.0"
            }
        ),
        T.UNKNOWN_TYPE,
        "executable/type",
        id="a compute type where an executable belongs",
    ),
    pytest.param(
        request(docker(privileged=True)),
        T.NOT_SUPPORTED,
        "executable/privileged",
        id="a privileged container",
    ),
    pytest.param(
        request(docker(image=None)),
        T.MISSING_VALUE,
        "executable/image/locations",
        id="a container without an image",
    ),
    pytest.param(
        request(docker() | {"image": {"locations": ["x"], "platform": {"os": "windows"}}}),
        T.NOT_SUPPORTED,
        "executable/image/platform/os",
        id="a windows image",
    ),
    pytest.param(
        request(docker(network={"ports": [{"internal": {"port": 70000}}]})),
        T.BAD_VALUE,
        "executable/network/ports/0/internal/port",
        id="a port out of range",
    ),
    pytest.param(
        request(docker(network={"ports": [{"internal": {"port": 80}, "protocol": "SCTP"}]})),
        T.NOT_SUPPORTED,
        "executable/network/ports/0/protocol",
        id="an unknown port protocol",
    ),
    pytest.param(
        request(docker(repo="docker.io")),
        T.UNKNOWN_REQUIREMENT,
        "executable/repo",
        id="the prose's repo field",
    ),
    pytest.param(
        request(singularity()), T.NOT_SUPPORTED, "executable/type", id="singularity without apptainer"
    ),
    pytest.param(
        request(notebook("ftp://example.org/nb.ipynb")),
        T.UNREACHABLE,
        "executable/location",
        id="a notebook over ftp",
    ),
    # --- compute
    pytest.param(
        request(docker(), compute(cores=1), compute(cores=1, name="c2")),
        T.NOT_SUPPORTED,
        "resources/compute/1",
        id="two compute resources",
    ),
    pytest.param(
        request(docker(), {"type": "uri:generic-compute"}),
        T.OBSOLETE_TYPE,
        "resources/compute/0/type",
        id="the prose's generic compute",
    ),
    pytest.param(
        request(docker(), {"type": "urn:my-cluster"}),
        T.UNKNOWN_TYPE,
        "resources/compute/0/type",
        id="an unknown compute type",
    ),
    pytest.param(
        request(docker(), compute(cores=1, replicas=3)),
        T.NOT_SUPPORTED,
        "resources/compute/0/replicas",
        id="three replicas",
    ),
    pytest.param(
        request(docker(), compute(cores=1, cpuModel="EPYC")),
        T.UNKNOWN_REQUIREMENT,
        "resources/compute/0/cpuModel",
        id="an unknown requirement in compute",
    ),
    pytest.param(
        request(docker(), compute(cores=1) | {"cores": {"requested": {"min": 1, "avg": 2}}}),
        T.UNKNOWN_REQUIREMENT,
        "resources/compute/0/cores/requested/avg",
        id="an unknown field deep inside cores",
    ),
    pytest.param(
        request(docker(), compute(cores=0)),
        T.BAD_VALUE,
        "resources/compute/0/cores/requested/min",
        id="zero cores",
    ),
    pytest.param(
        request(docker(), compute(cores=(8, 4))),
        T.BAD_VALUE,
        "resources/compute/0/cores/requested/max",
        id="max below min",
    ),
    pytest.param(
        request(docker(), compute(cores=65)),
        T.RESOURCE_LIMIT,
        "resources/compute/0/cores/requested/min",
        id="more cores than the limit",
    ),
    pytest.param(
        request(docker(), compute(memory=300)),
        T.RESOURCE_LIMIT,
        "resources/compute/0/memory/requested/min",
        id="more memory than the limit",
    ),
    pytest.param(
        request(docker(), compute(memory=(None, 0))),
        T.BAD_VALUE,
        "resources/compute/0/memory/requested/max",
        id="a zero memory maximum",
    ),
    # --- GPUs
    pytest.param(
        request(docker(), gpus(requested={"min": 3})),
        T.RESOURCE_LIMIT,
        "resources/compute/0/gpus/requested/min",
        id="more GPUs than the limit",
    ),
    pytest.param(
        request(docker(), gpus(type="urn:tpu")),
        T.UNKNOWN_EXTRA,
        "resources/compute/0/gpus/type",
        id="a GPU type the platform lacks",
    ),
    pytest.param(
        request(docker(), gpus(name="h100")),
        T.UNKNOWN_EXTRA,
        "resources/compute/0/gpus/name",
        id="a GPU flavour the platform lacks",
    ),
    pytest.param(
        request(docker(), gpus(memory={"requested": {"min": 100}})),
        T.RESOURCE_LIMIT,
        "resources/compute/0/gpus/memory/requested/min",
        id="more GPU memory than any flavour",
    ),
    pytest.param(
        request(docker(), gpus(requested={"min": 2, "max": 1})),
        T.BAD_VALUE,
        "resources/compute/0/gpus/requested/min",
        id="a GPU range upside down",
    ),
    pytest.param(
        request(docker(), extra(type="https://www.purl.org/ivoa.net/resource-types/xilinx-vu19p")),
        T.UNKNOWN_EXTRA,
        "resources/compute/0/extras/0/type",
        id="an FPGA extra the platform lacks",
    ),
    pytest.param(
        request(docker(), extra(type=AD104, spec={"shaders": {"min": 6144}})),
        T.UNKNOWN_REQUIREMENT,
        "resources/compute/0/extras/0/spec/shaders",
        id="an extra's spec the broker cannot check",
    ),
    pytest.param(
        request(docker(), extra(type=AD104, spec={"memory": {"min": 40}})),
        T.RESOURCE_LIMIT,
        "resources/compute/0/extras/0/spec/memory/min",
        id="an extra with more memory than its flavour",
    ),
    pytest.param(
        request(docker(), compute(cores=1, gpus=1, extras=[{"name": "a100"}])),
        T.NOT_SUPPORTED,
        "resources/compute/0/extras/0",
        id="two accelerator requirements",
    ),
    pytest.param(
        request(docker(), extra(name="a100", priority="high")),
        T.UNKNOWN_REQUIREMENT,
        "resources/compute/0/extras/0/priority",
        id="an unknown field in an extra",
    ),
    # --- volumes
    pytest.param(
        mounted(volume("nowhere", "/data")),
        T.UNRESOLVED_REFERENCE,
        "resources/compute/0/volumes/0/resource",
        id="a volume naming nothing",
    ),
    pytest.param(
        mounted(volume("both", "/data"), storage=[storage("both")], data=[simple_data("both")]),
        T.AMBIGUOUS_REFERENCE,
        "resources/compute/0/volumes/0/resource",
        id="a volume naming storage and data",
    ),
    pytest.param(
        mounted(volume("s", "data"), storage=[storage("s")]),
        T.BAD_VALUE,
        "resources/compute/0/volumes/0/path",
        id="a relative mount point",
    ),
    pytest.param(
        mounted(volume("s", "/d"), volume("s", "/d"), storage=[storage("s")]),
        T.BAD_VALUE,
        "resources/compute/0/volumes/1/path",
        id="two volumes on one mount point",
    ),
    pytest.param(
        mounted({"path": "/d"}),
        T.MISSING_VALUE,
        "resources/compute/0/volumes/0/resource",
        id="a volume without a resource",
    ),
    pytest.param(
        mounted({"resource": "s"}, storage=[storage("s")]),
        T.MISSING_VALUE,
        "resources/compute/0/volumes/0/path",
        id="a volume without a path",
    ),
    pytest.param(
        mounted({"type": "urn:nfs-mount", "resource": "s", "path": "/s"}, storage=[storage("s")]),
        T.UNKNOWN_TYPE,
        "resources/compute/0/volumes/0/type",
        id="an unknown volume kind",
    ),
    # --- storage
    pytest.param(
        request(docker(), storage=[{"type": "uri:persistent-storage", "name": "results"}]),
        T.OBSOLETE_TYPE,
        "resources/storage/0/type",
        id="X5 persistent storage",
    ),
    pytest.param(
        request(
            docker(),
            storage=[{"type": "https://www.purl.org/ivoa.net/storage-types/vospace-storage", "name": "v"}],
        ),
        T.OBSOLETE_TYPE,
        "resources/storage/0/type",
        id="X6 VOSpace storage",
    ),
    pytest.param(
        request(docker(), storage=[storage("s", 10, lifetime={"requested": {"min": "P1D"}})]),
        T.NOT_SUPPORTED,
        "resources/storage/0/lifetime",
        id="persistent storage (a lifetime) on a platform without a storage class",
    ),
    pytest.param(
        request(docker(), storage=[storage("s", 4096)]),
        T.RESOURCE_LIMIT,
        "resources/storage/0/size/requested/min",
        id="more storage than the limit",
    ),
    pytest.param(
        request(docker(), storage=[storage("a", 1500), storage("b", 1500)]),
        T.RESOURCE_LIMIT,
        "resources/storage",
        id="more storage in all than the limit",
    ),
    # --- data
    pytest.param(
        request(docker(), data=[s3_data("d", endpoint="https://s3.elsewhere.org")]),
        T.UNREACHABLE,
        "resources/data/0/endpoint",
        id="an S3 endpoint out of reach",
    ),
    pytest.param(
        request(docker(), data=[s3_data("d") | {"bucket": None}]),
        T.MISSING_VALUE,
        "resources/data/0/bucket",
        id="an S3 resource without a bucket",
    ),
    pytest.param(
        request(docker(), data=[simple_data("d", "vos://example.org~vault/x")]),
        T.UNREACHABLE,
        "resources/data/0/location",
        id="a VOSpace location",
    ),
    pytest.param(
        request(docker(), data=[rucio_data("r")]),
        T.NOT_SUPPORTED,
        "resources/data/0/type",
        id="Rucio without a stager",
    ),
    pytest.param(
        request(docker(), data=[simple_data("d", storage="nowhere")]),
        T.UNRESOLVED_REFERENCE,
        "resources/data/0/storage",
        id="data into storage that is not there",
    ),
    pytest.param(
        request(docker(), data=[{"type": "uri:simple-data-resource", "name": "d"}]),
        T.OBSOLETE_TYPE,
        "resources/data/0/type",
        id="the prose's data type",
    ),
    pytest.param(
        {"executable": docker(), "data": [{"kind": C26_IVOA_DATA, "ivoa": {"ivoid": "ivo://x/y"}}]},
        T.NOT_SUPPORTED,
        "data/0/ivoa",
        id="IVOA data without an access URL",
    ),
    pytest.param(
        {
            "executable": docker(),
            "data": [
                {
                    "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/skao-data-resource.yaml"
                }
            ],
        },
        T.NOT_SUPPORTED,
        "data/0/kind",
        id="SKAO data",
    ),
    # --- schedule and the rest
    pytest.param(
        request(docker(), duration="P2D"),
        T.RESOURCE_LIMIT,
        "schedule/requested/duration",
        id="longer than the duration limit",
    ),
    pytest.param(
        request(docker(), duration="PT0S"), T.BAD_VALUE, "schedule/requested/duration", id="a zero duration"
    ),
    pytest.param(
        request(docker(), start=["PT2H/2026-08-14T12:00:00Z"]),
        T.UNSUPPORTED_INTERVAL,
        "schedule/requested/start/0",
        id="a duration/end window",
    ),
    pytest.param(
        request(docker(), start=["2026-08-14T09:00:00Z/PT1H", "R3/2026-08-14T09:00:00Z/PT1H"]),
        T.UNSUPPORTED_INTERVAL,
        "schedule/requested/start/1",
        id="a repeating window",
    ),
    pytest.param(
        request(docker(), priority="high"),
        T.UNKNOWN_REQUIREMENT,
        "priority",
        id="an unknown top-level requirement",
    ),
    pytest.param(
        request(
            docker(),
            metrics=[
                {
                    "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/metrics/simple-minmax-float-metric.yaml",
                    "min": 5.0,
                }
            ],
        ),
        T.NOT_SUPPORTED,
        "metrics/0/min",
        id="a metric minimum",
    ),
    pytest.param(
        request(docker(), costs=[{"kind": "urn:bitcoin"}]),
        T.UNKNOWN_TYPE,
        "costs/0/kind",
        id="an unknown cost kind",
    ),
    # --- C26 clients hear C26 paths
    pytest.param(
        {**ex.NB_DEMO_C26, "compute": {**ex.NB_DEMO_C26["compute"], "cores": {"min": 99}}},
        T.RESOURCE_LIMIT,
        "compute/cores/min",
        id="C26 cores over the limit",
    ),
    pytest.param(
        {
            **ex.NB_DEMO_C26,
            "compute": {
                **ex.NB_DEMO_C26["compute"],
                "volumes": [{"kind": C26_VOLUME, "path": "/x", "resource": "none"}],
            },
        },
        T.UNRESOLVED_REFERENCE,
        "compute/volumes/0/resource",
        id="a C26 volume naming nothing",
    ),
    pytest.param(
        {**ex.NB_DEMO_C26, "schedule": {"requested": {"start": "PT2H/2026-08-14T12:00:00Z"}}},
        T.UNSUPPORTED_INTERVAL,
        "schedule/requested/start",
        id="a C26 duration/end window",
    ),
    pytest.param(
        {**ex.NB_DEMO_C26, "compute": {**ex.NB_DEMO_C26["compute"], "gpus": 5}},
        T.RESOURCE_LIMIT,
        "compute/gpus",
        id="C26 shorthand gpus over the limit",
    ),
]


@pytest.mark.parametrize(("doc", "type_", "path"), CASES)
def test_each_reason_for_no_names_its_field(doc: dict[str, Any], type_: MessageType, path: str) -> None:
    request_, _ = parse_offerset_request(copy.deepcopy(doc))
    messages = judge_request(request_, platform())
    assert [(m.type, m.path) for m in messages if m.level is ERROR] == [(type_.value, path)]
    message = next(m for m in messages if m.level is ERROR)
    assert message.message is not None
    assert message.message.startswith(path + ":")
    assert message.template is not None
    assert "{" not in message.message
    assert has_errors(messages)


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        pytest.param(
            request(docker(), compute(cores=(4, 128))), "resources/compute/0/cores/requested/max", id="cores"
        ),
        pytest.param(
            request(docker(), compute(memory=(1, 1024))),
            "resources/compute/0/memory/requested/max",
            id="memory",
        ),
        pytest.param(
            request(docker(), gpus(requested={"min": 1, "max": 4})),
            "resources/compute/0/gpus/requested/min",
            id="GPUs",
        ),
        pytest.param(
            request(docker(), storage=[storage("s", (1, 4096))]),
            "resources/storage/0/size/requested/max",
            id="storage",
        ),
    ],
)
def test_a_maximum_over_a_limit_is_capped_with_a_warning_not_refused(doc: dict[str, Any], path: str) -> None:
    request_, _ = parse_offerset_request(copy.deepcopy(doc))
    messages = judge_request(request_, platform())
    assert [(m.level, m.type, m.path) for m in messages] == [(WARN, T.RESOURCE_CAPPED.value, path)]
    assert not has_errors(messages)


def test_a_platform_without_gpus_refuses_gpu_requests() -> None:
    request_, _ = parse_offerset_request(copy.deepcopy(ex.SEED_R1))
    messages = judge_request(request_, platform(gpu_flavours=[]))
    assert [(m.type, m.path) for m in messages] == [(T.NOT_SUPPORTED.value, "resources/compute/0/gpus")]


def test_every_problem_is_reported_not_just_the_first() -> None:
    doc = request(docker(privileged=True), compute(cores=100, cpuModel="x"), duration="P30D", priority="high")
    request_, _ = parse_offerset_request(doc)
    paths = {m.path for m in judge_request(request_, platform())}
    assert paths == {
        "executable/privileged",
        "resources/compute/0/cores/requested/min",
        "resources/compute/0/cpuModel",
        "schedule/requested/duration",
        "priority",
    }


def test_messages_validate_as_ivoa_message_items() -> None:

    from eb_operator.model import render

    doc = request(docker(privileged=True), compute(cores=100))
    request_, _ = parse_offerset_request(doc)
    messages = judge_request(request_, platform())
    assert len(messages) >= 2, "one for the privileged container, one for the cores"
    for message in messages:
        assert errors(ivoa_std_validator("MessageItem", "components/messages.yaml"), render(message)) == []


def test_a_request_stored_canonically_is_judged_in_the_client_s_terms() -> None:
    doc = {**ex.NB_DEMO_C26, "compute": {**ex.NB_DEMO_C26["compute"], "cores": {"min": 99}}}
    direct, dialect = parse_offerset_request(copy.deepcopy(doc))
    stored, _ = parse_offerset_request(render(direct))  # what the CR holds: canonical ivoa-std
    assert [m.path for m in judge_request(stored, platform())] == ["resources/compute/0/cores/requested/min"]
    again = with_client_paths(stored, dialect)
    assert [m.path for m in judge_request(again, platform())] == ["compute/cores/min"]
    assert again == stored
