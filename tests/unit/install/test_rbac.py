"""The RBAC in manifests/ (which the chart reads, see test_install_copies.py) grants exactly the
API calls the code makes: every verb used is granted, and nothing is granted that is not used.

What the code calls is read from the source, not listed by hand: every call of a
kubernetes_asyncio API method in ``eb_operator.cluster`` is followed from the operator's and the
API's call sites (the resource a wrapper is called with is resolved from constants and literals
through the wrappers' parameters), plus the operator's feeds (``Feed(cluster, path, ...)``: a
list and a watch of that path) and kopf's peering. A new API call, or a wrapper whose resource
cannot be resolved, fails here until it is understood and granted.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from eb_operator.cluster import crs, objects, rest_store
from eb_operator.operator import leadership

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
SRC = REPO / "src" / "eb_operator"
GROUP = "executionbroker.ivoa.net"
# kopf's peering (handlers.configure: peering "eb-operator", cluster-wide) reads, watches and
# patches its ClusterKopfPeering; documented by kopf, not visible as calls in our code.
KOPF_PEERING = {("kopf.dev", "clusterkopfpeerings", v, "cluster") for v in ("get", "list", "watch", "patch")}

Need = tuple[str, str, str, str]  # apiGroup, resource, verb, scope ("cluster" or "namespace")

VERBS = {
    "create": "create",
    "read": "get",
    "get": "get",
    "list": "list",
    "patch": "patch",
    "replace": "update",
    "delete": "delete",
    "delete_collection": "deletecollection",
}
CUSTOM = re.compile(r"^(create|get|list|patch|replace|delete)_(namespaced|cluster)_custom_object(_status)?$")
CORE = re.compile(
    r"^(create|read|list|patch|replace|delete_collection|delete)_(namespaced_)?([a-z_]+?)(_for_all_namespaces)?$"
)
CORE_GROUPS = {
    "token_review": "authentication.k8s.io",
    "role_binding": "rbac.authorization.k8s.io",
    "network_policy": "networking.k8s.io",
}
CLUSTER_SCOPED = {"nodes", "tokenreviews", "namespaces"}
#: Creating a RoleBinding to a ClusterRole one does not hold in full there needs ``bind`` on it
#: (Kubernetes' escalation check): the operator binds its workloads role in owner namespaces.
BIND = ("rbac.authorization.k8s.io", "clusterroles", "bind", "cluster")


#: Subresources read through their own client methods: ``read_namespaced_pod_log`` is ``pods/log``.
SUBRESOURCES = {"pod_log": "pods/log"}


def resource_of(kind: str) -> str:
    """``persistent_volume_claim`` or ``PersistentVolumeClaim`` -> ``persistentvolumeclaims``;
    ``network_policy`` -> ``networkpolicies``; ``pod_log`` -> ``pods/log``."""
    if kind in SUBRESOURCES:
        return SUBRESOURCES[kind]
    name = kind.replace("_", "").lower()
    return name[:-1] + "ies" if name.endswith("y") else name + "s"


# --- what the code calls ---------------------------------------------------------------------------


@dataclass
class Module:
    path: Path
    tree: ast.Module
    constants: Mapping[str, Any]
    # top-level functions; methods of its classes (the first of each name)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, namespace: Mapping[str, Any]) -> Module:
        tree = ast.parse(path.read_text())
        m = cls(path, tree, namespace)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                m.functions[node.name] = node
            if isinstance(node, ast.ClassDef):
                for f in node.body:
                    if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        m.methods.setdefault(f.name, f)
        return m


CLUSTER = Module.load(SRC / "cluster" / "crs.py", vars(crs))
OBJECTS = Module.load(SRC / "cluster" / "objects.py", vars(objects))
STORE = Module.load(SRC / "cluster" / "rest_store.py", vars(rest_store))


def value(expr: ast.expr, bound: Mapping[str, str | None], module: Module) -> str | None:
    """A string the expression certainly has: a literal, a module constant, a bound parameter."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    if isinstance(expr, ast.Name):
        if expr.id in bound:
            return bound[expr.id]
        found = module.constants.get(expr.id)
        return found if isinstance(found, str) else None
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.args:
        inner = value(expr.args[0], bound, module)
        if expr.func.id == "str":
            return inner
        if expr.func.id == "cr_path":  # the list path of one of our resources
            return crs.cr_path(inner) if inner is not None else None
    return None


