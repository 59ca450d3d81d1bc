"""Signing in to the dashboard with an API token, acting as it, and cross-site refusals."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from dashboard.sessions import COOKIE
from tests.browser.conftest import Dashboard
from tests.conftest import wait_until
from tests.sign_in import sign_in


@pytest.fixture
def fresh(browser: Browser) -> Iterator[BrowserContext]:
    """A browser with no session."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    yield context
    context.close()


def make_token(api: httpx.Client, name: str, role: str) -> str:
    answer = api.post("/api/tokens", json={"name": name, "role": role})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def test_a_browser_signs_in_with_a_token_and_out_again(
    dashboard: Dashboard, fresh: BrowserContext
) -> None:
    page = fresh.new_page()
    page.goto(f"{dashboard.dashboard_url}/runs?status=failed")
    expect(page).to_have_url(re.compile(r"/login\?next="))

    page.fill("#token", "chl_not-a-token")
    page.click("button[type=submit]")
    expect(page.locator(".alert-danger")).to_contain_text("not accepted")

    page.fill("#token", dashboard.token)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{dashboard.dashboard_url}/runs?status=failed")
    expect(page.locator(".signed-in")).to_contain_text("admin (admin)")
    (session,) = [c for c in fresh.cookies() if c["name"] == COOKIE]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert dashboard.token not in str(fresh.cookies())

    page.click(".signed-in button")
    expect(page).to_have_url(f"{dashboard.dashboard_url}/login")
    page.goto(dashboard.dashboard_url)
    expect(page).to_have_url(re.compile(r"/login"))


def test_the_dashboard_acts_as_the_signed_in_token(
    dashboard: Dashboard, api: httpx.Client, browser: Browser
) -> None:
    created = api.post(
        "/api/jobs", json={"name": "as-token", "type": "shell", "command": "echo hi"}
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]

    def trigger_as(token: str, shows: str, where: str) -> None:
        """Sign a fresh browser in with ``token``, press Trigger now on the job's page,
        and expect ``shows`` in ``where``."""
        context = browser.new_context()
        dashboard.sign_in(context, token)
        page = context.new_page()
        page.goto(f"{dashboard.dashboard_url}/jobs/as-token")
        expect(page.locator("#job-status")).to_be_visible()
        page.get_by_role("button", name="Trigger now").click()
        expect(page.locator(where)).to_contain_text(shows)
        context.close()

    trigger_as(make_token(api, "vera", "viewer"), "operator", ".action-refused")
    assert api.get("/api/runs", params={"job_id": "as-token"}).json()["runs"] == []
    trigger_as(make_token(api, "otto", "operator"), "Triggered: run", "#job-action-result")

    def requested_by_otto() -> bool:
        events = api.get(f"/api/jobs/{job_id}/events").json()["events"]
        return any(e["type"] == "RunRequested" and e["actor"] == "otto" for e in events)

    wait_until(requested_by_otto, timeout=10)


def test_cross_site_and_unsigned_requests_are_refused(dashboard: Dashboard) -> None:
    cookie = sign_in(dashboard.dashboard_url, dashboard.token)
    callback = {"output": "api-banner.children", "outputs": {}, "inputs": [], "changedPropIds": []}
    with httpx.Client(base_url=dashboard.dashboard_url, timeout=10) as client:
        unsigned = client.post(
            "/_dash-update-component", json=callback, headers={"Origin": dashboard.dashboard_url}
        )
        assert unsigned.status_code == 401
        assert "sign in" in unsigned.json()["message"]

        client.cookies.set(COOKIE, cookie)
        foreign = client.post(
            "/_dash-update-component", json=callback, headers={"Origin": "http://evil.example"}
        )
        assert foreign.status_code == 403
        assert "cross-site" in foreign.json()["message"]
        forged_login = client.post(
            "/login",
            data={"token": "x", "csrf": "y"},
            headers={"Origin": "http://evil.example"},
        )
        assert forged_login.status_code == 403
        page = client.get("/runs", headers={"Accept": "text/html"})
        assert page.status_code == 200

        client.cookies.clear()
        redirected = client.get("/runs", headers={"Accept": "text/html"})
        assert redirected.status_code == 303
        assert redirected.headers["location"].startswith("/login?next=")
