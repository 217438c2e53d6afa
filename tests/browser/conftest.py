"""Browser tests: Playwright driving Debian's Chromium against live_server.

Without Chromium they skip with the reason; in CI (CI=true) a missing Chromium is a failure, so
the browser tests can never silently stop running there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make around it
# are still ordinary synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Served by the site itself (static/vendor/): the Content-Security-Policy (script-src 'self')
# refuses a script injected inline, so axe is loaded as the pages load theirs.
AXE_PATH = "/static/vendor/axe-core-4.14.1/axe.min.js"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the browser tests")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}


def new_phone_context(browser: Any) -> Any:
    """A browser context on a 360 px wide touch screen, the narrowest phone the pages are built
    for (a test that needs two people, each on their phone, opens two; the caller closes them)."""
    context = browser.new_context(**PHONE)
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def phone_page(browser: Any) -> Iterator[Any]:
    """A 360 px wide touch screen, the narrowest phone the portal is built for."""
    context = new_phone_context(browser)
    page = context.new_page()
    yield page
    context.close()


def assert_accessible(page: Any) -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    origin = urlsplit(page.url)
    page.add_script_tag(url=f"{origin.scheme}://{origin.netloc}{AXE_PATH}")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    serious = [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{page.url}: " + json.dumps(serious, indent=2)


def page_width(page: Any) -> int:
    """How wide the page is laid out (CSS px): more than the viewport, and it scrolls sideways."""
    return int(page.evaluate("document.documentElement.scrollWidth"))


def sign_in(page: Any, url: str, *, username: str = "bob", password: str = "pw") -> None:
    """Open a staff page (``url``), sign in on the page it sends to, and land back on it."""
    page.goto(url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url)