def bind(
    fn: ast.FunctionDef | ast.AsyncFunctionDef, call: ast.Call, bound: Mapping[str, str | None], at: Module
) -> dict[str, str | None]:
    """``fn``'s parameters as ``call`` passes them (a method's self is in neither)."""
    params = [a.arg for a in fn.args.args if a.arg not in ("self", "cls")]
    out: dict[str, str | None] = dict.fromkeys(params + [a.arg for a in fn.args.kwonlyargs])
    for name, arg in zip(params, call.args, strict=False):
        out[name] = value(arg, bound, at)
    for kw in call.keywords:
        if kw.arg is not None:
            literal = isinstance(kw.value, ast.Constant) and not isinstance(kw.value.value, str)
            out[kw.arg] = ast.unparse(kw.value) if literal else value(kw.value, bound, at)
    return out


def client_call(call: ast.Call, bound: Mapping[str, str | None], module: Module) -> Iterator[Need]:
    """The needs of one call of a kubernetes_asyncio method (or of the dynamic helpers)."""
    assert isinstance(call.func, ast.Attribute)
    method = call.func.attr
    custom = CUSTOM.match(method)
    if custom:
        verb, scope, status = VERBS[custom.group(1)], custom.group(2), custom.group(3)
        plural = value(call.args[3 if scope == "namespaced" else 2], bound, module)
        assert plural is not None, f"{module.path.name}: the plural of {method} is not resolved"
        resource = plural + ("/status" if status else "")
        where = "cluster" if scope == "cluster" else "namespace"
        yield (GROUP, resource, verb, where)
        if any(k.arg == "watch" for k in call.keywords):
            yield (GROUP, resource, "watch", where)
        return
    core = CORE.match(method)
    assert core, method
    kind = core.group(3)
    resource = resource_of(kind)
    cluster_wide = bool(core.group(4)) or resource in CLUSTER_SCOPED
    yield (
        CORE_GROUPS.get(kind, ""),
        resource,
        VERBS[core.group(1)],
        "cluster" if cluster_wide else "namespace",
    )


#: Attributes holding kubernetes_asyncio API objects (Cluster.core/.custom/.api, RestStore._co,
#: ._authn and ._core, _Watcher.api).
CLIENTS = ("core", "custom", "api", "_co", "_authn", "_core", "rbac", "networking")


def is_client(call: ast.Call) -> bool:
    f = call.func
    if not isinstance(f, ast.Attribute) or not (CUSTOM.match(f.attr) or CORE.match(f.attr)):
        return False
    return isinstance(f.value, ast.Attribute) and f.value.attr in CLIENTS


def chosen_methods(
    fn: ast.FunctionDef | ast.AsyncFunctionDef, bound: Mapping[str, str | None]
) -> dict[tuple[str, int], list[str]]:
    """``f = c.a_status if status else c.a``: the client methods a local name may hold, the branch
    chosen when the test is a parameter with a known literal value (``status=True``)."""
    out: dict[tuple[str, int], list[str]] = {}
    for node in ast.walk(fn):
        if not (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        ):
            continue
        v = node.value
        if (
            isinstance(v, ast.IfExp)
            and isinstance(v.body, ast.Attribute)
            and isinstance(v.orelse, ast.Attribute)
        ):
            test = bound.get(v.test.id) if isinstance(v.test, ast.Name) else None
            branches = {"True": [v.body.attr], "False": [v.orelse.attr], None: [v.body.attr, v.orelse.attr]}
            out[(node.targets[0].id, node.lineno)] = branches.get(test, branches[None])
    return out


def assigned(chosen: Mapping[tuple[str, int], list[str]], name: str, line: int) -> list[str] | None:
    """What ``name`` holds at ``line``: its last assignment above."""
    above = [(at, methods) for (n, at), methods in chosen.items() if n == name and at < line]
    return max(above)[1] if above else None


