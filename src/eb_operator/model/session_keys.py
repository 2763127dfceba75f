"""The session key: one secret the operator and the REST API share (a Secret both mount), and what
each derives from it without telling the other anything.

* the Jupyter server's token of a session: the operator gives it to the server, the API's gate
  passes it upstream for the session's owner, and neither reads the other's Secrets;
* the gate's signed cookies and the digests of its one-time login codes (``eb_operator.api.gate``).

Every value is an HMAC-SHA256 of the key over a purpose and the parts it binds, so a value made
for one purpose (or one session) is worth nothing for another.
"""

from __future__ import annotations

import hashlib
import hmac

#: Shortest key accepted: 32 bytes (256 bits), what HMAC-SHA256 can use.
MIN_KEY_BYTES = 32


def check_key(key: bytes) -> bytes:
    """``key`` if long enough to sign with, else ValueError (a broken Secret fails at start-up)."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the session key has {len(key)} bytes; it needs at least {MIN_KEY_BYTES}")
    return key


def mac(key: bytes, purpose: str, *parts: str) -> str:
    """Hex HMAC-SHA256 of ``purpose`` and ``parts`` (joined unambiguously: each is length-prefixed)."""
    message = "".join(f"{len(p)}:{p}" for p in (purpose, *parts)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def jupyter_token(key: bytes, execution_uid: str) -> str:
    """The token of the notebook server of the Execution with this uid (48 hex digits)."""
    return mac(key, "jupyter-token", execution_uid)[:48]


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two MACs or digests."""
    return hmac.compare_digest(a.encode(), b.encode())
