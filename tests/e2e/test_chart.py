"""The chart without a cluster: helm lint, helm template under the values users set, and the
single-source copies (CRDs, RBAC, the rendered plain manifests). Needs only helm."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml
from tests.e2e.install import CHART, Helm, helm_binary
from tests.support.kube import REPO, kubectl_binary

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def helm() -> Helm:
    return Helm("/dev/null", helm_binary())


def template(helm: Helm, *args: str, namespace: str = "science") -> list[dict[str, Any]]:
    out = helm.run("template", "rel", str(CHART), "-n", namespace, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def one(docs: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = [
        d
        for d in docs
        if d["kind"] == kind
        and (
            component is None
            or d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        )
    ]
    assert len(found) == 1, f"{len(found)} {kind} {component or ''}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            yield f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]
        elif d["kind"] == "Pod":
            yield f"Pod/{d['metadata']['name']}", d["spec"]


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {
        e["name"]: e.get("value", "") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }


def tokens_secret(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [secret] = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-api-tokens")]
    return secret


def test_helm_lint_is_clean(helm: Helm) -> None:
    out = helm.run("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in out.stdout


def test_the_defaults_render_the_whole_product(helm: Helm) -> None:
    docs = template(helm)
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == sorted(
        {
            "ClusterKopfPeering", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment",
            "ExecutionPlatform", "Job", "NetworkPolicy", "Pod", "PodDisruptionBudget", "Role",
            "RoleBinding", "Secret", "Service", "ServiceAccount",
            # the operator may touch only the owner namespaces it made (docs/operator.md)
            "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
        }
    )  # fmt: skip
    secrets = [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"]
    assert secrets == ["rel-execution-broker-session-key"], (
        "no static tokens by default, only the session key"
    )
    operator = one(docs, "Deployment", "operator")
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == [
        "operator",
        "--platform",
        "default",
        "--liveness",
        "http://0.0.0.0:8081/healthz",
        "--node-lost-grace",
        "60",
        "--metrics-port",
        "8082",
        "--peers-namespace",
        "science",
        "--broker-id",
        "rel-execution-broker.science",
        "--max-hops",
        "3",
        "--peer-lost-seconds",
        "300",
    ]
    ports = operator["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert {p["name"]: p["containerPort"] for p in ports} == {"health": 8081, "metrics": 8082}
    metrics = one(docs, "Service", "operator")
    assert metrics["metadata"]["name"] == "rel-execution-broker-operator-metrics"
    assert metrics["spec"]["ports"] == [
        {"name": "metrics", "port": 8082, "targetPort": "metrics", "protocol": "TCP"}
    ]
    api = one(docs, "Deployment", "api")
    assert api["spec"]["replicas"] == 2
    assert env_of(api)["EB_API_NAMESPACE"] == "science"
    assert env_of(api)["EB_API_ALLOW_ANONYMOUS"] == "false"
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert one(docs, "ExecutionPlatform")["spec"]["gpuFlavours"] == [
        {"name": "nvidia", "resourceName": "nvidia.com/gpu"}
    ]


def test_uninstall_cleans_only_the_namespaces_where_the_release_runs_sessions(helm: Helm) -> None:
    """Watching every namespace, the hook still never deletes cluster-wide: other brokers' and
    other users' sessions stay."""
    job = one(template(helm, "--set", "operator.workloadNamespaces={lab}"), "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["science", "lab"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"


def test_every_pod_meets_the_restricted_pod_security_standard(helm: Helm) -> None:
    specs = list(
        pod_specs(
            template(helm, "--set", "auth.staticTokens[0].user=a,auth.staticTokens[0].token=token-0123")
        )
    )
    kinds = {what.split("/")[0] for what, _ in specs}
    assert {"Deployment", "Job", "Pod"} <= kinds, [what for what, _ in specs]
    for what, spec in specs:
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True, what
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, what
        assert not spec.get("hostNetwork"), what
        assert not spec.get("hostPID"), what
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, what
            assert sc["capabilities"] == {"drop": ["ALL"]}, what
            assert sc["runAsNonRoot"] is True, what
            assert sc["readOnlyRootFilesystem"] is True, what
        for v in spec.get("volumes", []):
            assert set(v) & {"emptyDir", "secret", "configMap"}, f"{what}: volume {v}"


def test_static_tokens_become_a_secret_mounted_into_the_api(helm: Helm) -> None:
    values = [
        "--set-json",
        'auth.staticTokens=[{"user":"alice","token":"s3cret-token","groups":["astro","gpu"]}]',
    ]
    docs = template(helm, *values)
    secret = tokens_secret(docs)
    assert secret["stringData"]["tokens.csv"].strip() == 's3cret-token,alice,alice,"astro,gpu"'
    api = one(docs, "Deployment", "api")
    assert env_of(api)["EB_API_STATIC_TOKENS_FILE"] == "/etc/eb-api/tokens/tokens.csv"
    volumes = api["spec"]["template"]["spec"]["volumes"]
    assert {"name": "tokens", "secret": {"secretName": secret["metadata"]["name"], "defaultMode": 0o440,
            "items": [{"key": "tokens.csv", "path": "tokens.csv"}]}} in volumes  # fmt: skip
    other = one(
        template(helm, "--set-json", 'auth.staticTokens=[{"user":"alice","token":"other-token"}]'),
        "Deployment",
        "api",
    )
    checksum = "checksum/tokens"
    assert (
        other["spec"]["template"]["metadata"]["annotations"][checksum]
        != api["spec"]["template"]["metadata"]["annotations"][checksum]
    ), "a changed token list rolls the API"


def test_an_existing_secret_and_anonymous_access(helm: Helm) -> None:
    docs = template(
        helm, "--set", "auth.existingSecret=mine,auth.existingSecretKey=csv,auth.allowAnonymous=true"
    )
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-api-tokens")]
    api = one(docs, "Deployment", "api")
    assert env_of(api)["EB_API_ALLOW_ANONYMOUS"] == "true"
    tokens = next(v for v in api["spec"]["template"]["spec"]["volumes"] if v["name"] == "tokens")
    assert tokens["secret"]["secretName"] == "mine"
    assert tokens["secret"]["items"] == [{"key": "csv", "path": "tokens.csv"}]


def test_watched_namespaces_always_include_the_sessions_namespace(helm: Helm) -> None:
    docs = template(
        helm, "--set", "operator.watchNamespaces={team-a,team-b}", "--set", "api.sessionsNamespace=rest"
    )
    args = one(docs, "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == ["team-a", "team-b", "rest"]
    role = one(docs, "Role", "api")
    assert role["metadata"]["namespace"] == "rest", "the API's Role is where its sessions are"
    pods_where = sorted(
        d["metadata"]["namespace"]
        for d in docs
        if d["kind"] == "RoleBinding" and d["roleRef"]["name"].endswith("eb-operator-workloads")
    )
    assert pods_where == ["rest", "team-a", "team-b"], "the operator may create Pods where sessions run"
    assert one(docs, "Job")["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "rest",
        "team-a",
        "team-b",
    ]


def test_the_operator_binds_the_apis_log_reads_in_the_owner_namespaces_it_makes(helm: Helm) -> None:
    """A REST session's Pod runs in its owner's namespace: the operator binds the release's
    eb-api-logs ClusterRole (a Pod's log, nothing else) to the API's ServiceAccount there, as it
    binds its workloads role to itself; the chart binds it nowhere, and the operator may bind only
    those two roles."""
    docs = template(helm)
    env = env_of(one(docs, "Deployment", "operator"))
    api_sa = one(docs, "Deployment", "api")["spec"]["template"]["spec"]["serviceAccountName"]
    assert env["EB_WORKLOADS_CLUSTERROLE"] == "rel-execution-broker-eb-operator-workloads"
    assert env["EB_API_LOGS_CLUSTERROLE"] == "rel-execution-broker-eb-api-logs"
    assert env["EB_API_SERVICE_ACCOUNT"] == f"science/{api_sa}"
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
    assert roles["rel-execution-broker-eb-api-logs"]["rules"] == [
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}
    ]
    bound = [
        d
        for d in docs
        if "Binding" in d["kind"] and d.get("roleRef", {}).get("name", "").endswith("api-logs")
    ]
    assert bound == [], "bound only by the operator, in the owner namespaces it makes"
    binds = [r for r in roles["rel-execution-broker-eb-operator"]["rules"] if "bind" in r["verbs"]]
    assert binds == [
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles"],
            "verbs": ["bind"],
            "resourceNames": [
                "rel-execution-broker-eb-operator-workloads",
                "rel-execution-broker-eb-api-logs",
            ],
        }
    ]
    without = env_of(one(template(helm, "--set", "rbac.create=false"), "Deployment", "operator"))
    assert without["EB_API_LOGS_CLUSTERROLE"] == "eb-api-logs", "as manifests/api-rbac.yaml names it"
    named = template(helm, "--set", "operator.apiLogsClusterRole=site-logs")
    assert env_of(one(named, "Deployment", "operator"))["EB_API_LOGS_CLUSTERROLE"] == "site-logs"


