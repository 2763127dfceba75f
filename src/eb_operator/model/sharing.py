"""Sharing one platform between many users: the policy's limits, group shares, image rules and
per-owner namespaces (the ``sharing`` and ``namespaces`` fields of the ExecutionPlatform spec).

Who a caller is comes from the REST API: ``spec.owner`` (the authenticated user) and
``spec.groups`` (TokenReview's ``user.groups``, or the static-token Secret's groups column) on
every OfferSet and Execution it writes. A caller is charged to the first listed group it is a
member of (:meth:`Sharing.group_of`), or to the implicit group :data:`OTHER` when it is in none.

Capacity limits can be absolute numbers or a percentage of the platform (``"10%"``): of its cores
(or GPUs) for what is held at once, of its cores (GPUs) times the look-ahead horizon for
core-seconds (GPU-seconds), so the defaults scale with the platform. Docs: docs/operator.md,
"Sharing a platform".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator, model_validator

from eb_operator.model.policy_base import PolicyModel

#: The group of callers in none of the listed groups (and of objects without groups).
OTHER = "other"

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")

Amount = int | str
"""A capacity limit: an absolute number, or a percentage of the platform such as ``"10%"``."""


def _check_amount(value: Any) -> Any:
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match is None or float(match.group(1)) > 100:
            raise ValueError(f"{value!r} is neither a number nor a percentage such as '10%'")
    elif isinstance(value, int) and value < 0:
        raise ValueError("a limit cannot be negative")
    return value


def resolve_amount(value: Amount | None, whole: float) -> float | None:
    """An amount in absolute terms: a number as is, a percentage of ``whole``; None: no limit."""
    if value is None:
        return None
    if isinstance(value, str):
        match = _PERCENT.match(value)
        assert match is not None  # checked on input
        return float(match.group(1)) / 100.0 * whole
    return float(value)


class Limits(PolicyModel):
    """What one owner (``ownerLimits``) or one group together (``limits``) may hold. A field left
    unset is no limit (in a group's ``ownerLimits``: the platform's ``sharing.ownerLimits``)."""

    requests_per_second: float | None = Field(
        default=None, gt=0, description="Sustained rate of POST /offersets (and /direct) answered."
    )
    request_burst: int | None = Field(
        default=None, ge=1, description="Requests answered at once before the rate applies."
    )
    offer_sets: int | None = Field(
        default=None, ge=0, description="Answered offer sets whose offers are still held (not accepted)."
    )
    offered_core_seconds: Amount | None = Field(
        default=None,
        description="Cores x seconds held by unaccepted offers (a number, or a percentage of the "
        "platform's cores x horizonSeconds).",
    )
    offered_gpu_seconds: Amount | None = Field(
        default=None,
        description="GPUs x seconds held by unaccepted offers (a number, or a percentage of the "
        "platform's GPUs x horizonSeconds).",
    )
    sessions: int | None = Field(
        default=None, ge=0, description="Accepted sessions not yet in a final phase."
    )
    session_cores: Amount | None = Field(
        default=None,
        description="Cores held by accepted sessions (a number, or a percentage of the platform's cores).",
    )
    session_gpus: Amount | None = Field(
        default=None,
        description="GPUs held by accepted sessions (a number, or a percentage of the platform's GPUs).",
    )

    @field_validator(
        "offered_core_seconds", "offered_gpu_seconds", "session_cores", "session_gpus", mode="before"
    )
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return _check_amount(value)

    def over(self, defaults: Limits) -> Limits:
        """These limits, with every unset field taken from ``defaults``."""
        mine = self.model_dump(exclude_none=True)
        return Limits.model_validate({**defaults.model_dump(exclude_none=True), **mine})


def default_owner_limits() -> Limits:
    """Each owner's limits unless the policy says otherwise: one user stays well below the whole
    platform (a tenth of what can be offered, a quarter of it in sessions)."""
    return Limits(
        requests_per_second=5.0,
        request_burst=20,
        offer_sets=20,
        offered_core_seconds="10%",
        offered_gpu_seconds="10%",
        sessions=20,
        session_cores="25%",
        session_gpus="25%",
    )


class GroupPolicy(PolicyModel):
    """One group of callers: its share of the platform, its limits and the images it may run."""

    name: str = Field(
        min_length=1, description="The group's name as TokenReview or the static tokens give it."
    )
    share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Fraction of the platform's core- and GPU-seconds guaranteed to the group; it may "
        "borrow what others leave idle, and what it holds in unaccepted offers beyond its share can "
        "be taken back for a group under its own.",
    )
    limits: Limits = Field(default_factory=Limits, description="What the group's members hold together.")
    owner_limits: Limits = Field(
        default_factory=Limits, description="What each member may hold (unset fields: sharing.ownerLimits)."
    )
    allowed_images: list[str] | None = Field(
        default=None,
        description="Image prefixes the group may run (registry/, registry/path/, name:tag, ...); "
        "unset: sharing.allowedImages.",
    )


class Sharing(PolicyModel):
    owner_limits: Limits = Field(
        default_factory=default_owner_limits, description="What each owner may hold (defaults shown)."
    )
    groups: list[GroupPolicy] = Field(
        default_factory=list,
        description="Groups in order of precedence: a caller is in the first it belongs to.",
    )
    other_limits: Limits = Field(
        default_factory=Limits, description="What callers in none of the groups hold together."
    )
    allowed_images: list[str] | None = Field(
        default=None,
        description="Image prefixes callers may run unless their group says otherwise; unset: any image.",
    )

    @model_validator(mode="after")
    def _check(self) -> Sharing:
        names = [g.name for g in self.groups]
        if len(names) != len(set(names)):
            raise ValueError("sharing.groups names must be unique")
        if OTHER in names:
            raise ValueError(f"{OTHER!r} is the group of callers in no listed group; choose another name")
        if sum(g.share or 0.0 for g in self.groups) > 1.0 + 1e-9:
            raise ValueError("the groups' shares add up to more than 1")
        return self

    def group_of(self, groups: Sequence[str] | None) -> str:
        """The group a caller with these groups is charged to: the first listed one it is in."""
        member = set(groups or ())
        for g in self.groups:
            if g.name in member:
                return g.name
        return OTHER

    def group(self, name: str) -> GroupPolicy | None:
        return next((g for g in self.groups if g.name == name), None)

    @property
    def shares_set(self) -> bool:
        """Whether any group has a share (fair sharing is off otherwise)."""
        return any(g.share is not None for g in self.groups)

    def share_of(self, name: str) -> float:
        """The group's share; callers in no group share what the groups leave."""
        if name == OTHER:
            return max(0.0, 1.0 - sum(g.share or 0.0 for g in self.groups))
        found = self.group(name)
        return (found.share or 0.0) if found is not None else 0.0

    def limits_of(self, name: str) -> Limits:
        """What group ``name``'s members hold together."""
        if name == OTHER:
            return self.other_limits
        found = self.group(name)
        return found.limits if found is not None else Limits()

    def owner_limits_of(self, name: str) -> Limits:
        """What each member of group ``name`` may hold."""
        found = self.group(name)
        return found.owner_limits.over(self.owner_limits) if found is not None else self.owner_limits

    def images_of(self, name: str) -> list[str] | None:
        """Image prefixes group ``name`` may run; None: any."""
        found = self.group(name)
        if found is not None and found.allowed_images is not None:
            return found.allowed_images
        return self.allowed_images


