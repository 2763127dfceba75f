"""Whether the platform can serve a request at all, before any capacity is looked at.

:func:`judge_request` returns the reasons for ``result: NO`` (digest §2.3 step 2, §6.1, §9): unknown
or obsolete type URIs, requirements it does not understand, policy limits, unreachable data, refused
interval forms. Each is an ERROR :class:`MessageItem` with a stable ``urn:ivoa:eb:`` type, a template
and ``values.path`` naming the field as the client wrote it (digest §6.2). Caps (a ``max`` above a
limit, served up to the limit) are WARN: the request stays acceptable and the warning belongs on
the YES answer. So: **no ERROR in the list means acceptable** (:func:`has_errors`); an empty list
means acceptable without remarks.

Time and capacity (is a window in the past, is anything free) are the engine's to judge.

Unknown fields: the schemas allow additional properties, but a requirement the broker silently
ignores is a broken promise (digest §9 item 26). So any field this model does not define, on the
request, its executable or its resources, is answered NO unless it is plainly informational
(:data:`INFORMATIONAL_FIELDS`).
"""

from __future__ import annotations

from eb_operator.model.common import MessageItem
from eb_operator.model.judge.compute import ComputeRules
from eb_operator.model.judge.data import DataRules
from eb_operator.model.judge.executable import ExecutableRules
from eb_operator.model.judge.findings import INFORMATIONAL_FIELDS, unknown_fields
from eb_operator.model.judge.images import judge_images
from eb_operator.model.judge.schedule import ScheduleRules
from eb_operator.model.judge.storage import StorageRules
from eb_operator.model.offerset import OfferSetRequest
from eb_operator.model.platform import PlatformPolicy


class _Judge(ExecutableRules, ComputeRules, StorageRules, DataRules, ScheduleRules):
    """Every rule, over one request and one policy."""


def judge_request(req: OfferSetRequest, policy: PlatformPolicy) -> list[MessageItem]:
    """Why ``policy``'s platform cannot serve ``req`` (ERROR), and what it will cap (WARN).

    No ERROR means the request may go to the engine; see the module doc. Never raises for a
    request :func:`eb_operator.model.parse_offerset_request` returned.
    """
    judge = _Judge(req, policy)
    judge.top_level()
    judge.executable()
    judge.compute()
    judge.storage()
    judge.data()
    judge.schedule()
    return judge.messages


__all__ = ["INFORMATIONAL_FIELDS", "judge_images", "judge_request", "unknown_fields"]
