"""The broker's own pages in a real browser (headless Chromium through Selenium,
tests/support/browser.py). This machine has no internet, like many HPC and science sites: a page
that needs a CDN renders blank here."""

from __future__ import annotations

import pytest
from tests.integration.api.stack import Broker
from tests.support.browser import Browser, browser

__all__ = ["browser"]

pytestmark = pytest.mark.timeout(300)

# "METHOD /path" of every operation Swagger UI has rendered
OPERATIONS_JS = """
return Array.from(document.querySelectorAll('.opblock')).map(b =>
    b.querySelector('.opblock-summary-method').innerText.trim() + ' ' +
    b.querySelector('.opblock-summary-path').getAttribute('data-path'));
"""


def test_docs_page_lists_the_operations_with_no_internet(eb: Broker, browser: Browser) -> None:
    browser.get(eb.url + "/docs")
    operations = browser.wait_until(
        lambda d: d.execute_script(OPERATIONS_JS), 60, "Swagger UI to render the API's operations"
    )
    shot = browser.screenshot("docs")
    assert {"POST /offersets", "GET /offersets/{uuid}", "GET /sessions/{uuid}"} <= set(operations), operations
    assert browser.driver.title == "IVOA ExecutionBroker - Swagger UI"
    # everything the page loaded came from the broker itself
    loaded = browser.script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded
    assert all(url.startswith(eb.url + "/") for url in loaded), loaded
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
