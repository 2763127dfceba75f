"""Who owns what, and where it runs: per-owner namespace names, owner labels, and image references
judged against a group's allowed prefixes. Pure functions, no I/O.

:func:`session_namespace` is the one rule that decides where a session's children (Pod, Service,
Secrets, routes, volume claims) live; everything that creates or finds a child asks it, or reads
back ``status.childNamespace``, which the operator writes from it when the session prepares.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from eb_operator.model.sharing import Namespaces

_NOT_DNS = re.compile(r"[^a-z0-9]+")
_HASH_LEN = 10  # 40 bits: distinct owners get distinct names (a collision needs ~10^6 owners)
DNS_LABEL_MAX = 63


def _slug(text: str) -> str:
    return _NOT_DNS.sub("-", text.lower()).strip("-")


def owner_hash(owner: str) -> str:
    """A short, stable digest of the exact owner name (case and punctuation included)."""
    return hashlib.sha256(owner.encode("utf-8")).hexdigest()[:_HASH_LEN]


def owner_namespace(owner: str, prefix: str = "eb-") -> str:
    """The namespace of ``owner``'s sessions: ``<prefix><readable part>-<hash>``, a DNS-1123 label.

    The readable part is the owner lowercased with every run of other characters turned into one
    ``-`` (``system:serviceaccount:ns:sa`` -> ``system-serviceaccount-ns-sa``), cut to fit; the hash
    of the exact name keeps owners that differ only in case or punctuation apart."""
    digest = owner_hash(owner)
    room = DNS_LABEL_MAX - len(prefix) - len(digest) - 1
    readable = _slug(owner)[:room].strip("-")
    return f"{prefix}{readable}-{digest}" if readable else f"{prefix}{digest}"


def owner_label(owner: str) -> str:
    """A label value naming ``owner`` (the real name goes in an annotation: it may not fit)."""
    digest = owner_hash(owner)
    readable = _slug(owner)[: DNS_LABEL_MAX - len(digest) - 1].strip("-")
    return f"{readable}-{digest}" if readable else digest


def session_namespace(
    execution_namespace: str, owner: str | None, sessions_namespace: str | None, policy: Namespaces
) -> str:
    """Where the children of an Execution live: its owner's namespace for a REST session (an
    Execution in the API's sessions namespace, whose ``spec.owner`` the API wrote), else the
    Execution's own namespace (a kubectl user's Execution keeps its children beside it)."""
    rest_session = sessions_namespace is not None and execution_namespace == sessions_namespace
    if policy.per_owner and rest_session and owner:
        return owner_namespace(owner, policy.prefix)
    return execution_namespace


# --- images ------------------------------------------------------------------------------------

_BOUNDARY = "/:@"


def _is_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def normalize_image(reference: str) -> str:
    """A container image reference with Docker's defaults made explicit: ``python:3`` ->
    ``docker.io/library/python:3``, ``me/app`` -> ``docker.io/me/app``. ``docker://`` URLs
    (Apptainer) are read as references; any other URL (``https://``, ``oras://``, ``library://``)
    stays as written."""
    ref = reference.strip()
    scheme, sep, rest = ref.partition("://")
    if sep:
        if scheme.lower() != "docker":
            return ref
        ref = rest
    first, slash, _ = ref.partition("/")
    if slash and _is_registry(first):
        return ref
    if slash:
        return f"docker.io/{ref}"
    return f"docker.io/library/{ref}"


def _normalize_prefix(prefix: str) -> str:
    """A prefix as :func:`normalize_image` writes the references it stands for; a trailing ``/``
    stays (``docker.io/`` is "anything from Docker Hub", ``me/`` anything of Docker Hub's ``me``)."""
    text = prefix.strip()
    if not text.endswith("/"):
        return normalize_image(text)
    core = text[:-1]
    scheme, sep, rest = core.partition("://")
    if sep and scheme.lower() != "docker":
        return text
    bare = rest if sep else core
    if _is_registry(bare.split("/", 1)[0]):
        return f"{bare}/"
    return f"docker.io/{bare}/"  # a Docker Hub namespace (or path), never library/


def image_allowed(reference: str, prefixes: Sequence[str] | None) -> bool:
    """Whether ``reference`` is under one of ``prefixes`` (None: any image is). A prefix matches
    the whole name or up to a ``/``, ``:`` or ``@``: ``registry.org/astro`` allows
    ``registry.org/astro/app:1`` and ``registry.org/astro:2``, not ``registry.org/astronomy``."""
    if prefixes is None:
        return True
    image = normalize_image(reference)
    for raw in prefixes:
        prefix = _normalize_prefix(raw)
        if not prefix:
            continue
        if image == prefix:
            return True
        if image.startswith(prefix) and (prefix[-1] in _BOUNDARY or image[len(prefix)] in _BOUNDARY):
            return True
    return False
