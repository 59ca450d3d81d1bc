"""Real-browser tests: Playwright drives Debian's chromium against ``chronolog up``.

``playwright install`` cannot download a browser on these machines, so the browser is
the system's (``scripts/test.sh`` installs the ``chromium`` package). Each test module
gets one ``chronolog up`` with its dashboard; pages are fresh per test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from dashboard.sessions import COOKIE
from tests.conftest import wait_until
from tests.e2e.cluster import REPO, cluster_env
from tests.e2e.conftest import Server, free_port
from tests.sign_in import sign_in

SCREENSHOTS = REPO / "docs" / "screenshots"
# The real binary: /usr/bin/chromium is a wrapper script that prints a shell warning.
BROWSERS = ("/usr/lib/chromium/chromium", shutil.which("chromium"))
CHROMIUM = next((path for path in BROWSERS if path and os.path.exists(path)), None)

pytestmark = pytest.mark.browser


# Without the background-networking flags chromium keeps trying hosts this closed
# network refuses; as root it needs --no-sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


# Package-scoped, not session: Playwright's sync API keeps an event loop running in this
# thread while it is open, and the suite's later asyncio.run() calls would fail.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.fail("no chromium: `apt-get install chromium` (scripts/test.sh installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, dashboard: Dashboard) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    dashboard.sign_in(context)
    yield context.new_page()
    context.close()


@dataclass
class Dashboard(Server):
    """``chronolog up`` with its dashboard on a second free port."""

    dashboard_port: int = 0

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start(self) -> None:
        super().start()
        wait_until(self._dashboard_answers, timeout=30, interval=0.1)

    def _dashboard_answers(self) -> bool:
        try:
            return httpx.get(f"{self.dashboard_url}/login", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def sign_in(self, context: BrowserContext, token: str | None = None) -> None:
        """Give ``context`` a session signed in with ``token`` (default: the admin
        token ``up`` made), through the real sign-in form."""
        cookie = sign_in(self.dashboard_url, token or self.token)
        context.add_cookies([{"name": COOKIE, "value": cookie, "url": self.dashboard_url}])


def start_dashboard(data_dir: Path, extra_args: list[str] | None = None) -> Dashboard:
    port = free_port()
    extra = ["--dashboard-port", str(port), *(extra_args or [])]
    server = Dashboard(data_dir, free_port(), extra, cluster_env(), dashboard_port=port)
    server.start()
    return server


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    server = start_dashboard(tmp_path_factory.mktemp("dashboard") / "data")
    yield server
    if server.process is not None:
        server.stop()


@pytest.fixture
def api(dashboard: Dashboard) -> Iterator[httpx.Client]:
    with dashboard.client(timeout=10) as client:
        yield client


def screenshot(page: Page, name: str) -> None:
    """Keep a picture of the page for the README (docs/screenshots/NAME.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
