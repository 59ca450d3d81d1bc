"""The job API against a real embedded log and projector (in-process ASGI).

The list filters and the refusals share one app per backend (``shared_client``); tests
that change jobs get an app of their own."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.samples import DAILY_REPORT, SEND_REPORT


def create(client: TestClient, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = client.post("/api/jobs", json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def test_demo_flow_creates_lists_and_filters(client: TestClient) -> None:
    report = create(client, DAILY_REPORT)
    assert report["id"].startswith("job-")
    assert report["name"] == "daily-report"
    assert report["schedule_type"] == "cron"
    assert report["next_run"].endswith("T09:00:00Z")
    assert datetime.fromisoformat(report["next_run"]) > datetime.now(UTC)
    assert report["parameters"] == {"recipients": ["team@example.com"]}
    assert (report["timeout"], report["retries"], report["tags"]) == (3600, 2, ["reports"])
    assert (report["retry_backoff"], report["concurrency_policy"], report["queue"]) == (
        "exponential",
        "forbid",
        "default",
    )
    assert report["created_at"] == report["updated_at"]

    send = create(client, SEND_REPORT)
    assert send["depends_on"] == ["daily-report"]
    assert (send["schedule_type"], send["next_run"]) == ("none", None)

    listed = client.get("/api/jobs", params={"tag": "reports"}).json()
    assert listed["total"] == 1
    assert [job["name"] for job in listed["jobs"]] == ["daily-report"]
    assert client.get("/api/jobs").json()["total"] == 2


def test_get_accepts_id_or_name(client: TestClient) -> None:
    job = create(client, DAILY_REPORT)
    assert (
        client.get(f"/api/jobs/{job['id']}").json() == client.get("/api/jobs/daily-report").json()
    )
    missing = client.get("/api/jobs/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


@pytest.fixture(scope="module")
def four_jobs(shared_client: TestClient) -> TestClient:
    """A module's shared app holding four jobs, for the list filters to choose from."""
    create(shared_client, DAILY_REPORT)
    create(shared_client, SEND_REPORT)
    create(
        shared_client,
        {"name": "backup", "type": "shell", "command": ["tar", "czf", "x"], "schedule": "every 1h"},
    )
    create(
        shared_client,
        {"name": "ping", "type": "http", "url": "https://example.com/ping", "enabled": False},
    )
    return shared_client


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"type": "shell"}, ["backup"]),
        ({"schedule_type": "interval"}, ["backup"]),
        ({"schedule_type": "cron"}, ["daily-report"]),
        ({"schedule_type": "none"}, ["ping", "send-report"]),
        ({"enabled": "false"}, ["ping"]),
        ({"q": "REPORT"}, ["daily-report", "send-report"]),
        ({"limit": 2, "offset": 1}, ["daily-report", "ping"]),
    ],
)
def test_list_filters(four_jobs: TestClient, params: dict[str, Any], names: list[str]) -> None:
    client = four_jobs
    listed = client.get("/api/jobs", params=params).json()
    assert [job["name"] for job in listed["jobs"]] == names
    if "limit" in params:
        assert listed["total"] == 4


def test_update_changes_given_fields_only(client: TestClient) -> None:
    job = create(client, DAILY_REPORT)
    response = client.put(f"/api/jobs/{job['id']}", json={"retries": 5, "schedule": "every 5m"})
    assert response.status_code == 200
    updated = response.json()
    assert (updated["retries"], updated["schedule_type"], updated["version"]) == (5, "interval", 2)
    assert updated["function"] == "reports.generate_daily"
    assert updated["created_at"] == job["created_at"]
    assert client.get("/api/jobs/daily-report").json()["retries"] == 5


def test_an_update_that_changes_nothing_appends_nothing(client: TestClient) -> None:
    create(client, DAILY_REPORT)
    again = client.put("/api/jobs/daily-report", json={"retries": 2})
    assert again.json()["version"] == 1
    assert len(client.get("/api/jobs/daily-report/events").json()["events"]) == 1


def test_pause_and_resume(client: TestClient) -> None:
    create(client, DAILY_REPORT)
    paused = client.post("/api/jobs/daily-report/pause", json={"reason": "maintenance"}).json()
    assert (paused["enabled"], paused["status"], paused["next_run"]) == (False, "paused", None)
    resumed = client.post("/api/jobs/daily-report/resume").json()
    assert (resumed["enabled"], resumed["status"]) == (True, "active")
    assert resumed["next_run"] is not None


def test_delete_then_the_name_is_free_and_history_stays(client: TestClient) -> None:
    job = create(client, DAILY_REPORT)
    assert client.delete("/api/jobs/daily-report").status_code == 200
    assert client.get("/api/jobs/daily-report").status_code == 404
    history = client.get(f"/api/jobs/{job['id']}/events").json()
    assert [e["type"] for e in history["events"]] == ["JobCreated", "JobDeleted"]
    again = create(client, DAILY_REPORT)
    assert again["id"] != job["id"]


