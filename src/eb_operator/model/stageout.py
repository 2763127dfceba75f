"""Stage-out: where a storage resource's contents go when the run ends (this broker's extension of
``SimpleStorageResource``; neither schema has it, both allow additional properties). The same
shape in both dialects (docs/wire-model.md, "Stage-out"):

    stageout:
      s3: {endpoint, bucket, prefix}         # an endpoint the platform lists in dataEndpoints
      http: {location, webdav}               # a PUT per file below location; webdav: MKCOL too
      size: 2                                # optional, GiB: the most it moves (else the storage's size)

One destination per storage resource. Credentials come from the platform's Secret for that
endpoint, never from the request. :func:`stage_out_problems` says what makes a request NO (pure,
no I/O); :func:`stage_out_bytes` is what the offer's ``schedule.releasing`` must leave time for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from eb_operator.model.base import WireBool, WireInt, WireModel, WireStr
from eb_operator.model.common import MessageType

if TYPE_CHECKING:
    from eb_operator.model.platform import PlatformPolicy

GIB = 1024**3


class StageOutS3(WireModel):
    """An S3 destination: objects ``prefix/<path below the volume>`` in ``bucket``."""

    endpoint: WireStr | None = None
    bucket: WireStr | None = None
    prefix: WireStr | None = None


class StageOutHttp(WireModel):
    """An HTTP(S) destination: one PUT per file at ``location/<path below the volume>``; with
    ``webdav: true`` the collections are made first (MKCOL)."""

    location: WireStr | None = None
    webdav: WireBool | None = None


class StageOut(WireModel):
    """Where a storage resource's contents go after the run, and at most how much (GiB)."""

    s3: StageOutS3 | None = None
    http: StageOutHttp | None = None
    size: WireInt | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """A reason for NO, at ``where`` below the ``stageout`` block."""

    type: MessageType
    template: str
    where: Sequence[str | int] = ()
    values: Mapping[str, object] = field(default_factory=dict)


def stage_out_problems(stageout: StageOut, storage_gib: int, policy: PlatformPolicy) -> Iterator[Problem]:
    """Why ``stageout`` (on a storage resource of ``storage_gib``) cannot be promised under
    ``policy``; nothing when it can."""
    if (stageout.s3 is None) == (stageout.http is None):
        yield Problem(
            MessageType.MISSING_VALUE if stageout.s3 is None else MessageType.BAD_VALUE,
            "{path}: name one destination for the results, s3 or http",
        )
    if stageout.s3 is not None:
        s3 = stageout.s3
        if not s3.endpoint:
            yield Problem(MessageType.MISSING_VALUE, "{path}: the S3 endpoint is missing", ("s3", "endpoint"))
        elif policy.data_endpoint(s3.endpoint) is None:
            yield Problem(
                MessageType.UNREACHABLE,
                "{path}: this platform cannot reach the S3 endpoint {endpoint}",
                ("s3", "endpoint"),
                {"endpoint": s3.endpoint},
            )
        if not s3.bucket:
            yield Problem(MessageType.MISSING_VALUE, "{path}: the S3 bucket is missing", ("s3", "bucket"))
    if stageout.http is not None:
        location = stageout.http.location
        if not location:
            yield Problem(MessageType.MISSING_VALUE, "{path}: the location is missing", ("http", "location"))
        elif urlsplit(location).scheme not in ("http", "https") or not urlsplit(location).netloc:
            yield Problem(
                MessageType.UNREACHABLE,
                "{path}: results go out only over HTTP(S), not to {location}",
                ("http", "location"),
                {"location": location},
            )
    if stageout.size is not None and not 1 <= stageout.size <= storage_gib:
        yield Problem(
            MessageType.BAD_VALUE,
            "{path}: between 1 GiB and the storage's {limit} GiB can be staged out, not {value}",
            ("size",),
            {"limit": storage_gib, "value": stageout.size},
        )
    if policy.storage_class_name is None:
        yield Problem(
            MessageType.NOT_SUPPORTED,
            "{path}: results are delivered from a volume claim, and this platform offers none "
            "(no storage class is configured)",
        )


def stage_out_gib(stageout: StageOut | None, storage_gib: int) -> int:
    """The most a storage resource's delivery moves, GiB: the client's ``size`` when it gives one,
    else the whole storage (the volume holds no more)."""
    if stageout is None:
        return 0
    return min(stageout.size, storage_gib) if stageout.size is not None else storage_gib