def needs_of(
    fn: ast.FunctionDef | ast.AsyncFunctionDef,
    bound: Mapping[str, str | None],
    module: Module,
    depth: int = 0,
) -> Iterator[Need]:
    """Every API call ``fn`` makes with these arguments, following calls into the same module."""
    assert depth < 8, f"{module.path.name}: {fn.name} recurses"
    chosen = chosen_methods(fn, bound)
    for node in ast.walk(fn):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id == "_method":  # objects._method(cluster, verb, kind)
            verb = value(node.args[1], bound, module)
            kind = value(node.args[2], bound, module)
            assert verb is not None
            # a kind known only at run time (create_if_absent(body)): any kind the helper serves
            for k in [kind] if kind else list(objects._KINDS):
                group = CORE_GROUPS.get(objects._KINDS[k], "")
                yield (group, resource_of(k), VERBS[verb], "namespace")
        elif isinstance(f, ast.Name) and f.id == "_route_call":  # _route_call(cluster, verb, kind, ...)
            verb = value(node.args[1], bound, module)
            kind = value(node.args[2], bound, module)
            assert verb is not None
            # a kind known only at run time (put_route(body)): every route kind
            for k in [kind] if kind else list(objects.ROUTE_KINDS):
                group, _, plural = objects.ROUTE_KINDS[k]
                yield (group, plural, VERBS[verb], "namespace")
        elif (callee := _same_module_callee(node, module)) is not None:
            yield from needs_of(callee, bind(callee, node, bound, module), module, depth + 1)
        elif is_client(node):
            yield from client_call(node, bound, module)
        elif isinstance(f, ast.Name) and assigned(chosen, f.id, node.lineno):
            for method in assigned(chosen, f.id, node.lineno) or []:
                call = ast.Call(ast.Attribute(ast.Name("c"), method), node.args, node.keywords)
                yield from client_call(call, bound, module)
        elif isinstance(f, ast.Attribute) and f.attr == "call_api":  # Cluster.list_raw: GET a collection
            path = value(node.args[0], bound, module)
            assert path is not None, "list_raw of an unresolved path"
            assert "/namespaces/" not in path, f"list_raw of {path!r}"
            group = path.split("/")[2] if path.startswith("/apis/") else ""  # /apis/GROUP/VERSION/plural
            yield (group, path.rsplit("/", 1)[1], "list", "cluster")


def _same_module_callee(call: ast.Call, module: Module) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    f = call.func
    if isinstance(f, ast.Name):
        return module.functions.get(f.id)
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "self":
        return module.methods.get(f.attr)
    return None


def operator_needs() -> set[Need]:
    """The operator: its calls of Cluster methods and of ``objects`` functions, and kopf."""
    needs: set[Need] = set(KOPF_PEERING)
    unknown = []
    for path in sorted((SRC / "operator").glob("*.py")):
        module = Module.load(path, vars(crs) | vars(objects) | vars(leadership))
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            f = node.func
            target = ast.unparse(f.value)
            if target == "objects":
                lib = OBJECTS
            elif target.endswith("cluster"):
                lib = CLUSTER
            else:
                continue
            fn = (lib.methods if lib is CLUSTER else lib.functions).get(f.attr)
            if fn is None:
                unknown.append(f"{path.name}: {ast.unparse(f)}")
                continue
            # a method's self is in neither the call nor bind(); a module function's cluster is in both
            needs |= set(needs_of(fn, bind(fn, node, {}, module), lib))
        needs |= set(feed_watches(module))
    assert not unknown, f"calls into the cluster layer this test cannot follow: {unknown}"
    if any(n[:3] == ("rbac.authorization.k8s.io", "rolebindings", "create") for n in needs):
        needs.add(BIND)
    return needs


