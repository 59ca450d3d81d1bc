"""Bad input gets a 4xx naming the field and the reason, and appends nothing.

Tests whose requests are all refused share one app per backend (``shared_client``): the
log of that app must still be empty after each of them, which is what they check.
Tests that create jobs first get an app of their own (``client``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
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
        ({"type": "http", "function": None, "url": "file:///etc/passwd"}, "url", "'file'"),
        ({"type": "http", "function": None, "url": "gopher://h:70/x"}, "url", "http:// or"),
        ({"type": "http", "function": None, "url": "http:///nohost"}, "url", "names no host"),
        ({"type": "http", "function": None, "url": "http://:80/x"}, "url", "names no host"),
        ({"type": "http", "function": None, "url": "http://h:99999/"}, "url", "port"),
        ({"type": "http", "function": None, "url": "http://[zz]/"}, "url", "not a valid URL"),
        ({"type": "http", "function": None, "url": "http://a b/"}, "url", "spaces"),
        ({"type": "http", "function": None, "url": "http://a..b/"}, "url", "host name"),
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
    shared_client: TestClient,
    shared_running: Runtime,
    change: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    assert_refused(shared_client.post("/api/jobs", json=body), 422, field, reason)
    assert events_in_log(shared_running) == 0


def test_missing_required_fields(shared_client: TestClient, shared_running: Runtime) -> None:
    response = shared_client.post("/api/jobs", json={"function": "a.b"})
    assert_refused(response, 422, "name", "required")
    assert_refused(response, 422, "type", "required")
    assert events_in_log(shared_running) == 0


def test_body_that_is_not_json(shared_client: TestClient, shared_running: Runtime) -> None:
    response = shared_client.post(
        "/api/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_refused(response, 422, "body", "json")
    assert events_in_log(shared_running) == 0


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


def test_an_update_to_a_url_no_worker_could_call_is_refused(
    client: TestClient, running: Runtime
) -> None:
    hook = {"name": "hook", "type": "http", "url": "https://example.com/hook"}
    assert client.post("/api/jobs", json=hook).status_code == 201
    before = events_in_log(running)
    response = client.put("/api/jobs/hook", json={"url": "file:///etc/passwd"})
    assert_refused(response, 422, "url", "http:// or https:// URLs only")
    assert events_in_log(running) == before


def test_oversized_body_is_413(shared_client: TestClient, shared_running: Runtime) -> None:
    huge = {**GOOD, "parameters": {"blob": "x" * (2 * 1024 * 1024)}}
    assert_refused(shared_client.post("/api/jobs", json=huge), 413, "body", "limit")
    assert events_in_log(shared_running) == 0


def test_bad_list_filters(shared_client: TestClient) -> None:
    assert_refused(
        shared_client.get("/api/jobs", params={"limit": 0}),
        422,
        "limit",
        "greater than or equal to 1",
    )
    assert_refused(shared_client.get("/api/jobs", params={"type": "cobol"}), 422, "type", "python")
    assert_refused(
        shared_client.get("/api/jobs", params={"enabled": "maybe"}), 422, "enabled", "boolean"
    )


def test_unknown_list_filter_is_refused(shared_client: TestClient) -> None:
    assert_refused(
        shared_client.get("/api/jobs", params={"colour": "blue"}), 422, "colour", "unknown field"
    )


def test_unknown_timezone_is_refused_without_a_schedule_too(
    shared_client: TestClient, shared_running: Runtime
) -> None:
    body = {"name": "x", "type": "shell", "command": "true", "timezone": "Mars/Olympus"}
    assert_refused(shared_client.post("/api/jobs", json=body), 422, "timezone", "Mars/Olympus")
    assert events_in_log(shared_running) == 0


def test_an_event_log_that_fails_gives_503_and_no_false_success(
    client: TestClient, running: Runtime
) -> None:
    running.log.close()  # every append now fails
    response = client.post("/api/jobs", json=GOOD)
    assert response.status_code == 503, response.text
    assert "nothing was changed" in response.json()["message"]


# --- values the read model cannot hold (issue 8, item 0) --------------------------------

UNSTORABLE = [
    ("18446744073709551616", "parameters.x", "64-bit"),
    ("-9223372036854775809", "parameters.x", "64-bit"),
    ("NaN", "parameters.x", "finite"),
    ("Infinity", "parameters.x", "finite"),
    ("-Infinity", "parameters.x", "finite"),
    ("1e400", "parameters.x", "finite"),
    ('"\\ud800"', "parameters.x", "surrogate"),
    ('"a\\u0000b"', "parameters.x", "NUL"),
    ('{"deep": [1, {"k": 18446744073709551616}]}', "parameters.x.deep[1].k", "64-bit"),
    ('{"\\ud800": 1}', "parameters.x.'\\ud800'", "surrogate"),
    ("[" * 70 + "]" * 70, "parameters.x" + "[0]" * 62, "nested deeper than 64 levels"),
]


def raw_post(client: TestClient, url: str, body: str, method: str = "POST") -> Any:
    headers = {"content-type": "application/json"}
    return client.request(method, url, content=body.encode(), headers=headers)


@pytest.mark.parametrize(("value", "field", "reason"), UNSTORABLE)
def test_job_parameters_the_read_model_cannot_hold_are_refused(
    shared_client: TestClient, shared_running: Runtime, value: str, field: str, reason: str
) -> None:
    body = '{"name": "p", "type": "shell", "command": "true", "parameters": {"x": ' + value + "}}"
    assert_refused(raw_post(shared_client, "/api/jobs", body), 422, field, reason)
    assert events_in_log(shared_running) == 0


@pytest.mark.parametrize(("value", "field", "reason"), UNSTORABLE[:8])
def test_updates_and_triggers_with_values_the_read_model_cannot_hold_are_refused(
    client: TestClient, running: Runtime, value: str, field: str, reason: str
) -> None:
    assert client.post("/api/jobs", json={**GOOD, "name": "p"}).status_code == 201
    before = events_in_log(running)
    body = '{"parameters": {"x": ' + value + "}}"
    for method in ("PUT", "PATCH"):
        assert_refused(raw_post(client, "/api/jobs/p", body, method), 422, field, reason)
    assert_refused(raw_post(client, "/api/jobs/p/trigger", body), 422, field, reason)
    assert events_in_log(running) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('"description": "a\\u0000b"', "description"),
        ('"type": "shell", "function": null, "command": ["ls", "\\ud800"]', "command[1]"),
        (
            '"type": "http", "function": null, "url": "http://x", "headers": {"h": "\\u0000"}',
            "headers.h",
        ),
        ('"type": "http", "function": null, "url": "http://x", "body": "\\udfff"', "body"),
    ],
)
def test_any_text_the_read_model_cannot_hold_is_refused(
    shared_client: TestClient, shared_running: Runtime, body: str, field: str
) -> None:
    text = '{"name": "p", "type": "python", "function": "a.b", ' + body + "}"
    text = text.replace('"type": "python", "function": "a.b", "type"', '"type"')
    assert_refused(raw_post(shared_client, "/api/jobs", text), 422, field)
    assert events_in_log(shared_running) == 0


def test_a_pause_reason_the_read_model_cannot_hold_is_refused(
    client: TestClient, running: Runtime
) -> None:
    assert client.post("/api/jobs", json=GOOD).status_code == 201
    before = events_in_log(running)
    response = raw_post(client, "/api/jobs/daily-report/pause", '{"reason": "\\u0000"}')
    assert_refused(response, 422, "reason", "NUL")
    assert events_in_log(running) == before


def test_the_largest_storable_values_are_accepted_and_read_back(client: TestClient) -> None:
    parameters = {"max": 2**63 - 1, "min": -(2**63), "big": 1.7976931348623157e308, "u": "é😀"}
    created = client.post("/api/jobs", json={**GOOD, "parameters": parameters})
    assert created.status_code == 201, created.text
    assert client.get("/api/jobs/daily-report").json()["parameters"] == parameters


# --- inputs that answered 500 (issue 8, item 0b) ----------------------------------------


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/api/runs", {"offset": 2**63}, "offset"),
        ("/api/runs", {"limit": 2**63}, "limit"),
        ("/api/dead-letter", {"offset": 2**63}, "offset"),
        ("/api/dead-letter", {"limit": 2**63}, "limit"),
        ("/api/jobs", {"offset": 2**63}, "offset"),
        ("/api/jobs", {"limit": 2**63}, "limit"),
        ("/api/jobs/daily-report/events", {"limit": 2**63}, "limit"),
        ("/api/runs", {"since": "9999-12-31T23:59:59-23:59"}, "since"),
        ("/api/runs", {"until": "0001-01-01T00:00:00+23:59"}, "until"),
    ],
)
def test_out_of_range_query_parameters_are_refused(
    client: TestClient, url: str, params: dict[str, Any], field: str
) -> None:
    assert client.post("/api/jobs", json=GOOD).status_code == 201
    assert_refused(client.get(url, params=params), 422, field)


def test_the_largest_offset_and_naive_times_are_answered(shared_client: TestClient) -> None:
    for url in ("/api/runs", "/api/dead-letter", "/api/jobs"):
        response = shared_client.get(url, params={"offset": 2**63 - 1})
        assert response.status_code == 200, response.text
        assert response.json()[url.rsplit("/", 1)[1].replace("dead-letter", "runs")] == []
    naive = shared_client.get("/api/runs", params={"since": "2026-11-01T00:00:00"})
    assert naive.status_code == 200, naive.text


@pytest.mark.parametrize(
    ("schedule", "timezone", "reason"),
    [
        ("every 999999999999d", "UTC", "365 days"),
        ("every 10000000000000000000000s", "UTC", "365 days"),
        ("9999-12-31T23:59:59", "America/Adak", "out of range"),
        ("0001-01-01T00:00:00", "Asia/Tokyo", "out of range"),
    ],
)
def test_schedules_that_overflow_are_refused(
    shared_client: TestClient, shared_running: Runtime, schedule: str, timezone: str, reason: str
) -> None:
    body = {**GOOD, "schedule": schedule, "timezone": timezone}
    assert_refused(shared_client.post("/api/jobs", json=body), 422, "schedule", reason)
    assert events_in_log(shared_running) == 0


def test_a_chunked_body_over_the_limit_is_413(
    shared_client: TestClient, shared_running: Runtime
) -> None:
    chunk = b" " * 65536

    def body() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        yield b'{"name": "x", "type": "shell", "command": "true", "description": "'
        for _ in range(20):
            yield chunk
        yield b'"}'

    response = shared_client.post(
        "/api/jobs", content=body(), headers={"content-type": "application/json"}
    )
    assert_refused(response, 413, "body", "limit")
    assert events_in_log(shared_running) == 0


def test_a_chunked_body_within_the_limit_is_read_whole(client: TestClient) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"name": "x", "type": "shell", '
        yield b'"command": "true"}'

    response = client.post(
        "/api/jobs", content=body(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("read_model_url", ["sqlite"], indirect=True)  # a file to overwrite
def test_a_malformed_read_model_database_answers_503(client: TestClient, running: Runtime) -> None:
    assert client.post("/api/jobs", json=GOOD).status_code == 201
    path = Path(running.engine.url.database or "")
    size = path.stat().st_size
    with path.open("r+b") as database:  # garbage over the file while the API runs
        database.write(bytes(range(256)) * (size // 256 + 1))
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    running.engine.dispose()  # as after a restart: connections open the garbage

    for url in ("/api/jobs", "/api/jobs/daily-report", "/api/runs"):
        response = client.get(url)
        assert response.status_code == 503, response.text
        assert "database" in response.json()["message"]


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("/api/jobs/a%00b", "path"),
        ("/api/jobs/a%00b/events", "path"),
        ("/api/runs/run-%00", "path"),
        ("/api/runs?job_id=a%00b", "query"),
        ("/api/jobs?q=%00", "query"),
    ],
)
def test_a_nul_in_the_url_is_refused_naming_the_part(
    shared_client: TestClient, url: str, part: str
) -> None:
    # PostgreSQL refuses NUL in any text compared: without this, 503 instead of a 4xx.
    assert_refused(shared_client.get(url), 422, part, "NUL")


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"max_concurrency": None}, "max_concurrency", "allow or queue, not 'forbid'"),
        (
            {"max_concurrency": None, "concurrency_policy": "replace"},
            "max_concurrency",
            "not 'replace'",
        ),
        ({"max_concurrency": 0}, "max_concurrency", "greater than or equal to 1"),
        ({"max_concurrency": 10_001}, "max_concurrency", "less than or equal to 10000"),
        ({"pool": "fiber"}, "pool", "'process' or 'thread'"),
        ({"type": "shell", "function": None, "command": "ls", "pool": "thread"}, "pool", "python"),
    ],
)
def test_no_limit_and_the_pool_are_refused_where_they_mean_nothing(
    shared_client: TestClient,
    shared_running: Runtime,
    change: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None or k == field}
    assert_refused(shared_client.post("/api/jobs", json=body), 422, field, reason)
    assert events_in_log(shared_running) == 0


def test_an_update_cannot_leave_no_limit_under_a_policy_without_one(
    client: TestClient, running: Runtime
) -> None:
    unlimited = {**GOOD, "concurrency_policy": "queue", "max_concurrency": None}
    assert client.post("/api/jobs", json=unlimited).status_code == 201
    before = events_in_log(running)
    change = {"concurrency_policy": "forbid"}
    assert_refused(client.put("/api/jobs/daily-report", json=change), 422, "max_concurrency")
    assert events_in_log(running) == before
    both = {"concurrency_policy": "forbid", "max_concurrency": 1}
    assert client.put("/api/jobs/daily-report", json=both).status_code == 200
