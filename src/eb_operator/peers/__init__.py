"""peers layer: other IVOA ExecutionBrokers, as remote I/O (stacked brokers, docs/federation.md).

Beside ``eb_operator.cluster`` (the Kubernetes API), this is the broker's other remote party: a
peer broker's REST interface, reached with httpx. :class:`~eb_operator.peers.client.PeerClient`
asks a peer for offers, changes and reads its sessions and probes it; everything a peer answers
is read by :mod:`eb_operator.peers.documents` like client input (bounded, validated, its offers
checked one by one), so a malformed or hostile peer costs its own offers and nothing else.

Only the operator uses this package (import-linter); the REST API never speaks to peers.
"""

from eb_operator.peers.client import PeerClient, Probe
from eb_operator.peers.documents import OfferSetAnswer, RemoteOffer, RemoteSession
from eb_operator.peers.errors import PeerError, PeerRefused

__all__ = [
    "OfferSetAnswer",
    "PeerClient",
    "PeerError",
    "PeerRefused",
    "Probe",
    "RemoteOffer",
    "RemoteSession",
]
