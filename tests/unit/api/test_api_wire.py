"""``read_request``: the unknown requirement-like fields it finds in the client's own document (the
stored CR loses them to its structural schema), in the paths the client wrote."""

from __future__ import annotations

from typing import Any

from eb_operator.api.wire import Dialect, read_request

DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0"
COMPUTE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-resource-1.0"
C26 = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/"


def ivoa() -> dict[str, Any]:
    return {
        "executable": {"type": DOCKER, "image": {"locations": ["eb-workload:latest"]}},
        "resources": {"compute": [{"type": COMPUTE, "cores": {"requested": {"min": 2}}}]},
    }


def test_a_plain_request_has_no_unknown_fields() -> None:
    read = read_request(ivoa(), None)
    assert read.unknown == ()
    assert read.dialect is Dialect.IVOA_STD
    assert read.request["resources"]["compute"][0]["cores"]["requested"]["min"] == 2


def test_unknown_requirements_are_named_where_the_client_wrote_them() -> None:
    doc = ivoa()
    doc["resources"]["compute"][0]["cpuArchitecture"] = {"min": "zen5"}
    doc["resources"]["compute"][0]["cores"]["requested"]["turbo"] = True
    doc["priority"] = "high"
    read = read_request(doc, None)
    assert set(read.unknown) == {
        "resources/compute/0/cpuArchitecture",
        "resources/compute/0/cores/requested/turbo",
        "priority",
    }


def test_informational_fields_are_not_requirements() -> None:
    doc = ivoa()
    doc["description"] = "a test"
    doc["resources"]["compute"][0]["comment"] = "any node"
    assert read_request(doc, None).unknown == ()


def test_c26_paths_are_the_c26_ones() -> None:
    doc = {
        "executable": {"kind": C26 + "executable/docker-container.yaml", "image": {"locations": ["x"]}},
        "compute": {"kind": C26 + "compute/simple-compute-resource.yaml", "interconnect": "infiniband"},
    }
    read = read_request(doc, Dialect.C26)
    assert read.dialect is Dialect.C26
    assert read.unknown == ("compute/interconnect",)
