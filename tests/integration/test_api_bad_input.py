"""Bad input gets a 4xx naming the field and the reason, and appends nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from chronolog.wiring import Runtime

GOOD = {
    "name": "daily-report",
    "type": "python",
    "function": "reports.generate_daily",
    "schedule": "0 9 * * *",
}


def events_in_log(runtime: Runtime) -> int:
    return sum(runtime.log.watermarks(p).high for p in range(runtime.log.partitions))


def assert_refused(response: Any, status: int, field: str, reason_part: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    problems = {p["field"]: p["reason"] for p in body["errors"]}
    assert field in problems, body
    assert reason_part.lower() in problems[field].lower(), body
    assert body["message"]


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"schedule": "61 * * * *"}, "schedule", "61 * * * *"),
        ({"schedule": "every 0s"}, "schedule", ""),
        ({"schedule": "2020-01-01T00:00:00Z"}, "schedule", "past"),
        ({"type": "cobol"}, "type", "python"),
        ({"function": None}, "function", "required"),
        ({"function": "nodots"}, "function", "module"),
        ({"type": "shell", "function": None}, "command", "required"),
        ({"type": "http", "function": None}, "url", "required"),
        ({"depends_on": ["no-such-job"]}, "depends_on", "no-such-job"),
        ({"timeout": -1}, "timeout", "greater than 0"),
        ({"retries": -1}, "retries", "greater than or equal to 0"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({"colour": "blue"}, "colour", "unknown field"),
        ({"parameters": [1, 2]}, "parameters", "dictionary"),
        ({"parameters": "x=1"}, "parameters", "dictionary"),
        ({"name": "has spaces"}, "name", "pattern"),
        ({"name": ""}, "name", ""),
        ({"retry_backoff": "linear"}, "retry_backoff", "exponential"),
        ({"concurrency_policy": "sometimes"}, "concurrency_policy", "forbid"),
        ({"enabled": "yes"}, "enabled", "boolean"),
        ({"tags": ["ok", ""]}, "tags[1]", ""),
    ],
)
def test_bad_job_is_refused_with_field_and_reason(
    client: TestClient, running: Runtime, change: dict[str, Any], field: str, reason: str
) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    assert_refused(client.post("/api/jobs", json=body), 422, field, reason)
    assert events_in_log(running) == 0


def test_missing_required_fields(client: TestClient, running: Runtime) -> None:
    response = client.post("/api/jobs", json={"function": "a.b"})
    assert_refused(response, 422, "name", "required")
    assert_refused(response, 422, "type", "required")
    assert events_in_log(running) == 0


def test_body_that_is_not_json(client: TestClient, running: Runtime) -> None:
    response = client.post(
        "/api/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_refused(response, 422, "body", "json")
    assert events_in_log(running) == 0


def test_duplicate_name_is_a_conflict(client: TestClient, running: Runtime) -> None:
    assert client.post("/api/jobs", json=GOOD).status_code == 201
    assert_refused(client.post("/api/jobs", json=GOOD), 409, "name", "taken")
    other = client.post("/api/jobs", json={**GOOD, "name": "other"}).json()
    assert_refused(
        client.put(f"/api/jobs/{other['id']}", json={"name": "daily-report"}), 409, "name", "taken"
    )
    assert events_in_log(running) == 2


def test_cycles_are_refused_also_through_updates(client: TestClient, running: Runtime) -> None:
    client.post("/api/jobs", json={**GOOD, "name": "a"})
    client.post("/api/jobs", json={**GOOD, "name": "b", "depends_on": ["a"]})
    client.post("/api/jobs", json={**GOOD, "name": "c", "depends_on": ["b"]})
    before = events_in_log(running)
    assert_refused(
        client.put("/api/jobs/a", json={"depends_on": ["c"]}), 422, "depends_on", "a -> c -> b -> a"
    )
    assert_refused(
        client.put("/api/jobs/a", json={"depends_on": ["a"]}), 422, "depends_on", "cycle"
    )
    assert events_in_log(running) == before


def test_deleting_a_job_others_depend_on_is_a_conflict(
    client: TestClient, running: Runtime
) -> None:
    client.post("/api/jobs", json=GOOD)
    client.post("/api/jobs", json={**GOOD, "name": "send-report", "depends_on": ["daily-report"]})
    before = events_in_log(running)
    assert_refused(client.delete("/api/jobs/daily-report"), 409, "depends_on", "send-report")
    assert events_in_log(running) == before


def test_update_with_bad_fields_appends_nothing(client: TestClient, running: Runtime) -> None:
    client.post("/api/jobs", json=GOOD)
    before = events_in_log(running)
    assert_refused(
        client.put("/api/jobs/daily-report", json={"schedule": "nope"}), 422, "schedule", "nope"
    )
    assert_refused(client.put("/api/jobs/daily-report", json={"name": None}), 422, "name", "null")
    assert_refused(
        client.put("/api/jobs/daily-report", json={"command": "ls"}), 422, "command", "shell"
    )
    assert client.put("/api/jobs/nope", json={"retries": 1}).status_code == 404
    assert events_in_log(running) == before


def test_oversized_body_is_413(client: TestClient, running: Runtime) -> None:
    huge = {**GOOD, "parameters": {"blob": "x" * (2 * 1024 * 1024)}}
    assert_refused(client.post("/api/jobs", json=huge), 413, "body", "limit")
    assert events_in_log(running) == 0


def test_bad_list_filters(client: TestClient) -> None:
    assert_refused(
        client.get("/api/jobs", params={"limit": 0}), 422, "limit", "greater than or equal to 1"
    )
    assert_refused(client.get("/api/jobs", params={"type": "cobol"}), 422, "type", "python")
    assert_refused(client.get("/api/jobs", params={"enabled": "maybe"}), 422, "enabled", "boolean")


def test_unknown_list_filter_is_refused(client: TestClient) -> None:
    assert_refused(
        client.get("/api/jobs", params={"colour": "blue"}), 422, "colour", "unknown field"
    )


def test_unknown_timezone_is_refused_without_a_schedule_too(
    client: TestClient, running: Runtime
) -> None:
    body = {"name": "x", "type": "shell", "command": "true", "timezone": "Mars/Olympus"}
    assert_refused(client.post("/api/jobs", json=body), 422, "timezone", "Mars/Olympus")
    assert events_in_log(running) == 0


def test_an_event_log_that_fails_gives_503_and_no_false_success(
    client: TestClient, running: Runtime
) -> None:
    running.log.close()  # every append now fails
    response = client.post("/api/jobs", json=GOOD)
    assert response.status_code == 503, response.text
    assert "nothing was changed" in response.json()["message"]
