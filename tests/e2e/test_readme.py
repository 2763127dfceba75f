"""The README from a user's chair: `bash hack/up.sh` exactly as the README's first block says, then
the examples it prints, then every ```bash and ```yaml block of README.md in order, in one working
directory and with the environment up.sh printed (KUBECONFIG, EB_URL, EB_TOKEN, PATH).

Blocks are found when the tests are collected (tests/e2e/readme.py), so a new example is run
without a change here; a block that cannot run here carries `<!-- readme-test: skip: REASON -->`
on the line before it and is listed by the last test. A ```yaml block is a Kubernetes object
(applied with kubectl and followed: an Execution to COMPLETED, an ExecutionPlatform until the
operator takes it, then put back as it was) or an IVOA request (offered with ebctl; YES; its
offers rejected). What a user should see is checked where the README says it (``EXPECT``).

hack/up.sh installs release `execution-broker` in namespace `execution-broker`, the names the
plain manifests (test_manifests.py) use, and its operator would pause the e2e release's (kopf
peering): so this module runs last (file order), removes release `eb-e2e` first, and uninstalls
up.sh's release at the end with `bash hack/up.sh stop` (docs/install.md), unless it was there
before the tests, when it is left installed. Takes about 4-6 min on the 2-core machine.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.install import INSTALLS, PAUSED, Installation
from tests.e2e.readme import Block, Terminal, base_environment, blocks, shown
from tests.support.kube import REPO, Kubectl, cluster_state_dir, wait_for

README = REPO / "README.md"
INSTALL_MD = REPO / "docs" / "install.md"
BLOCKS = blocks(README)
NS = "execution-broker"
RELEASE = "execution-broker"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# An accept answers once the operator has acted: ACCEPTED, or already on its way to the start.
TAKEN = r"(ACCEPTED|WAITING|PREPARING|READY|RUNNING|COMPLETED)"
BLOCK_TIMEOUT = 420  # the README's own waits are 5 min at most
# Each of up.sh's printed examples reaches its end (its session COMPLETED) within this on the local
# cluster's one real core: the examples free what they do not take, and the demo platform's
# offers hold no longer than asked (hack/up.sh).
EXAMPLE_TIMEOUT = 120
# Lines not run again inside a block: the fixture ran up.sh first, and test.sh is this run.
NOT_AGAIN = {"bash hack/up.sh": "run first by the fixture", "bash hack/test.sh": "the run this test is in"}

# (a command in a block, what its output must then show): what the README says a user sees.
EXPECT: list[tuple[str, str]] = [
    ("ebctl offer -f request.yaml", rf"offer set {UUID}: YES\n.*SESSION.*PHASE.*\n{UUID}\s+OFFERED"),
    ("ebctl accept", rf"{UUID}\s+{TAKEN}\b"),
    ("ebctl watch", r"\bCOMPLETED\b"),
    ('"$EB_URL/offersets" | tee offerset.yaml', rf"result: '?YES'?[\s\S]*uuid: {UUID}"),
    ('"$EB_URL/sessions/$UUID"', rf"phase: {TAKEN}\b"),
    ("kubectl get executions", r"NAME\s+PHASE\s+START\s+DURATION\s+CORES\s+MEMORY\S*\s+GPUS\s+NODE\s+AGE"),
    ('kubectl get offerset "$SET"', rf"{UUID}\s+YES\s+{UUID}(,{UUID})*\s"),
    ("spec: {offerSet: $SET, desiredPhase: ACCEPTED}", r"execution\.executionbroker\.ivoa\.net/\S+ created"),
    ("kubectl wait execution/", r"condition met"),
    ("kubectl get execution hello-direct", r"hello-direct\s+COMPLETED"),
    ("kubectl logs eb-hello-direct", r"^hello$"),
    ("ebctl offer -f gpu-request.yaml", rf"{UUID}\s+OFFERED.*\s1 \(nvidia\)"),
    ('echo "$LINK"', rf"^http://\S+/session/notebook/{UUID}/lab\?eb-login=\S+$"),
    ("JupyterLab: HTTP", r"^login link: HTTP 302\nJupyterLab: HTTP 200\nwithout it: HTTP 401$"),
]


@dataclass
class Readme:
    kube: Kubectl
    terminal: Terminal
    up_output: str
    up_seconds: float
    existed: bool  # up.sh's release was there before the tests: leave it installed
    seen: set[str] = field(default_factory=set)


def _up_exports(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if re.match(r"^\s+export \w+=", line)]


def _up_examples(output: str) -> list[str]:
    """The commands up.sh prints after the exports: indented lines, a blank or prose line ends a
    group (backslash continuations stay together)."""
    groups: list[list[str]] = []
    current: list[str] = []
    lines = output.splitlines()
    exports = [i for i, line in enumerate(lines) if re.match(r"^\s+export \w+=", line)]
    for line in lines[exports[-1] + 1 if exports else 0 :]:
        if line.startswith("  ") and line.strip() and not line.strip().startswith("export "):
            current.append(line[2:])
        elif current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return ["\n".join(g) for g in groups]


def _first_block_runs_up() -> None:
    lines = [ln.split("#")[0].strip() for ln in BLOCKS[0].text.splitlines()]
    assert lines[0] == "bash hack/up.sh", "the README's first command is `bash hack/up.sh`"


@pytest.fixture(scope="module")
def readme(broker: Installation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Readme]:
    kube = broker.kube
    _first_block_runs_up()
    if broker.installed():  # its operator and up.sh's would pause each other (kopf peering)
        broker.uninstall()
    existed = bool(broker.helm.status(RELEASE, NS))
    for ns, name, replicas in list(broker.paused):  # up.sh's own release, paused by the suite
        if ns == NS:
            kube.run("scale", "deployment", name, "-n", ns, f"--replicas={replicas}")
            kube.run("annotate", "deployment", name, "-n", ns, f"{PAUSED}-")
            broker.paused.remove((ns, name, replicas))
    workdir = tmp_path_factory.mktemp("readme")
    for name in ("manifests", "charts", "hack"):  # the examples name files of the repository
        (workdir / name).symlink_to(REPO / name)
    env = base_environment(kube.kubeconfig)
    terminal = Terminal(workdir, env)
    try:
        t0 = time.monotonic()
        up = terminal.run(f"cd {REPO}\nbash hack/up.sh", timeout=900, reap=False)
        took = time.monotonic() - t0
        assert up.returncode == 0, shown(up, "bash hack/up.sh")
        what = "bash hack/up.sh (README), image present" + (", an upgrade" if existed else "")
        INSTALLS.append((what, took))
        terminal.set_exports(_up_exports(up.stdout))
        yield Readme(kube, terminal, up.stdout, took, existed)
    finally:
        if not existed:  # also after a failed up.sh: a half-installed release would stay
            stop = terminal.run(f"cd {REPO}\nbash hack/up.sh stop", timeout=400, reap=False)
            assert stop.returncode == 0, shown(stop, "bash hack/up.sh stop")


def test_up_sh_installs_the_broker_and_prints_the_environment(readme: Readme) -> None:
    out = readme.up_output
    assert "The IVOA ExecutionBroker is running: release execution-broker" in out, out
    names = [line.split()[1].split("=")[0] for line in _up_exports(out)]
    assert names == ["KUBECONFIG", "EB_URL", "EB_TOKEN", "PATH"], out
    check = readme.terminal.run('curl -fsS "$EB_URL/readyz"; kubectl version --client; helm version', 60)
    assert check.returncode == 0, shown(check, "the printed environment")
    deployments = readme.kube.json("get", "deployments", "-n", NS)["items"]
    ready = {d["metadata"]["name"]: d["status"].get("readyReplicas") for d in deployments}
    assert ready == {"execution-broker-operator": 1, "execution-broker-api": 2}, ready


def test_up_sh_again_upgrades_in_place(readme: Readme) -> None:
    """docs/install.md: `up.sh` is idempotent; a second run keeps the URL and the token."""
    t0 = time.monotonic()
    again = readme.terminal.run(f"cd {REPO}\nbash hack/up.sh", timeout=900, reap=False)
    INSTALLS.append(("bash hack/up.sh again (an upgrade in place)", time.monotonic() - t0))
    assert again.returncode == 0, shown(again, "bash hack/up.sh")
    assert _up_exports(again.stdout) == _up_exports(readme.up_output), again.stdout


def test_up_sh_examples_work_as_printed(readme: Readme) -> None:
    examples = _up_examples(readme.up_output)
    expected = [
        ("/offersets", rf"result: '?YES'?[\s\S]*phase: {TAKEN}\b[\s\S]*\bCOMPLETED\b"),
        ("ebctl offer", r"\bCOMPLETED\b"),
        ("kubectl apply", r"condition met[\s\S]*hello from[\s\S]*deleted"),
    ]
    if (cluster_state_dir() / "ingress.env").is_file():  # the local cluster's Traefik: a notebook to open
        expected.append(("ebctl open", rf"http://\S+/session/notebook/{UUID}/lab\?eb-login=\S+"))
    assert len(examples) == len(expected), examples
    for script, (marker, pattern) in zip(examples, expected, strict=True):
        assert marker in script, f"up.sh's examples changed: `{marker}` not in\n{script}"
        t0 = time.monotonic()
        proc = readme.terminal.run(script, EXAMPLE_TIMEOUT, reap=False)
        INSTALLS.append((f"up.sh's example `{marker}` to its end", time.monotonic() - t0))
        assert proc.returncode == 0, shown(proc, script)
        assert re.search(pattern, proc.stdout, re.MULTILINE), f"expected {pattern!r}\n" + shown(proc, script)


def _check(readme: Readme, block: Block, script: str, output: str) -> None:
    for marker, pattern in EXPECT:
        if marker in script:
            readme.seen.add(marker)
            assert re.search(pattern, output, re.MULTILINE), (
                f"{block}: after `{marker}` the README promises {pattern!r}; the output:\n{output[-6000:]}"
            )


def _run_bash(readme: Readme, block: Block) -> None:
    lines = []
    for line in block.text.splitlines():
        command = line.split("#")[0].strip()
        lines.append(f": {NOT_AGAIN[command]}" if command in NOT_AGAIN else line)
    script = "\n".join(lines)
    proc = readme.terminal.run(script, BLOCK_TIMEOUT)
    assert proc.returncode == 0, f"{block} failed\n" + shown(proc, script)
    _check(readme, block, script, proc.stdout)


def _apply_platform(readme: Readme, doc: dict[str, Any], path: Path) -> None:
    """Apply the README's platform, wait until the operator takes it, then put the platform as it
    was (the README's is a production policy: 5-minute slots would slow every later example)."""
    kube, name = readme.kube, doc["metadata"]["name"]
    before = kube.get("executionplatforms", name) if kube.exists("executionplatforms", name) else None
    try:
        proc = readme.terminal.run(f"kubectl apply -f {path}", 60)
        assert proc.returncode == 0, shown(proc, f"kubectl apply -f {path.name}")
        wait_for(
            lambda: (
                (p := kube.get("executionplatforms", name)).get("status", {}).get("observedGeneration")
                == p["metadata"]["generation"]
            ),
            60,
            f"the operator to look at ExecutionPlatform {name}",
        )
        status = kube.get("executionplatforms", name).get("status") or {}
        assert status.get("valid") is True, status
    finally:
        if before is None:
            kube.run("delete", "executionplatform", name, "--ignore-not-found", check=False)
        else:
            live = kube.get("executionplatforms", name)
            live["spec"] = before["spec"]
            live.pop("status", None)
            kube.run("replace", "-f", "-", input=yaml.safe_dump(live))


def _run_yaml(readme: Readme, block: Block) -> None:
    docs = [d for d in yaml.safe_load_all(block.text) if d]
    assert len(docs) == 1, f"{block}: one YAML document"
    assert isinstance(docs[0], dict), f"{block}: a YAML mapping"
    doc: dict[str, Any] = docs[0]
    path = readme.terminal.workdir / f"block-{block.line}.yaml"
    path.write_text(block.text)
    kind = doc.get("kind")
    if doc.get("apiVersion") and kind == "ExecutionPlatform":
        _apply_platform(readme, doc, path)
    elif doc.get("apiVersion") and kind:
        name = doc["metadata"]["name"]
        script = f"kubectl apply -f {path.name}"
        if kind == "Execution":
            script += (
                f"\nkubectl wait -f {path.name} --for=jsonpath='{{.status.phase}}'=COMPLETED --timeout=5m"
            )
        try:
            proc = readme.terminal.run(script, BLOCK_TIMEOUT)
            assert proc.returncode == 0, f"{block} ({kind} {name})\n" + shown(proc, script)
        finally:
            readme.terminal.run(f"kubectl delete -f {path.name} --ignore-not-found", 120)
    elif "executable" in doc or "resources" in doc:  # an IVOA request
        script = f"ebctl -o json offer -f {path.name} > offers.json"
        proc = readme.terminal.run(script, 120)
        assert proc.returncode == 0, f"{block}: the broker answers YES\n" + shown(proc, script)
        uuids = "import json; [print(o['uuid']) for o in json.load(open('offers.json'))['offers']]"
        script = f'for u in $(python3 -c "{uuids}"); do ebctl reject "$u" >/dev/null; done'
        proc = readme.terminal.run(script, 120)
        assert proc.returncode == 0, shown(proc, script)
    else:
        pytest.fail(
            f"{block} is neither a Kubernetes object nor an IVOA request: make it one, or mark it "
            "`<!-- readme-test: skip: REASON -->`"
        )


@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.skip], ids=str)
def test_readme_block_runs(readme: Readme, block: Block) -> None:
    if block.lang == "bash":
        _run_bash(readme, block)
    else:
        _run_yaml(readme, block)


