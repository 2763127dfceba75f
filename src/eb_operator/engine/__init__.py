"""engine layer: the offer engine, pure Python over an immutable snapshot.

Public surface: :func:`find_offers` / :func:`plan_offers` / :func:`explain_no_offers` (offers
for a :class:`~eb_operator.engine.types.Demand`), :func:`offer_expiry` (when they lapse),
:func:`check_accept` (accept-time re-validation), :class:`Ledger` (the reservation index the
operator keeps current) and :class:`NodeTable` (indexed node capacity). See ``docs/engine.md``.
"""

from eb_operator.engine.accept import check_accept
from eb_operator.engine.calendar import NodeUsage
from eb_operator.engine.ledger import Ledger, LedgerSnapshot
from eb_operator.engine.nodes import NodeTable
from eb_operator.engine.plan import OfferPlan, explain_no_offers, find_offers, offer_expiry, plan_offers
from eb_operator.engine.search import SearchOverrun

__all__ = [
    "Ledger",
    "LedgerSnapshot",
    "NodeTable",
    "NodeUsage",
    "OfferPlan",
    "SearchOverrun",
    "check_accept",
    "explain_no_offers",
    "find_offers",
    "offer_expiry",
    "plan_offers",
]
