"""The frame of every page: navigation, counts, not-found, the API-down banner, phones."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from dashboard.sessions import COOKIE
from tests.browser.conftest import Dashboard, screenshot
from tests.conftest import wait_until
from tests.e2e.cluster import cluster_env
from tests.e2e.conftest import free_port
from tests.sign_in import sign_in

PHONE: ViewportSize = {"width": 390, "height": 844}


def test_the_overview_counts_what_the_api_holds(
    dashboard: Dashboard, api: httpx.Client, page: Page
) -> None:
    body = {"name": "shell-count", "type": "shell", "command": "true", "schedule": "every 1h"}
    assert api.post("/api/jobs", json=body).status_code == 201
    jobs = api.get("/api/jobs").json()["total"]

    page.goto(dashboard.dashboard_url)

    expect(page.locator("#count-jobs")).to_contain_text(str(jobs))
    expect(page.get_by_role("link", name="Runs")).to_be_visible()


def test_an_unknown_address_is_a_not_found_page(dashboard: Dashboard, page: Page) -> None:
    page.goto(f"{dashboard.dashboard_url}/no/such/page")

    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_role("button", name="Back to the overview")).to_be_visible()


def test_every_page_fits_a_phone_and_the_menu_opens(dashboard: Dashboard, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE)
    dashboard.sign_in(context)
    page = context.new_page()
    page.goto(dashboard.dashboard_url)
    expect(page.locator("#count-jobs")).to_be_visible()

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    runs = page.get_by_role("link", name="Runs")
    expect(runs).to_be_hidden()  # folded into the menu
    page.locator(".navbar-toggler").click()
    expect(runs).to_be_visible()
    screenshot(page, "phone-overview")
    context.close()


Popen = subprocess.Popen[bytes]


def start(command: list[str], log: Path, url: str) -> Popen:
    """A chronolog process, once ``url`` answers."""
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "chronolog", *command],
            env=cluster_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, timeout=30, interval=0.1)
    except AssertionError:
        process.kill()  # never left running behind a failed test
        process.wait(timeout=10)
        raise
    return process


@pytest.fixture
def api_that_goes_away(tmp_path: Path, dashboard: Dashboard) -> Iterator[tuple[str, Popen]]:
    """A second ``chronolog api`` on the module's data (its tokens too), for a test to stop:
    its URL and process."""
    port = free_port()
    data = ["--data-dir", str(dashboard.data_dir)]
    url = f"http://127.0.0.1:{port}"
    process = start(
        ["api", "--api-port", str(port), *data], tmp_path / "api.log", f"{url}/api/health/live"
    )
    yield url, process
    process.terminate()
    process.wait(timeout=10)


def test_an_unreachable_api_shows_a_banner_not_a_stack_trace(
    tmp_path: Path, dashboard: Dashboard, api_that_goes_away: tuple[str, Popen], page: Page
) -> None:
    """Signed in while the API answered, then the API stops: the pages still show the read
    model, with a banner saying actions will fail."""
    api_url, api_process = api_that_goes_away
    port = free_port()
    command = ["dashboard", "--port", str(port), "--data-dir", str(dashboard.data_dir)]
    command += ["--api-url", api_url]
    url = f"http://127.0.0.1:{port}"
    process = start(command, tmp_path / "dashboard.log", f"{url}/login")
    try:
        cookie = sign_in(url, dashboard.token)
        page.context.add_cookies([{"name": COOKIE, "value": cookie, "url": url}])
        api_process.terminate()
        api_process.wait(timeout=10)

        page.goto(url)
        banner = page.locator(".api-down")
        expect(banner).to_contain_text("The API is unreachable")
        expect(page.locator("#count-jobs")).to_be_visible()  # the read model still shows
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_signing_in_while_the_api_is_unreachable_says_so(
    tmp_path: Path, dashboard: Dashboard, page: Page
) -> None:
    port = free_port()
    command = ["dashboard", "--port", str(port), "--data-dir", str(dashboard.data_dir)]
    command += ["--api-url", f"http://127.0.0.1:{free_port()}"]
    url = f"http://127.0.0.1:{port}"
    process = start(command, tmp_path / "dashboard.log", f"{url}/login")
    try:
        page.goto(url)
        page.fill("#token", dashboard.token)
        page.click("button[type=submit]")
        expect(page.locator(".alert-danger")).to_contain_text("The API cannot be reached")
    finally:
        process.terminate()
        process.wait(timeout=10)