def test_event_history_is_the_log_oldest_first(client: TestClient) -> None:
    job = create(client, DAILY_REPORT)
    client.put("/api/jobs/daily-report", json={"retries": 4})
    client.post("/api/jobs/daily-report/pause")
    client.post("/api/jobs/daily-report/resume")
    history = client.get("/api/jobs/daily-report/events").json()
    assert history["job_id"] == job["id"]
    assert [e["type"] for e in history["events"]] == [
        "JobCreated",
        "JobUpdated",
        "JobPaused",
        "JobResumed",
    ]
    offsets = [e["offset"] for e in history["events"]]
    assert offsets == sorted(offsets)
    assert history["events"][1]["payload"]["changed_fields"] == ["retries"]
    assert history["events"][0]["payload"]["spec"]["parameters"] == {
        "recipients": ["team@example.com"]
    }
    assert all(e["actor"] == "anonymous" and e["rejected"] is None for e in history["events"])


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/api/jobs" in client.get("/openapi.json").json()["paths"]


def test_json_sent_as_a_form_is_refused_and_says_how_to_send_it(client: TestClient) -> None:
    # `curl -d '{...}'` without -H "Content-Type: application/json" labels JSON as a form,
    # and so does any web page's form: neither is read (see test_api_cross_site.py).
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = client.post("/api/jobs", content=json.dumps(DAILY_REPORT), headers=form)
    assert response.status_code == 415, response.text
    (problem,) = response.json()["errors"]
    assert problem["field"] == "content-type"
    assert "Content-Type: application/json" in problem["reason"]
    assert client.get("/api/jobs").json()["total"] == 0


HOOK = {"name": "hook", "type": "http", "url": "https://example.com/hook", "method": "POST"}


def test_an_http_body_may_be_a_json_value_and_is_answered_as_given(client: TestClient) -> None:
    body = {"report": "daily", "days": [1, 2], "filters": {"team": None, "min": 1.5}}
    job = create(client, {**HOOK, "body": body})
    assert job["body"] == body
    assert client.get("/api/jobs/hook").json()["body"] == body
    (created,) = client.get("/api/jobs/hook/events").json()["events"]
    assert (created["payload"]["spec"]["json_body"], created["payload"]["spec"]["body"]) == (
        body,
        None,
    )
    as_list = client.put("/api/jobs/hook", json={"body": [1, "two"]})
    assert as_list.json()["body"] == [1, "two"]
    as_text = client.put("/api/jobs/hook", json={"body": "a,b\n"})
    assert as_text.json()["body"] == "a,b\n"
    assert (
        client.get("/api/jobs/hook/events").json()["events"][-1]["payload"]["spec"]["json_body"]
        is None
    )
    cleared = client.put("/api/jobs/hook", json={"body": None})
    assert cleared.json()["body"] is None


@pytest.mark.parametrize(
    ("job", "field", "reason"),
    [
        ({**HOOK, "body": 42}, "body", "not a number"),
        ({**HOOK, "body": True}, "body", "not a boolean"),
        ({**HOOK, "body": {"n": 2**64}}, "body.n", "64-bit"),
        ({**HOOK, "body": "x" * 1_000_001}, "body", "at most 1000000 characters"),
        ({"name": "sh", "type": "shell", "command": "true", "body": {"a": 1}}, "body", "only http"),
    ],
)
def test_a_body_that_cannot_be_sent_is_refused_naming_the_field(
    shared_client: TestClient, job: dict[str, Any], field: str, reason: str
) -> None:
    response = shared_client.post("/api/jobs", json=job)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["errors"]
    assert problem["field"] == field
    assert reason in problem["reason"]


def test_no_concurrency_limit_and_the_thread_pool_are_kept_and_answered(
    client: TestClient,
) -> None:
    plain = client.post("/api/jobs", json={"name": "plain", "type": "python", "function": "a.b"})
    assert (plain.json()["max_concurrency"], plain.json()["pool"]) == (1, "process")
    body = {
        "name": "fetcher",
        "type": "python",
        "function": "jobs.fetch",
        "concurrency_policy": "allow",
        "max_concurrency": None,
        "pool": "thread",
    }
    created = client.post("/api/jobs", json=body)
    assert created.status_code == 201, created.text
    assert (created.json()["max_concurrency"], created.json()["pool"]) == (None, "thread")
    limited = client.put("/api/jobs/fetcher", json={"max_concurrency": 5})
    assert limited.json()["max_concurrency"] == 5
    assert limited.json()["pool"] == "thread"  # fields not named stay
    unlimited = client.put("/api/jobs/fetcher", json={"max_concurrency": None})
    assert unlimited.json()["max_concurrency"] is None
    assert client.get("/api/jobs/fetcher").json()["max_concurrency"] is None
    shell = client.post("/api/jobs", json={"name": "sh", "type": "shell", "command": "true"})
    assert shell.json()["pool"] is None  # python jobs only
