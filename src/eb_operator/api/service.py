"""The broker as the REST service sees it: write a CR, wait on a watch for the operator, read CRs,
build the IVOA document. No decision about offers or phases is taken here; the operator decides.

Every method raises domain errors (``errors.ApiError`` subclasses, the model's ``RequestError``,
the store's errors) and returns canonical ivoa-std documents plus the dialect to render them in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eb_operator.api import views
from eb_operator.api.auth import Caller
from eb_operator.api.errors import Conflict, NotFound, ServiceUnavailable
from eb_operator.api.metrics import Metrics
from eb_operator.api.settings import ApiSettings
from eb_operator.api.wire import Dialect, Kind, ReadRequest, read_request, read_update, to_dialect
from eb_operator.cluster.convert import UNKNOWN_REQUIREMENTS_ANNOTATION
from eb_operator.cluster.rest_store import ConflictError, Obj, RestStore

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
    execution: Obj
    offerset: Obj | None
    dialect: Dialect


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

    def _unavailable(self, operation: str) -> ServiceUnavailable:
        self.metrics.timeouts.labels(operation).inc()
        return ServiceUnavailable(
            "The operator did not answer within {seconds} s; try again",
            {"seconds": self.settings.answer_timeout_seconds},
            retry_after=self.settings.retry_after_seconds,
        )

    # --- offer sets ---------------------------------------------------------------------------

    async def create_offerset(
        self, caller: Caller, doc: Mapping[str, Any], hint: Dialect | None, base_url: str
    ) -> Answer:
        read = read_request(doc, hint)
        dialect = read.dialect
        deadline = time.monotonic() + self.settings.answer_timeout_seconds
        name = str(uuidlib.uuid4())
        started = time.perf_counter()
        async with self.store.watch_offerset(name, views.is_answered) as wait:
            await self.store.create_offerset(
                name=name, owner=caller.username, request=read.request, annotations=_annotations(read)
            )
            answered = await wait.result(deadline - time.monotonic())
        executions = await self._offers_of(answered, deadline) if answered is not None else None
        self.metrics.wait.labels("offerset").observe(time.perf_counter() - started)
        if answered is None or executions is None:
            # never a half answer: drop the set so its offers (if any come) do not hold capacity
            try:
                await self.store.delete_offerset(name)
            except Exception:
                log.warning("could not delete unanswered offerset name=%s", name, exc_info=True)
            raise self._unavailable("offerset")
        document = views.offerset_document(answered, executions, base_url, self.clock())
        self.metrics.offersets.labels(document.get("result", "")).inc()
        self.metrics.offers.inc(len(document.get("offers", [])))
        return Answer("offerset", document, dialect)

    async def _offers_of(self, offerset: Obj, deadline: float) -> list[Obj] | None:
        """The set's Executions once each one its status names is a visible offer; None past the deadline.

        The operator creates them before it writes the answer, so this process's watch has them
        or is about to: wait on the watch (no GET per offer), and look with a GET only for one the
        watch has not shown within a second (``Wait.result`` does that on its timeout)."""
        wanted = [str(r["name"]) for r in (offerset.get("status", {}).get("offers") or []) if r.get("name")]
        async with contextlib.AsyncExitStack() as stack:
            waits = [
                await stack.enter_async_context(self.store.watch_execution(n, views.is_offered))
                for n in wanted
            ]
            for w in waits:
                w.check_recent()
            found = await asyncio.gather(*(w.result(min(1.0, deadline - time.monotonic())) for w in waits))
            for i, obj in enumerate(found):
                if obj is None:  # still not there after a second and a GET: wait to the deadline
                    later = await waits[i].result(deadline - time.monotonic())
                    if later is None:
                        return None
                    found[i] = later
        return [obj for obj in found if obj is not None]

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
        executions = await self.store.offerset_executions(offerset)
        document = views.offerset_document(offerset, executions, base_url, self.clock())
        return Answer("offerset", document, dialect_of(offerset))

    # --- sessions -----------------------------------------------------------------------------

    async def find_session(self, caller: Caller, uuid: str, *, seen: bool = False) -> SessionRef:
        """The caller's Execution with this session uuid, and its OfferSet; 404 for anyone else's.

        ``seen``: take the versions this process's watch holds when it has them (no GETs). Only for
        a change the operator re-validates anyway (``update_session`` confirms a refusal with a
        GET first); the owner, offer set and dialect it reads never change after creation."""
        name = _uuid_or_404(uuid, "session")
        execution = self.store.seen_execution(name) if seen else None
        if execution is None or not views.is_offered(execution):
            execution = await self.store.find_execution(name)
        if execution is None or not views.is_offered(execution):
            raise NotFound("No session {uuid}", {"uuid": uuid})
        spec = execution.get("spec", {})
        offerset_name = spec.get("offerSet")
        offerset = (self.store.seen_offerset(offerset_name) if seen and offerset_name else None) or (
            await self.store.get_offerset(offerset_name) if offerset_name else None
        )
        owner = spec.get("owner") or (offerset or {}).get("spec", {}).get("owner")
        if owner != caller.username:
            raise NotFound("No session {uuid}", {"uuid": uuid})
        return SessionRef(execution, offerset, dialect_of(offerset or execution))

    def _session_answer(self, execution: Obj, offerset: Obj | None, base_url: str) -> Answer:
        document = views.session_document(execution, offerset, base_url, self.clock())
        return Answer("session", document, dialect_of(offerset or execution))

    async def get_session(self, caller: Caller, uuid: str, base_url: str) -> Answer:
        ref = await self.find_session(caller, uuid)
        return self._session_answer(ref.execution, ref.offerset, base_url)

    async def update_session(
        self, ref: SessionRef, uuid: str, doc: Mapping[str, Any], base_url: str
    ) -> Answer:
        """Ask the operator for a phase change and return the session once it has acted on it."""
        update = read_update(doc, uuid)
        execution, offerset = ref.execution, ref.offerset
        deadline = time.monotonic() + self.settings.answer_timeout_seconds
        confirmed = False  # read from the API server itself (not this process's watch)
        for _attempt in range(5):
            current = self._session_answer(execution, offerset, base_url)
            phase = current.document["phase"]
            allowed = {
                v for o in current.document["options"] if o.get("path") == "phase" for v in o["values"]
            }
            if update.value not in allowed and not confirmed:
                # the watch may lag another replica's change (an accept there, then a cancel here):
                # refuse only on what the API server holds now
                fresh = await self.store.get_execution(execution["metadata"]["name"])
                if fresh is None:
                    raise NotFound("No session {uuid}", {"uuid": uuid})
                execution, confirmed = fresh, True
                continue
            if update.value not in allowed:
                self.metrics.refused.labels(phase, update.value).inc()
                raise Conflict(
                    "Cannot change phase from {from} to {to}",
                    {"from": phase, "to": update.value},
                    document=current.rendered(),
                )
            try:
                return await self._apply(execution, offerset, update.value, deadline, base_url)
            except ConflictError:
                # the Execution moved under us (the operator, or another replica): look again
                fresh = await self.store.get_execution(execution["metadata"]["name"])
                if fresh is None:
                    raise NotFound("No session {uuid}", {"uuid": uuid}) from None
                execution, confirmed = fresh, True
        raise self._unavailable("update")

    async def _apply(
        self, execution: Obj, offerset: Obj | None, value: str, deadline: float, base_url: str
    ) -> Answer:
        name = execution["metadata"]["name"]
        before = views.stored_phase(execution)
        target: dict[str, int] = {}

        def applied(phase: str | None) -> bool:
            return phase == value or (value == "ACCEPTED" and phase in views.AFTER_ACCEPT)

        def reflected(obj: Obj) -> bool:
            """The operator has acted on this change: applied it, or seen it (observedGeneration)
            and left the phase as it was; a final phase can no longer change either way. Progress
            the operator makes for other reasons (ACCEPTED -> WAITING) does not count."""
            phase = views.stored_phase(obj)
            if applied(phase) or phase in views.FINAL:
                return True
            gen = target.get("generation")
            return gen is not None and int((obj.get("status") or {}).get("observedGeneration") or 0) >= gen

        started = time.perf_counter()
        async with self.store.watch_execution(name, reflected) as wait:
            # no resourceVersion precondition: the operator re-validates the change against the
            # phase it finds, so a race only turns into a refusal (409), never a wrong transition
            patched = await self.store.patch_execution_spec(name, {"desiredPhase": value})
            target["generation"] = int(patched["metadata"].get("generation") or 0)
            wait.recheck()
            result = await wait.result(deadline - time.monotonic())
        if result is None:
            self.metrics.wait.labels("update").observe(time.perf_counter() - started)
            raise self._unavailable("update")
        answer = self._session_answer(result, offerset, base_url)
        after = answer.document["phase"]
        done = applied(after)
        if done and value == "ACCEPTED" and offerset is not None:
            await self._siblings_rejected(offerset, name, deadline)
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

    async def _siblings_rejected(self, offerset: Obj, accepted: str, deadline: float) -> None:
        """Wait (bounded) until the operator has moved the accepted offer's OFFERED siblings on, so
        that a GET right after the accept shows them REJECTED. The accept stands either way."""
        refs = offerset.get("status", {}).get("offers") or []
        for name in (str(r["name"]) for r in refs if r.get("name") and r["name"] != accepted):

            def moved_on(obj: Obj) -> bool:
                return views.stored_phase(obj) != "OFFERED"

            async with self.store.watch_execution(name, moved_on) as wait:
                if not wait.check_recent():
                    await wait.check_now()
                if await wait.result(min(deadline - time.monotonic(), 5.0)) is None:
                    log.warning("sibling still OFFERED after an accept execution=%s", name)
                    return

    # --- direct execution ---------------------------------------------------------------------

    async def direct(self, caller: Caller, doc: Mapping[str, Any], base_url: str) -> tuple[Answer, bool]:
        """C26 direct execution: one session, accepted at once. Returns (answer, satisfied)."""
        read = read_request(doc, Dialect.C26)
        deadline = time.monotonic() + self.settings.answer_timeout_seconds
        name = str(uuidlib.uuid4())

        def settled(obj: Obj) -> bool:
            return views.is_offered(obj) and views.stored_phase(obj) != "OFFERED"

        async with self.store.watch_execution(name, settled) as wait:
            await self.store.create_execution(
                name=name, owner=caller.username, request=read.request, annotations=_annotations(read)
            )
            result = await wait.result(deadline - time.monotonic())
        if result is None:
            try:
                await self.store.delete_execution(name)
            except Exception:
                log.warning("could not delete unanswered direct execution name=%s", name, exc_info=True)
            raise self._unavailable("direct")
        answer = self._session_answer(result, None, base_url)
        return answer, answer.document["phase"] != "FAILED"


def _annotations(read: ReadRequest) -> dict[str, str]:
    """The dialect to answer in and, when there are any, the unknown requirement-like fields the
    stored request cannot hold (the operator answers NO naming them)."""
    out = {views.DIALECT_ANNOTATION: read.dialect.value}
    if read.unknown:
        out[UNKNOWN_REQUIREMENTS_ANNOTATION] = json.dumps(list(read.unknown))
    return out


def _refusal_reason(execution: Obj) -> str:
    """Why the operator did not apply the change: its ``DesiredPhase`` condition, else its message."""
    st = execution.get("status") or {}
    for c in st.get("conditions") or []:
        if c.get("type") == "DesiredPhase" and c.get("status") == "False" and c.get("message"):
            return str(c["message"])
    return str(st.get("message") or "the operator refused the change")
