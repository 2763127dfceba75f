"""The type-URI registry: every URI of digest §3.11 is recognised, all three families map onto one
internal kind, and the prose-only identifiers are known as such (so the judge can say why NO)."""

from __future__ import annotations

import pytest

from eb_operator.model.types import (
    Dialect,
    Group,
    Kind,
    all_schema_uris,
    canonical_uri,
    family_of,
    kind_of,
    lookup,
    prose_type,
    translate,
    uri_for,
)

pytestmark = pytest.mark.unit

STD = "https://www.purl.org/ivoa.net/EB/schema/types/"
C26 = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/"
C105 = "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/"

# Digest §3.11, as printed.
IVOA_STD_URIS = {
    STD + "executables/docker-container-1.0": Kind.DOCKER_CONTAINER,
    STD + "executables/singularity-container-1.0": Kind.SINGULARITY_CONTAINER,
    STD + "executables/jupyter-notebook-1.0": Kind.JUPYTER_NOTEBOOK,
    STD + "resources/compute/simple-compute-resource-1.0": Kind.SIMPLE_COMPUTE,
    STD + "resources/storage/simple-storage-resource-1.0": Kind.SIMPLE_STORAGE,
    STD + "resources/data/simple-data-resource-1.0": Kind.SIMPLE_DATA,
    STD + "resources/data/S3-data-resource-1.0": Kind.S3_DATA,
    STD + "resources/data/Rucio-data-resource-1.0": Kind.RUCIO_DATA,
    "uri:string-value-option": Kind.STRING_VALUE_OPTION,
    "uri:enum-value-option": Kind.ENUM_VALUE_OPTION,
    "uri:integer-value-option": Kind.INTEGER_VALUE_OPTION,
    "uri:integer-delta-option": Kind.INTEGER_DELTA_OPTION,
    "uri:string-value-update": Kind.STRING_VALUE_UPDATE,
    "uri:enum-value-update": Kind.ENUM_VALUE_UPDATE,
    "uri:integer-value-update": Kind.INTEGER_VALUE_UPDATE,
    "uri:integer-delta-update": Kind.INTEGER_DELTA_UPDATE,
}
C26_URIS = {
    C26 + "executable/docker-container.yaml": Kind.DOCKER_CONTAINER,
    C26 + "executable/singularity-container.yaml": Kind.SINGULARITY_CONTAINER,
    C26 + "executable/jupyter-notebook.yaml": Kind.JUPYTER_NOTEBOOK,
    C26 + "compute/simple-compute-resource.yaml": Kind.SIMPLE_COMPUTE,
    C26 + "volume/simple-volume-mount.yaml": Kind.SIMPLE_VOLUME,
    C26 + "storage/simple-storage-resource.yaml": Kind.SIMPLE_STORAGE,
    C26 + "data/simple-data-resource.yaml": Kind.SIMPLE_DATA,
    C26 + "data/S3-data-resource.yaml": Kind.S3_DATA,
    C26 + "data/rucio-data-resource.yaml": Kind.RUCIO_DATA,
    C26 + "data/ivoa-data-resource.yaml": Kind.IVOA_DATA,
    C26 + "data/skao-data-resource.yaml": Kind.SKAO_DATA,
    C26 + "session/simple-execution-session.yaml": Kind.SIMPLE_SESSION,
    C26 + "session/scheduled-execution-session.yaml": Kind.SCHEDULED_SESSION,
    C26 + "costs/abstract-cost-item.yaml": Kind.ABSTRACT_COST,
    C26 + "costs/simple-minmax-float-cost.yaml": Kind.SIMPLE_COST,
    C26 + "metrics/abstract-metric-item.yaml": Kind.ABSTRACT_METRIC,
    C26 + "metrics/simple-minmax-float-metric.yaml": Kind.SIMPLE_METRIC,
}
C105_URIS = {
    C105 + "executable/docker-container-1.0": Kind.DOCKER_CONTAINER,
    C105 + "executable/singularity-container-1.0": Kind.SINGULARITY_CONTAINER,
    C105 + "executable/jupyter-notebook-1.0": Kind.JUPYTER_NOTEBOOK,
    C105 + "compute/simple-compute-resource-1.0": Kind.SIMPLE_COMPUTE,
    C105 + "volume/simple-volume-mount-1.0": Kind.SIMPLE_VOLUME,
    C105 + "storage/simple-storage-resource-1.0": Kind.SIMPLE_STORAGE,
    C105 + "data/simple-data-resource-1.0": Kind.SIMPLE_DATA,
    C105 + "data/S3-data-resource-1.0": Kind.S3_DATA,
    C105 + "data/rucio-data-resource-1.0": Kind.RUCIO_DATA,
    C105 + "data/ivoa-data-resource-1.0": Kind.IVOA_DATA,
    C105 + "data/skao-data-resource-1.0": Kind.SKAO_DATA,
    C105 + "session/simple-execution-session-1.0": Kind.SIMPLE_SESSION,
    C105 + "session/scheduled-execution-session-1.0": Kind.SCHEDULED_SESSION,
    C105 + "offerset/execution-offerset-1.0": Kind.OFFERSET,
    C105 + "computer/simple-compute-resource-1.0": Kind.SIMPLE_COMPUTE,  # the ref impl's typo
}
_P = "https://www.purl.org/ivoa.net/"
PROSE_ONLY = [
    "uri:docker-container-1.0",
    "uri:singular-container-1.0",
    "uri:jupyter-notebook-1.0",
    "uri:java-program-1.0",
    "uri:python-program-1.0",
    "uri:generic-compute",
    "uri:ephemeral-storage",
    "uri:persistent-storage",
    "uri:amazon-s3-storage",
    "uri:rucio-storage",
    "uri:simple-data-resource",
    "uri:filesystem-mount",
    *(
        _P + "executable-types/" + n
        for n in (
            "jupyter-notebook",
            "zeppelin-notebook",
            "docker-container",
            "oci-container",
            "singularity-container",
        )
    ),
    *(_P + "resource-types/" + n for n in ("generic-compute", "nvidia-ad104", "xilinx-vu19p")),
    *(
        _P + "storage-types/" + n
        for n in ("ephemeral-storage", "amazon-s3", "persistent-storage", "rucio-storage", "vospace-storage")
    ),
    *(_P + "authentication-types/" + n for n in ("basic-auth", "oidc-auth", "rfc7519-token")),
    _P + "webservice-types/value-update",
]


