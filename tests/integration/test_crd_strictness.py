"""CRDs that refuse typos, against the real API server.

Every level of the generated schemas lists its fields (tests/unit/operator/test_operator_crds.py),
so the API server knows a misspelt field for what it is: with server-side strict field validation
(kubectl's default ``--validate=strict``, or ``fieldValidation=Strict`` from a client) it refuses
the object and names the field. Without it the field is pruned, silently: the broker then runs with
the default the user meant to change, which is why docs/operator.md tells users to keep strict on.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes_asyncio.client import CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException
from tests.support.kube import REPO, Kubectl, unique_name

GROUP, VERSION = "executionbroker.ivoa.net", "v1alpha1"
DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0"


@pytest.fixture(scope="module", autouse=True)
def crds(kube: Kubectl) -> None:
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kube.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))


def platform(name: str, namespace: str | None = None) -> dict[str, Any]:  # cluster-scoped
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ExecutionPlatform",
        "metadata": {"name": name},
        # a selector no node carries: no operator of another test takes this platform to work
        "spec": {"nodeSelector": {f"{GROUP}/pool": name}, "slotSeconds": 60, "limits": {"maxCores": 4}},
    }


def offerset(name: str, namespace: str) -> dict[str, Any]:
    request = {
        "executable": {"type": DOCKER, "image": {"locations": ["eb-workload:latest"]}},
        "schedule": {"requested": {"duration": "PT1M"}},
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OfferSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"owner": "strict-test", "request": request},
    }


def execution(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Execution",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"offerSet": "no-such-set", "desiredPhase": "REJECTED"},
    }


def _misspell(doc: dict[str, Any], path: str, key: str, value: Any) -> dict[str, Any]:
    """``doc`` with ``key: value`` added at ``path`` (dots; a number is a list index)."""
    out = copy.deepcopy(doc)
    node: Any = out
    for part in path.split("."):
        node = node[int(part)] if part.isdigit() else node[part]
    node[key] = value
    return out


Make = Callable[[str, str], dict[str, Any]]  # (name, namespace) -> the object
TYPOS: list[Any] = [
    pytest.param(platform, "spec", "slotSecond", 30, "spec.slotSecond", id="ExecutionPlatform spec"),
    pytest.param(platform, "spec.limits", "maxCore", 8, "spec.limits.maxCore", id="ExecutionPlatform limits"),
    pytest.param(offerset, "spec", "ownr", "x", "spec.ownr", id="OfferSet spec"),
    pytest.param(
        offerset,
        "spec.request.schedule.requested",
        "durration",
        "PT2M",
        "spec.request.schedule.requested.durration",
        id="OfferSet request",
    ),
    pytest.param(execution, "spec", "desiredPhse", "ACCEPTED", "spec.desiredPhse", id="Execution spec"),
]


def _make(make: Make, namespace: str) -> dict[str, Any]:
    return make(unique_name("strict", max_len=30), namespace)


@pytest.mark.parametrize(("make", "path", "key", "value", "field"), TYPOS)
def test_kubectl_apply_refuses_a_misspelt_field_and_names_it(
    kube: Kubectl, namespace: str, make: Make, path: str, key: str, value: Any, field: str
) -> None:
    good = _make(make, namespace)
    bad = _misspell(good, path, key, value)
    kind, name = good["kind"].lower(), good["metadata"]["name"]
    where = None if kind == "executionplatform" else namespace
    proc = kube.run("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert proc.returncode != 0, proc.stdout
    assert f'unknown field "{field}"' in proc.stderr, proc.stderr
    assert not kube.exists(kind, name, where), "nothing was created"
    try:
        kube.run("apply", "-f", "-", input=json.dumps(good))  # the same object, spelt right
        assert kube.exists(kind, name, where)
    finally:
        ns = ["-n", where] if where else []
        kube.run("delete", kind, name, *ns, "--ignore-not-found", "--wait=false", check=False)


def test_without_strict_validation_a_misspelt_field_is_pruned_silently(kube: Kubectl) -> None:
    """What strict validation saves a user from: the object is stored, the field is gone."""
    good = platform(unique_name("strict-ignored", max_len=30))
    bad = _misspell(good, "spec", "slotSecond", 30)
    name = good["metadata"]["name"]
    try:
        proc = kube.run("apply", "--validate=false", "-f", "-", input=json.dumps(bad))
        assert proc.returncode == 0
        stored = kube.get("executionplatform", name)
        assert stored["spec"] == good["spec"], "slotSecond was pruned, slotSeconds kept its value"
    finally:
        kube.run("delete", "executionplatform", name, "--ignore-not-found", "--wait=false", check=False)


@pytest.mark.parametrize(("make", "path", "key", "value", "field"), TYPOS)
async def test_the_python_client_with_strict_field_validation_is_refused_too(
    k8s: Any, namespace: str, make: Make, path: str, key: str, value: Any, field: str
) -> None:
    bad = _misspell(_make(make, namespace), path, key, value)
    api = CustomObjectsApi(k8s)
    plural = bad["kind"].lower() + "s"
    strict = {"field_validation": "Strict"}
    create = (
        api.create_cluster_custom_object(GROUP, VERSION, plural, bad, **strict)
        if bad["kind"] == "ExecutionPlatform"
        else api.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, bad, **strict)
    )
    with pytest.raises(ApiException) as e:
        await create
    assert e.value.status == 400
    message = json.loads(e.value.body)["message"]
    assert f'unknown field "{field}"' in message, message
