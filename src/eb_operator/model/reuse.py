"""Persistent storage a later session mounts again: how a storage resource is identified, and how a
request names one it had before. Pure functions, no I/O.

Every storage resource of a session has a uuid (the server assigns component uuids, digest §3.1):
:func:`storage_uuid`, derived from the session's uuid and the resource's position, so the REST
service and the operator compute the same one without storing it. A session document shows it on
the storage item with an ``href`` (``/sessions/<session>/storage/<uuid>``). A later request by the
same owner names that storage with an ``href`` on a storage item of its own (C26: ``meta.url``):
that URL, or just the uuid (a relative reference whose one segment is the uuid). The operator
finds the volume, and answers NO when there is none of the caller's (docs/data-and-notebooks.md,
"Reusing storage"). A ``uuid`` on a request's storage item keeps its meaning in the standard (the
client's own identifier, which volumes may reference; digest §9 item 28): it names nothing earlier.
"""

from __future__ import annotations

import uuid as uuidlib
from urllib.parse import urlsplit

#: The uuid5 namespace of storage uuids (a fixed random value).
_STORAGE_NAMESPACE = uuidlib.UUID("8a6b1f0e-2c3d-4e5f-9a7b-1c2d3e4f5a6b")


def storage_uuid(session_uuid: str, index: int) -> str:
    """The uuid of storage resource ``index`` of the session ``session_uuid``."""
    return str(uuidlib.uuid5(_STORAGE_NAMESPACE, f"{session_uuid.lower()}/storage/{index}"))


def as_uuid(text: str) -> str | None:
    """``text`` as a canonical uuid, or None when it is not one."""
    try:
        return str(uuidlib.UUID(text.strip()))
    except ValueError:
        return None


def named_storage(href: str | None) -> str | None:
    """The storage uuid a request's storage item names with its ``href`` (the last path segment),
    or None when it has none; "" when its href does not end in a uuid."""
    if href is None:
        return None
    path = urlsplit(href.strip()).path.rstrip("/")
    return as_uuid(path.rsplit("/", 1)[-1]) or ""


def storage_href(base_url: str, session_uuid: str, storage: str) -> str:
    """Where a session document says storage ``storage`` of session ``session_uuid`` is read."""
    return f"{base_url}/sessions/{session_uuid}/storage/{storage}"
