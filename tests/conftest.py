"""Options for every test directory: ``--long`` runs the fuzzers (the hypothesis fuzz of the
request and update readers, the schemathesis run over the REST API) with many more examples.
It is for a run of its own, not for CI; docs/reliability.md has the counts of the last one.

No test is rerun unless it says so itself: ``@pytest.mark.flaky(reruns=N, reason="...")`` (the
reason is required), and the run's summary counts the reruns, ``reruns: 0`` when none."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests.support` without -m pytest

from tests.support import fuzz


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the fuzzers long (tests/unit/model/test_model_fuzz.py, the schemathesis test): not for CI",
    )


def pytest_configure(config: pytest.Config) -> None:
    fuzz.set_long(bool(config.getoption("--long")))


def pytest_report_header(config: pytest.Config) -> str | None:
    return "fuzzers: --long (many examples)" if fuzz.is_long() else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for mark in item.iter_markers("flaky"):
            if not str(mark.kwargs.get("reason") or "").strip():
                raise pytest.UsageError(f"{item.nodeid}: a flaky mark must give its reason=")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many reruns the run needed, and of which tests (pytest-rerunfailures' "rerun" reports)."""
    reruns = terminalreporter.stats.get("rerun", [])
    names = sorted({getattr(r, "nodeid", "?") for r in reruns})
    terminalreporter.write_line(f"reruns: {len(reruns)}" + (f" ({', '.join(names)})" if names else ""))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    # keep each phase's report on the item, so fixtures can see at teardown whether the test
    # failed (tests/support/browser.py then saves a screenshot of the page it was on)
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
