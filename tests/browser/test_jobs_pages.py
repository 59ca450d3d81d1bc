"""The overview's job list and the job page, in a real browser against ``chronolog up``.

One module-wide set of 30 jobs (``batch-00`` .. ``batch-29``) with known types, tags,
schedules and two paused, so each filter has a known answer.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Dashboard, screenshot
from tests.conftest import wait_until

NAMES = [f"batch-{i:02d}" for i in range(30)]
SCHEDULES = ("every 1d", "0 3 * * *", None, "2099-01-01T00:00:00Z")
PAUSED = ("batch-07", "batch-08")
ROWS_JS = """() => [...document.querySelectorAll('#jobs-grid .ag-center-cols-container .ag-row')]
    .sort((a, b) => Number(a.getAttribute('row-index')) - Number(b.getAttribute('row-index')))
    .map(row => (row.querySelector('[col-id=name]') || {}).innerText || '')"""


def _job(i: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": NAMES[i],
        "tags": ["reports"] if i % 5 == 0 else ["etl"],
        "schedule": SCHEDULES[i % 4],
        "timezone": "Europe/Paris",
    }
    if i % 3 == 0:
        body |= {"type": "python", "function": "tests.jobs.sample:echo"}
    else:
        body |= {"type": "shell", "command": "true"}
    if i == 29:
        body["depends_on"] = ["batch-01"]
    return body


@pytest.fixture(scope="module")
def jobs(dashboard: Dashboard) -> list[str]:
    with dashboard.client(timeout=10) as api:
        for i in range(len(NAMES)):
            created = api.post("/api/jobs", json=_job(i))
            assert created.status_code == 201, created.text
        for name in PAUSED:
            assert api.post(f"/api/jobs/{name}/pause").status_code == 200
    return NAMES


def _names(page: Page) -> list[str]:
    names: list[str] = page.evaluate(ROWS_JS)
    return names


def _expect_names(page: Page, expected: list[str]) -> None:
    try:
        wait_until(lambda: _names(page) == expected, timeout=10, interval=0.1)
    except AssertionError:
        assert _names(page) == expected  # says what the grid showed instead


def _pick(page: Page, control: str, value: str) -> None:
    page.locator(f"#{control}").select_option(value)


def test_the_job_list_pages_filters_searches_and_sorts_in_the_url(
    dashboard: Dashboard, jobs: list[str], page: Page
) -> None:
    page.goto(dashboard.dashboard_url)
    _expect_names(page, jobs[:20])
    row = page.locator("#jobs-grid .ag-row[row-id]").first
    expect(row).to_contain_text("never run")
    page.get_by_role("button", name="Next Page").click()
    _expect_names(page, jobs[20:])

    _pick(page, "jobs-tag", "reports")
    _expect_names(page, ["batch-00", "batch-05", "batch-10", "batch-15", "batch-20", "batch-25"])
    expect(page).to_have_url(f"{dashboard.dashboard_url}/?tag=reports")
    _pick(page, "jobs-type", "python")
    _expect_names(page, ["batch-00", "batch-15"])
    expect(page).to_have_url(f"{dashboard.dashboard_url}/?tag=reports&type=python")

    page.goto(f"{dashboard.dashboard_url}/?status=paused")
    _expect_names(page, list(PAUSED))
    expect(page.locator("#jobs-grid .ag-row[row-id] [col-id=status]").first).to_have_text("paused")
    page.goto(f"{dashboard.dashboard_url}/?schedule=once&q=batch-1")
    _expect_names(page, ["batch-11", "batch-15", "batch-19"])
    expect(page.locator("#jobs-search")).to_have_value("batch-1")

    page.goto(dashboard.dashboard_url)
    page.locator("#jobs-search").fill("batch-2")
    _expect_names(page, jobs[20:])
    expect(page).to_have_url(f"{dashboard.dashboard_url}/?q=batch-2")
    page.locator("#jobs-grid .ag-header-cell[col-id=name]").click()  # ascending -> descending
    _expect_names(page, list(reversed(jobs[20:])))
    expect(page).to_have_url(f"{dashboard.dashboard_url}/?q=batch-2&sort=-name")

    page.goto(f"{dashboard.dashboard_url}/?sort=-name")
    _expect_names(page, list(reversed(jobs))[:20])
    screenshot(page, "overview")


def test_the_job_page_shows_the_job_and_its_surroundings(
    dashboard: Dashboard, jobs: list[str], api: httpx.Client, page: Page
) -> None:
    page.goto(f"{dashboard.dashboard_url}/jobs/batch-01")

    expect(page.get_by_role("heading", name="batch-01")).to_be_visible()
    expect(page.locator("#job-status")).to_contain_text("active")
    expect(page.locator("#job-config")).to_contain_text("Europe/Paris")
    expect(page.locator("#job-config")).to_contain_text("0 3 * * *")
    page.locator("#job-raw summary").click()
    expect(page.locator("#job-raw pre")).to_contain_text('"command": "true"')
    fires = page.locator("#job-next-fires li")
    expect(fires).to_have_count(5)
    expect(fires.first).to_contain_text("03:00 CET")  # 03:00 in Paris, not UTC
    expect(page.locator("#job-dependents")).to_contain_text("batch-29")
    expect(page.locator("#job-history-table")).to_contain_text("JobCreated")

    page.locator("#job-dependents a").click()
    expect(page).to_have_url(f"{dashboard.dashboard_url}/jobs/batch-29")
    expect(page.locator("#job-depends-on")).to_contain_text("batch-01")


def test_trigger_now_with_parameters_and_refusals(
    dashboard: Dashboard, jobs: list[str], api: httpx.Client, page: Page
) -> None:
    page.goto(f"{dashboard.dashboard_url}/jobs/batch-02")
    expect(page.locator("#job-status")).to_be_visible()  # rendered: callbacks wired
    params = page.locator("#job-params")

    params.fill("{not json")
    page.get_by_role("button", name="Trigger now").click()
    expect(page.locator(".action-refused")).to_contain_text("parameters: not valid JSON")
    params.fill("[1, 2]")
    page.get_by_role("button", name="Trigger now").click()
    expect(page.locator(".action-refused")).to_contain_text("must be a JSON object")
    assert api.get("/api/runs", params={"job_id": "batch-02"}).json()["runs"] == []

    # Valid JSON the API refuses (past 64 bits): its reason is shown as it gave it.
    too_big = {"parameters": {"n": 2**64}}
    reason = api.post("/api/jobs/batch-02/trigger", json=too_big).json()["message"]
    params.fill(json.dumps(too_big["parameters"]))
    page.get_by_role("button", name="Trigger now").click()
    expect(page.locator(".action-refused")).to_contain_text(reason)

    params.fill('{"day": 3, "region": "eu"}')
    page.get_by_role("button", name="Trigger now").click()
    expect(page.locator("#job-action-result")).to_contain_text("Triggered: run")

    def runs_of_batch_02() -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = api.get("/api/runs", params={"job_id": "batch-02"}).json()[
            "runs"
        ]
        return listed

    # The test's own API client did not make the run, so it may read before it is projected.
    wait_until(lambda: runs_of_batch_02() != [])
    runs = runs_of_batch_02()
    assert [run["parameters"] for run in runs] == [{"day": 3, "region": "eu"}]
    expect(page.locator("#job-runs")).to_contain_text(runs[0]["id"])

    wait_until(
        lambda: api.get(f"/api/runs/{runs[0]['id']}").json()["status"] == "completed", timeout=30
    )
    page.reload()
    expect(page.locator("#job-stats")).to_contain_text("success 100% (1 of 1)")
    expect(page.locator("#job-history-table")).to_contain_text("RunSucceeded")
    screenshot(page, "job")


def test_pause_resume_and_delete_go_through_the_api(
    dashboard: Dashboard, jobs: list[str], api: httpx.Client, page: Page
) -> None:
    page.goto(f"{dashboard.dashboard_url}/jobs/batch-04")
    expect(page.locator("#job-status")).to_contain_text("active")  # rendered: callbacks wired
    page.locator("#job-reason").fill("maintenance window")
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.locator("#job-status")).to_contain_text("paused: maintenance window")
    job = api.get("/api/jobs/batch-04").json()
    assert (job["status"], job["paused_reason"]) == ("paused", "maintenance window")

    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#job-status")).to_contain_text("active")
    assert api.get("/api/jobs/batch-04").json()["status"] == "active"

    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("button", name="Cancel").click()
    assert api.get("/api/jobs/batch-04").status_code == 200  # cancelled: still there
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("button", name="Delete job").click()
    expect(page).to_have_url(f"{dashboard.dashboard_url}/")
    assert api.get("/api/jobs/batch-04").status_code == 404

    # A job others depend on: the API refuses, and says why.
    page.goto(f"{dashboard.dashboard_url}/jobs/batch-01")
    expect(page.locator("#job-status")).to_be_visible()
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("button", name="Delete job").click()
    expect(page.locator(".action-refused")).to_contain_text("batch-29")
    assert api.get("/api/jobs/batch-01").status_code == 200


def test_a_missing_job_has_a_not_found_page(dashboard: Dashboard, page: Page) -> None:
    page.goto(f"{dashboard.dashboard_url}/jobs/no-such-job")

    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator(".not-found")).to_contain_text("no-such-job")
