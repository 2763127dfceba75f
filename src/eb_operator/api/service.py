"""The broker as the REST service sees it: write a CR, wait on a watch for the operator, read CRs,
build the IVOA document. No decision about offers or phases is taken here; the operator decides.

Every method raises domain errors (``errors.ApiError`` subclasses, the model's ``RequestError``,
the store's errors) and returns canonical ivoa-std documents plus the dialect to render them in.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eb_operator.api import views
from eb_operator.api.auth import Caller
from eb_operator.api.errors import Conflict, LoopDetected, NotFound, ServiceUnavailable, TooManyRequests
from eb_operator.api.metrics import Metrics
from eb_operator.api.settings import ApiSettings
from eb_operator.api.wire import Dialect, Kind, ReadRequest, read_request, read_update, to_dialect
from eb_operator.cluster.convert import UNKNOWN_REQUIREMENTS_ANNOTATION, VIA_ANNOTATION, recorded_phase
from eb_operator.cluster.offer_status import (
    find_offer,
    new_offerset_name,
    offer_execution,
    offer_refs,
    offerset_of,
)
from eb_operator.cluster.rest_store import ConflictError, Obj, RestStore
from eb_operator.engine.types import Phase
from eb_operator.model import ACCEPTED_PHASES, FINAL_PHASES
from eb_operator.model.common import MessageType
from eb_operator.model.federation import format_via, loop_refusal, parse_via

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """A document to send, in canonical ivoa-std shape, and the dialect to render it in."""

    kind: Kind
    document: dict[str, Any]
    dialect: Dialect

    @property
    def href(self) -> str:
        return str(self.document["href"])

    def rendered(self) -> dict[str, Any]:
        return to_dialect(self.document, self.kind, self.dialect)


@dataclass(frozen=True, slots=True)
class SessionRef:
    execution: Obj  # for an offer not written as an Execution, how it would be written (``written``)
    offerset: Obj | None
    dialect: Dialect
    written: bool = True
    sibling_accepted: bool = False


def _uuid_or_404(value: str, what: str) -> str:
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        raise NotFound("No {what} {uuid}", {"what": what, "uuid": value}) from None


def dialect_of(obj: Obj | None) -> Dialect:
    if obj is None:
        return Dialect.IVOA_STD
    name = (obj.get("metadata", {}).get("annotations") or {}).get(views.DIALECT_ANNOTATION)
    try:
        return Dialect.parse(name) if name else Dialect.IVOA_STD
    except ValueError:
        return Dialect.IVOA_STD


class BrokerService:
    def __init__(
        self,
        store: RestStore,
        settings: ApiSettings,
        metrics: Metrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        #: owner -> (monotonic time until which the operator refuses its requests, why): learnt
        #: from its refusals, so a caller over its rate is refused here without any write
        self._refused_until: dict[str, tuple[float, str]] = {}

    def _unavailable(self, operation: str) -> ServiceUnavailable:
        self.metrics.timeouts.labels(operation).inc()
        return ServiceUnavailable(
            "The operator did not answer within {seconds} s; try again",
            {"seconds": self.settings.answer_timeout_seconds},
            retry_after=self.settings.retry_after_seconds,
        )

    # --- request rates ------------------------------------------------------------------------

    def _check_rate(self, caller: Caller) -> None:
        """429 at once while the operator's last refusal of this caller's rate still holds."""
        until = self._refused_until.get(caller.username)
        if until is None:
            return
        left = until[0] - time.monotonic()
        if left <= 0:
            del self._refused_until[caller.username]
            return
        self.metrics.rate_limited.labels("replica").inc()
        raise TooManyRequests("{reason}", {"reason": until[1]}, retry_after=max(1, math.ceil(left)))

    async def _rate_refused(self, caller: Caller, seconds: int, why: str, drop: Callable[[], Any]) -> None:
        """The operator refused a request for its caller's rate: remember it, drop what was
        written (it holds nothing), and answer 429."""
        if len(self._refused_until) > 10_000:
            now = time.monotonic()
            self._refused_until = {k: v for k, v in self._refused_until.items() if v[0] > now}
        self._refused_until[caller.username] = (time.monotonic() + seconds, why)
        try:
            await drop()
        except Exception:
            log.warning("could not delete a rate-limited request owner=%s", caller.username, exc_info=True)
        self.metrics.rate_limited.labels("operator").inc()
        raise TooManyRequests("{reason}", {"reason": why}, retry_after=max(1, seconds))

    # --- offer sets ---------------------------------------------------------------------------

    async def create_offerset(
        self,
        caller: Caller,
        doc: Mapping[str, Any],
        hint: Dialect | None,
        base_url: str,
        via_header: str | None = None,
    ) -> Answer:
        via = parse_via(via_header)  # a forwarded request: refused here if it loops (508)
        refusal = loop_refusal(via, self.settings.broker_id, self.settings.max_hops)
        if refusal is not None:
            raise LoopDetected("Refused: {reason}", {"reason": refusal})
        read = read_request(doc, hint)
        self._check_rate(caller)
        dialect = read.dialect
        deadline = time.monotonic() + self.settings.answer_timeout_seconds
        name = new_offerset_name()
        started = time.perf_counter()
        async with self.store.watch_offerset(name, views.is_answered) as wait:
            await self.store.create_offerset(
                name=name,
                owner=caller.username,
                groups=caller.groups,
                request=read.request,
                annotations=_annotations(read, via),
            )
            answered = await wait.result(deadline - time.monotonic())
        self.metrics.wait.labels("offerset").observe(time.perf_counter() - started)
        if answered is None:
            # never a half answer: drop the set so its offers (if any come) do not hold capacity
            try:
                await self.store.delete_offerset(name)
            except Exception:
                log.warning("could not delete unanswered offerset name=%s", name, exc_info=True)
            raise self._unavailable("offerset")
        retry = (answered.get("status") or {}).get("retryAfterSeconds")
        if retry is not None:
            await self._rate_refused(
                caller, int(retry), _first_message(answered), lambda: self.store.delete_offerset(name)
            )
        offers = [offer_execution(answered, r) for r in offer_refs(answered)]  # none is written yet
        document = views.offerset_document(answered, offers, base_url, self.clock())
        self.metrics.offersets.labels(document.get("result", "")).inc()
        self.metrics.offers.inc(len(document.get("offers", [])))
        return Answer("offerset", document, dialect)

    async def _offers(self, offerset: Obj) -> list[Obj]:
        """Each offer of a set: as written as an Execution (accepted or rejected), else as offered."""
        written = {
            e["metadata"]["name"]: e
            for e in await self.store.offerset_executions(offerset["metadata"]["name"])
        }
        return [written.get(r["name"]) or offer_execution(offerset, r) for r in offer_refs(offerset)]

    async def get_offerset(self, caller: Caller, uuid: str, base_url: str) -> Answer:
        name = _uuid_or_404(uuid, "offer set")
        offerset = await self.store.get_offerset(name)
        if offerset is None or offerset.get("spec", {}).get("owner") != caller.username:
            raise NotFound("No offer set {uuid}", {"uuid": uuid})
        if not views.is_answered(offerset):
            deadline = time.monotonic() + self.settings.answer_timeout_seconds
            async with self.store.watch_offerset(name, views.is_answered) as wait:
                await wait.check_now()
                answered = await wait.result(deadline - time.monotonic())
            if answered is None:
                raise self._unavailable("offerset")
            offerset = answered
        document = views.offerset_document(offerset, await self._offers(offerset), base_url, self.clock())
        return Answer("offerset", document, dialect_of(offerset))

    # --- sessions -----------------------------------------------------------------------------

    async def find_session(self, caller: Caller, uuid: str, *, seen: bool = False) -> SessionRef:
        """The caller's session with this uuid, and its OfferSet; 404 for anyone else's.

        A session is an Execution, or an offer not yet written as one: found in its OfferSet's
        status (``eb_operator.cluster.offer_status``). ``seen``: take the versions this process's watch
        holds when it has them (no GETs). Only for a change the operator re-validates anyway
        (``update_session`` confirms a refusal with a GET first, and writing an offer that is
        already an Execution fails and is retried as a change of that Execution); the owner,
        offer set and dialect it reads never change after creation."""
        name = _uuid_or_404(uuid, "session")
        execution = self.store.seen_execution(name) if seen else None
        if execution is None or not views.is_offered(execution):
            execution = None if seen else await self.store.find_execution(name)
        if execution is not None and not views.is_offered(execution):
            raise NotFound("No session {uuid}", {"uuid": uuid})
        spec = (execution or {}).get("spec", {})
        offerset_name = spec.get("offerSet") if execution is not None else offerset_of(name)
        offerset = (self.store.seen_offerset(offerset_name) if seen and offerset_name else None) or (
            await self.store.get_offerset(offerset_name) if offerset_name else None
        )
        written, sibling_accepted = True, False
        if execution is None:
            offer = find_offer(offerset, name) if offerset is not None else None
            if offer is None and seen:  # not in what the watch holds: ask the API server
                return await self.find_session(caller, uuid)
            if offerset is None or offer is None:
                raise NotFound("No session {uuid}", {"uuid": uuid})
            execution, written = offer_execution(offerset, offer), False
            if not seen:
                others = await self.store.offerset_executions(offerset["metadata"]["name"])
                sibling_accepted = any(recorded_phase(e) in ACCEPTED_PHASES for e in others)
        owner = spec.get("owner") or (offerset or {}).get("spec", {}).get("owner")
        if owner != caller.username:
            raise NotFound("No session {uuid}", {"uuid": uuid})
        return SessionRef(execution, offerset, dialect_of(offerset or execution), written, sibling_accepted)

    def _session_answer(
        self, execution: Obj, offerset: Obj | None, base_url: str, sibling_accepted: bool = False
    ) -> Answer:
        document = views.session_document(
            execution, offerset, base_url, self.clock(), sibling_accepted=sibling_accepted
        )
        return Answer("session", document, dialect_of(offerset or execution))

    async def get_session(self, caller: Caller, uuid: str, base_url: str) -> Answer:
        ref = await self.find_session(caller, uuid)
        return self._session_answer(ref.execution, ref.offerset, base_url, ref.sibling_accepted)

    async def update_session(
        self, ref: SessionRef, uuid: str, doc: Mapping[str, Any], base_url: str
    ) -> Answer:
        """Ask the operator for a phase change and return the session once it has acted on it."""
        update = read_update(doc, uuid)
        execution, offerset, written = ref.execution, ref.offerset, ref.written
        deadline = time.monotonic() + self.settings.answer_timeout_seconds
        confirmed = False  # read from the API server itself (not this process's watch)
        for _attempt in range(5):
            current = self._session_answer(execution, offerset, base_url, ref.sibling_accepted)
            phase = current.document["phase"]
            allowed = {
                v for o in current.document["options"] if o.get("path") == "phase" for v in o["values"]
            }
            if update.value not in allowed and not confirmed:
                # the watch may lag another replica's change (an accept there, then a cancel here):
                # refuse only on what the API server holds now
                fresh = await self.store.get_execution(execution["metadata"]["name"])
                if fresh is None and written:
                    raise NotFound("No session {uuid}", {"uuid": uuid})
                if fresh is not None:  # else still an offer only: its expiry or a sibling refuses it
                    execution, written = fresh, True
                confirmed = True
                continue
            if update.value not in allowed:
                self.metrics.refused.labels(phase, update.value).inc()
                why = _withdrawn_reason(current.document)
                raise Conflict(
                    "Cannot change phase from {from} to {to}" + (": {reason}" if why else ""),
                    {"from": phase, "to": update.value, **({"reason": why} if why else {})},
                    document=current.rendered(),
                )
            try:
                return await self._apply(execution, offerset, update.value, deadline, base_url, written)
            except ConflictError:
                # the Execution moved under us (the operator, or another replica), or the offer is
                # an Execution already (written by another request): look again
                fresh = await self.store.get_execution(execution["metadata"]["name"])
                if fresh is None:
                    raise NotFound("No session {uuid}", {"uuid": uuid}) from None
                execution, written, confirmed = fresh, True, True
        raise self._unavailable("update")

    async def _apply(
        self, execution: Obj, offerset: Obj | None, value: str, deadline: float, base_url: str, written: bool
    ) -> Answer:
        name = execution["metadata"]["name"]
        recorded = recorded_phase(execution)
        before = str(recorded) if recorded is not None else None
        target: dict[str, int] = {}

        def applied(phase: str | None) -> bool:
            return phase == value or (value == "ACCEPTED" and phase in ACCEPTED_PHASES)

        def reflected(obj: Obj) -> bool:
            """The operator has acted on this change: applied it, or seen it (observedGeneration)
            and left the phase as it was; a final phase can no longer change either way. Progress
            the operator makes for other reasons (ACCEPTED -> WAITING) does not count."""
            phase = recorded_phase(obj)
            if applied(phase) or phase in FINAL_PHASES:
                return True
            gen = target.get("generation")
            return gen is not None and int((obj.get("status") or {}).get("observedGeneration") or 0) >= gen

        started = time.perf_counter()
        async with self.store.watch_execution(name, reflected) as wait:
            # no resourceVersion precondition: the operator re-validates the change against the
            # phase it finds, so a race only turns into a refusal (409), never a wrong transition
            if written:
                patched = await self.store.patch_execution_spec(name, {"desiredPhase": value})
            else:  # the client's first word on this offer writes it as an Execution
                body = {**execution, "spec": {**execution["spec"], "desiredPhase": value}}
                patched = await self.store.create_offer_execution(body)
            target["generation"] = int(patched["metadata"].get("generation") or 0)
            wait.recheck()
            result = await wait.result(deadline - time.monotonic())
        if result is None:
            self.metrics.wait.labels("update").observe(time.perf_counter() - started)
            raise self._unavailable("update")
        answer = self._session_answer(result, offerset, base_url)
        after = answer.document["phase"]
        done = applied(after)
        self.metrics.wait.labels("update").observe(time.perf_counter() - started)
        if not done:
            self.metrics.refused.labels(before or "", value).inc()
            reason = _refusal_reason(result)
            raise Conflict(
                "Cannot change phase from {from} to {to}: {reason}",
                {"from": before, "to": value, "reason": reason},
                document=answer.rendered(),
            )
        self.metrics.transitions.labels(before or "", after).inc()
        return answer

    # --- direct execution ---------------------------------------------------------------------

    async def direct(self, caller: Caller, doc: Mapping[str, Any], base_url: str) -> tuple[Answer, bool]:
        """C26 direct execution: one session, accepted at once. Returns (answer, satisfied)."""
        read = read_request(doc, Dialect.C26)
        self._check_rate(caller)
        deadline = time.monotonic() + self.settings.answer_timeout_seconds
        name = str(uuidlib.uuid4())

        def settled(obj: Obj) -> bool:
            return views.is_offered(obj) and recorded_phase(obj) != Phase.OFFERED

        async with self.store.watch_execution(name, settled) as wait:
            await self.store.create_execution(
                name=name,
                owner=caller.username,
                groups=caller.groups,
                request=read.request,
                annotations=_annotations(read),
            )
            result = await wait.result(deadline - time.monotonic())
        if result is None:
            try:
                await self.store.delete_execution(name)
            except Exception:
                log.warning("could not delete unanswered direct execution name=%s", name, exc_info=True)
            raise self._unavailable("direct")
        refused = _rate_refusal(result)
        if refused is not None:
            await self._rate_refused(caller, *refused, lambda: self.store.delete_execution(name))
        answer = self._session_answer(result, None, base_url)
        return answer, answer.document["phase"] != "FAILED"


def _annotations(read: ReadRequest, via: Sequence[str] = ()) -> dict[str, str]:
    """The dialect to answer in and, when there are any, the unknown requirement-like fields the
    stored request cannot hold (the operator answers NO naming them) and the brokers a forwarded
    request passed through (the operator extends the list when it forwards the request on)."""
    out = {views.DIALECT_ANNOTATION: read.dialect.value}
    if read.unknown:
        out[UNKNOWN_REQUIREMENTS_ANNOTATION] = json.dumps(list(read.unknown))
    if via:
        out[VIA_ANNOTATION] = format_via(via)
    return out


def _first_message(obj: Obj) -> str:
    messages = (obj.get("status") or {}).get("messages") or []
    return str(messages[0].get("message") or "") if messages else "too many requests"


def _rate_refusal(execution: Obj) -> tuple[int, str] | None:
    """(seconds to wait, why) when the operator failed a direct request for its caller's rate."""
    for m in (execution.get("status") or {}).get("messages") or []:
        if m.get("type") == MessageType.RATE_LIMITED.value:
            seconds = str((m.get("values") or {}).get("retryAfter") or "1")
            return (int(seconds) if seconds.isdigit() else 1), str(m.get("message") or "")
    return None


def _withdrawn_reason(document: Mapping[str, Any]) -> str | None:
    """Why an offer was taken back (fair sharing), if it was."""
    for m in document.get("messages") or []:
        if m.get("type") == MessageType.PREEMPTED.value:
            return str(m.get("message"))
    return None


def _refusal_reason(execution: Obj) -> str:
    """Why the operator did not apply the change: its ``DesiredPhase`` condition, else its message."""
    st = execution.get("status") or {}
    for c in st.get("conditions") or []:
        if c.get("type") == "DesiredPhase" and c.get("status") == "False" and c.get("message"):
            return str(c["message"])
    return str(st.get("message") or "the operator refused the change")
