"""The runs, run, workers and DAG pages in a real browser, against ``chronolog up`` whose
one worker runs one run at a time (so a second run visibly waits in the queue)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.browser.conftest import Dashboard, screenshot, start_dashboard
from tests.conftest import wait_until

SLOW = "tests.jobs.pages:talk_slowly"
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    server = start_dashboard(tmp_path_factory.mktemp("runs") / "data", ["--concurrency", "1"])
    yield server
    if server.process is not None:
        server.stop()


def create(api: httpx.Client, name: str, **fields: Any) -> None:
    body = {"name": name, "type": "python", "function": SLOW, "retries": 0, **fields}
    answer = api.post("/api/jobs", json=body)
    assert answer.status_code == 201, answer.text


def trigger(api: httpx.Client, job: str, **parameters: Any) -> str:
    answer = api.post(f"/api/jobs/{job}/trigger", json={"parameters": parameters})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["run_id"])


def run_of(api: httpx.Client, run_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/api/runs/{run_id}").json()
    return body


def settled(api: httpx.Client, run_id: str, timeout: float = 30) -> dict[str, Any]:
    terminal = ("completed", "failed", "cancelled", "skipped")
    wait_until(lambda: run_of(api, run_id)["status"] in terminal, timeout=timeout, interval=0.2)
    return run_of(api, run_id)


def status_of(page: Page) -> Any:
    return page.locator(".run-summary .status-badge")


def test_a_run_goes_queued_running_completed_on_open_pages_with_live_output(
    dashboard: Dashboard, api: httpx.Client, page: Page
) -> None:
    create(api, "live-first")
    create(api, "live-second")
    runs = page.context.new_page()
    runs.goto(f"{dashboard.dashboard_url}/runs?job=live-second")
    expect(runs.locator("#runs-total")).to_contain_text("0 runs")

    first = trigger(api, "live-first", lines=16)  # holds the only worker slot for 8 s
    second = trigger(api, "live-second", lines=10)  # 5 s running: plenty to be seen
    page.goto(f"{dashboard.dashboard_url}/runs/{second}")

    expect(status_of(page)).to_have_text("queued", timeout=10_000)
    second_row = runs.locator(".ag-row", has_text=second[:12])
    expect(second_row.locator(".status-badge")).to_have_text("queued")
    expect(status_of(page)).to_have_text("running", timeout=15_000)
    expect(page.locator("#run-live-output")).to_contain_text("step 1 of 10")
    expect(page.locator("#run-elapsed")).to_contain_text("running for")
    expect(second_row.locator(".status-badge")).to_have_text("running")
    screenshot(page, "run")
    expect(status_of(page)).to_have_text("completed", timeout=15_000)
    expect(second_row.locator(".status-badge")).to_have_text("completed")
    expect(page.locator("#run-stdout")).to_contain_text("step 10 of 10")
    expect(page.locator("#run-elapsed")).to_contain_text("ran for")
    expect(page.locator(".run-attempts-table")).to_contain_text(run_of(api, second)["worker"])
    expect(page.locator(".run-events-table")).to_contain_text("RunSucceeded")
    assert settled(api, first)["status"] == "completed"
    runs.goto(f"{dashboard.dashboard_url}/runs")
    expect(runs.locator(".ag-row")).to_have_count(2)
    screenshot(runs, "runs")
    runs.close()


def test_cancel_and_retry_from_the_run_page(
    dashboard: Dashboard, api: httpx.Client, page: Page
) -> None:
    create(api, "cancel-me")
    create(api, "fails", function="tests.jobs.pages:always_fail")
    long = trigger(api, "cancel-me", lines=120)
    page.goto(f"{dashboard.dashboard_url}/runs/{long}")
    expect(status_of(page)).to_have_text("running", timeout=15_000)

    page.get_by_role("button", name="Cancel").click()

    expect(page.locator("#run-action-result")).to_contain_text("Cancel accepted")
    assert settled(api, long)["status"] == "cancelled"
    expect(status_of(page)).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel")).to_be_disabled()

    failed = trigger(api, "fails")
    assert settled(api, failed)["status"] == "failed"
    page.goto(f"{dashboard.dashboard_url}/runs/{failed}")
    expect(page.locator("#run-stderr, #run-stdout").first).to_be_visible()

    page.get_by_role("button", name="Retry").click()

    expect(page.locator("#run-action-result")).to_contain_text("Retry accepted")
    wait_until(lambda: run_of(api, failed)["attempt"] == 2, timeout=10, interval=0.2)
    expect(page.locator(".run-attempts-table tbody tr")).to_have_count(2, timeout=15_000)


def test_runs_filter_and_page_through_the_url(
    dashboard: Dashboard, api: httpx.Client, page: Page
) -> None:
    # A queue no worker serves: the runs stay queued and cost the worker nothing.
    create(api, "parked", queue="nowhere")
    ids = [trigger(api, "parked", index=index) for index in range(60)]

    page.goto(f"{dashboard.dashboard_url}/runs")
    page.locator("#runs-job").fill("parked")
    page.locator("#runs-job").press("Enter")

    expect(page).to_have_url(re.compile(r"/runs\?job=parked$"))
    expect(page.locator("#runs-total")).to_have_text("60 runs")
    paging = page.locator(".ag-paging-row-summary-panel")
    expect(paging).to_have_text(re.compile(r"1\s+to\s+50\s+of\s+60"))
    row = page.locator(".ag-center-cols-container .ag-row")
    expect(row.and_(page.locator("[row-index='0']"))).to_contain_text(ids[-1][:12])  # newest
    page.get_by_role("button", name="Next Page").click()
    expect(paging).to_have_text(re.compile(r"51\s+to\s+60\s+of\s+60"))
    expect(row.and_(page.locator("[row-index='50']"))).to_contain_text(ids[9][:12])
    expect(row.and_(page.locator("[row-index='59']"))).to_contain_text(ids[0][:12])

    newest = trigger(api, "parked", index=60)  # a new run: the grid refreshes, still on page 2

    expect(paging).to_have_text(re.compile(r"51\s+to\s+61\s+of\s+61"))
    expect(row.and_(page.locator("[row-index='50']"))).to_contain_text(ids[10][:12])
    expect(row.and_(page.locator("[row-index='60']"))).to_contain_text(ids[0][:12])
    page.get_by_role("button", name="Previous Page").click()
    expect(row.and_(page.locator("[row-index='0']"))).to_contain_text(newest[:12])

    # The first run waits in its queue; the job forbids overlap, so the others were skipped.
    page.goto(f"{dashboard.dashboard_url}/runs?job=parked&status=skipped")
    expect(page.locator("#runs-total")).to_have_text("60 runs")
    page.goto(f"{dashboard.dashboard_url}/runs?status=queued&job=parked&since=yesterday")
    expect(page.locator(".filter-error")).to_contain_text("since: 'yesterday' is not a date")
    expect(page.locator("#runs-total")).to_have_text("1 run")
    expect(page.locator(".ag-row .status-badge")).to_have_text("queued")


def test_workers_page_lists_the_worker_with_its_concurrency_and_heartbeat(
    dashboard: Dashboard, api: httpx.Client, page: Page
) -> None:
    worker = api.get("/api/workers").json()[0]

    page.goto(f"{dashboard.dashboard_url}/workers")

    row = page.locator("tr.worker-active", has_text=worker["id"])
    expect(row).to_contain_text("alive")
    expect(row.locator(".worker-concurrency")).to_have_text("1")
    expect(page.locator("th", has_text="Last heartbeat")).to_be_visible()
    # Heartbeats come every second here: a few seconds ago at most, the time on hover.
    beat = row.locator(".worker-heartbeat")
    expect(beat).to_have_text(re.compile(r"^[0-5] s ago$"))
    exact = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$")
    expect(beat).to_have_attribute("title", exact)
    first = beat.get_attribute("title")
    # Heartbeats are not events: the page looks again by itself, without a reload.
    expect(beat).not_to_have_attribute("title", first or "", timeout=15_000)
    expect(beat).to_have_attribute("title", exact)
    screenshot(page, "workers")


CY_NODES = """() => {
  const holder = [...document.querySelectorAll('#dag-graph, #dag-graph *')].find(e => e._cyreg);
  const cy = holder._cyreg.cy;
  const box = holder.getBoundingClientRect();
  return cy.nodes().map(n => ({label: n.data('label'), name: n.data('name'),
    x: box.left + n.renderedPosition().x, y: box.top + n.renderedPosition().y}));
}"""


def test_the_dag_labels_each_job_with_its_last_run_and_opens_it(
    dashboard: Dashboard, api: httpx.Client, page: Page
) -> None:
    shell = {"type": "shell", "command": "echo ok", "function": None}
    create(api, "dag-extract", **shell)
    create(api, "dag-load", depends_on=["dag-extract"], **shell)
    create(api, "dag-report", depends_on=["dag-load"], **shell)
    root = trigger(api, "dag-extract")
    assert settled(api, root)["status"] == "completed"

    def pipeline_done() -> bool:
        runs = api.get("/api/runs", params={"job_id": "dag-report"}).json()["runs"]
        return bool(runs) and runs[0]["status"] == "completed"

    wait_until(pipeline_done, timeout=30, interval=0.2)
    page.goto(f"{dashboard.dashboard_url}/dag")
    expect(page.locator("#dag-caption")).to_contain_text("3 jobs, 2 dependencies")

    def labels() -> list[str]:
        return sorted(node["label"] for node in page.evaluate(CY_NODES))

    wait_until(lambda: len(labels()) == 3, timeout=10, interval=0.2)
    assert labels() == [f"{name} · completed" for name in ("dag-extract", "dag-load", "dag-report")]
    screenshot(page, "dag")

    page.goto(f"{dashboard.dashboard_url}/dag?correlation={root}")
    expect(page.locator("#dag-caption")).to_contain_text(f"pipeline {root}")

    def laid_out() -> bool:  # the layout has placed all three apart
        return len({round(node["x"]) for node in page.evaluate(CY_NODES)}) == 3

    wait_until(laid_out, timeout=10, interval=0.2)
    node = next(n for n in page.evaluate(CY_NODES) if n["name"] == "dag-load")
    page.mouse.click(node["x"], node["y"])
    expect(page).to_have_url(re.compile(r"/jobs/dag-load$"))


def test_a_missing_run_is_not_found(dashboard: Dashboard, page: Page) -> None:
    page.goto(f"{dashboard.dashboard_url}/runs/no-such-run")

    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator(".not-found")).to_contain_text("no-such-run")


def test_the_run_pages_fit_a_phone(
    dashboard: Dashboard, api: httpx.Client, browser: Browser
) -> None:
    create(api, "phone", type="shell", command="echo ok", function=None)
    run_id = trigger(api, "phone")
    context = browser.new_context(viewport=PHONE)
    dashboard.sign_in(context)
    page = context.new_page()
    pages = {"/runs": ".ag-row", f"/runs/{run_id}": ".run-summary", "/workers": "tr.worker-active"}
    pages["/dag"] = "#dag-caption"
    for path, shown in pages.items():
        page.goto(f"{dashboard.dashboard_url}{path}")
        expect(page.locator(shown).first).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide"
    context.close()
