"""Schedule previews through the API: a job's next fires across Berlin's 2026 DST
changes, a schedule before any job has it, and bad input named by field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

BERLIN_0230 = {
    "name": "nightly",
    "type": "shell",
    "command": "true",
    "schedule": "30 2 * * *",
    "timezone": "Europe/Berlin",
}


@pytest.fixture
def read_model_url(tmp_path: Any) -> str:
    """The embedded read model only: previews read one job row, nothing backend-specific."""
    from chronolog.wiring import open_read_model

    url = f"sqlite:///{tmp_path / 'data' / 'readmodel.db'}"
    open_read_model(url, upgrade=True).dispose()
    return url


def test_a_jobs_fires_across_the_spring_gap_flag_the_shifted_one(client: TestClient) -> None:
    assert client.post("/api/jobs", json=BERLIN_0230).status_code == 201
    response = client.get(
        "/api/jobs/nightly/fires", params={"count": 3, "after": "2026-03-27T12:00:00Z"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["schedule"], body["timezone"], body["reason"]) == (
        "30 2 * * *",
        "Europe/Berlin",
        None,
    )
    assert [(f["at"], f["local"], f["dst"]) for f in body["fires"]] == [
        ("2026-03-28T01:30:00Z", "2026-03-28T02:30:00+01:00", None),
        ("2026-03-29T01:00:00Z", "2026-03-29T03:00:00+02:00", "shifted"),
        ("2026-03-30T00:30:00Z", "2026-03-30T02:30:00+02:00", None),
    ]


def test_a_schedule_is_previewed_before_a_job_has_it_with_the_autumn_repeat(
    client: TestClient,
) -> None:
    body = {
        "schedule": "30 * * * *",
        "timezone": "Europe/Berlin",
        "count": 3,
        "after": "2026-10-25T02:00:00+02:00",
    }
    response = client.post("/api/schedules/preview", json=body)
    assert response.status_code == 200, response.text
    fires = response.json()["fires"]
    assert [(f["local"], f["dst"], f["fold"]) for f in fires] == [
        ("2026-10-25T02:30:00+02:00", "ambiguous", 0),
        ("2026-10-25T02:30:00+01:00", "ambiguous", 1),
        ("2026-10-25T03:30:00+01:00", None, None),
    ]


def test_a_job_without_a_schedule_has_no_fires_and_says_why(client: TestClient) -> None:
    job = {"name": "by-hand", "type": "shell", "command": "true"}
    assert client.post("/api/jobs", json=job).status_code == 201
    response = client.get("/api/jobs/by-hand/fires")
    assert response.status_code == 200
    assert response.json()["fires"] == []
    assert response.json()["reason"] == "the job has no schedule: it runs only when triggered"


@pytest.mark.parametrize(
    ("request_args", "field"),
    [
        ({"url": "/api/jobs/nightly/fires", "params": {"count": 0}}, "count"),
        ({"url": "/api/jobs/nightly/fires", "params": {"count": 101}}, "count"),
        ({"url": "/api/jobs/nightly/fires", "params": {"after": "soon"}}, "after"),
    ],
)
def test_bad_query_parameters_are_422_naming_the_field(
    client: TestClient, request_args: dict[str, Any], field: str
) -> None:
    assert client.post("/api/jobs", json=BERLIN_0230).status_code == 201
    response = client.get(**request_args)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"schedule": "61 * * * *"}, "schedule", "invalid schedule"),
        ({"schedule": "@daily", "timezone": "Mars/Olympus"}, "timezone", "unknown timezone"),
        ({"schedule": "@daily", "count": 500}, "count", "less than or equal to 100"),
        ({"schedule": ""}, "schedule", "empty"),
        ({"schedule": "@daily", "after": "1969-12-31T23:00:00Z"}, "after", "from 1970-01-01"),
        ({"schedule": "@daily", "after": "0001-01-01T00:00:00+14:00"}, "after", "from 1970"),
        ({"schedule": "@daily", "when": "now"}, "when", "unknown field"),
    ],
)
def test_a_bad_preview_body_is_422_naming_the_field_and_reason(
    client: TestClient, body: dict[str, Any], field: str, reason: str
) -> None:
    response = client.post("/api/schedules/preview", json=body)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert reason in error["reason"]


def test_an_unknown_job_is_404(client: TestClient) -> None:
    assert client.get("/api/jobs/nobody/fires").status_code == 404
