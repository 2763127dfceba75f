"""Stacked brokers (digest §1, tex §4): the forwarding header that keeps requests from looping.

A broker that forwards a request to its peers sends the header ``EB-Via``: the ids of the brokers
the request has passed through, oldest first, ending with its own. A broker that receives one
refuses the request (508 Loop Detected) when its own id is already on that list (a forwarding
loop: A -> B -> A), or when the list is longer than its hop limit (a chain of brokers, even
without a loop, may not grow without end); it forwards to its own peers only while the list,
with its own id added, stays within that limit. A client's own request carries no header.

Pure: the API checks what arrives, the operator writes what it forwards.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from eb_operator.model.errors import RequestError

VIA_HEADER = "EB-Via"
#: Forwarding steps a request may take by default: client -> A -> B -> C -> D.
DEFAULT_MAX_HOPS = 3
#: The most ids a header may carry at all (a bound on what is parsed, whatever the hop limit).
MAX_VIA_IDS = 32
#: A broker id: a token with no commas or spaces (a DNS name, a URL's host, a uuid ...).
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,252}$")


def valid_broker_id(text: str) -> bool:
    return bool(_ID.match(text))


def parse_via(text: str | None) -> tuple[str, ...]:
    """The broker ids of an ``EB-Via`` header (comma-separated, as HTTP list headers are); ``()``
    when there is none. Raises :class:`RequestError` (400) for a malformed one."""
    if text is None or not text.strip():
        return ()
    ids = tuple(part.strip() for part in text.split(","))
    if len(ids) > MAX_VIA_IDS:
        raise RequestError(VIA_HEADER, f"names more than {MAX_VIA_IDS} brokers")
    for broker in ids:
        if not valid_broker_id(broker):
            shown = broker[:64]
            raise RequestError(VIA_HEADER, f"{shown!r} is not a broker id (letters, digits and ._:@/+-)")
    return ids


def format_via(ids: Sequence[str]) -> str:
    return ", ".join(ids)


def loop_refusal(via: Sequence[str], own_id: str, max_hops: int) -> str | None:
    """Why a request that passed through ``via`` must be refused here, or None to serve it."""
    if own_id in via:
        return f"forwarding loop: this broker ({own_id}) is already on the request's path ({format_via(via)})"
    if len(via) > max_hops:
        return (
            f"hop limit: the request was forwarded {len(via)} times ({format_via(via)}); "
            f"this broker serves at most {max_hops}"
        )
    return None


def forwarded_via(via: Sequence[str], own_id: str, max_hops: int) -> tuple[str, ...] | None:
    """The ``EB-Via`` list to send to peers (``via`` and this broker), or None when forwarding
    once more would pass the hop limit."""
    path = (*via, own_id)
    return path if len(path) <= max_hops else None