def _install_md(command: str) -> tuple[Block, str]:
    """The block of docs/install.md holding ``command``, and ``command``'s line in it."""
    found = [b for b in blocks(INSTALL_MD) if command in b.text]
    assert len(found) == 1, f"docs/install.md has one block with `{command}`"
    line = next(ln for ln in found[0].text.splitlines() if ln.startswith(command))
    return found[0], line


def test_install_md_status_stop_and_helm_install_work(readme: Readme) -> None:
    """docs/install.md's `up.sh status` and `up.sh stop` (not `down`: it would stop the shared
    cluster), then its Helm block as it is, on the namespace up.sh leaves behind removed."""
    kube, term = readme.kube, readme.terminal
    _, status = _install_md("bash hack/up.sh status")
    proc = term.run(f"cd {REPO}\n{status}", 60)
    assert proc.returncode == 0, shown(proc, status)
    assert re.search(r"REST API: http://\S+", proc.stdout), shown(proc, status)
    assert re.search(r"execution-broker-api-\S+\s+1/1\s+Running", proc.stdout), shown(proc, status)
    _, stop = _install_md("bash hack/up.sh stop")
    proc = term.run(f"cd {REPO}\n{stop}", 400, reap=False)
    assert proc.returncode == 0, shown(proc, stop)
    assert "helm uninstall execution-broker" in proc.stdout, shown(proc, stop)
    assert not kube.json("get", "pods", "-n", NS, "-l", f"app.kubernetes.io/instance={RELEASE}")["items"]
    kube.run("delete", "namespace", NS, "--wait=true", timeout=300)

    helm_block, _ = _install_md("helm upgrade --install execution-broker charts/execution-broker")
    try:
        t0 = time.monotonic()
        proc = term.run(helm_block.text, 600)
        took = time.monotonic() - t0
        assert proc.returncode == 0, shown(proc, helm_block.text)
        assert re.search(r"Phase:\s+Succeeded", proc.stdout), shown(proc, helm_block.text)
        INSTALLS.append(("docs/install.md's Helm block (namespace, helm install --wait, helm test)", took))
    finally:
        if readme.existed:  # put the developer's up.sh release back
            again = term.run(f"cd {REPO}\nbash hack/up.sh", 900, reap=False)
            assert again.returncode == 0, shown(again, "bash hack/up.sh")
        else:
            readme.terminal.run(f"helm uninstall {RELEASE} -n {NS} --wait --timeout 5m", 400)
            kube.run("delete", "namespace", NS, "--ignore-not-found", "--wait=true", timeout=300, check=False)


def test_every_readme_block_is_run_or_listed(readme: Readme, capsys: pytest.CaptureFixture[str]) -> None:
    """The blocks marked as not runnable here, with their reasons (the aim is none), and every
    promise in ``EXPECT`` was checked against a block that was run."""
    marked = [b for b in BLOCKS if b.skip]
    with capsys.disabled():
        print(f"\nREADME.md: {len(BLOCKS)} blocks, {len(BLOCKS) - len(marked)} run, {len(marked)} marked")
        for b in marked:
            print(f"  not run: {b}: {b.skip}")
    assert all(b.skip and b.skip != "(no reason given)" for b in marked), [str(b) for b in marked]
    missing = [marker for marker, _ in EXPECT if marker not in readme.seen]
    assert not missing, f"README blocks no longer contain (update EXPECT): {missing}"
