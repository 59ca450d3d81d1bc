"""What schemathesis found (tests/fuzz), each pinned by a plain test: answers in the
documented shape with a documented status code, and data the schema refuses refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.schemas import ErrorBody, HealthOut, LiveOut, TriggerOut
from chronolog.wiring import open_read_model
from tests.samples import DAILY_REPORT


@pytest.fixture
def read_model_url(tmp_path: Path) -> str:
    """None of these depend on the read model's engine: SQLite will do."""
    url = f"sqlite:///{tmp_path / 'data' / 'readmodel.db'}"
    open_read_model(url, upgrade=True).dispose()
    return url


def test_a_body_that_is_not_utf8_is_422_naming_the_body(client: TestClient) -> None:
    json_type = {"content-type": "application/json"}
    response = client.post("/api/jobs", content=b'{"name": "\xff"}', headers=json_type)
    assert response.status_code == 422, response.text  # was FastAPI's bare 400
    body = ErrorBody.model_validate(response.json())
    assert (body.errors[0].field, body.errors[0].reason) == (
        "body",
        "not valid JSON: not UTF-8 text (byte 10)",
    )


def test_starlettes_own_refusals_come_in_the_apis_error_shape(client: TestClient) -> None:
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert ErrorBody.model_validate(missing.json()).error == "not_found"
    wrong = client.request("PATCH", "/api/runs")
    assert wrong.status_code == 405
    assert ErrorBody.model_validate(wrong.json()).error == "method_not_allowed"
    assert wrong.headers["allow"] == "GET"


def test_a_replayed_trigger_is_a_documented_200(client: TestClient) -> None:
    client.post("/api/jobs", json=DAILY_REPORT)
    key = {"Idempotency-Key": "once"}
    first = client.post("/api/jobs/daily-report/trigger", headers=key)
    again = client.post("/api/jobs/daily-report/trigger", headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert TriggerOut.model_validate(again.json()).run_id == first.json()["run_id"]
    responses = client.get("/openapi.json").json()["paths"]["/api/jobs/{ref}/trigger"]["post"]
    assert {"200", "201"} <= set(responses["responses"])


@pytest.mark.parametrize("value", ["9", "1700000000", "-1.5", "1e9"])
def test_a_time_filter_must_be_a_date_time_not_a_unix_number(
    client: TestClient, value: str
) -> None:
    for field in ("since", "until"):
        response = client.get("/api/runs", params={field: value})
        assert response.status_code == 422, response.text  # was read as a Unix time
        (problem,) = response.json()["errors"]
        assert problem["field"] == field
        assert "ISO 8601" in problem["reason"]
    assert client.get("/api/runs", params={"since": "2026-11-01T00:00:00Z"}).status_code == 200


@pytest.mark.parametrize("value", ["14", "1700000000.5"])
def test_an_audit_time_filter_must_be_a_date_time_not_a_unix_number(
    client: TestClient, value: str
) -> None:
    for field in ("since", "until"):
        response = client.get("/api/audit", params={field: value})
        assert response.status_code == 422, response.text  # was read as a Unix time
        (problem,) = response.json()["errors"]
        assert (problem["field"], "ISO 8601" in problem["reason"]) == (field, True)
    assert client.get("/api/audit", params={"until": "2026-11-01T00:00:00Z"}).status_code == 200


def test_the_health_report_is_documented_for_200_and_503(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 503  # no scheduler runs here
    report = HealthOut.model_validate(response.json())
    assert report.status == "unhealthy" and report.problems
    LiveOut.model_validate(client.get("/api/health/live").json())
    documented = client.get("/openapi.json").json()["paths"]["/api/health"]["get"]["responses"]
    assert documented["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HealthOut"
    }
    unhealthy = documented["503"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/HealthOut"} in unhealthy["anyOf"]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("priority", True, "valid integer"),
        ("retries", "5", "valid integer"),
        ("max_concurrency", 2.0, "valid integer"),
        ("timeout", False, "valid number"),
        ("retry_delay", "1.5", "valid number"),
        ("non_retryable_exit_codes", [True], "valid integer"),
    ],
)
def test_a_number_field_takes_only_json_numbers(
    client: TestClient, field: str, value: object, reason: str
) -> None:
    # Pydantic's lax mode read `true` as 1 and "5" as 5: schema-invalid data was accepted.
    response = client.post("/api/jobs", json={**DAILY_REPORT, field: value})
    assert response.status_code == 422, response.text
    problems = {p["field"]: p["reason"] for p in response.json()["errors"]}
    named = f"{field}[0]" if isinstance(value, list) else field
    assert reason in problems[named], problems
    assert client.get("/api/jobs").json()["total"] == 0
