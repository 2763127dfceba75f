"""The names the docs quote are names that exist: the CRDs' kinds, scopes and short names, the
repository's files, and the subcommands of ``ebctl`` and ``eb-operator``. (A newcomer typing
``kubectl get exe`` for Executions, as the README once said, got Executables.)"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml

from eb_operator import cli as operator_cli
from eb_operator.client import cli as ebctl_cli

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CRDS = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]
BY_KIND = {c["spec"]["names"]["kind"]: c["spec"] for c in CRDS}


def _ids(path: Path) -> str:
    return str(path.relative_to(REPO))


def _code(text: str) -> list[str]:
    """The fenced blocks and inline code spans of a Markdown text."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    rest = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return blocks + re.findall(r"`([^`\n]+)`", rest)


def _rows(text: str) -> list[tuple[list[str], list[str]]]:
    """(header, row) cells of every Markdown table row."""
    out = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
        elif not set("".join(cells)) <= set("-: "):
            out.append((header, cells))
    return out


def test_every_crd_is_read() -> None:
    assert set(BY_KIND) == {"BrokerPeer", "Executable", "Execution", "ExecutionPlatform", "OfferSet"}


@pytest.mark.parametrize("doc", [REPO / "README.md", REPO / "docs" / "operator.md"], ids=_ids)
def test_the_kinds_tables_give_the_crds_short_names_and_scopes(doc: Path) -> None:
    seen = set()
    for header, cells in _rows(doc.read_text()):
        kind = cells[0].strip("`")
        if kind not in BY_KIND or not any(h.startswith("short") for h in header):
            continue
        seen.add(kind)
        spec = BY_KIND[kind]
        short = cells[next(i for i, h in enumerate(header) if h.startswith("short"))]
        assert set(re.findall(r"`([^`]+)`", short)) == set(spec["names"].get("shortNames", [])), (kind, short)
        if "scope" in header:
            assert cells[header.index("scope")].lower() == spec["scope"].lower(), (kind, cells)
    assert seen == set(BY_KIND), f"{doc.name} has a row for every kind"


PATH = re.compile(r"(?<![\w/.~-])((?:hack|benchmarks|docs|src|tests|charts|crds|manifests)/[\w./*-]*[\w*/])")


def _paths(text: str) -> set[str]:
    return {m for m in PATH.findall(text) if "..." not in m and "<" not in m}


def _generated(path: str) -> bool:
    """A path the repository ignores is one the tests or tools make at run time (a fresh clone has none)."""
    lines = (REPO / ".gitignore").read_text().splitlines()
    ignored = [line.strip("/") for line in lines if line.startswith("/")]
    return any(path.rstrip("/") == entry or path.startswith(entry + "/") for entry in ignored)


@pytest.mark.parametrize("doc", DOCS, ids=_ids)
def test_every_repository_path_the_docs_name_exists(doc: Path) -> None:
    text = doc.read_text()
    named = _paths(text)
    assert named, f"{doc.name} names no file: the pattern is wrong"
    missing = sorted(p for p in named if not list(REPO.glob(p.rstrip("/"))) and not _generated(p))
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    missing += sorted(
        link for link in links if "://" not in link and not (doc.parent / link).resolve().exists()
    )
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


EBCTL = _subcommands(ebctl_cli.parser())
EB_OPERATOR = _subcommands(operator_cli._parser())
# a command name, its options before the subcommand (-o json, --url U), then the subcommand
_QUOTED = {
    "ebctl": re.compile(r"(?<![\w-])ebctl((?:\s+-{1,2}(?:o|output|url|token)(?:[= ]\S+))*)\s+([a-z][a-z-]*)"),
    "eb-operator": re.compile(r"(?<![\w/.-])eb-operator\s+([a-z][a-z-]*)"),
}


def test_the_parsers_have_the_subcommands_the_readme_uses() -> None:
    assert {"offer", "accept", "watch", "show"} <= EBCTL
    assert {"operator", "api", "crds"} <= EB_OPERATOR


@pytest.mark.parametrize("doc", DOCS, ids=_ids)
def test_every_quoted_ebctl_and_eb_operator_subcommand_exists(doc: Path) -> None:
    unknown = []
    for code in _code(doc.read_text()):
        unknown += [f"ebctl {m[1]}" for m in _QUOTED["ebctl"].findall(code) if m[1] not in EBCTL]
        unknown += [f"eb-operator {m}" for m in _QUOTED["eb-operator"].findall(code) if m not in EB_OPERATOR]
    assert not unknown, f"{doc.name} quotes commands the CLIs do not have: {unknown}"
