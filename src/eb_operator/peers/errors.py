"""What can go wrong with a peer. Messages name the peer's answer, never this broker's credentials."""

from __future__ import annotations


class PeerError(Exception):
    """The peer could not be used: unreachable, too slow, or an answer that is not a usable
    document. ``str(error)`` is safe to show (status, logs, answers)."""


class PeerRefused(PeerError):
    """The peer understood and refused (a 4xx answer, e.g. 409 for a phase change it does not
    allow); ``message`` is the peer's own reason, cleaned and shortened."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
