"""Secret references through the API: stored and answered as references, plain secrets
refused with the field (real embedded log and projector, SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

REPORTS: dict[str, Any] = {
    "name": "reports",
    "type": "http",
    "url": "https://reports.example.com/run",
    "method": "POST",
    "headers": {"Accept": "application/json", "Authorization": {"secret": "REPORTS_TOKEN"}},
    "parameters": {"db": {"user": "app", "password": {"secret": "DB_PASSWORD"}}},
}


def fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


def test_references_are_stored_and_answered_as_references(client: TestClient) -> None:
    created = client.post("/api/jobs", json=REPORTS)
    assert created.status_code == 201, created.text
    job = client.get("/api/jobs/reports").json()
    for answer in (created.json(), job):
        assert answer["headers"] == REPORTS["headers"]
        assert answer["parameters"] == REPORTS["parameters"]
    events = client.get(f"/api/jobs/{job['id']}/events").json()["events"]
    spec = events[0]["payload"]["spec"]
    assert spec["headers"] == {"Accept": "application/json"}
    assert spec["secret_headers"] == {"Authorization": "REPORTS_TOKEN"}

    updated = client.patch("/api/jobs/reports", json={"headers": {"X-Api-Key": {"secret": "K"}}})
    assert updated.status_code == 200, updated.text
    assert updated.json()["headers"] == {"X-Api-Key": {"secret": "K"}}


def test_plain_secrets_are_refused_naming_the_field(client: TestClient) -> None:
    body = {
        **REPORTS,
        "headers": {"Authorization": "Bearer abc123"},
        "parameters": {"db": {"password": "hunter2"}},
    }
    response = client.post("/api/jobs", json=body)
    assert fields(response) == ["headers.Authorization", "parameters.db.password"]
    assert '{"secret": "NAME"}' in response.json()["message"]
    assert "hunter2" not in response.text and "abc123" not in response.text
    assert client.get("/api/jobs/reports").status_code == 404

    assert client.post("/api/jobs", json=REPORTS).status_code == 201
    patch = client.patch("/api/jobs/reports", json={"parameters": {"api_key": "k-123"}})
    assert fields(patch) == ["parameters.api_key"]
    trigger = client.post(
        "/api/jobs/reports/trigger", json={"parameters": {"auth": {"token": "t-123"}}}
    )
    assert fields(trigger) == ["parameters.auth.token"]


def test_a_bad_reference_is_refused(client: TestClient) -> None:
    body = {**REPORTS, "headers": {"Authorization": {"secret": "not a name"}}}
    assert client.post("/api/jobs", json=body).status_code == 422
    python_job = {"name": "p", "type": "python", "function": "m:f"}
    refs_on_python = {**python_job, "headers": {"Authorization": {"secret": "TOKEN"}}}
    assert fields(client.post("/api/jobs", json=refs_on_python)) == ["headers"]


def test_a_trigger_keeps_references_in_the_run(client: TestClient) -> None:
    assert client.post("/api/jobs", json=REPORTS).status_code == 201
    parameters = {"extra": {"secret": "EXTRA"}}
    triggered = client.post("/api/jobs/reports/trigger", json={"parameters": parameters})
    assert triggered.status_code in (201, 202), triggered.text
    run = client.get(f"/api/runs/{triggered.json()['run_id']}").json()
    assert run["parameters"] == {**REPORTS["parameters"], **parameters}
