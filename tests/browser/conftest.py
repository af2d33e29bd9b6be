"""Browser fixtures: Debian's Chromium driven by Playwright against the test stack.

Playwright's own browser downloads are never used; CI installs the ``chromium``
package. Screenshots land in ``artifacts/screenshots/`` (gitignored).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Console:
    """One browser tab on the admin console of the test stack."""

    def __init__(self, page, env):
        self.page = page
        self.env = env
        self.url = f"{env.stack.api_url}/admin"
        self.errors: list[str] = []
        self._order_nos: dict[int, str] = {}
        # confirmations the page asks for (window.confirm): each message is kept, and answered
        # with ``answer`` (True: OK, False: cancel)
        self.confirms: list[str] = []
        self.answer = True
        page.on("dialog", self._confirm)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        # API errors are expected in some tests (and logged by Chromium as failed loads);
        # anything else on the console is a bug in the page.
        page.on("console", lambda msg: msg.type == "error" and not msg.text.startswith("Failed to load resource")
                and self.errors.append(f"console: {msg.text}"))

    def _confirm(self, dialog):
        self.confirms.append(dialog.message)
        dialog.accept() if self.answer else dialog.dismiss()

    def login(self, route: str = "#/orders"):
        """Open the console with the link ``make run`` prints, then go to ``route``."""
        self.page.goto(f"{self.url}#token={self.env.admin}")
        self.page.wait_for_selector("#order-table")
        if route != "#/orders":
            self.go(route)
        return self

    def go(self, route: str):
        self.page.evaluate("r => { location.hash = r; }", route)

    def order_no(self, n: int) -> str:
        """The seeded order ``n``'s number (one table scan per test, not one per lookup)."""
        if not self._order_nos:
            from chalicelib.adapters import models

            self._order_nos = {int(o.order_no[-4:]): o.order_no for o in models.Order.scan()}
        return self._order_nos[n]

    def open_order(self, n: int) -> str:
        order_no = self.order_no(n)
        self.go(f"#/orders/{order_no}")
        self.page.wait_for_selector(f"h1:has-text('{order_no}')")
        self.page.wait_for_selector("[data-block=refunds]")
        return order_no

    def block(self, name: str):
        return self.page.locator(f"[data-block={name}]")

    def shot(self, name: str, full_page: bool = True):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


@pytest.fixture
def console(browser, env):
    context = browser.new_context(viewport=WIDE, locale="zh-CN", timezone_id="Asia/Shanghai", accept_downloads=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    c = Console(page, env)
    yield c
    context.close()
    assert not c.errors, c.errors


@pytest.fixture
def narrow_console(browser, env):
    context = browser.new_context(viewport=NARROW, locale="zh-CN", is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    context.set_default_timeout(10_000)
    c = Console(context.new_page(), env)
    yield c
    context.close()
    assert not c.errors, c.errors