def feed_watches(module: Module) -> Iterator[Need]:
    """``Feed(cluster, path, ...)``: the operator lists and watches ``path`` cluster-wide."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "Feed":
            path = value(node.args[1], {}, module)
            assert path is not None, f"{module.path.name}: a Feed of an unresolved path"
            group = path.split("/")[2] if path.startswith("/apis/") else ""
            yield from ((group, path.rsplit("/", 1)[1], verb, "cluster") for verb in ("list", "watch"))


def api_needs() -> set[Need]:
    """The REST API reaches the cluster only through RestStore (rest_store.py): every client call
    there, with the plurals its wrappers are called with."""
    needs: set[Need] = set()
    wrappers = {"_get", "_create", "_delete"}
    for node in ast.walk(STORE.tree):
        if not isinstance(node, ast.Call):
            continue
        name = _same_module_callee(node, STORE)
        # (a Wait's own argument-less self._get() is another method of that name: no API call)
        if name is not None and name.name in wrappers and node.args:
            needs |= set(needs_of(name, bind(name, node, {}, STORE), STORE))
        if isinstance(node.func, ast.Name) and node.func.id == "_Watcher":  # _Watcher(api, ns, PLURAL)
            plural = value(node.args[2], {}, STORE)
            assert plural is not None
            cls = next(
                n for n in ast.walk(STORE.tree) if isinstance(n, ast.ClassDef) and n.name == "_Watcher"
            )
            for method in (n for n in cls.body if isinstance(n, ast.AsyncFunctionDef)):
                for call in (c for c in ast.walk(method) if isinstance(c, ast.Call) and is_client(c)):
                    patched = ast.Call(call.func, [*call.args[:3], ast.Constant(plural)], call.keywords)
                    needs |= set(client_call(patched, {}, STORE))
    skip = wrappers | {"_list", "_watch"}
    for fn in (n for n in ast.walk(STORE.tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        if fn.name in skip:  # their plural is a parameter, resolved above
            continue
        for call in (c for c in ast.walk(fn) if isinstance(c, ast.Call) and is_client(c)):
            needs |= set(client_call(call, {}, STORE))
    return needs


# --- what is granted -----------------------------------------------------------------------------


def grants(path: Path, account: str) -> set[Need]:
    """(group, resource, verb, scope) the ServiceAccount ``account`` gets from the file's bindings:
    a ClusterRoleBinding grants cluster-wide, a RoleBinding in its namespace only."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    roles = {
        (d["kind"], d["metadata"]["name"]): d.get("rules") or []
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
    }
    out: set[Need] = set()
    for d in docs:
        if d["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s["kind"] == "ServiceAccount" and s["name"] == account for s in d["subjects"]):
            continue
        scope = "cluster" if d["kind"] == "ClusterRoleBinding" else "namespace"
        for rule in roles[(d["roleRef"]["kind"], d["roleRef"]["name"])]:
            for g in rule["apiGroups"]:
                for r in rule["resources"]:
                    out |= {(g, r, v, scope) for v in rule["verbs"]}
    return out


def missing(needed: set[Need], granted: set[Need]) -> list[Need]:
    """Needs no grant covers (a cluster-wide grant covers a namespaced need too)."""
    return sorted(n for n in needed if n not in granted and (n[0], n[1], n[2], "cluster") not in granted)


def unused(needed: set[Need], granted: set[Need]) -> list[Need]:
    used = {n[:3] for n in needed}
    return sorted(g for g in granted if g[:3] not in used)


OPERATOR_RBAC = REPO / "manifests" / "rbac.yaml"
PEERS_RBAC = REPO / "manifests" / "peers-rbac.yaml"  # the operator's, for peer brokers
API_RBAC = REPO / "manifests" / "api-rbac.yaml"


def operator_grants(directory: Path = REPO / "manifests") -> set[Need]:
    return grants(directory / OPERATOR_RBAC.name, "eb-operator") | grants(
        directory / PEERS_RBAC.name, "eb-operator"
    )


def test_the_operator_is_granted_every_call_it_makes() -> None:
    assert missing(operator_needs(), operator_grants()) == []


def test_the_operator_is_granted_nothing_it_does_not_use() -> None:
    assert unused(operator_needs(), operator_grants()) == []


def test_the_api_is_granted_every_call_it_makes_and_nothing_more() -> None:
    needed, granted = api_needs(), grants(API_RBAC, "eb-api")
    assert missing(needed, granted) == []
    assert unused(needed, granted) == []


def test_the_apis_log_role_for_owner_namespaces_grants_its_log_reads_only() -> None:
    """The ClusterRole the operator binds to the API in each owner namespace it makes (where a
    REST session's Pod runs): exactly the API's reads of a Pod's log, bound nowhere by the files
    themselves, and the operator may bind it (and, besides its own workloads role, nothing else)."""
    api_docs = [d for d in yaml.safe_load_all(API_RBAC.read_text()) if d]
    [role] = [d for d in api_docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "eb-api-logs"]
    granted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    log_reads = {n[:3] for n in api_needs() if n[1] == "pods/log"}
    assert log_reads == {("", "pods/log", "get")}
    assert granted == log_reads
    assert not [d for d in api_docs if d.get("roleRef", {}).get("name") == "eb-api-logs"]
    operator_docs = [d for d in yaml.safe_load_all(OPERATOR_RBAC.read_text()) if d]
    binds = [
        rule
        for d in operator_docs
        if d["kind"] == "ClusterRole"
        for rule in d["rules"]
        if "bind" in rule["verbs"]
    ]
    assert binds == [
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles"],
            "verbs": ["bind"],
            "resourceNames": ["eb-operator-workloads", "eb-api-logs"],
        }
    ]


