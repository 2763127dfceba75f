"""Headless Chromium for browser tests: Debian's ``chromium`` driven by Selenium through Debian's
``/usr/bin/chromedriver`` (``hack/test.sh`` installs both with apt-get; nothing downloads a
browser or a driver: the driver path is given, so Selenium Manager never runs).

* ``open_browser(artifacts, ...)``: a context manager yielding a ``Browser`` (a fresh profile in a
  temporary ``--user-data-dir``, page-load and script timeouts set), quit afterwards;
* fixture ``browser``: one per test, its screenshots under ``tests/artifacts/<test name>/``
  (git-ignored; ``EB_TEST_ARTIFACTS`` moves the root); a test that fails gets a screenshot of the
  page it was on (``failure.png``) before the browser quits;
* ``Browser.wait_until(condition, timeout, message)``: wait on a condition of the page, never a
  sleep; ``Browser.screenshot(name)`` saves a PNG and returns its path.

Import the fixture into a test package's conftest: ``from tests.support.browser import browser``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from tests.support.kube import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Headless, as root in a container-like machine, and quiet: no update checks, no sync, no
# component downloads, no first-run pages (the machine has no internet).
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1024",
)
T = TypeVar("T")


def artifacts_root() -> Path:
    return Path(os.environ.get("EB_TEST_ARTIFACTS") or REPO / "tests" / "artifacts")


def missing() -> str | None:
    """What is missing to run a browser here, or None."""
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if absent:
        return f"{', '.join(absent)} missing: apt-get install chromium chromium-driver (hack/test.sh does)"
    return None


@dataclass
class Browser:
    driver: WebDriver
    artifacts: Path

    def get(self, url: str) -> None:
        self.driver.get(url)

    def wait_until(self, condition: Callable[[WebDriver], T], timeout: float, message: str) -> T:
        """``condition(driver)`` until it is truthy (exceptions count as "not yet"); returns its
        value, or raises ``TimeoutException`` naming ``message`` and the page's URL and title."""
        try:
            return WebDriverWait(
                self.driver, timeout, poll_frequency=0.2, ignored_exceptions=(Exception,)
            ).until(condition, message)
        except TimeoutException as e:
            raise TimeoutException(
                f"timed out after {timeout:g}s waiting for {message} "
                f"(page {self.driver.current_url!r}, title {self.driver.title!r})"
            ) from e

    def screenshot(self, name: str) -> Path:
        """Save a PNG of the window as ``<artifacts>/<name>.png`` and return its path."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        path = self.artifacts / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
        if not self.driver.save_screenshot(str(path)):
            raise WebDriverException(f"chromium could not save a screenshot to {path}")
        return path

    def text(self) -> str:
        """The visible text of the page."""
        return str(self.driver.execute_script("return document.body ? document.body.innerText : ''"))

    def script(self, js: str, *args: Any) -> Any:
        return self.driver.execute_script(js, *args)


@contextlib.contextmanager
def open_browser(
    artifacts: Path, page_load_timeout: float = 60, script_timeout: float = 30
) -> Iterator[Browser]:
    """A headless Chromium with a fresh profile, quit (and its profile removed) afterwards."""
    problem = missing()
    if problem:
        raise FileNotFoundError(problem)
    profile = tempfile.mkdtemp(prefix="eb-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=os.devnull)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(page_load_timeout)
        driver.set_script_timeout(script_timeout)
        yield Browser(driver, artifacts)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    """A headless Chromium for one test; screenshots go to ``tests/artifacts/<test name>/``."""
    problem = missing()
    if problem:
        pytest.fail(problem, pytrace=False)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    with open_browser(artifacts_root() / name) as b:
        yield b
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            with contextlib.suppress(WebDriverException):
                b.screenshot("failure")
