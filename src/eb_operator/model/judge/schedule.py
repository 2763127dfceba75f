"""The schedule and the request's top level: a run time within the limit, supported start
windows, no unknown top-level requirements, costs and metrics the broker can meet.
"""

from __future__ import annotations

from eb_operator.model.common import MessageType
from eb_operator.model.errors import Path
from eb_operator.model.judge.findings import (
    INFORMATIONAL_FIELDS,
    Findings,
)


class ScheduleRules(Findings):
    def schedule(self) -> None:
        requested = self.request.requested_schedule
        if requested is None:
            return
        path: Path = ("schedule", "requested")
        self.unknown_requirements(requested, path)
        if requested.duration is not None:
            seconds = requested.duration.seconds
            limit = self.policy.limits.max_duration_seconds
            if seconds <= 0:
                self.no(
                    MessageType.BAD_VALUE,
                    "{path}: the duration must be longer than zero",
                    (*path, "duration"),
                )
            elif seconds > limit:
                self.no(
                    MessageType.RESOURCE_LIMIT,
                    "{path}: {value} requested, longer than the limit of {limit}",
                    (*path, "duration"),
                    value=str(requested.duration),
                    limit=f"{limit} s",
                )
        for k, window in enumerate(requested.start or []):
            if not window.supported:
                self.no(
                    MessageType.UNSUPPORTED_INTERVAL,
                    "{path}: {interval} is a {form} interval; give start/duration or start/end (tex §3.3)",
                    (*path, "start", k),
                    interval=str(window),
                    form=str(window.form),
                )

    def top_level(self) -> None:
        skip = ("executable", "resources", "schedule")
        self.unknown_requirements_shallow(self.request, skip)
        if self.request.resources is not None:
            for key in self.request.resources.model_extra or {}:
                if key not in INFORMATIONAL_FIELDS:
                    self.no(
                        MessageType.UNKNOWN_REQUIREMENT,
                        "{path}: the broker does not understand {field}, so it cannot promise to meet it",
                        ("resources", key),
                        field=key,
                    )
        self.costs_and_metrics(self.request.costs, self.request.metrics, ())