def test_the_analysis_sees_the_calls_it_must() -> None:
    """A guard on the analysis itself: calls known to exist are found, with their scope."""
    needs = operator_needs()
    for expected in [
        ("", "pods", "create", "namespace"),
        ("", "persistentvolumeclaims", "list", "cluster"),
        ("", "persistentvolumeclaims", "delete", "namespace"),
        ("", "secrets", "create", "namespace"),
        ("", "services", "create", "namespace"),
        ("", "services", "delete", "namespace"),
        ("networking.k8s.io", "ingresses", "update", "namespace"),
        ("gateway.networking.k8s.io", "httproutes", "delete", "namespace"),
        ("traefik.io", "middlewares", "create", "namespace"),
        ("", "nodes", "list", "cluster"),
        (GROUP, "executions/status", "patch", "namespace"),
        (GROUP, "executions", "watch", "cluster"),
        ("", "events", "create", "namespace"),
        (GROUP, "brokerpeers", "list", "namespace"),
        (GROUP, "brokerpeers/status", "patch", "namespace"),
        ("", "namespaces", "create", "cluster"),
        ("", "namespaces", "delete", "cluster"),
        ("rbac.authorization.k8s.io", "rolebindings", "create", "namespace"),
        ("networking.k8s.io", "networkpolicies", "update", "namespace"),
        ("", "secrets", "deletecollection", "namespace"),
        BIND,
    ]:
        assert expected in needs, expected
    assert ("authentication.k8s.io", "tokenreviews", "create", "cluster") in api_needs()


def test_a_missing_or_an_extra_grant_is_reported() -> None:
    needed = {("", "pods", "create", "namespace"), ("", "nodes", "list", "cluster")}
    granted = {
        ("", "pods", "create", "namespace"),
        ("", "nodes", "list", "namespace"),
        ("", "pods", "get", "cluster"),
    }
    assert missing(needed, granted) == [("", "nodes", "list", "cluster")]
    assert unused(needed, granted) == [("", "pods", "get", "cluster")]


def test_the_chart_grants_what_the_manifests_grant() -> None:
    """The chart's templates re-home charts/execution-broker/files/*.yaml (names, namespaces),
    never their rules: the same grants as manifests/ (the files themselves: test_install_copies)."""
    chart = REPO / "charts" / "execution-broker" / "files"
    assert operator_grants(chart) == operator_grants()
    assert grants(chart / "api-rbac.yaml", "eb-api") == grants(API_RBAC, "eb-api")
    template = (REPO / "charts" / "execution-broker" / "templates" / "rbac.yaml").read_text()
    assert '"file" "files/rbac.yaml"' in template
    assert '"file" "files/api-rbac.yaml"' in template
    assert '"file" "files/peers-rbac.yaml"' in template
