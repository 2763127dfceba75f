"""Sharing a platform, the pure parts: per-owner namespace names, image prefixes, the policy's
groups, limits and shares, and the image judge."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError
from tests.support.wire import docker, notebook, request, singularity

from eb_operator.model import MessageLevel, MessageType, judge_images, parse_offerset_request
from eb_operator.model.platform import Images, PlatformPolicy
from eb_operator.model.sharing import OTHER, GroupPolicy, Limits, Namespaces, Sharing, resolve_amount
from eb_operator.model.tenancy import (
    image_allowed,
    normalize_image,
    owner_label,
    owner_namespace,
    session_namespace,
)

pytestmark = pytest.mark.unit

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


# --- namespaces --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "owner",
    [
        "alice",
        "Alice",
        "system:serviceaccount:science:gateway",
        "https://idp.example.org/#alice@example.org",
        "x" * 300,
        "::::",
        "élodie",
    ],
)
def test_an_owner_namespace_is_a_dns_label_with_the_prefix(owner: str) -> None:
    name = owner_namespace(owner, "eb-")
    assert name.startswith("eb-")
    assert len(name) <= 63
    assert DNS_LABEL.match(name), name
    label = owner_label(owner)
    assert len(label) <= 63
    assert LABEL_VALUE.match(label), label


def test_owners_that_differ_only_in_case_or_punctuation_get_different_namespaces() -> None:
    names = {owner_namespace(o) for o in ("alice", "Alice", "a.lice", "a-lice", "alice ", "x" * 100 + "1")}
    names.add(owner_namespace("x" * 100 + "2"))
    assert len(names) == 7


def test_an_owner_namespace_is_readable_and_stable() -> None:
    assert owner_namespace("system:serviceaccount:science:gateway", "eb-") == owner_namespace(
        "system:serviceaccount:science:gateway", "eb-"
    )
    assert owner_namespace("system:serviceaccount:science:gateway").startswith(
        "eb-system-serviceaccount-science-gateway-"
    )


def test_rest_sessions_run_in_their_owner_namespace_kubectl_ones_beside_their_execution() -> None:
    policy = Namespaces(prefix="t1-")
    assert session_namespace("broker", "alice", "broker", policy) == owner_namespace("alice", "t1-")
    assert session_namespace("team-x", "alice", "broker", policy) == "team-x"  # a kubectl user's
    assert session_namespace("broker", None, "broker", policy) == "broker"  # no owner
    assert session_namespace("broker", "alice", None, policy) == "broker"  # no sessions namespace set
    assert session_namespace("broker", "alice", "broker", Namespaces(per_owner=False)) == "broker"


# --- images ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "normalized"),
    [
        ("python:3.12", "docker.io/library/python:3.12"),
        ("library/python", "docker.io/library/python"),
        ("me/app:1", "docker.io/me/app:1"),
        ("registry.example.org/astro/app:1", "registry.example.org/astro/app:1"),
        ("localhost:5000/app", "localhost:5000/app"),
        ("docker://python:3", "docker.io/library/python:3"),
        ("https://images.example.org/a.sif", "https://images.example.org/a.sif"),
        ("oras://registry.example.org/a:1", "oras://registry.example.org/a:1"),
    ],
)
def test_image_references_are_read_with_dockers_defaults(reference: str, normalized: str) -> None:
    assert normalize_image(reference) == normalized


@pytest.mark.parametrize(
    ("image", "prefixes", "allowed"),
    [
        ("anything:1", None, True),
        ("anything:1", [], False),
        ("registry.example.org/astro/app:1", ["registry.example.org/astro"], True),
        ("registry.example.org/astro:2", ["registry.example.org/astro"], True),
        ("registry.example.org/astronomy/app", ["registry.example.org/astro"], False),
        ("registry.example.org/astronomy/app", ["registry.example.org/astro/"], False),
        ("python:3.12", ["python"], True),
        ("docker.io/library/python:3.12", ["python"], True),
        ("pythonx:1", ["python"], False),
        ("me/app", ["docker.io/"], True),
        ("quay.io/me/app", ["docker.io/"], False),
        ("me/app", ["me/"], True),
        ("someone/app", ["me/"], False),
        ("eb-workload:latest", ["eb-workload"], True),
        ("eb-workload@sha256:abc", ["eb-workload"], True),
        ("https://images.example.org/a.sif", ["https://images.example.org/"], True),
        ("https://images.example.org.evil.net/a.sif", ["https://images.example.org"], False),
        ("docker://quay.io/me/app:1", ["quay.io/"], True),
    ],
)
def test_an_image_is_allowed_only_under_a_prefix_at_a_boundary(
    image: str, prefixes: list[str] | None, allowed: bool
) -> None:
    assert image_allowed(image, prefixes) is allowed


# --- the policy ----------------------------------------------------------------------------------


def test_a_caller_is_charged_to_the_first_listed_group_it_is_in() -> None:
    sharing = Sharing(groups=[GroupPolicy(name="astro"), GroupPolicy(name="students")])
    assert sharing.group_of(["students", "astro"]) == "astro"
    assert sharing.group_of(["students"]) == "students"
    assert sharing.group_of(["system:authenticated"]) == OTHER
    assert sharing.group_of(None) == OTHER


def test_callers_in_no_group_share_what_the_groups_leave() -> None:
    sharing = Sharing(groups=[GroupPolicy(name="a", share=0.5), GroupPolicy(name="b", share=0.3)])
    assert sharing.share_of("a") == 0.5
    assert sharing.share_of(OTHER) == pytest.approx(0.2)
    assert sharing.shares_set
    assert not Sharing().shares_set


@pytest.mark.parametrize(
    "spec",
    [
        {"groups": [{"name": "a", "share": 0.7}, {"name": "b", "share": 0.4}]},
        {"groups": [{"name": "a"}, {"name": "a"}]},
        {"groups": [{"name": OTHER}]},
        {"ownerLimits": {"sessionCores": "ten"}},
        {"ownerLimits": {"sessionCores": "150%"}},
        {"ownerLimits": {"offerSets": -1}},
        {"ownerLimits": {"sessionCores": -1}},
        {"ownerLimits": {"maxCores": 3}},
    ],
)
def test_a_sharing_policy_that_makes_no_sense_is_refused(spec: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Sharing.model_validate(spec)


def test_a_groups_member_limits_fall_back_field_by_field_to_the_platforms() -> None:
    sharing = Sharing.model_validate(
        {
            "ownerLimits": {"offerSets": 5, "sessions": 2, "sessionCores": "10%"},
            "groups": [{"name": "astro", "ownerLimits": {"offerSets": 50}, "limits": {"sessions": 30}}],
        }
    )
    member = sharing.owner_limits_of("astro")
    assert (member.offer_sets, member.sessions, member.session_cores) == (50, 2, "10%")
    assert sharing.owner_limits_of(OTHER).offer_sets == 5
    assert sharing.limits_of("astro").sessions == 30
    assert sharing.limits_of(OTHER) == Limits()


def test_the_defaults_keep_one_owner_well_below_the_platform_and_groups_unlimited() -> None:
    policy = PlatformPolicy()
    limits = policy.sharing.owner_limits
    assert resolve_amount(limits.session_cores, 1000) == 250
    assert resolve_amount(limits.offered_core_seconds, 1000) == 100
    assert limits.requests_per_second is not None
    assert limits.offer_sets is not None
    assert policy.sharing.limits_of(OTHER) == Limits()
    assert policy.sharing.allowed_images is None
    assert policy.namespaces.per_owner


def test_amounts_are_numbers_or_percentages_of_the_platform() -> None:
    assert resolve_amount(None, 64) is None
    assert resolve_amount(12, 64) == 12
    assert resolve_amount("25%", 64) == 16
    assert resolve_amount(" 12.5 % ", 80) == 10


def test_the_policy_reads_and_writes_camel_case() -> None:
    ingress = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}]
    spec = {
        "sharing": {
            "ownerLimits": {"requestsPerSecond": 2.5, "requestBurst": 5, "offeredCoreSeconds": "5%"},
            "groups": [{"name": "astro", "share": 0.6, "allowedImages": ["registry.example.org/astro/"]}],
            "allowedImages": ["eb-workload"],
        },
        "namespaces": {
            "prefix": "sci-",
            "ingressFrom": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}
            ],
        },
    }
    policy = PlatformPolicy.model_validate(spec)
    assert policy.sharing.images_of("astro") == ["registry.example.org/astro/"]
    assert policy.sharing.images_of(OTHER) == ["eb-workload"]
    dumped = policy.model_dump(by_alias=True, exclude_none=True)
    assert dumped["namespaces"]["ingressFrom"] == ingress
    assert dumped["sharing"]["groups"][0]["share"] == 0.6


# --- the image judge -----------------------------------------------------------------------------

ASTRO = PlatformPolicy(
    images=Images(notebook="registry.example.org/astro/notebook:1", apptainer="eb-apptainer:1"),
    sharing=Sharing(
        groups=[GroupPolicy(name="astro", allowed_images=["registry.example.org/astro/"])],
        allowed_images=["eb-workload"],
    ),
)


def _judge(executable: dict[str, object], group: str) -> list[str]:
    req, _ = parse_offerset_request(request(executable=executable))
    found = judge_images(req, ASTRO, group)
    assert all(m.level == MessageLevel.ERROR and m.type == MessageType.IMAGE_NOT_ALLOWED for m in found)
    return [str(m.message) for m in found]


def test_a_container_image_outside_the_groups_prefixes_is_refused_naming_both() -> None:
    [message] = _judge(docker("docker.io/evil/miner:1"), "astro")
    assert "executable/image/locations/0" in message
    assert "docker.io/evil/miner:1" in message
    assert "group astro" in message
    assert "registry.example.org/astro/" in message
    assert _judge(docker("registry.example.org/astro/app:2"), "astro") == []


def test_callers_in_no_group_get_the_platforms_list() -> None:
    assert _judge(docker("eb-workload:latest"), OTHER) == []
    [message] = _judge(docker("registry.example.org/astro/app:2"), OTHER)
    assert "callers in no listed group" in message


def test_singularity_images_and_notebook_servers_follow_the_same_policy() -> None:
    [message] = _judge(singularity("https://images.example.org/a.sif"), "astro")
    assert "executable/location" in message
    assert "Singularity image" in message
    assert _judge(singularity("docker://registry.example.org/astro/a:1"), "astro") == []
    assert _judge(notebook(), "astro") == []  # the platform's notebook server is under astro's prefix
    [message] = _judge(notebook(), OTHER)
    assert "notebook server image registry.example.org/astro/notebook:1" in message


def test_without_an_image_policy_any_image_runs() -> None:
    req, _ = parse_offerset_request(request(executable=docker("anything/at:all")))
    assert judge_images(req, PlatformPolicy(), OTHER) == []
