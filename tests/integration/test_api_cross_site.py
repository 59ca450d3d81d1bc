"""No cross-site writes: only JSON bodies are read, foreign browser origins are refused,
and CORS answers only for the origins configured."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from chronolog.serving import api_context
from chronolog.wiring import Runtime
from tests.samples import DAILY_REPORT

EVIL = "http://evil.example"
OPS = "https://ops.example.com"
SHELL = {"name": "pwn", "type": "shell", "command": "touch /tmp/pwned"}


def events_in_log(runtime: Runtime) -> int:
    return sum(runtime.log.watermarks(p).high for p in range(runtime.log.partitions))


@pytest.fixture
def cors_client(running: Runtime) -> Iterator[TestClient]:
    context = dataclasses.replace(api_context(running), cors_origins=(OPS,))
    with TestClient(create_app(context)) as test_client:
        yield test_client


def test_the_issues_attack_a_form_create_from_a_foreign_page_appends_nothing(
    client: TestClient, running: Runtime
) -> None:
    form = {"content-type": "application/x-www-form-urlencoded", "origin": EVIL}
    response = client.post("/api/jobs", content=json.dumps(SHELL), headers=form)
    assert response.status_code == 403, response.text
    (problem,) = response.json()["errors"]
    assert problem["field"] == "origin"
    assert EVIL in problem["reason"] and "CHRONOLOG_CORS_ORIGINS" in problem["reason"]
    assert events_in_log(running) == 0
    assert client.get("/api/jobs").json()["total"] == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain;charset=UTF-8",
        "application/jsonx",
    ],
)
def test_a_body_not_labelled_json_is_415_whatever_it_holds(
    client: TestClient, running: Runtime, content_type: str
) -> None:
    body = json.dumps(DAILY_REPORT)
    response = client.post("/api/jobs", content=body, headers={"content-type": content_type})
    assert response.status_code == 415, response.text
    assert response.json()["error"] == "unsupported_media_type"
    assert content_type in response.json()["errors"][0]["reason"]
    assert events_in_log(running) == 0


def test_a_body_without_a_content_type_is_415(client: TestClient, running: Runtime) -> None:
    response = client.post("/api/jobs", content=json.dumps(DAILY_REPORT))
    assert response.status_code == 415, response.text
    assert "no Content-Type" in response.json()["message"]
    assert events_in_log(running) == 0


def test_a_labelled_form_without_a_body_cannot_pause_a_job(client: TestClient) -> None:
    client.post("/api/jobs", json=DAILY_REPORT)
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = client.post("/api/jobs/daily-report/pause", headers=form)
    assert response.status_code == 415, response.text
    assert client.get("/api/jobs/daily-report").json()["status"] == "active"


def test_json_with_a_suffix_or_charset_and_bodiless_actions_are_accepted(
    client: TestClient,
) -> None:
    vendor = {"content-type": "application/vnd.chronolog+json; charset=utf-8"}
    response = client.post("/api/jobs", content=json.dumps(DAILY_REPORT), headers=vendor)
    assert response.status_code == 201, response.text
    assert client.post("/api/jobs/daily-report/pause").status_code == 200  # curl -X POST
    assert client.get("/api/jobs/daily-report").json()["status"] == "paused"


def test_the_apis_own_pages_may_write(client: TestClient) -> None:
    own = {"origin": "http://testserver"}  # Swagger UI at /docs sends its own origin
    assert client.post("/api/jobs", json=DAILY_REPORT, headers=own).status_code == 201


@pytest.mark.parametrize("origin", [EVIL, "null", "http://testserver.evil.example", "ftp://x"])
def test_reads_and_streams_from_a_foreign_page_are_refused_too(
    client: TestClient, origin: str
) -> None:
    for path in ("/api/jobs", "/api/changes?after=0"):
        response = client.get(path, headers={"origin": origin})
        assert response.status_code == 403, (path, response.text)
        assert response.json()["errors"][0]["field"] == "origin"
        assert "access-control-allow-origin" not in response.headers


def test_without_configured_origins_a_preflight_is_refused_and_cors_is_off(
    client: TestClient,
) -> None:
    preflight = {"origin": EVIL, "access-control-request-method": "POST"}
    response = client.options("/api/jobs", headers=preflight)
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    same = client.get("/api/jobs", headers={"origin": "http://testserver"})
    assert same.status_code == 200
    assert "access-control-allow-origin" not in same.headers


def test_a_configured_origin_gets_its_preflight_and_may_write(
    cors_client: TestClient, running: Runtime
) -> None:
    preflight = {
        "origin": OPS,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    response = cors_client.options("/api/jobs", headers=preflight)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == OPS
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in response.headers
    created = cors_client.post("/api/jobs", json=DAILY_REPORT, headers={"origin": OPS})
    assert created.status_code == 201, created.text
    assert created.headers["access-control-allow-origin"] == OPS
    assert "Location" in created.headers["access-control-expose-headers"]


def test_with_configured_origins_any_other_is_still_refused(
    cors_client: TestClient, running: Runtime
) -> None:
    preflight = {"origin": EVIL, "access-control-request-method": "POST"}
    assert cors_client.options("/api/jobs", headers=preflight).status_code == 403
    form = {"content-type": "application/x-www-form-urlencoded", "origin": EVIL}
    refused = cors_client.post("/api/jobs", content=json.dumps(SHELL), headers=form)
    assert refused.status_code == 403
    assert events_in_log(running) == 0
