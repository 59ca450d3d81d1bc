"""Live updates on any open page: counts follow the log, failures raise a toast, and the
switch stops and restarts following."""

from __future__ import annotations

import httpx2 as httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import Dashboard


def create_job(api: httpx.Client, name: str, **fields: object) -> dict[str, object]:
    body = {"name": name, "type": "python", "schedule": "every 1h", **fields}
    created = api.post("/api/jobs", json=body)
    assert created.status_code == 201, created.text
    job: dict[str, object] = created.json()
    return job


def test_a_failed_run_raises_a_toast_on_the_open_page(
    dashboard: Dashboard, api: httpx.Client, page: Page
) -> None:
    create_job(api, "live-fails", function="tests.jobs.sample:fail", retries=0)
    page.goto(dashboard.dashboard_url)
    expect(page.locator("#count-jobs")).to_be_visible()

    run = api.post("/api/jobs/live-fails/trigger", json={}).json()

    toast = page.locator(".failure-toast").filter(has_text=run["run_id"])
    expect(toast.first).to_be_visible(timeout=30_000)
    expect(toast.first).to_contain_text("live-fails")
    assert api.get(f"/api/runs/{run['run_id']}").json()["status"] in ("failing", "failed")


def test_the_switch_stops_live_updates_and_restarts_them(
    dashboard: Dashboard, api: httpx.Client, page: Page
) -> None:
    create_job(api, "live-count-1", function="tests.jobs.sample:noop")
    page.goto(dashboard.dashboard_url)
    jobs = page.locator("#count-jobs .h4")
    total = int(api.get("/api/jobs").json()["total"])
    expect(jobs).to_have_text(str(total))

    create_job(api, "live-count-2", function="tests.jobs.sample:noop")
    expect(jobs).to_have_text(str(total + 1))  # followed, no reload

    page.get_by_label("Live updates").uncheck()
    create_job(api, "live-count-3", function="tests.jobs.sample:noop")
    page.wait_for_timeout(2500)  # longer than a change takes to show while following
    expect(jobs).to_have_text(str(total + 1))

    page.get_by_label("Live updates").check()
    expect(jobs).to_have_text(str(total + 2))  # caught up on switching back on