def _rehomed_rules(rules: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """The manifests' rules as the chart renders them: a ClusterRole named in a rule (the operator
    may bind only its workloads role) carries the release's prefix, as the ClusterRole itself does."""
    if rules is None:
        return None
    return [
        {**r, "resourceNames": [f"rel-execution-broker-{n}" for n in r["resourceNames"]]}
        if "clusterroles" in r.get("resources", []) and r.get("resourceNames")
        else r
        for r in rules
    ]


def test_rbac_is_the_manifests_rbac_rehomed_into_the_release(helm: Helm) -> None:
    docs = template(helm, namespace="science")
    source = [
        d
        for f in ("rbac.yaml", "api-rbac.yaml", "peers-rbac.yaml")
        for d in yaml.safe_load_all((REPO / "manifests" / f).read_text())
        if d
    ]
    rendered = [
        d
        for d in docs
        if d["kind"] in {s["kind"] for s in source} and "uninstall" not in d["metadata"]["name"]
    ]
    assert len(rendered) == len(source)
    for src in source:
        kind, name = src["kind"], src["metadata"]["name"]
        cluster = kind.startswith(("Cluster", "ValidatingAdmissionPolicy"))  # cluster-scoped
        got = one(
            [
                d
                for d in rendered
                if d["kind"] == kind
                and d["metadata"]["name"] == ("rel-execution-broker-" + name if cluster else name)
            ],
            kind,
        )
        assert got.get("rules") == _rehomed_rules(src.get("rules")), f"{kind}/{name}: the same rules"
        assert got["metadata"].get("namespace") == (None if cluster else "science")
        for s in got.get("subjects", []):
            assert s["namespace"] == "science"
        if "roleRef" in got and got["roleRef"]["kind"] == "ClusterRole":
            assert got["roleRef"]["name"].startswith("rel-execution-broker-")
        if kind == "ValidatingAdmissionPolicyBinding":
            assert got["spec"]["policyName"] == "rel-execution-broker-" + src["spec"]["policyName"]
        elif kind == "ValidatingAdmissionPolicy":
            assert got["spec"] == src["spec"], f"{kind}/{name}: the same policy"


OPTIONAL = [
    ("metrics.serviceMonitor.enabled=true", {"ServiceMonitor"}, set(), "a ServiceMonitor on request"),
    ("metrics.prometheusRule.enabled=true", {"PrometheusRule"}, set(), "alerts on request"),
    ("networkPolicy.enabled=false", set(), {"NetworkPolicy"}, "network policies can be left out"),
    ("api.replicas=1", set(), {"PodDisruptionBudget"}, "no PDB that would block drains"),
    ("platform.create=false", set(), {"ExecutionPlatform"}, "bring your own platform"),
    ("uninstall.deleteSessions=false", set(), {"Job"}, "sessions may outlive the release"),
    ("operator.peering.enabled=false", set(), {"ClusterKopfPeering"}, "no peering"),
    ("rbac.create=false", set(), {"Role", "RoleBinding"}, "bring your own RBAC"),
]


@pytest.mark.parametrize(("value", "present", "absent"), [pytest.param(*o[:3], id=o[3]) for o in OPTIONAL])
def test_optional_objects(helm: Helm, value: str, present: set[str], absent: set[str]) -> None:
    kinds = {d["kind"] for d in template(helm, "--set", value)}
    assert present <= kinds
    assert not absent & kinds


def test_the_operator_may_reach_the_data_requests_name(helm: Helm) -> None:
    # it checks client-named URLs at offer time: by default any address on any TCP port
    # (with policies enforced, a probe the policy refuses makes the offer NO)
    egress = one(template(helm), "NetworkPolicy", "operator")["spec"]["egress"]
    assert {"ports": [{"protocol": "TCP"}]} in egress
    api = one(template(helm), "NetworkPolicy", "api")["spec"]["egress"]
    assert {"ports": [{"protocol": "TCP"}]} not in api  # the API talks to the API server only
    narrowed = template(
        helm,
        "--set",
        "networkPolicy.dataEgress.ports={443,9000}",
        "--set-json",
        'networkPolicy.dataEgress.to=[{"ipBlock": {"cidr": "10.20.0.0/16"}}]',
    )
    egress = one(narrowed, "NetworkPolicy", "operator")["spec"]["egress"]
    assert {
        "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
        "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 9000}],
    } in egress


def test_without_peering_the_operator_says_so(helm: Helm) -> None:
    docs = template(helm, "--set", "operator.peering.enabled=false")
    assert (
        "--no-peering"
        in one(docs, "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0]["args"]
    )


def test_the_platform_policy_and_gpu_flavours_come_from_values(helm: Helm, tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    spec = {
        "nodeSelector": {"pool": "gpu"},
        "slotSeconds": 600,
        "gpuFlavours": [
            {"name": "a100", "resourceName": "nvidia.com/gpu", "product": "A100", "memoryGib": 80}
        ],
    }
    values.write_text(yaml.safe_dump({"platform": {"name": "prod", "spec": spec}}))
    docs = template(helm, "-f", str(values))
    rendered = one(docs, "ExecutionPlatform")["spec"]
    assert {k: rendered[k] for k in spec} == spec, "what a user sets wins"
    assert rendered["offerTtlSeconds"] == 300, "what a user does not set keeps the chart's default"
    assert one(docs, "ExecutionPlatform")["metadata"]["name"] == "prod"


def _platform_schema() -> Any:
    crd = yaml.safe_load((CHART / "crds" / "executionplatforms.yaml").read_text())
    return _openapi_to_jsonschema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def test_the_chart_renders_against_the_crd_schema(helm: Helm) -> None:
    """The ExecutionPlatform the chart writes validates against the platform CRD's schema."""
    platform = one(template(helm), "ExecutionPlatform")
    jsonschema.validate(json.loads(json.dumps(platform)), _platform_schema())


@pytest.mark.parametrize(
    ("value", "field"),
    [
        pytest.param("platform.spec.slotSecond=60", "slotSecond", id="a misspelt top-level field"),
        pytest.param("platform.spec.limits.maxCore=8", "maxCore", id="a misspelt nested field"),
        pytest.param(
            "platform.spec.gpuFlavours[0].name=a,platform.spec.gpuFlavours[0].resource=x",
            "resource",
            id="a misspelt field in a list item",
        ),
    ],
)
def test_a_misspelt_platform_field_fails_the_crd_schema(helm: Helm, value: str, field: str) -> None:
    """The CRD's schema is closed wherever the model is (kubectl's strict field validation makes the
    API server refuse the same object: tests/integration/test_crd_strictness.py)."""
    platform = one(template(helm, "--set", value), "ExecutionPlatform")
    with pytest.raises(jsonschema.ValidationError) as e:
        jsonschema.validate(json.loads(json.dumps(platform)), _platform_schema())
    assert f"'{field}' was unexpected" in e.value.message


def _openapi_to_jsonschema(schema: Any) -> Any:
    """An OpenAPI v3 schema of a CRD as JSON Schema, with the API server's rule that an object
    whose properties are listed (and that has no additionalProperties schema) holds only those:
    it prunes anything else, and refuses it under strict field validation."""
    if isinstance(schema, list):
        return [_openapi_to_jsonschema(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _openapi_to_jsonschema(v) for k, v in schema.items() if not k.startswith("x-kubernetes")}
    # OpenAPI v3.0 (the API server's dialect) marks a bound exclusive with a boolean beside it;
    # JSON Schema gives the bound itself as exclusiveMinimum/exclusiveMaximum
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(out.get(exclusive), bool) and out.pop(exclusive) and bound in out:
            out[exclusive] = out.pop(bound)
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _sync_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sync_install", REPO / "hack" / "sync-install.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_crds_rbac_and_plain_manifests_match_their_sources(helm: Helm) -> None:
    diff = _sync_module().differences(helm=helm.binary)
    assert not diff, "out of date (python3 hack/sync-install.py fixes it):\n" + "\n".join(diff)


def test_the_plain_manifests_build_with_kustomize() -> None:
    out = subprocess.run(
        [kubectl_binary(), "kustomize", str(REPO / "manifests")], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "CustomResourceDefinition", "Deployment", "Service", "ExecutionPlatform"} <= kinds
    sas = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    used = {d["spec"]["template"]["spec"]["serviceAccountName"] for d in docs if d["kind"] == "Deployment"}
    assert used <= sas, "every Deployment's ServiceAccount is in the RBAC files"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            "operator.replica=2", "additional properties 'replica' not allowed", id="a misspelt key"
        ),
        pytest.param("operator.replicas=2", "maximum", id="two operators would pause each other"),
        pytest.param("api.service.type=Ingress", "api/service/type", id="an unknown Service type"),
        pytest.param(
            "auth.staticTokens[0].user=a,auth.staticTokens[0].token=short", "minLength", id="a short token"
        ),
    ],
)
def test_the_values_schema_refuses_mistakes(helm: Helm, value: str, message: str) -> None:
    proc = helm.run("template", "rel", str(CHART), "--set", value, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


def _exported_names() -> set[str]:
    """Every series name the operator exports (tests/unit/operator/test_retention_and_metrics.py
    checks their values): counters as *_total, histograms as *_bucket/_sum/_count."""
    from typing import cast

    from prometheus_client.parser import text_string_to_metric_families

    from eb_operator.cluster.crs import Cluster
    from eb_operator.operator.core import Operator, OperatorConfig

    op = Operator(cast(Cluster, None), OperatorConfig())
    names: set[str] = set()
    for family in text_string_to_metric_families(op.ctx.metrics.exposition().decode()):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
        names |= {family.name + s for s in suffixes}
    return names


def test_the_alerts_and_the_dashboard_use_only_metrics_the_operator_exports(helm: Helm) -> None:
    docs = template(
        helm,
        "--set",
        "metrics.prometheusRule.enabled=true,metrics.grafanaDashboard.enabled=true,metrics.serviceMonitor.enabled=true",
    )
    rule = one(docs, "PrometheusRule")
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert {
        "ExecutionBrokerDecisionsSlow",
        "ExecutionBrokerSessionsStuck",
        "ExecutionBrokerCapacityExhausted",
        "ExecutionBrokerWatchSilent",
    } <= set(alerts)
    dashboard = next(
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")
    )
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    panels = json.loads(dashboard["data"]["execution-broker.json"])["panels"]
    exprs = [r["expr"] for r in alerts.values()] + [t["expr"] for p in panels for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\beb_operator_[a-z_]+", e)}
    assert used, "no metric named"
    assert used <= _exported_names(), sorted(used - _exported_names())
    for e in exprs:
        assert 'namespace="science"' in e or 'namespace=~"$namespace"' in e, e
    monitors = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in docs
        if d["kind"] == "ServiceMonitor"
    }
    assert monitors["operator"]["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitors["api"]["spec"]["endpoints"][0]["port"] == "http"


def test_the_alert_thresholds_come_from_values(helm: Helm, tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    rule = {"enabled": True, "answerSecondsP99": 0.5, "utilisation": 0.8, "watchSilentSeconds": 300}
    values.write_text(yaml.safe_dump({"metrics": {"prometheusRule": rule}}))
    docs = template(helm, "-f", str(values))
    rules = {r["alert"]: r for r in one(docs, "PrometheusRule")["spec"]["groups"][0]["rules"]}
    assert rules["ExecutionBrokerDecisionsSlow"]["expr"].strip().endswith("> 0.5")
    assert rules["ExecutionBrokerCapacityExhausted"]["expr"].strip().endswith("> 0.8")
    assert rules["ExecutionBrokerWatchSilent"]["expr"].strip().endswith("> 300")


def test_the_operators_metrics_port_is_open_to_scrapers_only_where_told(helm: Helm) -> None:
    def metrics_rule(*args: str) -> dict[str, Any]:
        policy = one(template(helm, *args), "NetworkPolicy", "operator")
        return next(r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "metrics")

    assert "from" not in metrics_rule()
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    name = "kubernetes\\.io/metadata\\.name"
    assert metrics_rule(
        "--set", f"networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.{name}=monitoring"
    )["from"] == [peer]


def test_pod_annotations_stay_strings_whatever_they_look_like(helm: Helm) -> None:
    """A value YAML 1.2 reads as a number (1e123456) made the Deployment invalid ("cannot unmarshal
    number into ... annotations of type string"): the e2e upgrade test's random nonce was such a
    value about once in fifty runs. PyYAML (YAML 1.1) reads it as a string either way, so the
    rendered text is what is checked: the value quoted."""
    args = (
        "--set-string",
        "operator.podAnnotations.nonce=1e123456",
        "--set-string",
        "api.podAnnotations.nonce=2e5",
    )
    out = helm.run("template", "rel", str(CHART), "-n", "science", *args).stdout
    assert 'nonce: "1e123456"' in out
    assert 'nonce: "2e5"' in out