class LabelRequirement(PolicyModel):
    key: str
    operator: str = Field(pattern=r"^(In|NotIn|Exists|DoesNotExist)$")
    values: list[str] | None = None


class LabelSelector(PolicyModel):
    """A Kubernetes label selector."""

    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelRequirement] | None = None


class IpBlock(PolicyModel):
    cidr: str
    except_: list[str] | None = Field(default=None, alias="except")


class NetworkPeer(PolicyModel):
    """A NetworkPolicy peer (``spec.ingress[].from[]``), as Kubernetes writes it."""

    namespace_selector: LabelSelector | None = None
    pod_selector: LabelSelector | None = None
    ip_block: IpBlock | None = None


class Namespaces(PolicyModel):
    """Where the children (Pods, Services, Secrets, routes, volume claims) of REST sessions run."""

    per_owner: bool = Field(
        default=True,
        description="Run each owner's sessions in a namespace of its own (REST sessions only; a "
        "kubectl user's Execution keeps its children in its own namespace).",
    )
    prefix: str = Field(
        default="eb-",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,14})$",
        description="Start of every per-owner namespace's name.",
    )
    empty_grace_seconds: int = Field(
        default=600, ge=0, description="How long a per-owner namespace stays once it holds nothing."
    )
    ingress_from: list[NetworkPeer] = Field(
        default_factory=list,
        description="NetworkPolicy peers (from[] items) besides the owner's own namespace that may "
        "open connections to session Pods: the ingress controller's namespace, e.g. "
        "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}}.",
    )