@pytest.mark.parametrize(
    ("uri", "kind", "family"),
    [
        *(pytest.param(u, k, Dialect.IVOA_STD, id=f"ivoa-std {k}") for u, k in IVOA_STD_URIS.items()),
        *(pytest.param(u, k, Dialect.C26, id=f"C26 {k}") for u, k in C26_URIS.items()),
        *(pytest.param(u, k, Dialect.C105, id=f"C105 {u.removeprefix(C105)}") for u, k in C105_URIS.items()),
    ],
)
def test_every_schema_uri_of_section_3_11_maps_to_its_internal_kind(
    uri: str, kind: Kind, family: Dialect
) -> None:
    assert kind_of(uri) is kind
    assert family_of(uri) is family
    found = lookup(uri)
    assert found is not None
    assert found[0].kind is kind


@pytest.mark.parametrize("uri", PROSE_ONLY, ids=PROSE_ONLY)
def test_prose_only_identifiers_are_known_but_are_not_schema_types(uri: str) -> None:
    assert kind_of(uri) is None
    found = prose_type(uri)
    assert found is not None
    assert found.uri == uri


@pytest.mark.parametrize("kind", list(Kind), ids=[k.value for k in Kind])
def test_the_canonical_uri_is_ivoa_std_where_it_exists_and_translates_per_dialect(kind: Kind) -> None:
    uri = canonical_uri(uri_for(kind, Dialect.C26) or uri_for(kind, Dialect.C105) or "")
    assert uri == (uri_for(kind, Dialect.IVOA_STD) or uri_for(kind, Dialect.C26) or uri)
    for dialect in Dialect:
        expected = uri_for(kind, dialect)
        if expected is not None:
            assert translate(uri, dialect) == expected


def test_uri_comparison_is_exact() -> None:
    assert kind_of(STD + "resources/data/s3-data-resource-1.0") is None  # case matters (digest §9 item 25)
    assert kind_of(STD + "executables/docker-container-1.0/") is None


def test_group_filtering_refuses_a_uri_in_the_wrong_slot() -> None:
    assert kind_of(STD + "executables/docker-container-1.0", Group.COMPUTE) is None
    assert kind_of(STD + "executables/docker-container-1.0", Group.EXECUTABLE) is Kind.DOCKER_CONTAINER


def test_the_registry_lists_every_family() -> None:
    listed = set(all_schema_uris())
    assert set(IVOA_STD_URIS) | set(C26_URIS) | set(C105_URIS) <= listed


@pytest.mark.parametrize(
    ("text", "dialect"),
    [
        ("ivoa-std", Dialect.IVOA_STD),
        ("IVOA_STD", Dialect.IVOA_STD),
        ("C26", Dialect.C26),
        ("c105", Dialect.C105),
    ],
)
def test_dialect_names_are_read_case_insensitively(text: str, dialect: Dialect) -> None:
    assert Dialect.parse(text) is dialect
