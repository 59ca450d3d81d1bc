"""The frame of every page: navigation, counts, not-found, the API-down banner, phones."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.browser.conftest import Dashboard, screenshot
from tests.conftest import wait_until
from tests.e2e.cluster import cluster_env
from tests.e2e.conftest import free_port

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


@pytest.fixture
def dashboard_without_api(tmp_path: Path, dashboard: Dashboard) -> Iterator[str]:
    """``chronolog dashboard`` alone, on the module's read model, aimed at a closed port."""
    port = free_port()
    command = [sys.executable, "-m", "chronolog", "dashboard", "--port", str(port)]
    command += [
        "--data-dir",
        str(dashboard.data_dir),
        "--api-url",
        f"http://127.0.0.1:{free_port()}",
    ]
    log = (tmp_path / "dashboard.log").open("w")
    process = subprocess.Popen(command, env=cluster_env(), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answers, timeout=30, interval=0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)
    log.close()


def test_an_unreachable_api_shows_a_banner_not_a_stack_trace(
    dashboard_without_api: str, page: Page
) -> None:
    page.goto(dashboard_without_api)

    banner = page.locator(".api-down")
    expect(banner).to_contain_text("The API is unreachable")
    expect(page.locator("#count-jobs")).to_be_visible()  # the read model still shows
