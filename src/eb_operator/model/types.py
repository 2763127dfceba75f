"""The type-URI registry: every discriminator value of digest §3.11, in all three families.

Polymorphic wire objects carry a type URI (``type`` in ivoa-std, ``kind`` in Calycopis). Three
families of *schema* URIs name the same handful of types: ivoa-std (April 2025, normative), C105
(the reference broker, May 2026) and C26 (June 2026). They all map onto one internal :class:`Kind`;
the internal model always stores the canonical (ivoa-std, else C26) URI so that the same request
compares equal whichever dialect it arrived in, and the renderer translates back per dialect.

The prose of the standard also uses obsolete identifiers (``uri:docker-container-1.0`` ...). They
are recognised here only so the judge can say *why* it answers NO (digest §3.11 [rec]).
URIs are compared as plain, case-sensitive strings (tex §6.1; digest §9 item 25).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Dialect(StrEnum):
    """A wire dialect, which is also a family of type URIs."""

    IVOA_STD = "ivoa-std"
    C26 = "c26"
    C105 = "c105"

    @classmethod
    def parse(cls, value: str | Dialect) -> Dialect:
        """Read a dialect name case-insensitively (``"IVOA-STD"``, ``"C26"``, ``"calycopis"`` ...)."""
        if isinstance(value, Dialect):
            return value
        name = value.strip().lower().replace("_", "-")
        aliases = {"ivoa": "ivoa-std", "ivoastd": "ivoa-std", "std": "ivoa-std", "calycopis": "c26"}
        try:
            return cls(aliases.get(name, name))
        except ValueError:
            raise ValueError(f"unknown dialect {value!r}; expected one of {[d.value for d in cls]}") from None

    @property
    def calycopis(self) -> bool:
        """True for the ``kind``/``meta`` dialects (C26 and C105)."""
        return self is not Dialect.IVOA_STD


class Group(StrEnum):
    """Which polymorphic slot a type belongs in."""

    EXECUTABLE = "executable"
    COMPUTE = "compute"
    VOLUME = "volume"
    STORAGE = "storage"
    DATA = "data"
    SESSION = "session"
    OFFERSET = "offerset"
    COST = "cost"
    METRIC = "metric"
    OPTION = "option"
    UPDATE = "update"
    ACCELERATOR = "accelerator"
    AUTHENTICATION = "authentication"


class Kind(StrEnum):
    """Internal names of the types the model knows."""

    DOCKER_CONTAINER = "docker-container"
    SINGULARITY_CONTAINER = "singularity-container"
    JUPYTER_NOTEBOOK = "jupyter-notebook"
    SIMPLE_COMPUTE = "simple-compute-resource"
    SIMPLE_VOLUME = "simple-volume-mount"
    SIMPLE_STORAGE = "simple-storage-resource"
    SIMPLE_DATA = "simple-data-resource"
    S3_DATA = "s3-data-resource"
    RUCIO_DATA = "rucio-data-resource"
    IVOA_DATA = "ivoa-data-resource"
    SKAO_DATA = "skao-data-resource"
    SIMPLE_SESSION = "simple-execution-session"
    SCHEDULED_SESSION = "scheduled-execution-session"
    OFFERSET = "offerset-response"
    ABSTRACT_COST = "abstract-cost-item"
    SIMPLE_COST = "simple-minmax-float-cost"
    ABSTRACT_METRIC = "abstract-metric-item"
    SIMPLE_METRIC = "simple-minmax-float-metric"
    STRING_VALUE_OPTION = "string-value-option"
    ENUM_VALUE_OPTION = "enum-value-option"
    INTEGER_VALUE_OPTION = "integer-value-option"
    INTEGER_DELTA_OPTION = "integer-delta-option"
    STRING_VALUE_UPDATE = "string-value-update"
    ENUM_VALUE_UPDATE = "enum-value-update"
    INTEGER_VALUE_UPDATE = "integer-value-update"
    INTEGER_DELTA_UPDATE = "integer-delta-update"


_STD = "https://www.purl.org/ivoa.net/EB/schema/types/"
_C105 = "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/"
_C26 = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/"


@dataclass(frozen=True, slots=True)
class KindInfo:
    kind: Kind
    group: Group
    uris: Mapping[Dialect, str | None]  # the URI each family uses; None where it has none

    @property
    def canonical(self) -> str:
        """The URI the internal model stores: ivoa-std where it defines one, else C26."""
        uri = self.uris[Dialect.IVOA_STD] or self.uris[Dialect.C26]
        assert uri is not None
        return uri


def _info(kind: Kind, group: Group, std: str | None, c105: str | None, c26: str | None) -> KindInfo:
    return KindInfo(kind, group, {Dialect.IVOA_STD: std, Dialect.C105: c105, Dialect.C26: c26})


def _same(kind: Kind, group: Group, uri: str) -> KindInfo:
    return _info(kind, group, uri, uri, uri)


KINDS: tuple[KindInfo, ...] = (
    _info(
        Kind.DOCKER_CONTAINER,
        Group.EXECUTABLE,
        _STD + "executables/docker-container-1.0",
        _C105 + "executable/docker-container-1.0",
        _C26 + "executable/docker-container.yaml",
    ),
    _info(
        Kind.SINGULARITY_CONTAINER,
        Group.EXECUTABLE,
        _STD + "executables/singularity-container-1.0",
        _C105 + "executable/singularity-container-1.0",
        _C26 + "executable/singularity-container.yaml",
    ),
    _info(
        Kind.JUPYTER_NOTEBOOK,
        Group.EXECUTABLE,
        _STD + "executables/jupyter-notebook-1.0",
        _C105 + "executable/jupyter-notebook-1.0",
        _C26 + "executable/jupyter-notebook.yaml",
    ),
    _info(
        Kind.SIMPLE_COMPUTE,
        Group.COMPUTE,
        _STD + "resources/compute/simple-compute-resource-1.0",
        _C105 + "compute/simple-compute-resource-1.0",
        _C26 + "compute/simple-compute-resource.yaml",
    ),
    _info(
        Kind.SIMPLE_VOLUME,
        Group.VOLUME,
        None,  # ivoa-std volumes have no discriminator
        _C105 + "volume/simple-volume-mount-1.0",
        _C26 + "volume/simple-volume-mount.yaml",
    ),
    _info(
        Kind.SIMPLE_STORAGE,
        Group.STORAGE,
        _STD + "resources/storage/simple-storage-resource-1.0",
        _C105 + "storage/simple-storage-resource-1.0",
        _C26 + "storage/simple-storage-resource.yaml",
    ),
    _info(
        Kind.SIMPLE_DATA,
        Group.DATA,
        _STD + "resources/data/simple-data-resource-1.0",
        _C105 + "data/simple-data-resource-1.0",
        _C26 + "data/simple-data-resource.yaml",
    ),
    _info(
        Kind.S3_DATA,
        Group.DATA,
        _STD + "resources/data/S3-data-resource-1.0",
        _C105 + "data/S3-data-resource-1.0",
        _C26 + "data/S3-data-resource.yaml",
    ),
    _info(
        Kind.RUCIO_DATA,
        Group.DATA,
        _STD + "resources/data/Rucio-data-resource-1.0",
        _C105 + "data/rucio-data-resource-1.0",
        _C26 + "data/rucio-data-resource.yaml",
    ),
    _info(
        Kind.IVOA_DATA,
        Group.DATA,
        None,
        _C105 + "data/ivoa-data-resource-1.0",
        _C26 + "data/ivoa-data-resource.yaml",
    ),
    _info(
        Kind.SKAO_DATA,
        Group.DATA,
        None,
        _C105 + "data/skao-data-resource-1.0",
        _C26 + "data/skao-data-resource.yaml",
    ),
    _info(
        Kind.SIMPLE_SESSION,
        Group.SESSION,
        None,
        _C105 + "session/simple-execution-session-1.0",
        _C26 + "session/simple-execution-session.yaml",
    ),
    _info(
        Kind.SCHEDULED_SESSION,
        Group.SESSION,
        # The schema never defines a session type; this is its file-layout URI (digest §9 item 24).
        _STD + "sessions/execution-session-response-1.0",
        _C105 + "session/scheduled-execution-session-1.0",
        _C26 + "session/scheduled-execution-session.yaml",
    ),
    _info(
        Kind.OFFERSET,
        Group.OFFERSET,
        _STD + "offersets/offerset-response-1.0",
        _C105 + "offerset/execution-offerset-1.0",
        None,
    ),
    _info(Kind.ABSTRACT_COST, Group.COST, None, None, _C26 + "costs/abstract-cost-item.yaml"),
    _info(Kind.SIMPLE_COST, Group.COST, None, None, _C26 + "costs/simple-minmax-float-cost.yaml"),
    _info(Kind.ABSTRACT_METRIC, Group.METRIC, None, None, _C26 + "metrics/abstract-metric-item.yaml"),
    _info(Kind.SIMPLE_METRIC, Group.METRIC, None, None, _C26 + "metrics/simple-minmax-float-metric.yaml"),
    _same(Kind.STRING_VALUE_OPTION, Group.OPTION, "uri:string-value-option"),
    _same(Kind.ENUM_VALUE_OPTION, Group.OPTION, "uri:enum-value-option"),
    _same(Kind.INTEGER_VALUE_OPTION, Group.OPTION, "uri:integer-value-option"),
    _same(Kind.INTEGER_DELTA_OPTION, Group.OPTION, "uri:integer-delta-option"),
    _same(Kind.STRING_VALUE_UPDATE, Group.UPDATE, "uri:string-value-update"),
    _same(Kind.ENUM_VALUE_UPDATE, Group.UPDATE, "uri:enum-value-update"),
    _same(Kind.INTEGER_VALUE_UPDATE, Group.UPDATE, "uri:integer-value-update"),
    _same(Kind.INTEGER_DELTA_UPDATE, Group.UPDATE, "uri:integer-delta-update"),
)

_BY_KIND: dict[Kind, KindInfo] = {info.kind: info for info in KINDS}
_BY_URI: dict[str, tuple[KindInfo, Dialect]] = {}
for _k in KINDS:
    # ivoa-std first so that a URI shared by all families (options, updates) reports ivoa-std.
    for _d in (Dialect.IVOA_STD, Dialect.C105, Dialect.C26):
        _u = _k.uris[_d]
        if _u is not None:
            _BY_URI.setdefault(_u, (_k, _d))
# The reference broker emits its compute kind with a typo (digest §3.11); accept it as C105.
_BY_URI[_C105 + "computer/simple-compute-resource-1.0"] = (_BY_KIND[Kind.SIMPLE_COMPUTE], Dialect.C105)


@dataclass(frozen=True, slots=True)
class ProseType:
    """An identifier from the prose of the standard, which no schema defines."""

    uri: str
    group: Group
    successor: Kind | None  # the schema type to use instead, if there is one


_PURL = "https://www.purl.org/ivoa.net/"

PROSE_TYPES: dict[str, ProseType] = {
    p.uri: p
    for p in (
        ProseType("uri:docker-container-1.0", Group.EXECUTABLE, Kind.DOCKER_CONTAINER),
        ProseType("uri:singular-container-1.0", Group.EXECUTABLE, Kind.SINGULARITY_CONTAINER),
        ProseType("uri:jupyter-notebook-1.0", Group.EXECUTABLE, Kind.JUPYTER_NOTEBOOK),
        ProseType("uri:java-program-1.0", Group.EXECUTABLE, None),
        ProseType("uri:python-program-1.0", Group.EXECUTABLE, None),
        ProseType("uri:generic-compute", Group.COMPUTE, Kind.SIMPLE_COMPUTE),
        ProseType("uri:ephemeral-storage", Group.STORAGE, Kind.SIMPLE_STORAGE),
        ProseType("uri:persistent-storage", Group.STORAGE, None),
        ProseType("uri:amazon-s3-storage", Group.STORAGE, None),
        ProseType("uri:rucio-storage", Group.STORAGE, None),
        ProseType("uri:simple-data-resource", Group.DATA, Kind.SIMPLE_DATA),
        ProseType("uri:filesystem-mount", Group.VOLUME, Kind.SIMPLE_VOLUME),
        ProseType(_PURL + "executable-types/jupyter-notebook", Group.EXECUTABLE, Kind.JUPYTER_NOTEBOOK),
        ProseType(_PURL + "executable-types/zeppelin-notebook", Group.EXECUTABLE, None),
        ProseType(_PURL + "executable-types/docker-container", Group.EXECUTABLE, Kind.DOCKER_CONTAINER),
        ProseType(_PURL + "executable-types/oci-container", Group.EXECUTABLE, Kind.DOCKER_CONTAINER),
        ProseType(
            _PURL + "executable-types/singularity-container", Group.EXECUTABLE, Kind.SINGULARITY_CONTAINER
        ),
        ProseType(_PURL + "resource-types/generic-compute", Group.COMPUTE, Kind.SIMPLE_COMPUTE),
        # Accelerator types are not compute resource types; they belong in compute `extras`.
        ProseType(_PURL + "resource-types/nvidia-ad104", Group.ACCELERATOR, None),
        ProseType(_PURL + "resource-types/xilinx-vu19p", Group.ACCELERATOR, None),
        ProseType(_PURL + "storage-types/ephemeral-storage", Group.STORAGE, Kind.SIMPLE_STORAGE),
        ProseType(_PURL + "storage-types/amazon-s3", Group.STORAGE, None),
        ProseType(_PURL + "storage-types/persistent-storage", Group.STORAGE, None),
        ProseType(_PURL + "storage-types/rucio-storage", Group.STORAGE, None),
        ProseType(_PURL + "storage-types/vospace-storage", Group.STORAGE, None),
        ProseType(_PURL + "authentication-types/basic-auth", Group.AUTHENTICATION, None),
        ProseType(_PURL + "authentication-types/oidc-auth", Group.AUTHENTICATION, None),
        ProseType(_PURL + "authentication-types/rfc7519-token", Group.AUTHENTICATION, None),
        ProseType(_PURL + "webservice-types/value-update", Group.UPDATE, None),
    )
}


def info(kind: Kind) -> KindInfo:
    return _BY_KIND[kind]


def lookup(uri: str) -> tuple[KindInfo, Dialect] | None:
    """The kind a schema URI names and the family it comes from, or None if it is not a schema URI."""
    return _BY_URI.get(uri)


def kind_of(uri: object, group: Group | None = None) -> Kind | None:
    """The internal kind of a schema URI, optionally only if it belongs in ``group``."""
    if not isinstance(uri, str):
        return None
    found = _BY_URI.get(uri)
    if found is None or (group is not None and found[0].group is not group):
        return None
    return found[0].kind


def prose_type(uri: object) -> ProseType | None:
    return PROSE_TYPES.get(uri) if isinstance(uri, str) else None


def canonical_uri(uri: str) -> str:
    """The stored form of a type URI: known schema URIs become canonical, anything else is kept."""
    found = _BY_URI.get(uri)
    return found[0].canonical if found else uri


def uri_for(kind: Kind, dialect: Dialect) -> str | None:
    """The URI ``dialect`` uses for ``kind``, or None if that family has none."""
    return _BY_KIND[kind].uris[dialect]


def translate(uri: str, dialect: Dialect) -> str:
    """Rewrite a (canonical) type URI into ``dialect``'s family; unknown URIs pass unchanged.

    Where the target family has no URI for the kind (for example an IVOA data resource in
    ivoa-std), the canonical URI is kept: emitting some recognisable URI beats emitting none.
    """
    found = _BY_URI.get(uri)
    if found is None:
        return uri
    return found[0].uris[dialect] or found[0].canonical


def family_of(uri: object) -> Dialect | None:
    """The family a schema URI belongs to; shared ``uri:*`` names report ivoa-std."""
    if not isinstance(uri, str):
        return None
    found = _BY_URI.get(uri)
    return found[1] if found else None


def all_schema_uris() -> list[str]:
    """Every schema URI the registry recognises (for tests and for VOSI capabilities)."""
    return sorted(_BY_URI)
